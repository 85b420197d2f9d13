"""OpenAPI request bodies for routes that read the raw body themselves.

Webhook handlers need the exact bytes (for the signature) and decode them with their own
msgspec decoders, so Litestar cannot infer their body schema. This module derives it from the
same Structs with ``msgspec.json.schema`` and inlines the definitions, so the document stays
self-contained without touching Litestar's component registry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.openapi.spec import OpenAPIMediaType, Operation, Parameter, RequestBody


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {key: _inline(value, defs) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    return node


def inline_schema(*types: type) -> dict[str, Any]:
    """A JSON Schema accepting any of ``types``, with no references left."""
    schemas, defs = msgspec.json.schema_components(types, ref_template="#/$defs/{name}")
    inlined = [_inline(schema, defs) for schema in schemas]
    return inlined[0] if len(inlined) == 1 else {"oneOf": inlined}


def json_body(*types: type, description: str, headers: Sequence[Parameter] = ()) -> type[Operation]:
    """An Operation class whose request body is documented as JSON of one of ``types``;
    ``headers`` documents request headers a handler reads from the scope itself."""
    schema = inline_schema(*types)

    @dataclass
    class WithJsonBody(Operation):
        def __post_init__(self) -> None:
            media = OpenAPIMediaType(schema=schema)  # type: ignore[arg-type]  # a raw JSON Schema
            self.request_body = RequestBody(
                content={"application/json": media}, description=description, required=True
            )
            if headers:
                self.parameters = [*(self.parameters or []), *headers]

    return WithJsonBody


__all__ = ["inline_schema", "json_body"]

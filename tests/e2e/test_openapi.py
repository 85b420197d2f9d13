"""The OpenAPI document describes every route, its body and its answers."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

ROUTES = {
    ("/webhooks/fingerprint", "post"),
    ("/webhooks/ipqs", "post"),
    ("/v1/score", "post"),
    ("/v1/labels", "post"),
    ("/v1/rescore", "post"),
    ("/v1/visitors/{visitor_id}", "get"),
    ("/admin/outbox", "get"),
    ("/admin/outbox/parked", "get"),
    ("/admin/outbox/parked/replay", "post"),
    ("/admin/outbox/parked/purge", "post"),
    ("/health", "get"),
    ("/ready", "get"),
    ("/metrics", "get"),
}


async def test_every_route_is_documented(client: AsyncTestClient[Litestar]) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    documented = {(path, method) for path, item in schema["paths"].items() for method in item}
    assert documented == ROUTES
    for path, method in ROUTES:
        operation = schema["paths"][path][method]
        assert operation["operationId"], path
        assert operation.get("summary") or operation.get("description"), path
        media = "text/plain" if path == "/metrics" else "application/json"
        content = operation["responses"]["200"]["content"]
        assert any(kind.startswith(media) for kind in content), path
        if method == "post":
            body = operation["requestBody"]["content"]["application/json"]["schema"]
            assert body, path


async def test_bodies_and_security_are_described(client: AsyncTestClient[Litestar]) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    paths = schema["paths"]
    webhook = paths["/webhooks/fingerprint"]["post"]["requestBody"]["content"]
    variants = webhook["application/json"]["schema"]["oneOf"]
    assert [v["title"] for v in variants] == ["WebhookV3", "WebhookV4"]
    assert "requestId" in variants[0]["properties"] and "event_id" in variants[1]["properties"]
    ipqs = paths["/webhooks/ipqs"]["post"]["requestBody"]["content"]["application/json"]
    assert {"fraud_chance", "guid", "request_id"} <= set(ipqs["schema"]["properties"])
    for path, method in [
        ("/v1/score", "post"),
        ("/v1/labels", "post"),
        ("/v1/visitors/{visitor_id}", "get"),
        ("/webhooks/ipqs", "post"),
    ]:
        assert paths[path][method]["security"] == [{"apiKey": []}]
        assert "401" in paths[path][method]["responses"]
    assert "security" not in paths["/webhooks/fingerprint"]["post"]
    (signature,) = paths["/webhooks/fingerprint"]["post"]["parameters"]
    assert (signature["name"], signature["in"]) == ("fpjs-event-signature", "header")
    for path in ("/v1/score", "/webhooks/fingerprint"):
        answer = paths[path]["post"]["responses"]["200"]["content"]["application/json"]
        assert answer["schema"]["$ref"].startswith("#/components/schemas/"), path
    assert schema["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    # The admin routes take admin keys only, and say they may be switched off.
    assert schema["components"]["securitySchemes"]["adminKey"]["scheme"] == "bearer"
    admin = [(p, m) for p, item in paths.items() if p.startswith("/admin/") for m in item]
    assert len(admin) == 4
    for path, method in admin:
        assert paths[path][method]["security"] == [{"adminKey": []}]
        assert {"401", "403"} <= set(paths[path][method]["responses"])
    count = paths["/admin/outbox/parked"]["get"]["parameters"][0]
    assert (count["name"], count["schema"]["minimum"], count["schema"]["maximum"]) == (
        "count",
        1,
        1000,
    )
    selection = paths["/admin/outbox/parked/replay"]["post"]["requestBody"]["content"]
    assert set(selection["application/json"]["schema"]["properties"]) == {"ids", "all"}
    components = schema["components"]["schemas"]
    assert {"ScoreResponse", "VisitorView", "ErrorBody"} <= set(components)
    score_body = paths["/v1/score"]["post"]["requestBody"]["content"]["application/json"]
    assert {"requestId", "visitorId", "userId", "email", "ip", "ipqs", "event"} <= set(
        score_body["schema"]["properties"]
    )

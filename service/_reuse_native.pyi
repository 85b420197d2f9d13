from collections.abc import Mapping, Sequence
from typing import Any

_Steps = tuple[tuple[int, int], ...]

class ReuseTables:
    def __init__(
        self,
        *,
        windows: tuple[float, ...],
        cap: int,
        ipqs_window: float,
        kinds: int,
        device: int,
        user: int,
        slots: tuple[int, ...],
        plans: Mapping[str, tuple[tuple[_Steps, _Steps], ...]],
    ) -> None: ...
    def __len__(self) -> int: ...
    def record_many(
        self,
        inputs: Sequence[tuple[str, tuple[str | None, ...], tuple[str | None, ...]]],
        moments: Sequence[int],
        blobs: Sequence[Any],
    ) -> tuple[bytes, list[int | None], list[Any]]: ...

"""``python -m service <tool>``: a batch tool that meets bad configuration or a path it
cannot use says so in one line, with an exit status, rather than a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.__main__ import main

pytestmark = pytest.mark.usefixtures("no_riskwire_env")


def test_a_setting_that_does_not_parse_stops_a_tool_with_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RISKWIRE_PORT", "eighty")
    events = tmp_path / "events.jsonl"
    events.write_text("{}\n")
    output = tmp_path / "scored.jsonl"
    assert main(["rescore", "--input", str(events), "--output", str(output), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("configuration error: RISKWIRE_PORT: Expected `int`")
    assert not output.exists()


def test_a_path_a_tool_cannot_write_stops_it_with_status_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    out = blocker / "simulated"
    assert main(["simulate", "--out", str(out), "--days", "1"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("python -m service simulate: ") and str(blocker) in error
    assert "Traceback" not in error

"""``acnet-proto replay``: serves a recording until it was played, exit 0; a departure is one
line and exit 1; a transcript it cannot play is one line naming file and line, exit 2."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from acnet_proto.adapters.dpm.threaded import DPMBackend
from acnet_proto.errors import AcnetProtoError
from tests.adapters.cli.installed import BIN, one_error_line, run
from tests.support.vectors import SHARED

pytestmark = pytest.mark.integration

READ = SHARED / "transcripts" / "read-one-shot.jsonl"
WAIT = 30.0


@pytest.fixture
def replaying() -> Iterator[tuple[subprocess.Popen[str], int]]:
    """``acnet-proto replay`` of the shared one-shot read on a free port; its port."""
    command = [str(BIN / "acnet-proto"), "replay", str(READ), "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert banner.startswith("replaying 1 recorded connection(s) on 127.0.0.1:"), banner
        yield process, int(banner.split("127.0.0.1:")[1].split(";")[0])
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=WAIT)


def test_it_returns_once_the_recording_was_played(
    replaying: tuple[subprocess.Popen[str], int],
) -> None:
    process, port = replaying
    with DPMBackend("127.0.0.1", port, timeout=WAIT) as backend:
        assert backend.read("M:OUTTMP") == 41.7
    assert process.wait(timeout=WAIT) == 0
    assert process.stderr is not None and process.stderr.read() == ""


def test_a_departure_is_one_line_and_exit_1(replaying: tuple[subprocess.Popen[str], int]) -> None:
    process, port = replaying
    with DPMBackend("127.0.0.1", port, timeout=WAIT) as backend, pytest.raises(AcnetProtoError):
        backend.read("Z:ACLTST")
    assert process.wait(timeout=WAIT) == 1
    assert process.stderr is not None
    [line] = process.stderr.read().splitlines()
    assert line.startswith(f"acnet-proto replay: {READ}, connection 1, line 3: expected ")
    assert "Z:ACLTST" in line


def test_a_bad_transcript_is_exit_2_naming_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(READ.read_text().splitlines()[0] + "\n{oops\n")
    line = one_error_line(run("acnet-proto", "replay", str(bad), "--port", "0"), "acnet-proto", 2)
    assert f"{bad} line 2: not a valid record" in line


def test_a_missing_transcript_is_exit_2_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"
    line = one_error_line(run("acnet-proto", "replay", str(missing)), "acnet-proto", 2)
    assert f"cannot read {missing}" in line and "check the path" in line

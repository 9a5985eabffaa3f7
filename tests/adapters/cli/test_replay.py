"""``acnet-proto replay``: serves a recording until it was played, exit 0; a departure is one
line and exit 1 at once, as is each recorded connection never made (Ctrl-C); a transcript it
cannot play is one line naming file and line, exit 2; with ``--keytab`` a recorded write
replays to a real Kerberos client (the session KDC)."""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from acnet_proto.adapters.dpm.threaded import DPMBackend
from acnet_proto.adapters.sim.dpm import SimServer
from acnet_proto.errors import AcnetProtoError
from tests.adapters.cli.installed import BIN, one_error_line, run
from tests.adapters.dpm.test_write_behaviour import POLICY
from tests.interop.test_replay import ours_writing, read_and_write, recorded
from tests.support.servers.kdc import KDC
from tests.support.vectors import SHARED

pytestmark = pytest.mark.integration

READ = SHARED / "transcripts" / "read-one-shot.jsonl"
WAIT = 30.0


@contextlib.contextmanager
def replay(*options: str) -> Iterator[tuple[subprocess.Popen[str], int, str]]:
    """``acnet-proto replay OPTIONS --port 0``, killed on exit if still running; it, its port,
    its banner."""
    command = [str(BIN / "acnet-proto"), "replay", *options, "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert banner.startswith("replaying "), (banner, process.stderr)
        yield process, int(banner.split("127.0.0.1:")[1].split(";")[0]), banner
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=WAIT)


@pytest.fixture
def replaying() -> Iterator[tuple[subprocess.Popen[str], int]]:
    """``acnet-proto replay`` of the shared one-shot read on a free port; its port."""
    with replay(str(READ)) as (process, port, banner):
        assert banner.startswith("replaying 1 recorded connection(s) on 127.0.0.1:"), banner
        yield process, port


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


def test_it_stops_at_the_first_departure_naming_the_connections_never_made(
    tmp_path: Path,
) -> None:
    again = tmp_path / "again.jsonl"
    again.write_text(READ.read_text())
    with replay(str(READ), str(again)) as (process, port, _):
        backend = DPMBackend("127.0.0.1", port, timeout=WAIT)
        with backend, pytest.raises(AcnetProtoError):
            backend.read("Z:ACLTST")
        # it does not wait for the second recorded connection
        assert process.wait(timeout=WAIT) == 1
        assert process.stderr is not None
        departure, unmade = process.stderr.read().splitlines()
    assert departure.startswith(f"acnet-proto replay: {READ}, connection 1, line 3: expected ")
    assert unmade.startswith(f"acnet-proto replay: {again}, connection 2, line 1: expected ")
    assert "fewer connections than the recording" in unmade


def test_ctrl_c_before_the_client_came_is_exit_1_naming_the_connection(
    replaying: tuple[subprocess.Popen[str], int],
) -> None:
    process, _ = replaying
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=WAIT) == 1
    assert process.stderr is not None
    [line] = process.stderr.read().splitlines()
    assert line.startswith(f"acnet-proto replay: {READ}, connection 1, line 1: expected ")
    assert "fewer connections than the recording" in line


def test_a_bad_transcript_is_exit_2_naming_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(READ.read_text().splitlines()[0] + "\n{oops\n")
    line = one_error_line(run("acnet-proto", "replay", str(bad), "--port", "0"), "acnet-proto", 2)
    assert f"{bad} line 2: not a valid record" in line


def test_a_missing_transcript_is_exit_2_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"
    line = one_error_line(run("acnet-proto", "replay", str(missing)), "acnet-proto", 2)
    assert f"cannot read {missing}" in line and "check the path" in line


def test_with_a_keytab_a_recorded_write_replays_to_a_kerberos_client(
    kdc: KDC, start_sim: Callable[..., SimServer], tmp_path: Path
) -> None:
    pytest.importorskip("gssapi")
    path = tmp_path / "session.jsonl"
    sim = start_sim(keytab=kdc.keytab, policy=POLICY)
    value, *_ = recorded(ours_writing, sim, path, read_and_write)
    with replay(str(path), "--keytab", str(kdc.keytab)) as (process, port, banner):
        assert f"; Kerberos live with {kdc.keytab}; " in banner
        with ours_writing("127.0.0.1", port) as backend:
            assert read_and_write(backend) == (value, True, 0)
        assert process.wait(timeout=WAIT) == 0
        assert process.stderr is not None and process.stderr.read() == ""


def test_a_keytab_without_the_service_is_exit_2_naming_it(kdc: KDC) -> None:
    pytest.importorskip("gssapi")
    keytab = kdc.keytab_with("daeset/bd/localhost")
    result = run("acnet-proto", "replay", str(READ), "--keytab", str(keytab), "--port", "0")
    line = one_error_line(result, "acnet-proto", 2)
    assert f"--keytab {keytab}: cannot accept as daeset/bd@FNAL.GOV" in line


def test_a_missing_keytab_is_exit_2_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "missing.keytab"
    result = run("acnet-proto", "replay", str(READ), "--keytab", str(missing))
    line = one_error_line(result, "acnet-proto", 2)
    assert f"--keytab {missing}: no such file" in line

"""``acmonitor`` (``acnet-proto monitor``): a default event, -n, --timeout, gaps, a dead server."""

from __future__ import annotations

import json
import signal
import subprocess

import pytest

from acnet_proto.adapters.cli import main as cli
from acnet_proto.adapters.sim.dpm import SimServer
from tests.adapters.cli.installed import BIN, one_error_line, run, where


def test_a_drf_without_an_event_streams_once_a_second(sim: SimServer) -> None:
    result = run("acmonitor", "M:OUTTMP", "-n", "1", "--timeout", "5", *where(sim))
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert line.startswith("M:OUTTMP@p,1000 20") and line.endswith(" DegF")


def test_error_readings_count_and_the_monitor_ends(sim: SimServer) -> None:
    result = run("acmonitor", "-n", "3", "Z:NOTFND@p,100", "M:OUTTMP@p,100", *where(sim))
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert sum("DPM_PEND" in line for line in lines) == 1


def test_a_timeout_with_nothing_received_says_so(sim: SimServer) -> None:
    result = run("acmonitor", "--timeout", "1", "M:OUTTMP@p,100000", *where(sim))
    line = one_error_line(result, "acmonitor", 1)
    assert "no reading for 1 s from M:OUTTMP@p,100000" in line and "--timeout" in line
    assert result.stdout == ""


def test_a_one_shot_event_is_a_usage_error_not_a_hang() -> None:
    line = one_error_line(run("acmonitor", "M:OUTTMP@I"), "acmonitor", 2)
    assert "'M:OUTTMP@I'" in line and "acget" in line


def test_json_lines(sim: SimServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.acmonitor_main(["--format", "json", "-n", "2", "M:OUTTMP@p,100", *where(sim)]) == 0
    readings = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["drf"] for r in readings] == ["M:OUTTMP@p,100"] * 2
    assert all(r["ok"] and r["units"] == "DegF" for r in readings)


def _monitor_then_stop_the_server(*options: str) -> subprocess.Popen[str]:
    """acmonitor on a simulator that is stopped once the first reading is out."""
    with SimServer.in_thread() as server:
        proc = subprocess.Popen(
            [str(BIN / "acmonitor"), *options, "M:OUTTMP@p,100", *where(server)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("M:OUTTMP@p,100 20"), first
    return proc


def _gap_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None and proc.stderr is not None
    while not (line := proc.stdout.readline()).startswith("#"):
        assert line, f"the stream ended with no gap line; stderr: {proc.stderr.read()}"
    return line


@pytest.mark.integration
def test_a_server_that_dies_shows_as_it_happens() -> None:
    """The gap line comes while the monitor is still reconnecting, not at its end."""
    proc = _monitor_then_stop_the_server()  # 10 reconnection attempts: tens of seconds
    try:
        line = _gap_line(proc)
        assert proc.poll() is None, "the gap line came only when the monitor ended"
        assert "lost its connection" in line and "reconnecting" in line
        proc.send_signal(signal.SIGINT)  # Ctrl-C: how a monitor is ended
        assert proc.wait(10) == 0
    finally:
        proc.kill()
        proc.wait()
    assert proc.stderr is not None and proc.stderr.read() == ""


@pytest.mark.integration
def test_a_stream_lost_for_good_is_exit_3() -> None:
    proc = _monitor_then_stop_the_server("--reconnect", "2")
    try:
        _gap_line(proc)
        assert proc.wait(30) == 3
    finally:
        proc.kill()
        proc.wait()
    assert proc.stderr is not None
    (error,) = proc.stderr.read().splitlines()
    assert error.startswith("acmonitor: no connection to DPM at 127.0.0.1:")
    assert "gave up after 2 reconnection attempt(s)" in error

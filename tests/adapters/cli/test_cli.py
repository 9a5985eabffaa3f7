"""The command-line tools, run as users run them, against the simulator."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from acnet_proto.adapters.cli import main as cli
from acnet_proto.adapters.sim.dpm import SimServer
from acnet_proto.engine._state import Role
from acnet_proto.engine.transcript import load, replay
from tests.adapters.cli.installed import where
from tests.support.vectors import SHARED

TRANSCRIPTS = SHARED / "transcripts"


@pytest.mark.parametrize("name", ["read-one-shot", "stream-with-heartbeat", "write-kerberos"])
def test_decode_prints_every_message_and_checks(name: str, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["decode", str(TRANSCRIPTS / f"{name}.jsonl"), "--check"]) == 0
    out = capsys.readouterr().out
    lines = load(TRANSCRIPTS / f"{name}.jsonl")
    assert out.count("client -> server") == sum(line.direction == "c2s" for line in lines)
    assert out.count("server -> client") == sum(line.direction == "s2c" for line in lines)
    assert out.rstrip().endswith("OK: every frame follows the DPM state machine")


def test_decode_names_statuses_and_utc_times(capsys: pytest.CaptureFixture) -> None:
    cli.main(["decode", str(TRANSCRIPTS / "stream-with-heartbeat.jsonl")])
    out = capsys.readouterr().out
    assert "status=-6639 DPM_NO_SUCH_DEVICE [17 -26]" in out
    assert "timestamp=2025-11-22T00:00:01.000+00:00" in out


def _tampered(tmp_path: Path, direction: str) -> Path:
    """The one-shot read with the first line in ``direction`` after the list id sent twice."""
    records = [
        json.loads(t) for t in (TRANSCRIPTS / "read-one-shot.jsonl").read_text().splitlines()
    ]
    index = next(i for i, r in enumerate(records) if i > 1 and r["dir"] == direction)
    records.insert(index + 1, records[index])
    path = tmp_path / "tampered.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.mark.parametrize(
    ("direction", "culprit", "line"), [("c2s", "client", 4), ("s2c", "server", 5)]
)
def test_decode_check_names_who_broke_the_protocol(
    tmp_path: Path, direction: str, culprit: str, line: int, capsys: pytest.CaptureFixture
) -> None:
    assert cli.main(["decode", str(_tampered(tmp_path, direction)), "--check"]) == 1
    (verdict,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith("BROKEN")]
    assert verdict.startswith(f"BROKEN at line {line}: the {culprit} broke the protocol: ")
    assert verdict.count("broke the protocol") == 1


def test_decode_reports_unreadable_files(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"dir": "c2s", "hex": "zz"}\n')
    assert cli.main(["decode", str(bad)]) == 2
    assert "not a valid record" in capsys.readouterr().err
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text('{"dir": "s2c", "hex": "0000000553444402ff"}\n')
    assert cli.main(["decode", str(garbage)]) == 1
    assert "does not decode" in capsys.readouterr().err


def test_acget(sim: SimServer, capsys: pytest.CaptureFixture) -> None:
    assert cli.acget_main(["M:OUTTMP", "Z:STRTST", "-t", *where(sim)]) == 0
    first, second = capsys.readouterr().out.splitlines()
    assert first.startswith("M:OUTTMP 20") and first.endswith(" DegF")
    assert second.endswith("the quick brown fox")


def test_acget_error_exit_status(sim: SimServer, capsys: pytest.CaptureFixture) -> None:
    assert cli.acget_main(["Z:NOTFND", *where(sim)]) == 1
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith("Z:NOTFND ERROR DPM_PEND [17 1]") and "check the device name" in line


def test_acinfo(sim: SimServer, capsys: pytest.CaptureFixture) -> None:
    assert cli.acinfo_main(["M:OUTTMP", *where(sim)]) == 0
    out = capsys.readouterr().out
    assert "description: Outdoor temperature" in out and "device index: 27235" in out


def test_acmonitor_stops_after_count(sim: SimServer, capsys: pytest.CaptureFixture) -> None:
    assert cli.acmonitor_main(["M:OUTTMP@p,100", "-n", "3", *where(sim)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(line.startswith("M:OUTTMP@p,100 20") for line in lines)


def test_tools_without_a_host_say_how_to_get_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    for name in ("ACNET_DPM_HOST", "PACSYS_DPM_HOST"):
        monkeypatch.delenv(name, raising=False)
    assert cli.acget_main(["M:OUTTMP"]) == 2
    err = capsys.readouterr().err
    assert "ACNET_DPM_HOST" in err and "acnet-proto sim" in err and "--sim" in err
    # ... and --sim does just that
    assert cli.acget_main(["--sim", "M:OUTTMP", "Z:STRINGTEST"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == "Z:STRINGTEST hello"


@pytest.mark.integration
def test_acput_sets_with_kerberos(kdc: object, capsys: pytest.CaptureFixture) -> None:
    with SimServer.in_thread(keytab=kdc.keytab) as server:  # type: ignore[attr-defined]
        assert cli.acput_main(["Z:ACLTST", "12.5", *where(server)]) == 0
        out = capsys.readouterr().out
        old, new = out.splitlines()
        assert old.startswith("Old : Z:ACLTST ") and new.startswith("New : Z:ACLTST 12.")
        assert cli.acput_main(["G:AMANDA", "3", *where(server)]) == 1
        assert "DPM_PRIV" in capsys.readouterr().out


def test_sim_command_serves_until_interrupted(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "acnet_proto.adapters.cli.main", "sim", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        banner = proc.stdout.readline() if proc.stdout else ""
        assert "simulated DPM on 127.0.0.1:" in banner
        port = int(banner.split("127.0.0.1:")[1].split()[0])
        assert cli.acget_main(["M:OUTTMP", "--host", "127.0.0.1", "--port", str(port)]) == 0
    finally:
        proc.send_signal(2)
        assert proc.wait(10) == 0


@pytest.mark.integration
def test_demo_runs_end_to_end(kdc: object) -> None:
    """The README's demo command (its tour, in a fresh process with its own KDC)."""
    result = subprocess.run(
        [sys.executable, "-m", "acnet_proto.adapters.cli.main", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for step in ("read one value", "a batch", "stream five", "an error", "a setting as", "refuses"):
        assert step in out
    assert sum(line.startswith("   M:OUTTMP@p,200") for line in out.splitlines()) == 5
    assert "DPM_PEND" in out and "DPM_PRIV" in out and "ok=True" in out


def test_record_proxies_and_writes_a_replayable_transcript(sim: SimServer, tmp_path: Path) -> None:
    out = tmp_path / "session.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "acnet_proto.adapters.cli.main", "record", "--host", sim.host,
         "--port", str(sim.port), "--listen-port", "0", "-o", str(out)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        banner = proc.stdout.readline() if proc.stdout else ""
        port = int(banner.split("via 127.0.0.1:")[1].split()[0])
        assert (
            cli.acget_main(["M:OUTTMP", "Z:NOTFND", "--host", "127.0.0.1", "--port", str(port)])
            == 1
        )
        deadline = time.monotonic() + 10  # the proxy writes the file when the client hangs up
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        proc.send_signal(2)
        assert proc.wait(10) == 0
    lines = load(out)
    assert lines[0].direction == "c2s" and lines[0].data.startswith(b"GET /dpm")
    for role in (Role.CLIENT, Role.SERVER):
        assert list(replay(lines, role))  # every frame follows the state machine
    assert cli.main(["decode", str(out), "--check"]) == 0


def test_sim_serves_every_protocol_from_one_model() -> None:
    pytest.importorskip("grpc")
    from acnet_proto.adapters.acl import ACLBackend
    from acnet_proto.adapters.devdb import DevDBClient
    from acnet_proto.adapters.grpc.threaded import GRPCBackend

    proc = subprocess.Popen(
        [sys.executable, "-m", "acnet_proto.adapters.cli.main", "sim", "--port", "0",
         "--grpc-port", "0", "--devdb-port", "0", "--acl-port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        banners = [proc.stdout.readline() for _ in range(4)] if proc.stdout else []
        ports = {
            b.split()[1]: int(b.split("127.0.0.1:")[1].split()[0].split("/")[0]) for b in banners
        }
        with GRPCBackend("127.0.0.1", ports["DAQ"]) as grpc_backend:
            assert isinstance(grpc_backend.read("M:OUTTMP"), float)
        assert cli.acget_main(["M:OUTTMP", "--host", "127.0.0.1", "--port", str(ports["DPM"])]) == 0
        with DevDBClient("127.0.0.1", ports["DevDB"]) as devdb:
            info = devdb.get_device_info(["M:OUTTMP"])["M:OUTTMP"]
            assert info.description == "Outdoor temperature"
        acl_url = f"http://127.0.0.1:{ports['ACL']}/cgi-bin/acl.pl"
        with ACLBackend(acl_url) as acl:
            assert isinstance(acl.read("M:OUTTMP"), float)
    finally:
        proc.send_signal(2)
        assert proc.wait(10) == 0

"""The replay server over loopback: our own client served a shared transcript, a departure
logged once and the connection closed, heartbeats while waiting, the pytest fixture, and
Kerberos played live with a keytab (the session KDC)."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from acnet_proto import testing
from acnet_proto.adapters.dpm.threaded import DPMBackend
from acnet_proto.adapters.sim.replay import ReplayServer, load, transcripts
from acnet_proto.engine.framing import HANDSHAKE, FrameSplitter
from acnet_proto.errors import AcnetProtoError, AuthenticationError
from acnet_proto.pc import dpm
from tests.support.servers.kdc import KDC, assert_from_gssapi
from tests.support.vectors import SHARED
from tests.support.waiting import wait_until

# the fixture under test, as a conftest.py would make it available
replay_server = testing.replay_server

pytestmark = pytest.mark.integration

READ = SHARED / "transcripts" / "read-one-shot.jsonl"
WAIT = 10.0
LOGGER = "acnet_proto.adapters.sim.replay"


def test_the_fixture_serves_a_recording_to_our_client(
    replay_server: Callable[..., tuple[str, int]],
) -> None:
    host, port = replay_server(READ)
    with DPMBackend(host, port) as backend:
        assert backend.read("M:OUTTMP.READING") == 41.7


def departing(**options: Any) -> ReplayServer:
    """A replay of the one-shot read that our client departed from; the stopped server."""
    with (
        ReplayServer.in_thread(load(READ), **options) as server,
        DPMBackend(server.host, server.port, timeout=WAIT) as backend,
        pytest.raises(AcnetProtoError),
    ):
        backend.read("Z:ACLTST")
    return server


def test_a_departure_is_logged_once_and_closes_the_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = departing()
    [mismatch] = server.mismatches
    assert mismatch.line == 3 and "Z:ACLTST" in mismatch.got
    logged = [r for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING]
    assert [(r.levelno, r.getMessage()) for r in logged] == [
        (logging.WARNING, f"replay: {mismatch}")
    ]
    with pytest.raises(type(mismatch)):
        server.check()


def test_a_departure_goes_to_on_mismatch_instead_of_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    heard: list[AcnetProtoError] = []
    server = departing(on_mismatch=heard.append)
    assert heard == server.mismatches and len(heard) == 1
    assert not [r for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING]


def test_recorded_connections_no_client_made_are_problems() -> None:
    with ReplayServer.in_thread(load(READ)) as server:
        pass
    [problem] = server.problems()
    assert problem.reason == "the client made fewer connections than the recording"
    assert server.mismatches == []


def read_replies(sock: socket.socket, count: int) -> list[object]:
    splitter, got = FrameSplitter(), []
    while len(got) < count:
        data = sock.recv(65536)
        assert data, f"the server closed after {got}"
        got += [dpm.decode_reply(f) for f in splitter.feed(data)]
    return got


def test_a_waiting_server_sends_heartbeats_for_the_recorded_list() -> None:
    with (
        ReplayServer.in_thread(load(READ), heartbeat_period=0.05) as server,
        socket.create_connection(server.address, timeout=WAIT) as sock,
    ):
        sock.sendall(HANDSHAKE)
        got = read_replies(sock, 3)
    assert got == [
        dpm.OpenListReply(list_id=48813),
        dpm.ListStatusReply(list_id=48813, status=0),
        dpm.ListStatusReply(list_id=48813, status=0),
    ]
    # it was cut off before its requests: counted when the server stopped
    [mismatch] = server.mismatches
    assert mismatch.line == 3 and mismatch.reason == "recorded requests remain"


def test_the_recorders_numbered_files_belong_to_the_recording(tmp_path: Path) -> None:
    first = tmp_path / "session.jsonl"
    for path in (first, tmp_path / "session-2.jsonl", tmp_path / "session-4.jsonl"):
        path.write_text(READ.read_text())
    assert transcripts(first) == [first, tmp_path / "session-2.jsonl"]
    assert len(load(first, tmp_path / "session-2.jsonl")) == 2  # each file once


DEPARTING = """
import pytest
from acnet_proto.adapters.dpm.threaded import DPMBackend
from acnet_proto.errors import AcnetProtoError

def test_reads_another_device(replay_server):
    host, port = replay_server({path!r})
    with DPMBackend(host, port, timeout=10) as backend, pytest.raises(AcnetProtoError):
        backend.read("Z:ACLTST")
"""


def test_the_fixture_fails_a_test_whose_client_departed(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text("from acnet_proto.testing import replay_server\n")
    (tmp_path / "test_departing.py").write_text(DEPARTING.format(path=str(READ)))
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False
    )
    assert result.returncode == 1, result.stdout
    assert "1 passed, 1 error" in result.stdout
    assert f"{READ}, connection 1, line 3: expected" in result.stdout


WRITE = SHARED / "transcripts" / "write-kerberos.jsonl"


def test_with_a_keytab_the_shared_redacted_write_replays_to_a_kerberos_client(kdc: KDC) -> None:
    pytest.importorskip("gssapi")
    from acnet_proto.adapters.kerberos import KerberosAuth

    with ReplayServer.in_thread(load(WRITE), keytab=kdc.keytab) as server:
        with DPMBackend(server.host, server.port, auth=KerberosAuth(), role="testing") as backend:
            result = backend.write("Z:ACLTST", 45.0)
        wait_until(server.done.is_set, "the recorded connection to be played")
    assert result.success and server.problems() == []


def test_a_keytab_that_cannot_accept_as_the_service_is_refused_at_once(kdc: KDC) -> None:
    pytest.importorskip("gssapi")
    keytab = kdc.keytab_with("daeset/bd/localhost")
    with pytest.raises(AuthenticationError) as caught:
        ReplayServer(load(READ), keytab=keytab, service="daeset/bd")
    assert_from_gssapi(caught.value, "daeset/bd@FNAL.GOV", str(keytab))

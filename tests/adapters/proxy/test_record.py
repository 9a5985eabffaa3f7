"""The recording proxy in front of the simulated DPM: no secret reaches a transcript.

A raw socket client speaks DPM through the real :class:`Recorder` to the
simulator, spelling its Authenticate and EnableSettings requests with
integers wider than they need (as the SDD format allows, and as re-encoding
would not reproduce). The transcript holds no byte of the token or the MIC;
a connection whose secret cannot be zeroed is written nowhere, and both the
recorder and ``acnet-proto record`` say so.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from acnet_proto.adapters.proxy.record import Recorder, Refusal
from acnet_proto.adapters.sim.dpm import SimServer
from acnet_proto.engine.framing import HANDSHAKE, FrameSplitter, frame
from acnet_proto.engine.transcript import RedactionError, load, messages_of
from acnet_proto.pc import dpm
from tests.engine.test_redact import spelled

pytestmark = pytest.mark.integration

TOKEN = os.urandom(400)
MIC = os.urandom(28)
WAIT = 10.0


def four_bytes(position: int, value: int) -> int:
    """Every integer on 4 bytes: the list_id spelling that once slipped past redaction."""
    return 4


def authenticate(list_id: int) -> bytes:
    return spelled(dpm.AuthenticateRequest(list_id=list_id, token=TOKEN), four_bytes)


def enable(list_id: int) -> bytes:
    return spelled(dpm.EnableSettingsRequest(list_id=list_id, mic=MIC, message=b"1234"), four_bytes)


def copied(list_id: int) -> bytes:
    """A MIC also carried in the signed message: it cannot be zeroed leaving that intact."""
    return spelled(dpm.EnableSettingsRequest(list_id=list_id, mic=MIC, message=MIC), four_bytes)


def converse(port: int, *requests: Callable[[int], bytes]) -> int:
    """Handshake, send the requests for the list the server opened, hang up; the list id."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(HANDSHAKE)
        opened = FrameSplitter()
        while not (frames := opened.feed(sock.recv(65536))):
            pass
        opened_list = dpm.decode_reply(frames[0])
        assert isinstance(opened_list, dpm.OpenListReply)
        list_id: int = opened_list.list_id
        # one write: the simulator drops a client that authenticates out of turn, and
        # whatever follows the dropping frame in a later write would never be recorded
        sock.sendall(b"".join(frame(request(list_id)) for request in requests))
        with contextlib.suppress(OSError):  # the server may have hung up first
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(65536):
                pass
    return list_id


def wait_for(condition: Callable[[], bool]) -> None:
    """The recorder writes when both sides have closed: poll for it, with slack."""
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "the recorder did not finish the connection"
        time.sleep(0.02)


def test_wide_integers_do_not_carry_secrets_into_the_transcript(
    sim: SimServer, tmp_path: Path
) -> None:
    assert len(dpm.encode(dpm.decode_request(authenticate(1)))) < len(authenticate(1))
    with Recorder.in_thread((sim.host, sim.port), tmp_path / "wide.jsonl") as recorder:
        list_id = converse(recorder.port, authenticate, enable)
        wait_for(lambda: bool(recorder.written))
    text = recorder.written[0].read_text()
    for secret in (TOKEN, MIC):
        assert secret.hex() not in text and secret[:16].hex() not in text
    requests = [
        item
        for line, items in messages_of(load(recorder.written[0]))
        for item in items
        if isinstance(item, dpm.AuthenticateRequest | dpm.EnableSettingsRequest)
    ]
    assert requests == [
        dpm.AuthenticateRequest(list_id=list_id, token=bytes(len(TOKEN))),
        dpm.EnableSettingsRequest(list_id=list_id, mic=bytes(len(MIC)), message=b"1234"),
    ]
    assert recorder.refused == []


def test_a_connection_that_cannot_be_redacted_is_refused_and_reported(
    sim: SimServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="acnet_proto.adapters.proxy.record")
    reported: list[Refusal] = []
    output = tmp_path / "session.jsonl"
    with Recorder.in_thread((sim.host, sim.port), output, on_refused=reported.append) as recorder:
        converse(recorder.port, authenticate, copied)
        wait_for(lambda: bool(recorder.refused))
        converse(recorder.port, authenticate, enable)  # the next connection is recorded as usual
        wait_for(lambda: bool(recorder.written))
    (refusal,) = recorder.refused
    assert reported == [refusal] and refusal.path == output and not output.exists()
    assert recorder.written == [tmp_path / "session-2.jsonl"]
    error = refusal.error
    assert isinstance(error, RedactionError)
    assert (error.frame, error.message_type) == (2, "EnableSettings_request")
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.name == "acnet_proto.adapters.proxy.record" and r.levelno == logging.WARNING
    ]
    assert warnings == [str(refusal)] and "EnableSettings_request" in warnings[0]
    assert MIC.hex() not in caplog.text and TOKEN[:16].hex() not in caplog.text


def test_the_record_command_prints_a_refusal(sim: SimServer, tmp_path: Path) -> None:
    output = tmp_path / "session.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "acnet_proto.adapters.cli.main", "record", "--host", sim.host,
         "--port", str(sim.port), "--listen-port", "0", "-o", str(output)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        banner = proc.stdout.readline()
        port = int(banner.split("via 127.0.0.1:")[1].split()[0])
        converse(port, authenticate, copied)
        ready, _, _ = select.select([proc.stdout], [], [], WAIT)
        reported = proc.stdout.readline() if ready else ""
    finally:
        proc.send_signal(2)
        assert proc.wait(WAIT) == 0
    assert reported.startswith(f"not recorded: {output}: cannot redact client frame 2")
    assert "EnableSettings_request" in reported and MIC.hex() not in reported
    assert not output.exists()

"""Recordings served back: pacsys, unchanged, played a session our client recorded against the
simulated DPM gets the values ours got; our client played pacsys's gets pacsys's; our client
played the shared transcripts gets what they hold.

Settings are not replayed to either client here: a real Kerberos client checks the server's
mutual-authentication token, and a recorded one belongs to another session (docs/replay.md).
tests/engine/test_replay.py plays the shared write to a client of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pacsys
import pytest

from acnet_proto import testing
from acnet_proto.adapters.dpm.threaded import DPMBackend
from acnet_proto.adapters.proxy.record import Recorder
from acnet_proto.adapters.sim.dpm import SimServer
from acnet_proto.status import Status
from tests.support.vectors import SHARED
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

replay_server = testing.replay_server
WAIT = 10.0
TRANSCRIPTS = SHARED / "transcripts"
Client = Callable[[str, int], Any]


def ours(host: str, port: int) -> Any:
    return DPMBackend(host, port, timeout=WAIT)


def theirs(host: str, port: int) -> Any:
    return pacsys.dpm(host=host, port=port, timeout=WAIT)


def session(backend: Any) -> list[Any]:
    """What both clients do: a read, a read of two, three readings of a stream."""
    values = [backend.read("M:OUTTMP")]
    values += [r.value for r in backend.get_many(["M:OUTTMP", "Z:ACLTS1[0:4]"])]
    with backend.subscribe(["M:OUTTMP@p,200"]) as stream:
        for reading, _ in stream.readings(timeout=WAIT):
            values.append(reading.value)
            if len(values) == 6:
                break
    return [np.asarray(v).tolist() for v in values]


def recorded(client: Client, sim: SimServer, path: Path) -> list[Any]:
    """``client``'s session against the simulator, recorded to ``path``; the values it got."""
    with Recorder.in_thread((sim.host, sim.port), path) as recorder:
        with client(recorder.host, recorder.port) as backend:
            values = session(backend)
        wait_until(lambda: len(recorder.written) == 2, "both connections to be written")
    return values


@pytest.mark.parametrize(
    ("recording", "played"),
    [(ours, theirs), (theirs, ours)],
    ids=["ours-to-pacsys", "pacsys-to-ours"],
)
def test_a_session_recorded_from_one_client_serves_the_other(
    sim: SimServer,
    tmp_path: Path,
    replay_server: Callable[..., tuple[str, int]],
    recording: Client,
    played: Client,
) -> None:
    path = tmp_path / "session.jsonl"
    values = recorded(recording, sim, path)
    assert len(values) == 6
    with played(*replay_server(path)) as backend:
        assert session(backend) == values


@pytest.fixture
def our_client(replay_server: Callable[..., tuple[str, int]]) -> Iterator[Callable[[str], Any]]:
    backends: list[Any] = []

    def serve(name: str) -> Any:
        backends.append(ours(*replay_server(TRANSCRIPTS / name)))
        return backends[-1]

    yield serve
    for backend in backends:
        backend.close()


def test_our_client_reads_the_shared_one_shot(our_client: Callable[[str], Any]) -> None:
    assert our_client("read-one-shot.jsonl").read("M:OUTTMP") == 41.7


def test_our_client_streams_the_shared_stream(our_client: Callable[[str], Any]) -> None:
    backend = our_client("stream-with-heartbeat.jsonl")
    drfs = ["M:OUTTMP@p,1000", "Z:ACLTS1[0:4]@p,1000", "Z:NOTFND@p,1000"]
    got: list[Any] = []
    with backend.subscribe(drfs) as stream:
        for reading, _ in stream.readings(timeout=WAIT):
            got.append(reading)
            if len(got) == 5:
                break
    [missing] = [r for r in got if r.is_error]
    assert missing.drf == "Z:NOTFND@p,1000"
    assert missing.error_code == Status.from_name("DPM_NO_SUCH_DEVICE").error
    assert [r.value for r in got if r.drf == "M:OUTTMP@p,1000"] == [41.7, 41.8]
    arrays = [r.value.tolist() for r in got if r.drf == "Z:ACLTS1[0:4]@p,1000"]
    assert arrays == [[0.0, 1.5, 3.0, 4.5], [0.5, 2.0, 3.5, 5.0]]

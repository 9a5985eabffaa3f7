"""Recordings served back: pacsys, unchanged, played a session our client recorded against the
simulated DPM gets the values ours got; our client played pacsys's gets pacsys's; our client
played the shared transcripts gets what they hold.

Settings replay with real Kerberos (the session KDC) when the server has a keytab: it
authenticates live, since a recorded mutual-authentication token belongs to another session
(docs/replay.md). Without one, a real Kerberos client refuses the recorded token, and the
departure says to give a keytab.
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
from acnet_proto.adapters.sim.replay import ReplayServer, load
from acnet_proto.errors import AuthenticationError
from acnet_proto.status import Status
from tests.adapters.dpm.test_write_behaviour import POLICY
from tests.support.servers.kdc import KDC
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


def recorded(
    client: Client, sim: SimServer, path: Path, play: Callable[[Any], Any] = session
) -> Any:
    """``client`` playing ``play`` against the simulator, recorded to ``path`` (each client
    makes two connections); what ``play`` returned."""
    with Recorder.in_thread((sim.host, sim.port), path) as recorder:
        with client(recorder.host, recorder.port) as backend:
            values = play(backend)
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


@pytest.fixture
def settings_sim(start_sim: Callable[..., SimServer], kdc: KDC) -> SimServer:
    """The simulated DPM accepting settings: the KDC's keytab, ``operator`` holds ``testing``."""
    pytest.importorskip("gssapi")
    return start_sim(keytab=kdc.keytab, policy=POLICY)


def ours_writing(host: str, port: int) -> Any:
    from acnet_proto.adapters.kerberos import KerberosAuth

    return DPMBackend(host, port, timeout=WAIT, auth=KerberosAuth(), role="testing")


def theirs_writing(host: str, port: int) -> Any:
    return pacsys.dpm(
        host=host, port=port, timeout=WAIT, auth=pacsys.KerberosAuth(), role="testing"
    )


def read_and_write(backend: Any) -> tuple[Any, bool, int]:
    """What both clients do: read a device, set another (a connection of its own)."""
    result = backend.write("Z:ACLTST", 12.5)
    return backend.read("M:OUTTMP"), result.success, result.error_code


@pytest.mark.parametrize(
    ("recording", "played"),
    [(ours_writing, theirs_writing), (theirs_writing, ours_writing)],
    ids=["ours-to-pacsys", "pacsys-to-ours"],
)
def test_a_recorded_write_replays_to_the_other_client_with_live_kerberos(
    kdc: KDC,
    settings_sim: SimServer,
    tmp_path: Path,
    replay_server: Callable[..., tuple[str, int]],
    recording: Client,
    played: Client,
) -> None:
    path = tmp_path / "session.jsonl"
    value, success, code = recorded(recording, settings_sim, path, read_and_write)
    assert success, code
    # the fixture fails the test at teardown if the client departed from the recording
    with played(*replay_server(path, keytab=kdc.keytab)) as backend:
        assert read_and_write(backend) == (value, True, 0)


def test_without_a_keytab_a_kerberos_client_is_told_to_give_one(
    kdc: KDC, settings_sim: SimServer, tmp_path: Path
) -> None:
    path = tmp_path / "session.jsonl"
    recorded(ours_writing, settings_sim, path, read_and_write)
    with ReplayServer.in_thread(load(path), on_mismatch=lambda m: None) as server:
        with (
            ours_writing(server.host, server.port) as backend,
            pytest.raises(AuthenticationError, match="Mutual authentication failed"),
        ):
            read_and_write(backend)
        wait_until(lambda: bool(server.mismatches), "the departure to be reported")
    [mismatch] = server.mismatches
    assert "EnableSettings" in mismatch.expected
    assert "--keytab KEYTAB" in mismatch.advice and mismatch.advice in str(mismatch)

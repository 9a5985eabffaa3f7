"""What every DPM client adapter does, checked once and run against each (tests/support/clients.py).

Servers are real, on loopback: a scripted server replaying the recorded
conversations byte for byte (any stray byte lands in ``server.errors``), a
listener that accepts and never answers, and the simulated DPM.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Protocol

import numpy as np
import pytest

from acnet_proto.adapters.sim.dpm import SimServer
from acnet_proto.engine.transcript import load
from acnet_proto.errors import ConnectionLost, DeviceError, ReadError
from acnet_proto.types import Reading, ValueType
from tests.support.clients import ADAPTERS, READ_ADAPTERS, Client
from tests.support.servers.scripted import ScriptedServer
from tests.support.vectors import SHARED

READ_ONE_SHOT = load(SHARED / "transcripts" / "read-one-shot.jsonl")
STREAM = load(SHARED / "transcripts" / "stream-with-heartbeat.jsonl")
# the DRFs whose AddToList bytes stream-with-heartbeat.jsonl recorded
STREAM_DRFS = ["M:OUTTMP@p,1000", "Z:ACLTS1[0:4]@p,1000", "Z:NOTFND@p,1000"]
# STREAM up to the metadata: the server has answered the entries, sent no data
STREAM_UNTIL_STARTED = STREAM[:5]
assert STREAM_UNTIL_STARTED[-1].note == "metadata and start"


@pytest.fixture(params=list(ADAPTERS))
def adapter(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(params=list(READ_ADAPTERS))
def reader(request: pytest.FixtureRequest) -> str:
    """Every adapter, ACL's included: for tests of reads that need no DPM server."""
    return request.param


class Listening(Protocol):
    host: str
    port: int


@contextlib.contextmanager
def connected(adapter: str, server: Listening, **options: float) -> Iterator[Client]:
    """A client of ``server`` (with ``options``), closed before the server stops (it waits
    for its clients)."""
    client = READ_ADAPTERS[adapter](server.host, server.port, **options)
    try:
        yield client
    finally:
        client.close()


class Mute:
    """A listener that lets clients connect (the kernel's backlog) and never answers."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.host, self.port = self._listener.getsockname()[:2]

    def __enter__(self) -> Mute:
        return self

    def __exit__(self, *exc: object) -> None:
        self._listener.close()

    def connections(self) -> int:
        """How many clients have connected so far."""
        self._listener.setblocking(False)
        count = 0
        with contextlib.suppress(BlockingIOError):
            while True:
                self._listener.accept()[0].close()
                count += 1
        return count


def status_name(reading: Reading) -> str | None:
    return reading.status.name


def check_outtmp(reading: Reading, value: float, at: datetime) -> None:
    assert reading.ok, reading
    assert reading.value == value
    assert reading.value_type is ValueType.SCALAR
    assert (reading.name, reading.units, reading.timestamp) == ("M:OUTTMP", "DegF", at)


def check_aclts1(reading: Reading, values: list[float], at: datetime) -> None:
    assert reading.ok, reading
    assert reading.value_type is ValueType.SCALAR_ARRAY
    np.testing.assert_array_equal(reading.value, values)
    assert (reading.name, reading.units, reading.timestamp) == ("Z:ACLTS1", "mm", at)


def check_notfnd(reading: Reading) -> None:
    assert reading.drf == "Z:NOTFND@p,1000"
    assert reading.is_error and reading.value is None
    assert (reading.facility_code, status_name(reading)) == (17, "DPM_NO_SUCH_DEVICE")


# ---------------------------------------------------------- the recorded one-shot read

T_READ = datetime(2025, 11, 22, 0, 0, 0, 15000, tzinfo=UTC)  # the reading's stamp in the recording


@pytest.mark.parametrize("call", ["read", "get", "get_many", "read_many"])
def test_one_shot_read_sends_the_recorded_bytes(adapter: str, call: str) -> None:
    with ScriptedServer(READ_ONE_SHOT) as server, connected(adapter, server) as client:
        if call in ("read", "get"):
            got = [getattr(client, call)("M:OUTTMP", timeout=2)]
        else:
            got = getattr(client, call)(["M:OUTTMP"], timeout=2)
    assert server.errors == []
    assert server.completed == 1
    if call.startswith("read"):
        assert got == [41.7]
    else:
        [reading] = got
        check_outtmp(reading, 41.7, T_READ)
        assert reading.drf == "M:OUTTMP"


def test_reads_reuse_an_idle_connection(adapter: str) -> None:
    # the read part of the recording twice on one connection: a client that
    # opened a second connection would wait behind the first and time out
    twice = [*READ_ONE_SHOT, *READ_ONE_SHOT[2:]]
    with ScriptedServer(twice) as server, connected(adapter, server) as client:
        first = client.get("M:OUTTMP", timeout=2)
        second = client.get("M:OUTTMP", timeout=2)
    assert server.errors == []
    assert server.completed == 1
    assert first == second
    check_outtmp(second, 41.7, T_READ)


def test_a_connection_the_server_closed_while_idle_is_replaced(adapter: str) -> None:
    # the server hangs up after each conversation; the second read finds the
    # pooled connection closed before any reply, and must read again afresh
    with (
        ScriptedServer(READ_ONE_SHOT, hold_open=False) as server,
        connected(adapter, server) as client,
    ):
        readings = [client.get("M:OUTTMP", timeout=2) for _ in range(2)]
    assert server.errors == []
    assert server.completed == 2
    for reading in readings:
        check_outtmp(reading, 41.7, T_READ)


# ---------------------------------------------------------- the recorded stream

T1 = datetime(2025, 11, 22, 0, 0, 1, tzinfo=UTC)
T2 = datetime(2025, 11, 22, 0, 0, 2, tzinfo=UTC)


def test_subscription_streams_the_recorded_readings(adapter: str) -> None:
    with ScriptedServer(STREAM) as server, connected(adapter, server) as client:
        # one more than the recording has: the iterator must end on its own
        # once no reading comes for the timeout, and the server hears "stop"
        readings = client.stream(STREAM_DRFS, count=6, timeout=0.5)
    assert server.errors == []
    assert server.completed == 1
    assert [r.drf for r in readings] == [STREAM_DRFS[i] for i in (2, 0, 1, 0, 1)]
    check_notfnd(readings[0])
    check_outtmp(readings[1], 41.7, T1)
    check_aclts1(readings[2], [0.0, 1.5, 3.0, 4.5], T1)
    check_outtmp(readings[3], 41.8, T2)
    check_aclts1(readings[4], [0.5, 2.0, 3.5, 5.0], T2)


def test_get_many_keeps_device_errors_in_place(adapter: str) -> None:
    # a batch of the stream's entries is done at the first period; its
    # StopList is the recorded "stop", its ClearList goes unread
    with ScriptedServer(STREAM) as server, connected(adapter, server) as client:
        readings = client.get_many(STREAM_DRFS, timeout=2)
    assert server.errors == []
    assert [r.drf for r in readings] == STREAM_DRFS
    check_outtmp(readings[0], 41.7, T1)
    check_aclts1(readings[1], [0.0, 1.5, 3.0, 4.5], T1)
    check_notfnd(readings[2])


def test_read_many_raises_with_every_reading(adapter: str) -> None:
    with (
        ScriptedServer(STREAM) as server,
        connected(adapter, server) as client,
        pytest.raises(ReadError, match="Z:NOTFND") as raised,
    ):
        client.read_many(STREAM_DRFS, timeout=2)
    readings = raised.value.readings
    assert [r.drf for r in readings] == STREAM_DRFS
    check_outtmp(readings[0], 41.7, T1)
    check_notfnd(readings[2])


# ---------------------------------------------------------- failures


@pytest.mark.parametrize("call", ["read", "get", "get_many", "subscribe"])
def test_bad_drf_raises_before_connecting(reader: str, call: str) -> None:
    if reader == "acl" and call == "subscribe":
        pytest.skip("ACL has no streaming")
    with Mute() as server, connected(reader, server) as client:
        with pytest.raises(ValueError, match=r"M:OUTTMP@@") as raised:
            if call == "get_many":
                client.get_many(["M:OUTTMP", "M:OUTTMP@@"])
            elif call == "subscribe":
                client.stream(["M:OUTTMP@@"], count=1, timeout=1)
            else:
                getattr(client, call)("M:OUTTMP@@")
        assert "event" in str(raised.value)  # the parser says what is wrong
        assert server.connections() == 0


def test_deadline_gives_the_readings_that_arrived(adapter: str) -> None:
    with (
        ScriptedServer(STREAM_UNTIL_STARTED) as server,
        connected(adapter, server) as client,
        pytest.raises(ReadError) as raised,
    ):
        client.get_many(STREAM_DRFS, timeout=0.5)
    assert server.errors == []
    assert raised.value.__cause__ is not None
    first, second, third = raised.value.readings
    # the two without data time out, still named by the metadata that came
    assert [status_name(first), status_name(second)] == ["ACNET_REQTMO"] * 2
    assert (first.name, first.units) == ("M:OUTTMP", "DegF")
    assert (second.name, second.units) == ("Z:ACLTS1", "mm")
    check_notfnd(third)


def test_a_mute_server_times_out_and_its_connection_is_dropped(reader: str) -> None:
    with Mute() as server, connected(reader, server) as client:
        for _ in range(2):
            with pytest.raises(ReadError) as raised:
                client.get_many(["M:OUTTMP", "Z:ACLTS1"], timeout=0.2)
            assert [status_name(r) for r in raised.value.readings] == ["ACNET_REQTMO"] * 2
            assert [r.drf for r in raised.value.readings] == ["M:OUTTMP", "Z:ACLTS1"]
        # a connection that timed out mid-read is closed, not reused
        assert server.connections() == 2


def test_server_closing_mid_read_gives_disconnected_readings(adapter: str) -> None:
    with (
        ScriptedServer(STREAM_UNTIL_STARTED, hold_open=False) as server,
        connected(adapter, server) as client,
        pytest.raises(ReadError) as raised,
    ):
        client.get_many(STREAM_DRFS, timeout=2)
    assert server.errors == []
    first, second, third = raised.value.readings
    assert [status_name(first), status_name(second)] == ["ACNET_DISCONNECTED"] * 2
    check_notfnd(third)


@pytest.mark.parametrize("timeout", [None, 5.0])
def test_silent_server_ends_a_subscription(adapter: str, timeout: float | None) -> None:
    list_opened = STREAM[:3]  # list id given, entries taken, then nothing
    with (
        ScriptedServer(list_opened) as server,
        # heartbeats due every 0.1 s instead of 2 s, so silence is spotted in 0.3 s
        connected(adapter, server, heartbeat_period=0.1) as client,
        pytest.raises(ConnectionLost, match="heartbeats"),
    ):
        client.stream(STREAM_DRFS, count=1, timeout=timeout, reconnect=False)
    assert server.errors == []


# ---------------------------------------------------------- the simulated DPM


def test_sim_get_many_of_several_devices(adapter: str, sim: SimServer) -> None:
    drfs = ["M:OUTTMP", "Z:ACLTS1", "Z:STRTST", "Z:RAWTST", "Z:NOTFND"]
    with connected(adapter, sim) as client:
        readings = client.get_many(drfs, timeout=2)
    assert [r.drf for r in readings] == drfs
    outtmp, array, text, raw, missing = readings
    assert outtmp.ok and outtmp.units == "DegF" and abs(outtmp.value - 41.7) <= 0.3
    assert array.ok and array.value_type is ValueType.SCALAR_ARRAY and array.value.shape == (10,)
    assert (text.value_type, text.value) == (ValueType.TEXT, "the quick brown fox")
    assert raw.value == bytes.fromhex("00112233445566778899aabbccddeeff")
    # as the lab's DPM answers it: a warning with no data, which is not ok
    assert status_name(missing) == "DPM_PEND" and missing.is_warning and not missing.ok


def test_sim_read_of_a_missing_device_raises_device_error(adapter: str, sim: SimServer) -> None:
    with connected(adapter, sim) as client:
        assert abs(client.read("M:OUTTMP", timeout=2) - 41.7) <= 0.3
        with pytest.raises(DeviceError) as raised:
            client.read("Z:NOTFND", timeout=2)
    error = raised.value
    assert (error.drf, error.facility_code, error.error_code) == ("Z:NOTFND", 17, 1)
    assert str(error).startswith("Z:NOTFND: DPM_PEND") and "check the device name" in str(error)


def test_sim_periodic_stream(adapter: str, sim: SimServer) -> None:
    with connected(adapter, sim) as client:
        readings = client.stream(["M:OUTTMP@p,100"], count=5, timeout=2)
    assert len(readings) == 5
    assert all(r.ok and r.drf == "M:OUTTMP@p,100" for r in readings)
    stamps = [r.timestamp for r in readings]
    assert stamps == sorted(stamps) and len(set(stamps)) == 5

"""ClientConnection against a server-role DPMConnection, in memory.

Bytes from one engine are handed to the other unchanged, so each test runs the
whole client path (handshake, list id, AddToList/StartList, replies, teardown)
with no socket in between.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from acnet_proto.engine._state import ListState, Role
from acnet_proto.engine.client import ClientConnection, events
from acnet_proto.engine.connection import DPMConnection
from acnet_proto.engine.events import NEED_DATA, Handshake
from acnet_proto.errors import LocalProtocolError, RemoteProtocolError
from acnet_proto.pc import dpm
from acnet_proto.pc._message import Message
from acnet_proto.plans.lists import ListPlan, ReadBatch
from acnet_proto.status import Status
from acnet_proto.types import Reading, ValueType

LIST_ID = 48813
MILLIS = 1_715_000_000_123
NO_SUCH_DEVICE = Status.from_name("DPM_NO_SUCH_DEVICE")
REQTMO = Status.from_name("ACNET_REQTMO")


# ---------------------------------------------------------------- helpers


def take(server: DPMConnection, data: bytes) -> list[Any]:
    """Hand the client's bytes to the server; return every event they make."""
    server.receive_data(data)
    out = []
    while (event := server.next_event()) is not NEED_DATA:
        out.append(event)
    return out


def connect() -> tuple[ClientConnection, DPMConnection]:
    client, server = ClientConnection(), DPMConnection(Role.SERVER)
    assert take(server, client.start()) == [Handshake()]
    assert not client.ready
    assert client.receive(server.send(dpm.OpenListReply(list_id=LIST_ID)), now=0.0) == []
    assert client.ready
    assert client.conn.list_id == LIST_ID
    return client, server


def added(ref: int, status: Status | None = None) -> Message:
    return dpm.AddToListReply(list_id=LIST_ID, ref_id=ref, status=status.status if status else 0)


def started(status: int = 0) -> Message:
    return dpm.StartListReply(list_id=LIST_ID, status=status)


def info(ref: int, name: str) -> Message:
    return dpm.DeviceInfoReply(ref_id=ref, di=1000 + ref, name=name, description="", units="V")


def scalar(ref: int, data: float, cycle: int = 1) -> Message:
    return dpm.ScalarReply(ref_id=ref, timestamp=MILLIS, cycle=cycle, status=0, data=data)


def status_reply(ref: int, status: Status) -> Message:
    return dpm.StatusReply(ref_id=ref, timestamp=MILLIS, cycle=0, status=status.status)


def heartbeat() -> Message:
    return dpm.ListStatusReply(list_id=LIST_ID, status=0)


def begin(client: ClientConnection, server: DPMConnection, plan: ListPlan) -> None:
    """Start ``plan`` and check the server got exactly the plan's commands."""
    assert take(server, client.begin(plan)) == plan.commands(LIST_ID)


# ------------------------------------------------------- a one-shot read


def test_a_one_shot_read_from_handshake_to_teardown() -> None:
    client, server = connect()
    batch = ReadBatch(["M:OUTTMP", "Z:ACLTS1[0:2]", "M:NOSUCH"])
    begin(client, server, batch)
    assert [e.drf_request for e in batch.commands(LIST_ID)[:-1]] == [
        "M:OUTTMP@I",
        "Z:ACLTS1[0:2]@I",
        "M:NOSUCH@I",
    ]

    made = client.receive(
        server.send(
            added(1),
            added(2),
            added(3, NO_SUCH_DEVICE),
            started(),
            info(1, "M:OUTTMP"),
            info(2, "Z:ACLTS1"),
            heartbeat(),
            dpm.ScalarArrayReply(ref_id=2, timestamp=MILLIS, cycle=4, status=0, data=[1.5, 2.5]),
            scalar(1, 72.5),
        ),
        now=1.0,
    )
    assert [index for index, _ in made] == [2, 1, 0]  # the order they completed in
    assert batch.done
    outtmp, acl, nosuch = batch.readings()
    assert (outtmp.drf, outtmp.value, outtmp.units) == ("M:OUTTMP", 72.5, "V")
    assert acl.value_type is ValueType.SCALAR_ARRAY
    assert np.array_equal(acl.value, [1.5, 2.5]) and acl.cycle == 4
    assert nosuch.is_error and "DPM_NO_SUCH_DEVICE" in nosuch.message

    teardown = client.end()
    assert take(server, teardown) == [
        dpm.StopListRequest(list_id=LIST_ID),
        dpm.ClearListRequest(list_id=LIST_ID),
    ]
    assert server.list_state is ListState.IDLE
    assert client.plan is None
    assert client.usable


def test_a_connection_carries_one_batch_after_another() -> None:
    client, server = connect()
    for value in (1.0, 2.0):
        batch = ReadBatch(["M:OUTTMP"])
        begin(client, server, batch)
        client.receive(server.send(added(1), started(), scalar(1, value)))
        assert [r.value for r in batch.readings()] == [value]
        take(server, client.end())


def test_replies_split_into_single_bytes_make_the_same_readings() -> None:
    replies = (added(1), added(2), started(), scalar(2, 2.0), status_reply(1, NO_SUCH_DEVICE))
    results = []
    for split in (False, True):
        client, server = connect()
        batch = ReadBatch(["M:NOSUCH", "G:AMANDA"])
        begin(client, server, batch)
        data = server.send(*replies)
        chunks = [data[i : i + 1] for i in range(len(data))] if split else [data]
        made = [pair for chunk in chunks for pair in client.receive(chunk)]
        assert len(made) == 2 and batch.done
        results.append(batch.readings())
    assert results[0] == results[1]


def test_a_job_failure_over_the_wire_fails_every_entry() -> None:
    client, server = connect()
    batch = ReadBatch(["M:OUTTMP", "G:AMANDA"])
    begin(client, server, batch)
    made = client.receive(server.send(added(1), added(2), status_reply(0, REQTMO)))
    assert [i for i, _ in made] == [0, 1]
    assert batch.done
    assert all(r.error_code == REQTMO.error for r in batch.readings())


# ------------------------------------------------------------ subscriptions


def test_a_subscription_streams_until_end_stops_it() -> None:
    client, server = connect()
    plan = ListPlan(["M:OUTTMP@p,1000", "G:AMANDA@p,1000"], None)
    begin(client, server, plan)
    assert client.receive(server.send(added(1), added(2), started(), heartbeat())) == []
    seen: list[tuple[int, Reading]] = []
    for cycle in (1, 2, 3):
        seen += client.receive(server.send(scalar(1, float(cycle), cycle), heartbeat()))
    seen += client.receive(server.send(scalar(2, 9.0)))
    assert [(i, r.value, r.cycle) for i, r in seen] == [
        (0, 1.0, 1),
        (0, 2.0, 2),
        (0, 3.0, 3),
        (1, 9.0, 1),
    ]

    # a reply the server sent before it saw StopList arrives after end()
    late = server.send(scalar(1, 4.0, 4))
    assert take(server, client.end()) == [dpm.StopListRequest(list_id=LIST_ID)]
    assert server.list_state is ListState.STOPPED
    assert client.receive(late) == []
    assert client.plan is None


def test_a_late_reply_after_a_batch_teardown_is_dropped() -> None:
    client, server = connect()
    batch = ReadBatch(["M:OUTTMP@p,1000"])
    begin(client, server, batch)
    client.receive(server.send(added(1), started(), scalar(1, 1.0)))
    late = server.send(scalar(1, 2.0, 2))
    take(server, client.end())
    assert client.receive(late) == []
    assert [r.value for r in batch.readings()] == [1.0]


# ------------------------------------------------------- misuse and failure


def test_begin_before_the_list_id_arrives_is_refused() -> None:
    client, server = ClientConnection(), DPMConnection(Role.SERVER)
    take(server, client.start())
    batch = ReadBatch(["M:OUTTMP"])
    with pytest.raises(LocalProtocolError, match="list id"):
        client.begin(batch)
    assert client.plan is None
    client.receive(server.send(dpm.OpenListReply(list_id=LIST_ID)))
    begin(client, server, batch)  # nothing was spoiled by the refusal


def test_begin_while_a_list_runs_is_refused_and_the_first_list_carries_on() -> None:
    client, server = connect()
    first = ReadBatch(["M:OUTTMP"])
    begin(client, server, first)
    with pytest.raises(LocalProtocolError, match=r"end\(\)"):
        client.begin(ReadBatch(["G:AMANDA"]))
    assert client.plan is first
    client.receive(server.send(added(1), started(), scalar(1, 5.0)))
    assert [r.value for r in first.readings()] == [5.0]


def test_end_without_a_list_sends_nothing() -> None:
    client, _ = connect()
    assert client.end() == b""


def test_the_server_closing_mid_list_is_a_remote_protocol_error() -> None:
    client, server = connect()
    batch = ReadBatch(["M:OUTTMP", "G:AMANDA"])
    begin(client, server, batch)
    client.receive(server.send(added(1), added(2), started(), scalar(1, 1.0)))
    with pytest.raises(RemoteProtocolError, match="closed"):
        client.receive(b"")
    assert not client.usable
    assert not batch.done


def test_a_frame_over_the_size_limit_is_a_remote_protocol_error() -> None:
    client, server = ClientConnection(max_frame_size=64), DPMConnection(Role.SERVER)
    take(server, client.start())
    client.receive(server.send(dpm.OpenListReply(list_id=LIST_ID)))
    begin(client, server, ReadBatch(["M:OUTTMP"]))
    client.receive(server.send(added(1), started()))
    big = dpm.TextReply(ref_id=1, timestamp=MILLIS, cycle=1, status=0, data="x" * 200)
    with pytest.raises(RemoteProtocolError, match="max_frame_size=64"):
        client.receive(server.send(big))
    assert not client.usable


def test_overdue_at_follows_the_last_time_bytes_arrived() -> None:
    client, server = connect()  # the list id arrived at now=0.0
    silence = client.conn.heartbeat_period * client.conn.missed_heartbeats
    assert client.overdue_at == silence
    client.receive(server.send(heartbeat()), now=5.0)
    assert client.overdue_at == 5.0 + silence


def test_overdue_at_is_none_before_any_clock_reading() -> None:
    client, server = ClientConnection(), DPMConnection(Role.SERVER)
    take(server, client.start())
    client.receive(server.send(dpm.OpenListReply(list_id=LIST_ID)))
    assert client.overdue_at is None


# ------------------------------------------------- any order, same readings


def _entry_replies(ref: int, kind: str, value: float) -> list[Message]:
    """What the server says about one entry, in the order it must say it."""
    if kind == "add fails":
        return [added(ref, NO_SUCH_DEVICE), status_reply(ref, NO_SUCH_DEVICE)]
    if kind == "status":
        return [added(ref), status_reply(ref, NO_SUCH_DEVICE), scalar(ref, value)]
    return [added(ref), info(ref, f"Z:DEV{ref}"), scalar(ref, value), scalar(ref, -value)]


@st.composite
def server_conversations(draw: st.DrawFn) -> tuple[list[str], list[list[Message]], list[int]]:
    """Entries, each one's replies, and an interleaving of them (one ref per step)."""
    count = draw(st.integers(1, 6))
    kinds = draw(
        st.lists(st.sampled_from(["data", "status", "add fails"]), min_size=count, max_size=count)
    )
    streams = [_entry_replies(ref, kind, float(ref)) for ref, kind in enumerate(kinds, 1)]
    streams.append([started()])  # StartList's reply may come anywhere among them
    steps = [n for n, stream in enumerate(streams) for _ in stream]
    return kinds, streams, draw(st.permutations(steps))


def _run(streams: list[list[Message]], order: list[int], cuts: list[int]) -> list[Reading]:
    client, server = connect()
    drfs = [f"Z:DEV{ref}" for ref in range(1, len(streams))]
    batch = ReadBatch(drfs)
    begin(client, server, batch)
    pending = [list(stream) for stream in streams]
    data = server.send(*(pending[n].pop(0) for n in order))
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    for start, stop in itertools.pairwise(bounds):
        if start < stop:  # b"" would mean the server closed
            client.receive(data[start:stop])
    assert batch.done
    return batch.readings()


@given(server_conversations(), st.lists(st.integers(0, 10_000), max_size=4))
def test_any_reply_order_gives_the_same_readings_in_input_order(
    conversation: tuple[list[str], list[list[Message]], list[int]], cuts: list[int]
) -> None:
    kinds, streams, order = conversation
    in_order = [n for n, stream in enumerate(streams) for _ in stream]
    expected = _run(streams, in_order, [])
    assert _run(streams, order, cuts) == expected
    for ref, (kind, reading) in enumerate(zip(kinds, expected), 1):
        assert reading.drf == f"Z:DEV{ref}"
        if kind == "data":
            assert reading.value == float(ref)  # the first reading, not the second
            assert reading.name == f"Z:DEV{ref}" and reading.units == "V"
        else:
            assert reading.value is None
            assert reading.error_code == NO_SUCH_DEVICE.error


# ------------------------------------------------------------ events(conn)


def connected_pair() -> tuple[DPMConnection, DPMConnection]:
    client, server = DPMConnection(Role.CLIENT), DPMConnection(Role.SERVER)
    server.receive_data(client.initiate())
    list(events(server))
    client.receive_data(server.send(dpm.OpenListReply(list_id=LIST_ID)))
    list(events(client))
    return client, server


def test_events_yields_what_has_arrived_then_stops() -> None:
    client, server = connected_pair()
    client.receive_data(server.send(dpm.ListStatusReply(list_id=LIST_ID, status=0)))
    assert list(events(client)) == [dpm.ListStatusReply(list_id=LIST_ID, status=0)]
    assert list(events(client)) == []


def test_events_raises_when_the_server_closes() -> None:
    client, _ = connected_pair()
    client.receive_data(b"")
    with pytest.raises(RemoteProtocolError, match="closed"):
        list(events(client))

"""ClientConnection.receive takes a whole chunk in one loop, and hands the plan exactly
what next_event() would have, in the same order, with the same failures."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acnet_proto.engine._state import ConnectionState, Role
from acnet_proto.engine.client import ClientConnection
from acnet_proto.engine.connection import DPMConnection
from acnet_proto.engine.events import NEED_DATA, ConnectionEvent, StaleReply
from acnet_proto.engine.framing import frame
from acnet_proto.errors import RemoteProtocolError
from acnet_proto.pc import dpm
from acnet_proto.pc._message import Message

LIST_ID = 48813
MILLIS = 1_763_769_600_000
SERVICE = "daeset/bd@dpm01.example"


class Recorder:
    """A plan that keeps every event and answers an Authenticate reply with a token."""

    def __init__(self, refs: tuple[int, ...] = (1, 2)) -> None:
        self.refs = refs
        self.events: list[ConnectionEvent] = []
        self.answers: list[Message] = []

    def commands(self, list_id: int) -> list[Message]:
        adds = [
            dpm.AddToListRequest(list_id=list_id, ref_id=r, drf_request="M:OUTTMP@p,1000")
            for r in self.refs
        ]
        return [*adds, dpm.StartListRequest(list_id=list_id)]

    def feed(self, event: ConnectionEvent) -> list[Any]:
        self.events.append(event)
        if isinstance(event, dpm.AuthenticateReply):
            self.answers.append(dpm.AuthenticateRequest(list_id=LIST_ID, token=b"`\x82initial"))
        return [event]

    def take_commands(self) -> list[Message]:
        answers, self.answers = self.answers, []
        return answers

    def teardown(self, list_id: int) -> list[Message]:
        return [dpm.StopListRequest(list_id=list_id)]


def wire(*messages: Message) -> bytes:
    return b"".join(frame(dpm.encode(m)) for m in messages)


def running(plan: Recorder | None = None) -> tuple[ClientConnection, Recorder]:
    client, plan = ClientConnection(), plan or Recorder()
    client.start()
    client.receive(wire(dpm.OpenListReply(list_id=LIST_ID)))
    client.begin(plan)
    return client, plan


def scalar(ref: int, value: float) -> Message:
    return dpm.ScalarReply(ref_id=ref, timestamp=MILLIS, cycle=0, status=0, data=value)


REPLIES = [
    *(dpm.AddToListReply(list_id=LIST_ID, ref_id=r, status=0) for r in (1, 2)),
    dpm.StartListReply(list_id=LIST_ID, status=0),
    *(
        dpm.DeviceInfoReply(ref_id=r, di=r, name="M:OUTTMP", description="", units="F")
        for r in (1, 2)
    ),
    dpm.ListStatusReply(list_id=LIST_ID, status=0),
    *(scalar(r, v) for v in (41.5, 41.7) for r in (1, 2)),
]


def by_next_event(data: bytes) -> list[Any]:
    """The events a bare engine makes of ``data`` after the same opening, one by one."""
    conn = DPMConnection(Role.CLIENT)
    conn.initiate()
    conn.receive_data(wire(dpm.OpenListReply(list_id=LIST_ID)))
    conn.next_event()
    conn.send(*Recorder().commands(LIST_ID))
    conn.receive_data(data)
    events = []
    while (event := conn.next_event()) is not NEED_DATA:
        events.append(event)
    return events


@given(st.lists(st.integers(0, len(wire(*REPLIES))), max_size=8))
def test_any_chunking_feeds_the_plan_what_next_event_returns(cuts: list[int]) -> None:
    data = wire(*REPLIES)
    points = sorted({0, *cuts, len(data)})  # no empty chunk: b"" says the server closed
    client, plan = running()
    made = []
    for start, end in itertools.pairwise(points):
        made += client.receive(data[start:end])
    assert plan.events == made == by_next_event(data) == REPLIES


def test_the_plan_answers_each_event_before_the_next_is_checked() -> None:
    client, _ = running()
    # The second reply is owed only to the Authenticate the plan sends on the first.
    client.conn.send(dpm.AuthenticateRequest(list_id=LIST_ID, token=b""))
    replies = [dpm.AuthenticateReply(service_name=SERVICE), dpm.AuthenticateReply(token=b"o\x00")]
    assert client.receive(wire(*replies)) == replies
    answer = dpm.AuthenticateRequest(list_id=LIST_ID, token=b"`\x82initial")
    assert client.data_to_send() == wire(answer, answer)


def test_events_before_an_illegal_frame_reach_the_plan_then_it_raises() -> None:
    client, plan = running()
    good = REPLIES[:3]
    with pytest.raises(RemoteProtocolError, match="ref_id 9, which was never on the list"):
        client.receive(wire(*good, scalar(9, 1.0), *REPLIES[3:]))
    assert plan.events == good
    assert client.conn.state is ConnectionState.ERROR
    with pytest.raises(RemoteProtocolError, match="error state"):
        client.receive(wire(*REPLIES[3:]))
    assert plan.events == good


def test_frames_before_an_oversized_one_reach_the_plan_then_it_raises() -> None:
    client, plan = running()
    client.conn._splitter.max_frame_size = 1000
    with pytest.raises(RemoteProtocolError, match="max_frame_size=1000"):
        client.receive(wire(*REPLIES[:2]) + (5000).to_bytes(4, "big"))
    assert plan.events == REPLIES[:2]
    assert client.conn.state is ConnectionState.ERROR


def test_a_close_after_the_last_frame_raises_once_its_events_are_in() -> None:
    client, plan = running()
    assert client.receive(wire(*REPLIES[:3])) == REPLIES[:3]
    with pytest.raises(RemoteProtocolError, match="the server closed the connection"):
        client.receive(b"")
    assert plan.events == REPLIES[:3]


def test_a_close_inside_a_frame_is_the_servers_fault() -> None:
    client, _ = running()
    client.receive(wire(*REPLIES[:3]) + wire(REPLIES[3])[:7])
    with pytest.raises(RemoteProtocolError, match="inside a frame"):
        client.receive(b"")


def test_a_stale_reply_reaches_the_plan_as_stale() -> None:
    client, _ = running(Recorder(refs=(1,)))
    client.receive(wire(*REPLIES[:1], REPLIES[2]))
    client.end()
    late = scalar(1, 41.9)
    assert client.receive(wire(late)) == []  # the plan ended: nothing is fed
    client.begin(Recorder(refs=(2,)))
    assert client.receive(wire(scalar(1, 42.0))) == [StaleReply(scalar(1, 42.0))]

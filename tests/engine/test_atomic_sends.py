"""A send of several commands is all or nothing, whatever state each command leaves for the next.

The engine checks and applies each command in turn and undoes what it applied if
a later one is refused. These tests hold that to the simplest model there is:
the same commands sent one at a time by a twin engine with the same history.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acnet_proto.engine._state import ListState, Role
from acnet_proto.engine.connection import DPMConnection, _moving_parts
from acnet_proto.engine.events import NEED_DATA, Handshake
from acnet_proto.errors import LocalProtocolError
from acnet_proto.pc import dpm
from acnet_proto.pc._message import Message

LIST_ID = 48813
MILLIS = 1_763_769_600_000

REQUESTS: list[Message] = [
    *(dpm.AddToListRequest(list_id=LIST_ID, ref_id=r, drf_request="M:OUTTMP@I") for r in (1, 2)),
    dpm.AddToListRequest(list_id=LIST_ID, ref_id=0, drf_request="#ROLE:testing"),
    # a number equal to 1 that the codec refuses
    dpm.AddToListRequest(list_id=LIST_ID, ref_id=1.0, drf_request="M:OUTTMP@I"),  # type: ignore[arg-type]
    *(dpm.RemoveFromListRequest(list_id=LIST_ID, ref_id=r) for r in (0, 1, 2)),
    dpm.StartListRequest(list_id=LIST_ID),
    dpm.StartListRequest(list_id=LIST_ID + 1),
    dpm.StopListRequest(list_id=LIST_ID),
    dpm.ClearListRequest(list_id=LIST_ID),
    dpm.AuthenticateRequest(list_id=LIST_ID, token=b""),
    dpm.AuthenticateRequest(list_id=LIST_ID, token=b"`\x82initial"),
    dpm.EnableSettingsRequest(list_id=LIST_ID, mic=b"\x04\x04mic", message=b"1234"),
    dpm.ApplySettingsRequest(
        user_name="operator@FNAL.GOV",
        list_id=LIST_ID,
        scaled_array=[dpm.ScaledSetting(ref_id=1, data=[45.0])],
    ),
]
REPLIES: list[Message] = [
    *(dpm.AddToListReply(list_id=LIST_ID, ref_id=r, status=0) for r in (0, 1, 2)),
    *(dpm.RemoveFromListReply(list_id=LIST_ID, ref_id=r, status=0) for r in (1, 2)),
    dpm.StartListReply(list_id=LIST_ID, status=0),
    dpm.ListStatusReply(list_id=LIST_ID, status=0),
    *(
        dpm.DeviceInfoReply(ref_id=r, di=27235, name="M:OUTTMP", description="", units="F")
        for r in (1, 2)
    ),
    *(dpm.ScalarReply(ref_id=r, timestamp=MILLIS, cycle=0, status=0, data=41.7) for r in (1, 2)),
    *(dpm.StatusReply(ref_id=0, timestamp=MILLIS, cycle=0, status=s) for s in (0, -6639)),
    dpm.StatusReply(ref_id=2, timestamp=MILLIS, cycle=0, status=-6639),
    dpm.AuthenticateReply(service_name="daeset/bd@dpm01.example"),
    dpm.ApplySettingsReply(status=[dpm.SettingStatus(ref_id=1, status=0)]),
]
COMMANDS = {Role.CLIENT: REQUESTS, Role.SERVER: REPLIES}

# A step: which side sends, and its commands (one send).
Step = tuple[Role, list[Message]]


def opened_pair() -> dict[Role, DPMConnection]:
    client, server = DPMConnection(Role.CLIENT), DPMConnection(Role.SERVER)
    server.receive_data(client.initiate())
    assert server.next_event() == Handshake()
    client.receive_data(server.send(dpm.OpenListReply(list_id=LIST_ID)))
    assert client.next_event() == dpm.OpenListReply(list_id=LIST_ID)
    return {Role.CLIENT: client, Role.SERVER: server}


def send(pair: dict[Role, DPMConnection], role: Role, commands: list[Message]) -> bytes | None:
    """Send ``commands`` in one call and hand the bytes to the peer; None if refused."""
    try:
        data = pair[role].send(*commands, now=1.0)
    except LocalProtocolError:
        return None
    peer = pair[Role.SERVER if role is Role.CLIENT else Role.CLIENT]
    peer.receive_data(data)
    while peer.next_event() is not NEED_DATA:
        pass
    return data


def replayed(history: list[Step]) -> dict[Role, DPMConnection]:
    pair = opened_pair()
    for role, commands in history:
        send(pair, role, commands)
    return pair


def accepted(history: list[Step], role: Role, commands: list[Message]) -> bool:
    """Whether ``role``, after ``history``, may send ``commands`` one at a time."""
    conn = replayed(history)[role]
    try:
        for command in commands:
            conn.send(command)
    except LocalProtocolError:
        return False
    return True


@st.composite
def commands(draw: st.DrawFn, history: list[Step], role: Role, size: int) -> list[Message]:
    """``size`` commands for ``role``, each usually one it may send after those before."""
    chosen: list[Message] = []
    for _ in range(size):
        pool = COMMANDS[role]
        if draw(st.integers(0, 3)):
            pool = [c for c in pool if accepted(history, role, [*chosen, c])] or pool
        chosen.append(draw(st.sampled_from(pool)))
    return chosen


@st.composite
def histories(draw: st.DrawFn) -> list[Step]:
    """Sends by either side, mostly legal, each delivered: the state a batch starts from."""
    history: list[Step] = []
    for _ in range(draw(st.integers(0, 10))):
        role = draw(st.sampled_from([Role.CLIENT, Role.SERVER]))
        history.append((role, draw(commands(history, role, 1))))
    return history


def everything(conn: DPMConnection) -> tuple[Any, ...]:
    """All a connection remembers of the conversation, hidden parts included (a copy)."""
    return copy.deepcopy((*_moving_parts(conn), conn.last_heartbeat_sent))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_a_send_does_what_its_commands_do_one_at_a_time_or_nothing(data: st.DataObject) -> None:
    history = data.draw(histories())
    role = data.draw(st.sampled_from([Role.CLIENT, Role.SERVER]))
    batch = data.draw(commands(history, role, data.draw(st.integers(2, 4))))
    together, one_by_one = replayed(history), replayed(history)
    conn, twin = together[role], one_by_one[role]
    try:
        sent = conn.send(*batch, now=1.0)
    except LocalProtocolError as refusal:
        assert everything(conn) == everything(twin)
        # The first command the twin refuses, sending one at a time, says the same.
        with pytest.raises(LocalProtocolError) as info:
            for command in batch:
                twin.send(command, now=1.0)
        assert str(info.value) == str(refusal)
        return
    assert sent == b"".join(twin.send(command, now=1.0) for command in batch)
    assert everything(conn) == everything(twin)


def test_a_command_refused_for_the_state_the_one_before_leaves_undoes_it() -> None:
    pair = opened_pair()
    client = pair[Role.CLIENT]
    add_1, start = REQUESTS[0], dpm.StartListRequest(list_id=LIST_ID)
    assert send(pair, Role.CLIENT, [add_1, start]) is not None
    before = everything(client)
    stop, clear = dpm.StopListRequest(list_id=LIST_ID), dpm.ClearListRequest(list_id=LIST_ID)
    # Clear empties the list, so the StartList after it is refused: Stop and Clear go too.
    with pytest.raises(LocalProtocolError, match="StartList is not allowed while the list is idle"):
        client.send(stop, clear, start)
    assert everything(client) == before
    assert client.list_state is ListState.STARTED
    assert client.entries == {1: "M:OUTTMP@I"}

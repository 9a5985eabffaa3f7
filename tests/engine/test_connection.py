"""DPMConnection in both roles: the rules, whose fault a broken one is, time without clocks,
and a client engine and a server engine driven against each other over racing byte pipes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from acnet_proto import LocalProtocolError, RemoteProtocolError
from acnet_proto.drf import MAX_DRF_LENGTH
from acnet_proto.engine._state import ConnectionState, ListState, Role, SettingsState
from acnet_proto.engine.connection import DATA_REPLIES, DPMConnection
from acnet_proto.engine.events import (
    NEED_DATA,
    ConnectionClosed,
    Handshake,
    SettingsNotEnabled,
    StaleReply,
)
from acnet_proto.engine.framing import HANDSHAKE, frame
from acnet_proto.errors import ConnectionRefusedByProxy
from acnet_proto.pc import daqdata, dpm
from acnet_proto.pc._message import Message

LIST_ID = 48813  # the server chooses it; any int32 does
OTHER_LIST_ID = LIST_ID + 1
DPM_NO_SUCH_DEVICE = -6639  # facility 17, error -26, as in stream-with-heartbeat.jsonl
SERVICE_NAME = "daeset/bd@dpm01.example"


# --------------------------------------------------------------------- helpers


class Pair(NamedTuple):
    client: DPMConnection
    server: DPMConnection

    def side(self, role: Role) -> DPMConnection:
        return self.client if role is Role.CLIENT else self.server

    def peer(self, role: Role) -> DPMConnection:
        return self.server if role is Role.CLIENT else self.client


def drain(conn: DPMConnection) -> list[Any]:
    """Every event ready on ``conn``; ``ConnectionClosed`` is the last one there can be."""
    events: list[Any] = []
    while (event := conn.next_event()) is not NEED_DATA:
        events.append(event)
        if isinstance(event, ConnectionClosed):
            break
    return events


def transfer(sender: DPMConnection, receiver: DPMConnection, *messages: Message) -> list[Any]:
    receiver.receive_data(sender.send(*messages))
    return drain(receiver)


def wire(message: Message) -> bytes:
    """``message`` framed, bypassing the engine's rules (what a misbehaving peer writes)."""
    return frame(dpm.encode(message))


def snapshot(conn: DPMConnection) -> tuple[Any, ...]:
    """Everything a caller can observe about ``conn``."""
    return (
        conn.state,
        conn.list_state,
        conn.settings_state,
        conn.list_id,
        conn.entries,
        conn.settings_in_flight,
        conn.last_heard,
        conn.last_heartbeat_sent,
        conn.overdue_at(),
        conn.heartbeat_due_at(),
    )


def handshaken(**options: Any) -> Pair:
    pair = Pair(DPMConnection(Role.CLIENT, **options), DPMConnection(Role.SERVER, **options))
    pair.server.receive_data(pair.client.initiate())
    assert drain(pair.server) == [Handshake()]
    return pair


def opened(**options: Any) -> Pair:
    pair = handshaken(**options)
    reply = dpm.OpenListReply(list_id=LIST_ID)
    assert transfer(pair.server, pair.client, reply) == [reply]
    return pair


def add_request(ref: int, drf: str = "M:OUTTMP@p,1000") -> Message:
    return dpm.AddToListRequest(list_id=LIST_ID, ref_id=ref, drf_request=drf)


def add_reply(ref: int, status: int = 0) -> Message:
    return dpm.AddToListReply(list_id=LIST_ID, ref_id=ref, status=status)


def scalar(ref: int, value: float = 41.7) -> Message:
    return dpm.ScalarReply(ref_id=ref, timestamp=1_763_769_600_000, cycle=0, status=0, data=value)


def status_reply(ref: int, status: int) -> Message:
    return dpm.StatusReply(ref_id=ref, timestamp=1_763_769_600_000, cycle=0, status=status)


START = dpm.StartListRequest(list_id=LIST_ID)
STARTED = dpm.StartListReply(list_id=LIST_ID, status=0)
STOP = dpm.StopListRequest(list_id=LIST_ID)
CLEAR = dpm.ClearListRequest(list_id=LIST_ID)
HEARTBEAT = dpm.ListStatusReply(list_id=LIST_ID, status=0)
ROLE = add_request(0, "#ROLE:testing")


def requested(pair: Pair, *requests: Message) -> Pair:
    """The client sends ``requests``; the server receives them and answers nothing yet."""
    assert transfer(pair.client, pair.server, *requests) == list(requests)
    return pair


def answered(pair: Pair, *replies: Message) -> Pair:
    assert transfer(pair.server, pair.client, *replies) == list(replies)
    return pair


def with_entries(*refs: int) -> Pair:
    pair = requested(opened(), *map(add_request, refs))
    return answered(pair, *map(add_reply, refs))


def started(*refs: int) -> Pair:
    return answered(requested(with_entries(*refs), START), STARTED)


def enable_pending(pair: Pair) -> Pair:
    """The settings handshake of spec §2 up to an unanswered EnableSettings (placeholder tokens)."""
    requested(pair, dpm.AuthenticateRequest(list_id=LIST_ID, token=b""))
    answered(pair, dpm.AuthenticateReply(service_name=SERVICE_NAME))
    requested(pair, dpm.AuthenticateRequest(list_id=LIST_ID, token=b"`\x82initial"))
    answered(pair, dpm.AuthenticateReply(token=b"o\x00mutual"))
    requested(pair, dpm.EnableSettingsRequest(list_id=LIST_ID, mic=b"\x04\x04mic", message=b"1234"))
    return pair


def settings_enabled(pair: Pair) -> Pair:
    answered(enable_pending(pair), status_reply(0, 0))
    assert pair.client.settings_state is pair.server.settings_state is SettingsState.ENABLED
    return pair


def apply_request(*refs: int) -> Message:
    return dpm.ApplySettingsRequest(
        user_name="operator@FNAL.GOV",
        list_id=LIST_ID,
        scaled_array=[dpm.ScaledSetting(ref_id=ref, data=[45.0]) for ref in refs],
    )


def closed_by(role: Role) -> Callable[[], Pair]:
    """Both sides opened, then ``role`` closed and the peer saw the end of the stream."""

    def setup() -> Pair:
        pair = with_entries(1)
        pair.side(role).close()
        pair.peer(role).receive_data(b"")
        assert drain(pair.peer(role)) == [ConnectionClosed()]
        return pair

    return setup


# ------------------------------------------------------------ illegal moves


@dataclass(frozen=True)
class Illegal:
    """One broken rule: after ``setup``, ``sender`` may not send ``message``.

    ``remote_event`` is what the receiver reports instead of an error for the
    rules the lab's servers tolerate. ``prefix`` is a command ``sender`` may
    legally send first, whose effect must vanish when the pair is refused.
    ``culprit_named``: the receiver's error says which role broke the rules
    (data after the end of the stream is plainly the peer's).
    """

    id: str
    sender: Role
    setup: Callable[[], Pair]
    message: Message
    match: str
    remote_event: type | None = None
    prefix: Message | None = None
    culprit_named: bool = True


C, S = Role.CLIENT, Role.SERVER
ILLEGAL = [
    # the list id must match
    Illegal(
        "request-names-another-list",
        C,
        lambda: with_entries(1),
        dpm.StartListRequest(list_id=OTHER_LIST_ID),
        f"names list {OTHER_LIST_ID}",
        prefix=add_request(2),
    ),
    Illegal(
        "reply-names-another-list",
        S,
        lambda: requested(opened(), add_request(1)),
        dpm.AddToListReply(list_id=OTHER_LIST_ID, ref_id=1, status=0),
        f"names list {OTHER_LIST_ID}",
        prefix=HEARTBEAT,
    ),
    Illegal(
        "heartbeat-names-another-list",
        S,
        lambda: started(1),
        dpm.ListStatusReply(list_id=OTHER_LIST_ID, status=0),
        f"names list {OTHER_LIST_ID}",
        prefix=HEARTBEAT,
    ),
    # ref_ids are unique within a list, and >= 1 except for '#' list properties
    Illegal(
        "ref-id-already-on-list",
        C,
        lambda: with_entries(1),
        add_request(1, "G:AMANDA@p,1000"),
        "ref_id 1 is already on the list",
        prefix=add_request(2),
    ),
    Illegal(
        "ref-id-zero-for-a-device",
        C,
        opened,
        add_request(0),
        "ref_id must be >= 1",
        prefix=add_request(2),
    ),
    Illegal(
        "ref-id-negative",
        C,
        opened,
        add_request(-1),
        "ref_id must be >= 1",
        prefix=add_request(2),
    ),
    Illegal(
        "add-while-started",
        C,
        lambda: started(1),
        add_request(2),
        "AddToList is not allowed while the list is started",
        prefix=dpm.AuthenticateRequest(list_id=LIST_ID, token=b""),
    ),
    Illegal(
        "remove-ref-not-on-list",
        C,
        lambda: with_entries(1),
        dpm.RemoveFromListRequest(list_id=LIST_ID, ref_id=9),
        "ref_id 9, not on the list",
        prefix=add_request(2),
    ),
    # StartList needs at least one entry
    Illegal(
        "start-empty-list",
        C,
        opened,
        START,
        "StartList is not allowed while the list is idle",
        prefix=dpm.AuthenticateRequest(list_id=LIST_ID, token=b""),
    ),
    Illegal(
        "start-with-only-list-properties",
        C,
        lambda: requested(opened(), ROLE),
        START,
        "at least one entry",
        prefix=dpm.RemoveFromListRequest(list_id=LIST_ID, ref_id=0),
    ),
    Illegal(
        "start-after-removing-the-last-entry",
        C,
        lambda: requested(with_entries(1), dpm.RemoveFromListRequest(list_id=LIST_ID, ref_id=1)),
        START,
        "at least one entry",
        prefix=ROLE,
    ),
    Illegal(
        "start-reply-without-start",
        S,
        lambda: with_entries(1),
        STARTED,
        "StartList reply without a StartList",
        prefix=HEARTBEAT,
    ),
    # data and per-entry replies only for known ref_ids, on a started list
    Illegal(
        "data-for-unknown-ref", S, lambda: started(1), scalar(99), "ref_id 99", prefix=HEARTBEAT
    ),
    Illegal(
        "status-for-unknown-ref",
        S,
        lambda: started(1),
        status_reply(98, DPM_NO_SUCH_DEVICE),
        "ref_id 98",
        prefix=HEARTBEAT,
    ),
    Illegal(
        "data-before-start",
        S,
        lambda: with_entries(1),
        scalar(1),
        "ref_id 1 while the list is entries added",
        prefix=HEARTBEAT,
    ),
    Illegal(
        "device-info-for-unknown-ref",
        S,
        lambda: started(1),
        dpm.DeviceInfoReply(ref_id=7, di=27235, name="M:OUTTMP", description="Outdoor"),
        "DeviceInfo for ref_id 7",
        prefix=HEARTBEAT,
    ),
    Illegal(
        "add-reply-without-add",
        S,
        lambda: started(1),
        add_reply(5),
        "AddToList reply for ref_id 5",
        prefix=HEARTBEAT,
    ),
    Illegal(
        "open-list-twice",
        S,
        opened,
        dpm.OpenListReply(list_id=LIST_ID),
        "OpenList reply is not allowed while the connection is open",
        prefix=HEARTBEAT,
    ),
    Illegal(
        "request-before-list-id",
        C,
        handshaken,
        add_request(1),
        r"before the list was opened \(awaiting list id\)",
    ),
    # settings: authenticate, enable, then apply
    Illegal(
        "apply-before-settings-enabled",
        C,
        lambda: started(1),
        apply_request(1),
        "before settings were enabled",
        remote_event=SettingsNotEnabled,
        prefix=dpm.AuthenticateRequest(list_id=LIST_ID, token=b""),
    ),
    Illegal(
        "enable-before-authenticate",
        C,
        opened,
        dpm.EnableSettingsRequest(list_id=LIST_ID, mic=b"m", message=b"1234"),
        "EnableSettings is not allowed while settings is none",
        prefix=add_request(2),
    ),
    Illegal(
        "authenticate-with-token-first",
        C,
        opened,
        dpm.AuthenticateRequest(list_id=LIST_ID, token=b"`\x82"),
        "Authenticate with a token is not allowed while settings is none",
        prefix=add_request(2),
    ),
    Illegal(
        "authenticate-while-one-is-pending",
        C,
        lambda: requested(opened(), dpm.AuthenticateRequest(list_id=LIST_ID, token=b"")),
        dpm.AuthenticateRequest(list_id=LIST_ID, token=b""),
        "awaits its reply",
        prefix=add_request(2),
    ),
    Illegal(
        "enable-while-authenticate-is-pending",
        C,
        lambda: requested(
            settings_enabled(opened()),
            dpm.AuthenticateRequest(list_id=LIST_ID, token=b""),
        ),
        dpm.EnableSettingsRequest(list_id=LIST_ID, mic=b"m", message=b"1234"),
        "EnableSettings while an authentication reply is pending",
        prefix=add_request(2),
    ),
    Illegal(
        "authenticate-while-enable-is-pending",
        C,
        lambda: enable_pending(opened()),
        dpm.AuthenticateRequest(list_id=LIST_ID, token=b""),
        "EnableSettings reply is pending",
        prefix=add_request(2),
    ),
    Illegal(
        "authenticate-reply-without-request",
        S,
        opened,
        dpm.AuthenticateReply(service_name=SERVICE_NAME),
        "Authenticate reply without",
        prefix=HEARTBEAT,
    ),
    Illegal(
        "apply-reply-without-apply",
        S,
        lambda: settings_enabled(started(1)),
        dpm.ApplySettingsReply(status=[dpm.SettingStatus(ref_id=1, status=0)]),
        "ApplySettings reply without an ApplySettings",
        prefix=HEARTBEAT,
    ),
    # replies racing StopList/ClearList/RemoveFromList: illegal to send, stale to receive
    Illegal(
        "data-after-stop",
        S,
        lambda: requested(started(1), STOP),
        scalar(1),
        "ref_id 1 while the list is stopped",
        remote_event=StaleReply,
        prefix=HEARTBEAT,
    ),
    Illegal(
        "data-after-clear",
        S,
        lambda: requested(started(1), CLEAR),
        scalar(1),
        "ref_id 1 while the list is idle",
        remote_event=StaleReply,
        prefix=HEARTBEAT,
    ),
    Illegal(
        "status-after-remove",
        S,
        lambda: requested(
            started(1, 2), STOP, dpm.RemoveFromListRequest(list_id=LIST_ID, ref_id=2)
        ),
        status_reply(2, DPM_NO_SUCH_DEVICE),
        "ref_id 2",
        remote_event=StaleReply,
        prefix=HEARTBEAT,
    ),
    # nothing after a close
    Illegal("request-after-client-closed", C, closed_by(C), STOP, "closed", culprit_named=False),
    Illegal("reply-after-server-closed", S, closed_by(S), HEARTBEAT, "closed", culprit_named=False),
]


@pytest.mark.parametrize("case", ILLEGAL, ids=lambda case: case.id)
def test_the_local_side_refuses_and_changes_nothing(case: Illegal) -> None:
    sender = case.setup().side(case.sender)
    before = snapshot(sender)
    with pytest.raises(LocalProtocolError, match=case.match):
        sender.send(case.message)
    assert snapshot(sender) == before


@pytest.mark.parametrize(
    "case", [case for case in ILLEGAL if case.prefix is not None], ids=lambda case: case.id
)
def test_a_refused_multi_command_send_is_all_or_nothing(case: Illegal) -> None:
    pair = case.setup()
    sender, receiver = pair.side(case.sender), pair.peer(case.sender)
    assert case.prefix is not None
    before = snapshot(sender)
    with pytest.raises(LocalProtocolError, match=case.match):
        sender.send(case.prefix, case.message, now=5.0)
    assert snapshot(sender) == before
    # The legal command alone still goes through, visibly, and the peer agrees.
    receiver.receive_data(sender.send(case.prefix, now=5.0))
    assert snapshot(sender) != before
    assert drain(receiver) == [case.prefix]


@pytest.mark.parametrize("case", ILLEGAL, ids=lambda case: case.id)
def test_the_same_bytes_from_the_remote_side(case: Illegal) -> None:
    pair = case.setup()
    receiver = pair.peer(case.sender)
    data = wire(case.message)
    if case.remote_event is not None:
        receiver.receive_data(data)
        assert drain(receiver) == [case.remote_event(case.message)]
        assert receiver.state is ConnectionState.OPEN
        return
    with pytest.raises(RemoteProtocolError, match=case.match) as info:
        receiver.receive_data(data)
        drain(receiver)
    assert receiver.state is ConnectionState.ERROR
    if case.culprit_named:
        assert f"the {case.sender.value} broke the protocol" in str(info.value)
    with pytest.raises(RemoteProtocolError, match="error state"):
        receiver.next_event()


def test_every_rule_is_checked_from_both_sides() -> None:
    """The table above covers each role sending, and each remote outcome."""
    assert {case.sender for case in ILLEGAL} == {Role.CLIENT, Role.SERVER}
    assert {case.remote_event for case in ILLEGAL} == {None, SettingsNotEnabled, StaleReply}
    assert len({case.id for case in ILLEGAL}) == len(ILLEGAL)


# --------------------------------------------------- whose fault, other ways


def test_three_command_send_refused_by_its_last_command_leaves_the_list_idle() -> None:
    client = opened().client
    with pytest.raises(LocalProtocolError, match="ref_id 2 is already on the list"):
        client.send(add_request(2), add_request(3), add_request(2))
    assert client.list_state is ListState.IDLE
    assert client.entries == {}


def test_a_refused_reply_batch_does_not_consume_what_it_answered() -> None:
    pair = requested(opened(), add_request(1), START)
    with pytest.raises(LocalProtocolError, match="ref_id 99"):
        pair.server.send(add_reply(1), STARTED, scalar(99))
    # Both replies are still owed exactly once.
    answered(pair, add_reply(1), STARTED)
    with pytest.raises(LocalProtocolError, match="AddToList reply for ref_id 1"):
        pair.server.send(add_reply(1))
    with pytest.raises(LocalProtocolError, match="StartList reply without a StartList"):
        pair.server.send(STARTED)


@pytest.mark.parametrize(
    ("role", "command", "match"),
    [
        (Role.CLIENT, HEARTBEAT, "a client sends DPM requests; ListStatus_reply is not one"),
        (Role.SERVER, START, "a server sends DPM replies; StartList_request is not one"),
        (Role.CLIENT, daqdata.ClearListRequest(list_id=LIST_ID), "ClearList_request is not one"),
        (Role.CLIENT, "StartList", "str 'StartList' is not one"),
    ],
)
def test_sending_what_the_role_does_not_send(role: Role, command: Any, match: str) -> None:
    conn = opened().side(role)
    before = snapshot(conn)
    with pytest.raises(LocalProtocolError, match=match):
        conn.send(command)
    assert snapshot(conn) == before


def test_a_command_that_cannot_be_encoded_is_refused_and_changes_nothing() -> None:
    client = opened().client
    with pytest.raises(LocalProtocolError, match="drf_request"):
        client.send(dpm.AddToListRequest(list_id=LIST_ID, ref_id=1))
    assert client.entries == {}
    assert client.list_state is ListState.IDLE


def test_only_the_client_initiates() -> None:
    server = DPMConnection(Role.SERVER)
    with pytest.raises(LocalProtocolError, match="only the client sends the handshake"):
        server.initiate()
    assert server.state is ConnectionState.AWAITING_HANDSHAKE


def test_the_client_initiates_once() -> None:
    client = DPMConnection(Role.CLIENT)
    assert client.initiate() == HANDSHAKE
    with pytest.raises(LocalProtocolError, match="handshake is not allowed"):
        client.initiate()
    assert client.state is ConnectionState.AWAITING_LIST_ID


def test_role_must_be_a_role() -> None:
    with pytest.raises(TypeError, match="'client'"):
        DPMConnection("client")  # type: ignore[arg-type]


def test_the_server_rejects_a_wrong_handshake() -> None:
    server = DPMConnection(Role.SERVER)
    server.receive_data(b"POST /dpm HTTP/1.1\r\n\r\n")
    with pytest.raises(RemoteProtocolError, match=r"expected 'GET /dpm HTTP/1\.1'"):
        server.next_event()
    assert server.state is ConnectionState.ERROR


def test_the_server_reports_a_client_that_closed_before_its_handshake() -> None:
    server = DPMConnection(Role.SERVER)
    server.receive_data(HANDSHAKE[:10])
    server.receive_data(b"")
    with pytest.raises(RemoteProtocolError, match="before its handshake"):
        server.next_event()
    assert server.state is ConnectionState.ERROR


def test_the_client_reports_a_proxy_refusal() -> None:
    client = DPMConnection(Role.CLIENT)
    client.initiate()
    client.receive_data(b"HTTP/1.1 503 Service Unavailable\r\n\r\n")
    with pytest.raises(ConnectionRefusedByProxy) as info:
        client.next_event()
    assert info.value.status_code == 503
    assert client.state is ConnectionState.ERROR


def test_a_clean_close_at_a_frame_boundary() -> None:
    pair = started(1)
    pair.client.receive_data(wire(scalar(1)) + wire(HEARTBEAT))
    pair.client.receive_data(b"")
    assert drain(pair.client) == [scalar(1), HEARTBEAT, ConnectionClosed()]
    assert pair.client.state is ConnectionState.CLOSED
    with pytest.raises(LocalProtocolError, match="the connection is closed"):
        pair.client.send(STOP)


def test_a_close_inside_a_frame_is_the_peers_fault() -> None:
    pair = started(1)
    data = wire(scalar(1))
    pair.client.receive_data(data[:-3])
    pair.client.receive_data(b"")
    with pytest.raises(RemoteProtocolError, match="inside a frame"):
        drain(pair.client)
    assert pair.client.state is ConnectionState.ERROR


def test_an_undecodable_frame_is_the_peers_fault() -> None:
    pair = started(1)
    pair.client.receive_data(frame(b"SDD\x02\x51"))
    with pytest.raises(RemoteProtocolError):
        pair.client.next_event()
    assert pair.client.state is ConnectionState.ERROR


# ------------------------------------------------------------ legal races


def test_old_data_after_stop_and_a_new_entry_is_stale_until_the_next_start_reply() -> None:
    pair = started(1)
    in_flight = pair.server.send(scalar(1, 1.0))  # written before the server saw StopList
    requests = pair.client.send(STOP, add_request(2))
    assert pair.client.list_state is ListState.ENTRIES_ADDED
    pair.client.receive_data(in_flight)
    assert drain(pair.client) == [StaleReply(scalar(1, 1.0))]
    requests += pair.client.send(START)
    pair.server.receive_data(requests)
    assert drain(pair.server) == [STOP, add_request(2), START]
    answered(pair, add_reply(2), STARTED)
    assert transfer(pair.server, pair.client, scalar(1, 2.0)) == [scalar(1, 2.0)]


def test_old_data_after_a_restart_is_stale_until_the_start_reply() -> None:
    pair = started(1)
    in_flight = pair.server.send(scalar(1, 1.0))
    pair.server.receive_data(pair.client.send(STOP, START))
    assert drain(pair.server) == [STOP, START]
    pair.client.receive_data(in_flight + pair.server.send(STARTED, scalar(1, 2.0)))
    assert drain(pair.client) == [StaleReply(scalar(1, 1.0)), STARTED, scalar(1, 2.0)]


def test_a_ref_id_may_be_reused_after_clear_list() -> None:
    pair = started(1)
    old_data = pair.server.send(scalar(1, 1.0))
    requested(pair, CLEAR, add_request(1, "G:AMANDA@p,1000"), START)
    assert pair.client.entries == pair.server.entries == {1: "G:AMANDA@p,1000"}
    pair.client.receive_data(old_data + pair.server.send(add_reply(1), STARTED, scalar(1, 2.0)))
    assert drain(pair.client) == [StaleReply(scalar(1, 1.0)), add_reply(1), STARTED, scalar(1, 2.0)]


def test_every_add_of_a_reused_ref_id_gets_its_reply() -> None:
    """Add, clear and add again before the server answered: it owes two replies for ref 1."""
    pair = requested(opened(), add_request(1), START, CLEAR, add_request(1, "Z:NOTFND@I"), START)
    replies = [add_reply(1), STARTED, add_reply(1, DPM_NO_SUCH_DEVICE), STARTED]
    assert transfer(pair.server, pair.client, *replies) == replies


def test_remove_from_list_is_answered_once() -> None:
    pair = requested(started(1, 2), STOP, dpm.RemoveFromListRequest(list_id=LIST_ID, ref_id=2))
    assert pair.client.entries == pair.server.entries == {1: "M:OUTTMP@p,1000"}
    reply = dpm.RemoveFromListReply(list_id=LIST_ID, ref_id=2, status=0)
    answered(pair, reply)
    with pytest.raises(LocalProtocolError, match="RemoveFromList reply for ref_id 2"):
        pair.server.send(reply)


def test_replies_pipelined_in_one_write_arrive_in_any_chunking() -> None:
    pair = requested(opened(), add_request(1), add_request(2, "Z:NOTFND@I"), START)
    replies = [
        add_reply(1),
        add_reply(2, DPM_NO_SUCH_DEVICE),
        dpm.DeviceInfoReply(ref_id=1, di=27235, name="M:OUTTMP", description="Outdoor", units="F"),
        STARTED,
        status_reply(2, DPM_NO_SUCH_DEVICE),
        scalar(1),
    ]
    data = pair.server.send(*replies)
    events = []
    for i in range(len(data)):
        pair.client.receive_data(data[i : i + 1])
        events += drain(pair.client)
    assert events == replies


# -------------------------------------------------------------------- settings


def test_the_settings_handshake_then_a_setting() -> None:
    pair = settings_enabled(started(1))
    request = apply_request(1)
    assert transfer(pair.client, pair.server, request) == [request]
    assert pair.client.settings_in_flight == pair.server.settings_in_flight == (1,)
    reply = dpm.ApplySettingsReply(status=[dpm.SettingStatus(ref_id=1, status=0)])
    answered(pair, reply)
    assert pair.client.settings_in_flight == pair.server.settings_in_flight == ()


def test_the_server_answers_an_apply_that_arrived_before_settings_were_enabled() -> None:
    pair = started(1, 2)
    request = apply_request(1, 2)
    pair.server.receive_data(wire(request))
    assert drain(pair.server) == [SettingsNotEnabled(request)]
    assert pair.server.settings_in_flight == (1, 2)
    refusal = dpm.ApplySettingsReply(
        status=[dpm.SettingStatus(ref_id=ref, status=-1) for ref in (1, 2)]
    )
    pair.server.send(refusal)
    assert pair.server.settings_in_flight == ()


def test_apply_settings_needs_its_refs_on_a_started_list() -> None:
    pair = settings_enabled(started(1))
    with pytest.raises(LocalProtocolError, match=r"ref_id\(s\) \[2\] not on the list"):
        pair.client.send(apply_request(1, 2))
    requested(pair, STOP)
    with pytest.raises(LocalProtocolError, match="while the list is stopped"):
        pair.client.send(apply_request(1))
    assert pair.client.settings_in_flight == ()


def test_a_refused_enable_returns_both_sides_to_no_settings() -> None:
    pair = enable_pending(opened())
    answered(pair, status_reply(0, -1))
    assert pair.client.settings_state is pair.server.settings_state is SettingsState.NONE


def test_the_enable_reply_still_settles_after_a_refused_re_authenticate() -> None:
    pair = enable_pending(opened())
    with pytest.raises(LocalProtocolError, match="EnableSettings reply is pending"):
        pair.client.send(dpm.AuthenticateRequest(list_id=LIST_ID, token=b""))
    answered(pair, status_reply(0, 0))
    assert pair.client.settings_state is pair.server.settings_state is SettingsState.ENABLED


# ------------------------------------------------------- time without clocks


def test_the_peer_is_overdue_after_missed_heartbeats_of_silence() -> None:
    pair = handshaken(heartbeat_period=0.5, missed_heartbeats=4)
    client = pair.client
    assert client.overdue_at() is None  # no clock reading yet
    client.receive_data(pair.server.send(dpm.OpenListReply(list_id=LIST_ID)), now=100.0)
    assert drain(client) == [dpm.OpenListReply(list_id=LIST_ID)]
    deadline = 100.0 + client.heartbeat_period * client.missed_heartbeats
    assert client.overdue_at() == deadline
    assert not client.peer_overdue(deadline - 0.01)
    assert client.peer_overdue(deadline)


@pytest.mark.parametrize(
    "data",
    [
        wire(HEARTBEAT),
        wire(scalar(1)),
        wire(dpm.DeviceInfoReply(ref_id=1, di=27235, name="M:OUTTMP", description="Outdoor")),
        wire(scalar(1))[:3],
    ],
    ids=["heartbeat", "data", "device-info", "part-of-a-frame"],
)
def test_anything_heard_resets_the_overdue_timer(data: bytes) -> None:
    client = started(1).client
    client.receive_data(wire(HEARTBEAT), now=0.0)
    drain(client)
    silence = client.heartbeat_period * client.missed_heartbeats
    later = silence - 0.5
    client.receive_data(data, now=later)
    drain(client)
    assert client.overdue_at() == later + silence
    assert not client.peer_overdue(silence)  # overdue by now, had nothing arrived
    assert client.peer_overdue(later + silence)


@given(
    start=st.floats(0, 1e9),
    period=st.floats(0.01, 60),
    missed=st.integers(1, 10),
    silence=st.floats(0, 1000),
)
def test_overdue_is_exactly_missed_periods_after_the_last_bytes(
    start: float, period: float, missed: int, silence: float
) -> None:
    pair = handshaken(heartbeat_period=period, missed_heartbeats=missed)
    pair.client.receive_data(wire(dpm.OpenListReply(list_id=LIST_ID)), now=start)
    drain(pair.client)
    due = pair.client.overdue_at()
    assert due == start + period * missed
    assert pair.client.peer_overdue(start + silence) == (start + silence >= due)


def test_nobody_is_overdue_on_a_closed_connection() -> None:
    pair = opened()
    pair.client.receive_data(wire(HEARTBEAT), now=0.0)
    drain(pair.client)
    pair.client.close()
    assert pair.client.overdue_at() is None
    assert not pair.client.peer_overdue(1e9)


def test_heartbeats_are_the_servers_and_due_every_period() -> None:
    pair = handshaken(heartbeat_period=1.5)
    server = pair.server
    assert server.heartbeat_due_at() is None  # no list yet
    pair.client.receive_data(server.send(dpm.OpenListReply(list_id=LIST_ID)))
    drain(pair.client)
    assert pair.client.heartbeat_due_at() is None  # clients do not send heartbeats
    assert server.heartbeat_due(0.0)  # a fresh list is due at once
    data = server.heartbeat(10.0, status=0)
    assert server.last_heartbeat_sent == 10.0
    assert server.heartbeat_due_at() == 10.0 + server.heartbeat_period
    assert not server.heartbeat_due(10.0 + server.heartbeat_period - 0.01)
    assert server.heartbeat_due(10.0 + server.heartbeat_period)
    pair.client.receive_data(data)
    assert drain(pair.client) == [HEARTBEAT]


def test_only_a_heartbeat_restarts_the_heartbeat_timer() -> None:
    pair = started(1)
    server = pair.server
    server.heartbeat(1.0)
    server.send(scalar(1), now=2.0)
    assert server.heartbeat_due_at() == 1.0 + server.heartbeat_period
    server.send(scalar(1), dpm.ListStatusReply(list_id=LIST_ID, status=0), now=2.0)
    assert server.heartbeat_due_at() == 2.0 + server.heartbeat_period


def test_a_closed_server_sends_no_heartbeat() -> None:
    server = opened().server
    server.heartbeat(1.0)
    server.close()
    assert server.heartbeat_due_at() is None
    with pytest.raises(LocalProtocolError, match="closed"):
        server.heartbeat(5.0)
    assert server.last_heartbeat_sent == 1.0


# ------------------------------------------- a client and a server, racing


DRFS = ("M:OUTTMP@p,1000", "Z:ACLTS1[0:4]@p,1000", "Z:NOTFND@I", "#ROLE:testing")
REFS = st.integers(0, 3)
ALL = 1 << 20  # a delivery size larger than anything in flight
# What the client is owed for each request it sent: the reply's wire name (and ref).
ANSWERED_BY = {
    "AddToList_request": "AddToList_reply",
    "RemoveFromList_request": "RemoveFromList_reply",
    "StartList_request": "StartList_reply",
    "Authenticate_request": "Authenticate_reply",
    "EnableSettings_request": "Status_reply",
    "ApplySettings_request": "ApplySettings_reply",
}


def owed_key(message: Message) -> tuple[str, int | None]:
    """Pairs a request with its reply: by name, and by ref_id where the reply carries one."""
    name = ANSWERED_BY.get(message.schema.wire_name, message.schema.wire_name)
    return name, getattr(message, "ref_id", None)


class ClientAndServer(RuleBasedStateMachine):
    """A client engine and a server engine joined by two byte pipes.

    Each side's writes wait in its pipe until a ``deliver`` rule hands an
    arbitrary-sized chunk to the peer, so replies race requests as on a real
    socket. The server answers every request as it reads it, as DPM does, and
    streams data for its entries. Commands an engine refuses are fine (and
    must change nothing); what it accepts, the peer must accept too, and every
    reply the client is owed must reach it as that reply, not as stale.
    """

    def __init__(self) -> None:
        super().__init__()
        self.client = DPMConnection(Role.CLIENT)
        self.server = DPMConnection(Role.SERVER)
        self.to_server = bytearray(self.client.initiate())
        self.to_client = bytearray()
        self.now = 0.0
        self.closed: Role | None = None
        self.end_delivered = False
        self.lost_bytes = False
        self.owed: Counter[tuple[str, int | None]] = Counter()

    @initialize(
        size=st.integers(1, 80),
        refs=st.lists(st.integers(1, 3), max_size=3, unique=True),
        start=st.booleans(),
    )
    def open_the_list(self, size: int, refs: list[int], start: bool) -> None:
        """Handshake and OpenList in chunks of ``size``, then usually a list: where races live."""
        self._flush(size)
        assert self.client.list_id == self.server.list_id == LIST_ID
        if refs:
            self._client(*map(add_request, refs), *([START] if start else []))
            self._flush(size)

    def _flush(self, size: int) -> None:
        while self.to_server or self.to_client:
            if self.to_server:
                self.deliver_to_server(size)
            if self.to_client:
                self.deliver_to_client(size)

    # -- the wire --------------------------------------------------------------

    def _write(self, sender: Role, data: bytes) -> None:
        if self.closed is not None and self.closed is not sender:
            self.lost_bytes = self.lost_bytes or bool(data)  # the peer has hung up
            return
        (self.to_server if sender is Role.CLIENT else self.to_client).extend(data)

    def _try(self, sender: Role, *commands: Message) -> None:
        conn = self.client if sender is Role.CLIENT else self.server
        before = snapshot(conn)
        try:
            data = conn.send(*commands, now=self.now)
        except LocalProtocolError:
            assert snapshot(conn) == before
            return
        if sender is Role.CLIENT:
            self.owed.update(owed_key(c) for c in commands if c.schema.wire_name in ANSWERED_BY)
        self._write(sender, data)

    def deliver_to_server(self, size: int, stream: bool = False) -> None:
        chunk = bytes(self.to_server[:size])
        del self.to_server[:size]
        self.server.receive_data(chunk, now=self.now)
        # One event at a time: each is answered before the next is read, and a
        # streaming server's data goes out in between.
        while (event := self.server.next_event()) is not NEED_DATA:
            assert not isinstance(event, ConnectionClosed)
            self._serve(event)
            if stream:
                self._stream_a_period()

    def _stream_a_period(self) -> None:
        if self.server.list_state is ListState.STARTED:
            refs = sorted(ref for ref in self.server.entries if ref > 0)
            self._write(Role.SERVER, self.server.send(*(scalar(r, self.now) for r in refs)))

    def deliver_to_client(self, size: int) -> None:
        chunk = bytes(self.to_client[:size])
        del self.to_client[:size]
        self.client.receive_data(chunk, now=self.now)
        for event in drain(self.client):
            self._check_client_event(event)
        if self.client.state is ConnectionState.OPEN:
            assert not self.client.peer_overdue(self.now)

    def deliver_end_of_stream(self) -> None:
        receiver = self.server if self.closed is Role.CLIENT else self.client
        receiver.receive_data(b"", now=self.now)
        assert drain(receiver) == [ConnectionClosed()]
        assert receiver.state is ConnectionState.CLOSED
        self.end_delivered = True

    @rule(
        seconds=st.sampled_from([0.0, 0.5, 2.5]),
        stream=st.booleans(),
        to_server=st.sampled_from([0, 1, 9, 50, ALL]),
        to_client=st.sampled_from([0, 1, 9, 50, ALL]),
    )
    def network(self, seconds: float, stream: bool, to_server: int, to_client: int) -> None:
        """Time passes; the server streams and heartbeats; some bytes arrive each way."""
        self.now += seconds
        if self.server.state is ConnectionState.OPEN:
            if stream:
                self._stream_a_period()
            if self.server.heartbeat_due(self.now):
                self._write(Role.SERVER, self.server.heartbeat(self.now))
        if to_server and self.to_server:
            self.deliver_to_server(to_server, stream)
        if to_client and self.to_client:
            self.deliver_to_client(to_client)
        closer_unsent = self.to_server if self.closed is Role.CLIENT else self.to_client
        if self.closed is not None and not self.end_delivered and not closer_unsent:
            self.deliver_end_of_stream()

    # -- the server: answers as it reads, and streams data ------------------------

    def _serve(self, event: Any) -> None:
        replies: list[Message] = []
        if isinstance(event, Handshake):
            replies.append(dpm.OpenListReply(list_id=LIST_ID))
        elif isinstance(event, dpm.AddToListRequest):
            found = "NOTFND" not in event.drf_request
            replies.append(add_reply(event.ref_id, 0 if found else DPM_NO_SUCH_DEVICE))
            if found and event.ref_id > 0:
                name = event.drf_request.partition("@")[0]
                replies.append(
                    dpm.DeviceInfoReply(ref_id=event.ref_id, di=1, name=name, description="")
                )
        elif isinstance(event, dpm.StartListRequest):
            replies.append(STARTED)
        elif isinstance(event, dpm.RemoveFromListRequest):
            replies.append(dpm.RemoveFromListReply(list_id=LIST_ID, ref_id=event.ref_id, status=0))
        elif isinstance(event, dpm.AuthenticateRequest):
            replies.append(
                dpm.AuthenticateReply(token=b"o\x00")
                if event.token
                else dpm.AuthenticateReply(service_name=SERVICE_NAME)
            )
        elif isinstance(event, dpm.EnableSettingsRequest):
            replies.append(status_reply(0, 0 if event.message == b"accept" else -1))
        elif isinstance(event, dpm.ApplySettingsRequest):
            statuses = [dpm.SettingStatus(ref_id=s.ref_id, status=0) for s in event.scaled_array]
            replies.append(dpm.ApplySettingsReply(status=statuses))
        else:
            # StopList and ClearList need no answer; nothing else may come from a client
            # whose engine checked it (SettingsNotEnabled would mean it did not).
            assert isinstance(event, dpm.StopListRequest | dpm.ClearListRequest), event
        if replies:
            # A request the client was allowed to send, the server must be able to answer.
            self._write(Role.SERVER, self.server.send(*replies, now=self.now))

    @precondition(lambda self: self.server.state is ConnectionState.OPEN)
    @rule(ref=st.integers(1, 5), kind=st.sampled_from(["data", "status"]))
    def server_sends_for_any_ref(self, ref: int, kind: str) -> None:
        reply = scalar(ref, self.now) if kind == "data" else status_reply(ref, DPM_NO_SUCH_DEVICE)
        self._try(Role.SERVER, reply)

    @precondition(lambda self: self.closed is None)
    @rule(who=st.sampled_from(Role), really=st.integers(0, 9))
    def one_side_closes(self, who: Role, really: int) -> None:
        if really:
            return  # closing ends the exploration, so it happens seldom
        (self.client if who is Role.CLIENT else self.server).close()
        self.closed = who
        unread = self.to_client if who is Role.CLIENT else self.to_server
        self.lost_bytes = self.lost_bytes or bool(unread)
        unread.clear()  # nobody reads them any more

    # -- the client ----------------------------------------------------------------

    def _client(self, *commands: Message) -> None:
        self._try(Role.CLIENT, *commands)

    @rule(
        pick=st.integers(0, 11),
        refs=st.lists(REFS, min_size=1, max_size=3, unique=True),
        drf=st.sampled_from(DRFS),
    )
    def client_works_on_the_list(self, pick: int, refs: list[int], drf: str) -> None:
        """Mostly a move that fits the list's state, as a client makes; sometimes any move."""
        adds = tuple(dpm.AddToListRequest(list_id=LIST_ID, ref_id=r, drf_request=drf) for r in refs)
        on_list = sorted(self.client.entries) or refs
        remove = (dpm.RemoveFromListRequest(list_id=LIST_ID, ref_id=on_list[pick % len(on_list)]),)
        fitting = {
            ListState.IDLE: [(*adds, START), adds],
            ListState.ENTRIES_ADDED: [(START,), adds, remove, (CLEAR,)],
            ListState.STARTED: [(STOP,), (STOP, CLEAR), (CLEAR, *adds, START), (STOP, *adds)],
            ListState.STOPPED: [(START,), (*adds, START), (CLEAR, *adds), remove],
        }[self.client.list_state]
        anything = [(START,), (STOP,), (CLEAR,), adds, remove]
        options = fitting if pick < 9 else anything
        self._client(*options[pick % len(options)])

    @precondition(lambda self: not self.owed[("Authenticate_reply", None)])
    @rule(pick=st.integers(0, 11))
    def client_works_on_settings(self, pick: int) -> None:
        """Mostly the next step of the settings handshake; sometimes an out-of-turn one."""
        authenticate = dpm.AuthenticateRequest(list_id=LIST_ID, token=b"")
        with_token = dpm.AuthenticateRequest(list_id=LIST_ID, token=b"`\x82token")
        refs = sorted(self.client.entries) or [1]
        setting = dpm.ScaledSetting(ref_id=refs[pick % len(refs)], data=[self.now])
        apply = dpm.ApplySettingsRequest(
            user_name="operator", list_id=LIST_ID, scaled_array=[setting]
        )
        fitting = {
            SettingsState.NONE: [authenticate],
            SettingsState.SERVICE_NAME_ASKED: [authenticate],  # legal once the reply is in
            SettingsState.CONTEXT_IN_PROGRESS: [
                with_token,
                dpm.EnableSettingsRequest(list_id=LIST_ID, mic=b"mic", message=b"accept"),
                dpm.EnableSettingsRequest(list_id=LIST_ID, mic=b"mic", message=b"refuse"),
            ],
            SettingsState.ENABLED: [apply, apply, authenticate],
        }[self.client.settings_state]
        anything = [authenticate, with_token, apply]
        options = fitting if pick < 9 else anything
        self._client(options[pick % len(options)])

    def _check_client_event(self, event: Any) -> None:
        if isinstance(event, StaleReply):
            # Only what describes an entry can be stale; answers to requests never are.
            assert event.message.schema.wire_name in DATA_REPLIES | {"DeviceInfo_reply"}, event
            return
        assert isinstance(event, Message), event
        name = event.schema.wire_name
        if name == "Status_reply" and event.ref_id == 0:
            key: tuple[str, int | None] = (name, None)  # the answer to EnableSettings
        elif name in DATA_REPLIES:
            assert event.ref_id in self.client.entries, event
            return
        else:
            key = (name, getattr(event, "ref_id", None))
        if key[0] in ANSWERED_BY.values():
            assert self.owed[key] > 0, f"{event} answers nothing the client sent"
            self.owed[key] -= 1

    # -- what must always hold -----------------------------------------------------

    @invariant()
    def nobody_broke_the_protocol(self) -> None:
        assert self.client.state is not ConnectionState.ERROR
        assert self.server.state is not ConnectionState.ERROR

    @invariant()
    def both_sides_agree_on_the_list_once_the_requests_arrived(self) -> None:
        if self.to_server or (self.lost_bytes and self.closed is Role.SERVER):
            return
        assert self.client.list_id == self.server.list_id
        assert self.client.list_state is self.server.list_state
        assert self.client.entries == self.server.entries

    @invariant()
    def both_sides_agree_on_settings_once_the_wire_is_quiet(self) -> None:
        if self.to_server or self.to_client or self.lost_bytes:
            return
        assert self.client.settings_state is self.server.settings_state
        assert self.client.settings_in_flight == self.server.settings_in_flight
        assert +self.owed == Counter(), f"replies never delivered as themselves: {+self.owed}"

    def teardown(self) -> None:
        # Let everything in flight arrive, then check the agreement once more.
        self._flush(ALL)
        self.nobody_broke_the_protocol()
        self.both_sides_agree_on_the_list_once_the_requests_arrived()
        self.both_sides_agree_on_settings_once_the_wire_is_quiet()


TestClientAndServer = ClientAndServer.TestCase
TestClientAndServer.settings = settings(max_examples=100, stateful_step_count=30, deadline=None)


def test_the_server_keeps_only_the_head_of_a_peers_overlong_drf() -> None:
    pair = opened()
    huge = "M:" + "X" * 1_000_000
    [event] = transfer(pair.client, pair.server, add_request(1, huge))
    assert event.drf_request == huge  # the event carries what was sent
    assert len(pair.server.entries[1]) == MAX_DRF_LENGTH + 1
    assert pair.client.entries[1] == huge  # our own requests are kept as sent

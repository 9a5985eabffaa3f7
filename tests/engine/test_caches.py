"""What a pooled connection repeats is done once: frames it sends, and frames it receives
that come back byte for byte. Memory stays bounded, and no rule is skipped for it."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from acnet_proto.engine._state import Role
from acnet_proto.engine.connection import _FRAMES_SENT_KEPT, _RETIRED_SLACK, DPMConnection
from acnet_proto.engine.events import NEED_DATA, Handshake, StaleReply
from acnet_proto.engine.framing import FrameMemo, frame
from acnet_proto.errors import DecodeError, LocalProtocolError, RemoteProtocolError
from acnet_proto.pc import dpm
from acnet_proto.pc._message import Message

LIST_ID = 48813
MILLIS = 1_763_769_600_000


def drain(conn: DPMConnection) -> list[Any]:
    events = []
    while (event := conn.next_event()) is not NEED_DATA:
        events.append(event)
    return events


def opened() -> tuple[DPMConnection, DPMConnection]:
    client, server = DPMConnection(Role.CLIENT), DPMConnection(Role.SERVER)
    server.receive_data(client.initiate())
    assert drain(server) == [Handshake()]
    client.receive_data(server.send(dpm.OpenListReply(list_id=LIST_ID)))
    drain(client)
    return client, server


def wire(*messages: Message) -> bytes:
    """The frames of ``messages`` as the codec makes them, the engine bypassed."""
    return b"".join(frame(dpm.encode(m)) for m in messages)


def read_commands(*refs: int) -> list[Message]:
    adds = [
        dpm.AddToListRequest(list_id=LIST_ID, ref_id=r, drf_request=f"M:DEV{r}@I") for r in refs
    ]
    return [*adds, dpm.StartListRequest(list_id=LIST_ID)]


def read_replies(*refs: int, value: float = 41.7) -> list[Message]:
    return [
        *(dpm.AddToListReply(list_id=LIST_ID, ref_id=r, status=0) for r in refs),
        dpm.StartListReply(list_id=LIST_ID, status=0),
        *(
            dpm.DeviceInfoReply(ref_id=r, di=r, name=f"M:DEV{r}", description="", units="V")
            for r in refs
        ),
        *(dpm.ScalarReply(ref_id=r, timestamp=MILLIS, cycle=0, status=0, data=value) for r in refs),
    ]


TEARDOWN = [dpm.StopListRequest(list_id=LIST_ID), dpm.ClearListRequest(list_id=LIST_ID)]


# ------------------------------------------------------------------ the memo


def test_a_frame_memo_forgets_everything_when_full() -> None:
    memo: FrameMemo[str, int] = FrameMemo(3)
    for i, key in enumerate("abc"):
        memo.remember(key, i)
    assert memo == {"a": 0, "b": 1, "c": 2}
    memo.remember("d", 3)
    assert memo == {"d": 3}


# ------------------------------------------------------------ frames sent


def test_every_read_on_a_pooled_connection_sends_what_the_codec_makes() -> None:
    client, server = opened()
    for value in (41.7, 42.0, 42.5):
        commands = read_commands(1, 2)
        assert client.send(*commands) == wire(*commands)
        server.receive_data(wire(*commands))
        assert drain(server) == commands
        client.receive_data(wire(*read_replies(1, 2, value=value)))
        assert drain(client) == read_replies(1, 2, value=value)
        assert client.send(*TEARDOWN) == wire(*TEARDOWN)
        server.receive_data(wire(*TEARDOWN))
        assert drain(server) == TEARDOWN


def test_a_list_longer_than_the_memo_is_sent_whole_and_the_memo_stays_bounded() -> None:
    client, _ = opened()
    refs = range(1, 2 * _FRAMES_SENT_KEPT + 2)
    for _ in range(2):
        assert client.send(*read_commands(*refs)) == wire(*read_commands(*refs))
        assert len(client.entries) == len(refs)
        client.send(*TEARDOWN)
    assert len(client._frames_sent) <= _FRAMES_SENT_KEPT


@pytest.mark.parametrize("ref", [1.0, 1 + 0j])
def test_a_number_equal_to_a_remembered_ref_id_is_still_refused_by_the_codec(ref: Any) -> None:
    client, _ = opened()
    client.send(*read_commands(1))
    client.send(*TEARDOWN)
    with pytest.raises(LocalProtocolError, match="expected an int"):
        client.send(dpm.AddToListRequest(list_id=LIST_ID, ref_id=ref, drf_request="M:DEV1@I"))
    assert client.entries == {}


def test_a_bool_ref_id_is_encoded_as_the_codec_encodes_it() -> None:
    client, _ = opened()
    client.send(*read_commands(1))
    client.send(*TEARDOWN)
    odd = dpm.AddToListRequest(list_id=LIST_ID, ref_id=True, drf_request="M:DEV1@I")
    assert client.send(odd) == wire(odd)


# -------------------------------------------------------- frames received


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many times each reply class was decoded by connections made from now on."""
    counts: Counter[str] = Counter()
    decode = dpm.decode_reply

    def counting(data: bytes) -> Message:
        message = decode(data)
        counts[type(message).__name__] += 1
        return message

    monkeypatch.setattr(dpm, "decode_reply", counting)
    return counts


def test_replies_that_repeat_byte_for_byte_are_decoded_once(decoded: Counter[str]) -> None:
    client, _ = opened()
    for value in (41.7, 42.0, 42.5):
        client.send(*read_commands(1))
        client.receive_data(wire(*read_replies(1, value=value)))
        assert drain(client) == read_replies(1, value=value)
        client.send(*TEARDOWN)
    assert decoded == {
        "OpenListReply": 1,
        "AddToListReply": 1,
        "StartListReply": 1,
        "DeviceInfoReply": 1,
        "ScalarReply": 3,  # data carries a timestamp: never remembered
    }


def test_a_remembered_reply_still_obeys_the_rules() -> None:
    client, _ = opened()
    client.send(*read_commands(1))
    added = dpm.AddToListReply(list_id=LIST_ID, ref_id=1, status=0)
    client.receive_data(wire(added, dpm.StartListReply(list_id=LIST_ID, status=0)))
    drain(client)
    # The same bytes again: decoded from memory, and owed no more.
    client.receive_data(wire(added))
    with pytest.raises(RemoteProtocolError, match="AddToList reply for ref_id 1 while the list"):
        drain(client)


def test_a_remembered_reply_for_a_cleared_entry_is_stale() -> None:
    client, _ = opened()
    client.send(*read_commands(1))
    info = read_replies(1)[2]
    client.receive_data(wire(info))
    assert drain(client) == [info]
    client.send(*TEARDOWN)
    client.receive_data(wire(info))
    assert drain(client) == [StaleReply(info)]


def test_a_bad_frame_is_refused_as_the_codec_refuses_it_after_good_ones() -> None:
    client, _ = opened()
    client.send(*read_commands(1))
    good = wire(*read_replies(1))
    bad = dpm.encode(dpm.AddToListReply(list_id=LIST_ID, ref_id=1, status=0))[:-1]
    with pytest.raises(DecodeError) as expected:
        dpm.decode_reply(bad)
    client.receive_data(good + frame(bad))
    with pytest.raises(DecodeError) as got:
        drain(client)
    assert str(got.value) == str(expected.value)


# ---------------------------------------------------------------- retired


def test_retired_entries_stay_bounded_over_many_lists() -> None:
    client, server = opened()
    for ref in range(1, 1000):
        commands = read_commands(ref)
        server.receive_data(client.send(*commands))
        drain(server)
        replies = read_replies(ref)
        client.receive_data(server.send(*replies))
        assert drain(client) == replies
        server.receive_data(client.send(*TEARDOWN))
        drain(server)
    assert len(client._retired) <= _RETIRED_SLACK + 1
    assert len(server._retired) <= _RETIRED_SLACK + 1

"""The shared DPM transcripts: replayed through the engine in both roles, loaded and dumped,
and tampered with to see ReplayError name the line and the culprit."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from acnet_proto.engine._state import Role
from acnet_proto.engine.connection import DATA_REPLIES
from acnet_proto.engine.events import ConnectionClosed, Handshake
from acnet_proto.engine.framing import HANDSHAKE, FrameSplitter, frame
from acnet_proto.engine.transcript import Line, ReplayError, Step, dump, load, replay
from acnet_proto.errors import DecodeError, LocalProtocolError, RemoteProtocolError
from acnet_proto.pc import dpm
from acnet_proto.pc._message import Message
from tests.support.vectors import SHARED

TRANSCRIPTS = sorted((SHARED / "transcripts").glob("*.jsonl"))
ROLES = [Role.CLIENT, Role.SERVER]


def by_name(paths: list[Path]) -> list[Any]:
    return [pytest.param(path, id=path.stem) for path in paths]


def decoded(lines: list[Line]) -> list[list[Any]]:
    """What each line carries, decoded here without the module under test.

    The client's first write is the handshake (as the server's engine reports
    it: :class:`Handshake`); the rest are frames, requests one way and replies
    the other, reassembled across lines as a stream.
    """
    splitters = {"c2s": FrameSplitter(), "s2c": FrameSplitter()}
    handshake_done = False
    result = []
    for line in lines:
        data, items = line.data, []
        if line.direction == "c2s" and not handshake_done:
            assert data.startswith(HANDSHAKE), "a client's first write is the handshake"
            items.append(Handshake())
            data = data[len(HANDSHAKE) :]
            handshake_done = True
        decode = dpm.decode_request if line.direction == "c2s" else dpm.decode_reply
        items += [decode(payload) for payload in splitters[line.direction].feed(data)]
        result.append(items)
    return result


def expected_events(lines: list[Line], role: Role) -> list[tuple[Any, ...]]:
    """Per line: nothing for our own writes, everything the peer's write carries."""
    return [
        () if line.sender is role else tuple(items)
        for line, items in zip(lines, decoded(lines), strict=True)
    ]


def replace_message(line: Line, index: int, new: Message) -> Line:
    """``line`` with its ``index``-th frame re-encoded from ``new`` (a frame-only line)."""
    payloads = FrameSplitter().feed(line.data)
    payloads[index] = dpm.encode(new)
    return Line(line.direction, b"".join(map(frame, payloads)), line.note)


def first(lines: list[Line], direction: str, wanted: Any) -> tuple[int, int, Message]:
    """(line index, frame index, message) of the first message on ``direction`` matching."""
    for i, (line, items) in enumerate(zip(lines, decoded(lines), strict=True)):
        if line.direction != direction:
            continue
        for j, item in enumerate(items):
            if isinstance(item, Message) and wanted(item):
                return i, j, item
    raise LookupError("no such message in the transcript")


def replay_error(lines: list[Line], role: Role) -> ReplayError:
    with pytest.raises(ReplayError) as info:
        for _ in replay(lines, role):
            pass
    return info.value


def has_data_reply(path: Path) -> bool:
    lines = load(path)
    try:
        first(lines, "s2c", lambda m: m.schema.wire_name in DATA_REPLIES and m.ref_id > 0)
    except LookupError:
        return False
    return True


def test_the_shared_transcripts_are_all_here() -> None:
    assert {path.name for path in TRANSCRIPTS} >= {
        "read-one-shot.jsonl",
        "stream-with-heartbeat.jsonl",
        "write-kerberos.jsonl",
    }


# ------------------------------------------------------------------ replaying


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.value)
@pytest.mark.parametrize("path", by_name(TRANSCRIPTS))
def test_replay_delivers_every_peer_message_in_order(path: Path, role: Role) -> None:
    lines = load(path)
    steps = list(replay(lines, role))
    assert [step.number for step in steps] == list(range(1, len(lines) + 1))
    assert [step.line for step in steps] == lines
    assert [step.events for step in steps] == expected_events(lines, role)


@pytest.mark.parametrize("path", by_name(TRANSCRIPTS))
def test_the_client_hears_one_answer_per_request_about_its_own_list(path: Path) -> None:
    lines = load(path)
    requests = [
        item
        for line, items in zip(lines, decoded(lines), strict=True)
        if line.sender is Role.CLIENT
        for item in items
        if isinstance(item, Message)
    ]
    events = [event for step in replay(lines, Role.CLIENT) for event in step.events]
    assert all(isinstance(event, Message) for event in events), "no stale or error events"
    # The list id is the server's first word, and every message after it names that list.
    assert isinstance(events[0], dpm.OpenListReply)
    list_id = events[0].list_id
    assert {m.list_id for m in requests + events if hasattr(m, "list_id")} == {list_id}
    # Each AddToList and StartList is answered exactly once, for the same ref_id.
    added = Counter(m.ref_id for m in requests if isinstance(m, dpm.AddToListRequest))
    assert Counter(m.ref_id for m in events if isinstance(m, dpm.AddToListReply)) == added
    assert sum(isinstance(m, dpm.StartListReply) for m in events) == sum(
        isinstance(m, dpm.StartListRequest) for m in requests
    )
    # Data and device info only for entries whose AddToList was accepted before them.
    accepted: set[int] = set()
    for event in events:
        if isinstance(event, dpm.AddToListReply) and event.status == 0:
            accepted.add(event.ref_id)
        elif isinstance(event, dpm.DeviceInfoReply):
            assert event.ref_id in accepted
        elif event.schema.wire_name in DATA_REPLIES and event.ref_id != 0:
            assert event.ref_id in added


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.value)
@pytest.mark.parametrize("path", by_name(TRANSCRIPTS))
def test_replay_does_not_care_how_the_peers_bytes_were_chunked(path: Path, role: Role) -> None:
    lines = load(path)
    bytewise = []
    for line in lines:
        if line.sender is role or line.data.startswith(HANDSHAKE):
            bytewise.append(line)  # our own writes must re-encode whole
        else:
            bytewise += [Line(line.direction, bytes([b]), line.note) for b in line.data]
    events = [event for step in replay(bytewise, role) for event in step.events]
    assert events == [event for events in expected_events(lines, role) for event in events]


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.value)
def test_an_empty_peer_line_is_the_peer_closing(role: Role) -> None:
    lines = load(TRANSCRIPTS[0])
    peer = "s2c" if role is Role.CLIENT else "c2s"
    steps = list(replay([*lines, Line(peer, b"", "peer closes")], role))
    assert steps[-1].events == (ConnectionClosed(),)


# ------------------------------------------------------------- load and dump


@pytest.mark.parametrize("path", by_name(TRANSCRIPTS))
def test_dump_writes_back_exactly_what_load_read(path: Path) -> None:
    lines = load(path)
    assert lines and all(isinstance(line, Line) for line in lines)
    text = io.StringIO()
    dump(lines, text)
    assert text.getvalue() == path.read_text(encoding="utf-8")
    assert load(io.StringIO(text.getvalue())) == lines


def test_dump_and_load_through_paths_and_strings(tmp_path: Path) -> None:
    lines = [
        Line("c2s", HANDSHAKE, "handshake"),
        Line("s2c", frame(dpm.encode(dpm.OpenListReply(list_id=7)))),
        Line("c2s", b"", "the client closes"),
    ]
    target = tmp_path / "conversation.jsonl"
    dump(lines, target)
    assert load(target) == lines
    assert load(str(target)) == lines


def test_load_skips_blank_lines() -> None:
    text = '\n{"dir": "s2c", "hex": "00"}\n   \n{"dir": "c2s", "hex": ""}\n'
    assert load(io.StringIO(text)) == [Line("s2c", b"\x00"), Line("c2s", b"")]


@pytest.mark.parametrize(
    ("record", "match"),
    [
        ("not json", "line 2 is not a valid record"),
        ('{"hex": "00"}', "line 2 is not a valid record: 'dir'"),
        ('{"dir": "c2s"}', "line 2 is not a valid record: 'hex'"),
        ('{"dir": "c2s", "hex": "0g"}', "line 2 is not a valid record"),
        ('{"dir": "up", "hex": "00"}', "line 2 is not a valid record: direction must be"),
        ('["c2s", "00"]', "line 2 is not a valid record"),
    ],
)
def test_load_names_the_bad_line(record: str, match: str) -> None:
    text = '{"dir": "c2s", "hex": "00"}\n' + record + "\n"
    with pytest.raises(ValueError, match=match):
        load(io.StringIO(text))


def test_line_knows_its_sender() -> None:
    assert Line("c2s", b"").sender is Role.CLIENT
    assert Line("s2c", b"").sender is Role.SERVER
    with pytest.raises(ValueError, match="'sideways'"):
        Line("sideways", b"")


# ----------------------------------------------------------------- tampering


def assert_names(error: ReplayError, number: int, culprit: Role, cause: type, match: str) -> None:
    assert error.number == number
    assert error.culprit is culprit
    assert isinstance(error.cause, cause)
    assert match in str(error.cause)
    assert f"line {number}" in str(error)
    assert f"sent by the {culprit.value}" in str(error)


@pytest.mark.parametrize("path", by_name(TRANSCRIPTS))
def test_a_reply_naming_another_list(path: Path) -> None:
    lines = load(path)
    i, j, reply = first(lines, "s2c", lambda m: isinstance(m, dpm.AddToListReply))
    wrong = reply.list_id + 1
    lines[i] = replace_message(lines[i], j, reply.replace(list_id=wrong))
    for role, cause in [(Role.CLIENT, RemoteProtocolError), (Role.SERVER, LocalProtocolError)]:
        error = replay_error(lines, role)
        assert_names(error, i + 1, Role.SERVER, cause, f"names list {wrong}")


@pytest.mark.parametrize("path", by_name([p for p in TRANSCRIPTS if has_data_reply(p)]))
def test_data_for_a_ref_id_never_added(path: Path) -> None:
    lines = load(path)
    i, j, reply = first(lines, "s2c", lambda m: m.schema.wire_name in DATA_REPLIES and m.ref_id > 0)
    added = [
        item.ref_id
        for items in decoded(lines)
        for item in items
        if isinstance(item, dpm.AddToListRequest)
    ]
    stranger = max(added) + 1
    lines[i] = replace_message(lines[i], j, reply.replace(ref_id=stranger))
    for role, cause in [(Role.CLIENT, RemoteProtocolError), (Role.SERVER, LocalProtocolError)]:
        error = replay_error(lines, role)
        assert_names(error, i + 1, Role.SERVER, cause, f"ref_id {stranger}")


@pytest.mark.parametrize("closer", ROLES, ids=lambda role: f"{role.value}-closed")
@pytest.mark.parametrize("path", by_name(TRANSCRIPTS))
def test_add_to_list_after_the_connection_closed(path: Path, closer: Role) -> None:
    lines = load(path)
    list_id = decoded(lines)[1][0].list_id  # the OpenList reply
    late = dpm.AddToListRequest(list_id=list_id, ref_id=99, drf_request="M:OUTTMP@I")
    close = Line("c2s" if closer is Role.CLIENT else "s2c", b"", "close")
    lines += [close, Line("c2s", frame(dpm.encode(late)), "too late")]
    # Whichever side closed, the late request is the client's doing.
    client_match = "the connection is closed"
    server_match = "after the peer closed" if closer is Role.CLIENT else "after the connection was"
    for role, cause, match in [
        (Role.CLIENT, LocalProtocolError, client_match),
        (Role.SERVER, RemoteProtocolError, server_match),
    ]:
        error = replay_error(lines, role)
        assert_names(error, len(lines), Role.CLIENT, cause, match)


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.value)
def test_a_line_that_does_not_decode(role: Role) -> None:
    lines = load(TRANSCRIPTS[0])
    i, j, _ = first(lines, "s2c", lambda m: isinstance(m, dpm.AddToListReply))
    payloads = FrameSplitter().feed(lines[i].data)
    payloads[j] = b"XDD" + payloads[j][3:]  # not the SDD magic
    lines[i] = Line("s2c", b"".join(map(frame, payloads)), lines[i].note)
    error = replay_error(lines, role)
    assert_names(error, i + 1, Role.SERVER, DecodeError, "SDD v2 magic")


def test_our_own_line_must_re_encode_to_the_same_bytes() -> None:
    lines = load(TRANSCRIPTS[0])
    i, _, _ = first(lines, "c2s", lambda m: isinstance(m, dpm.AddToListRequest))
    lines[i] = Line("c2s", lines[i].data + b"\x00\x00", lines[i].note)  # half a length prefix
    error = replay_error(lines, Role.CLIENT)
    assert_names(error, i + 1, Role.CLIENT, LocalProtocolError, "different bytes")


def test_replay_is_lazy_and_stops_at_the_bad_line() -> None:
    lines = load(TRANSCRIPTS[0])
    i, j, reply = first(lines, "s2c", lambda m: isinstance(m, dpm.AddToListReply))
    lines[i] = replace_message(lines[i], j, reply.replace(list_id=reply.list_id + 1))
    steps: list[Step] = []
    with pytest.raises(ReplayError):
        steps.extend(replay(lines, Role.CLIENT))
    assert [step.number for step in steps] == list(range(1, i + 1))

"""A recording played to a client, in memory: requests matched by meaning, ref ids re-tagged,
the first departure named by its transcript line; transcripts that cannot be played refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acnet_proto.engine.framing import HANDSHAKE, FrameSplitter, frame
from acnet_proto.engine.recording import Answer, Expect, Recording, RecordingError
from acnet_proto.engine.replay import LiveAuth, Replay, ReplayMismatch, ReplaySession
from acnet_proto.errors import AcnetProtoError, AuthenticationError
from acnet_proto.pc import dpm
from acnet_proto.pc._message import Message
from acnet_proto.sim.policy import SettingsPolicy
from acnet_proto.sim.settings import ServerSettings
from acnet_proto.status import Status
from tests.support.vectors import SHARED

TRANSCRIPTS = SHARED / "transcripts"
READ = TRANSCRIPTS / "read-one-shot.jsonl"
STREAM = TRANSCRIPTS / "stream-with-heartbeat.jsonl"
WRITE = TRANSCRIPTS / "write-kerberos.jsonl"
DPM_PRIV = Status.from_name("DPM_PRIV")


def session_of(*paths: Path) -> ReplaySession:
    return Replay(Recording.load(*paths)).session()


def replies(data: bytes) -> list[Message]:
    return [dpm.decode_reply(f) for f in FrameSplitter().feed(data)]


def send(session: ReplaySession, *requests: Message) -> list[Message]:
    """``requests`` in one write, as a client pipelines them; the replies that came back."""
    return replies(session.receive(b"".join(frame(dpm.encode(r)) for r in requests)))


def opened(session: ReplaySession) -> int:
    [reply] = replies(session.receive(HANDSHAKE))
    assert isinstance(reply, dpm.OpenListReply)
    return int(reply.list_id)


def test_a_read_matches_by_meaning_and_replies_carry_the_clients_ref_id() -> None:
    session = session_of(READ)
    list_id = opened(session)
    assert list_id == 48813  # the recorded list
    # another spelling of the recorded M:OUTTMP@I, another ref id, written in two pieces
    add = frame(
        dpm.encode(
            dpm.AddToListRequest(list_id=list_id, ref_id=7, drf_request="m:outtmp.reading@i")
        )
    )
    assert session.receive(add[:5]) == b""
    assert session.receive(add[5:]) == b""  # the recorded replies follow the StartList
    got = send(session, dpm.StartListRequest(list_id=list_id))
    assert got[0] == dpm.AddToListReply(list_id=list_id, ref_id=7, status=0)
    assert [type(r) for r in got[1:]] == [
        dpm.DeviceInfoReply,
        dpm.StartListReply,
        dpm.ScalarReply,
    ]
    assert got[1].ref_id == 7 and got[3].ref_id == 7 and got[3].data == 41.7
    assert got[3].timestamp == 1763769600015  # as recorded
    assert session.complete and not session.finished and session.mismatch is None


def read_through(session: ReplaySession) -> int:
    list_id = opened(session)
    send(
        session,
        dpm.AddToListRequest(list_id=list_id, ref_id=1, drf_request="M:OUTTMP@I"),
        dpm.StartListRequest(list_id=list_id),
    )
    return list_id


def test_the_first_departure_names_the_line_and_both_sides() -> None:
    session = session_of(READ)
    list_id = opened(session)
    request = dpm.AddToListRequest(list_id=list_id, ref_id=1, drf_request="Z:ACLTST@I")
    assert send(session, request, dpm.StartListRequest(list_id=list_id)) == []
    mismatch = session.mismatch
    assert isinstance(mismatch, ReplayMismatch) and isinstance(mismatch, AcnetProtoError)
    assert session.finished and mismatch.line == 3
    assert "M:OUTTMP@I" in mismatch.expected and "Z:ACLTST@I" in mismatch.got
    assert mismatch.reason == "its drf_request differs"
    assert f"{READ}, connection 1, line 3" in str(mismatch)
    assert session.receive(b"\x00\x00\x00\x01x") == b""  # finished: nothing more is read


def test_the_client_going_on_after_the_recording_ended_is_a_departure() -> None:
    session = session_of(READ)
    list_id = read_through(session)
    # tidying up is optional: the recorded client sent Stop and Clear, this one more Clears
    assert send(session, dpm.ClearListRequest(list_id=list_id)) == []
    assert send(session, dpm.StopListRequest(list_id=list_id)) == []
    assert send(session, dpm.ClearListRequest(list_id=list_id)) == []
    assert session.mismatch is None
    send(session, dpm.AddToListRequest(list_id=list_id, ref_id=2, drf_request="M:OUTTMP@I"))
    mismatch = session.mismatch
    assert mismatch is not None and mismatch.expected == "the end of it" and mismatch.line == 8
    assert "no more requests" in str(mismatch)


def test_a_client_that_hangs_up_with_requests_left_departed_but_tidying_up_may_be_skipped() -> None:
    done = session_of(READ)
    read_through(done)
    assert done.receive(b"") == b"" and done.finished and done.mismatch is None

    early = session_of(READ)
    opened(early)
    early.receive(b"")
    assert early.mismatch is not None and early.mismatch.line == 3
    assert early.mismatch.got == "the end of the connection"


def test_ref_ids_map_by_position_in_a_stream_and_every_reply_is_retagged() -> None:
    session = session_of(STREAM)
    list_id = opened(session)
    drfs = ["M:OUTTMP.READING@p,1000", "Z:ACLTS1[0:4]@P,1000", "Z:NOTFND@p,1000"]
    adds = [
        dpm.AddToListRequest(list_id=list_id, ref_id=10 + i, drf_request=d)
        for i, d in enumerate(drfs)
    ]
    got = send(session, *adds, dpm.StartListRequest(list_id=list_id))
    refs = {getattr(r, "ref_id", None) for r in got} - {None}
    assert refs == {10, 11, 12}
    assert [r for r in got if isinstance(r, dpm.ListStatusReply)] == [
        dpm.ListStatusReply(list_id=list_id, status=0)
    ]
    scalars = [r.data for r in got if isinstance(r, dpm.ScalarReply)]
    assert scalars == [41.7, 41.8]
    send(session, dpm.StopListRequest(list_id=list_id))
    assert session.complete and session.mismatch is None


def write(session: ReplaySession, value: float, token: bytes = b"\x01" * 30) -> list[Message]:
    """The recorded write, with other secrets, another user and other ref ids than recorded."""
    list_id = opened(session)
    send(session, dpm.AuthenticateRequest(list_id=list_id, token=b""))
    send(session, dpm.AuthenticateRequest(list_id=list_id, token=token))
    mic, message = b"\x02" * 28, b"another nonce"
    send(session, dpm.EnableSettingsRequest(list_id=list_id, mic=mic, message=message))
    send(
        session,
        dpm.StopListRequest(list_id=list_id),
        dpm.ClearListRequest(list_id=list_id),
        dpm.AddToListRequest(list_id=list_id, ref_id=5, drf_request="#ROLE:testing"),
        dpm.AddToListRequest(list_id=list_id, ref_id=6, drf_request="Z:ACLTST.SETTING@N"),
        dpm.StartListRequest(list_id=list_id),
    )
    setting = dpm.ScaledSetting(ref_id=6, data=[value])
    apply = dpm.ApplySettingsRequest(
        user_name="someone@EXAMPLE", list_id=list_id, scaled_array=[setting]
    )
    return send(session, apply)


def test_a_write_matches_ignoring_kerberos_material_and_its_result_is_retagged() -> None:
    session = session_of(WRITE)
    assert write(session, 45.0) == [
        dpm.ApplySettingsReply(status=[dpm.SettingStatus(ref_id=6, status=0)])
    ]
    assert session.complete and session.mismatch is None


def test_a_write_of_another_value_departs() -> None:
    session = session_of(WRITE)
    assert write(session, 46.0) == []
    assert session.mismatch is not None and session.mismatch.line == 11
    assert session.mismatch.reason == "its scaled_array differs"


def test_the_authentication_phase_still_counts() -> None:
    session = session_of(WRITE)
    list_id = opened(session)
    send(session, dpm.AuthenticateRequest(list_id=list_id, token=b"\x01" * 18))
    assert session.mismatch is not None and session.mismatch.line == 3
    assert session.mismatch.reason == "its token differs"


def test_connections_are_served_in_order_and_a_further_one_departs(tmp_path: Path) -> None:
    both = tmp_path / "both.jsonl"
    both.write_text(READ.read_text() + "\n" + STREAM.read_text())
    recording = Recording.load(both)
    assert [(c.index, c.handshake_line, c.list_id) for c in recording.connections] == [
        (1, 1, 48813),
        (2, 10, 48814),  # file lines, the blank one counted
    ]
    replay = Replay(recording)
    assert [m.connection for m in replay.unserved()] == [f"{both}, connection {i}" for i in (1, 2)]
    assert [opened(replay.session()), opened(replay.session())] == [48813, 48814]
    extra = replay.session()
    assert extra.receive(HANDSHAKE) == b"" and extra.finished and replay.unserved() == []
    assert extra.mismatch is not None and "every recorded connection has been served" in str(
        extra.mismatch
    )


def test_a_session_says_nothing_before_its_handshake_and_heartbeats_after() -> None:
    session = session_of(STREAM)
    assert session.heartbeat() == b"" and session.receive(HANDSHAKE[:10]) == b""
    assert replies(session.receive(HANDSHAKE[10:])) == [dpm.OpenListReply(list_id=48814)]
    assert replies(session.heartbeat()) == [dpm.ListStatusReply(list_id=48814, status=0)]


def test_bytes_that_are_not_dpm_are_a_departure() -> None:
    session = session_of(READ)
    session.receive(b"POST /other HTTP/1.1\r\n\r\n")
    assert session.finished and session.mismatch is not None
    assert session.mismatch.line is None and session.mismatch.expected == "the DPM handshake"
    assert str(session.mismatch).startswith("the recording: expected the DPM handshake")


def test_steps_keep_their_lines() -> None:
    [connection] = Recording.load(READ).connections
    assert [(type(s).__name__, s.line) for s in connection.steps] == [
        ("Answer", 2),
        ("Expect", 3),
        ("Expect", 3),
        ("Answer", 4),
        ("Answer", 5),
        ("Answer", 6),
        ("Answer", 7),
        ("Expect", 8),
        ("Expect", 8),
    ]
    assert isinstance(connection.steps[1], Expect) and isinstance(connection.steps[0], Answer)


def record(direction: str, data: bytes) -> str:
    return json.dumps({"dir": direction, "hex": data.hex()})


OPEN = frame(dpm.encode(dpm.OpenListReply(list_id=9)))


@pytest.mark.parametrize(
    ("lines", "line", "problem"),
    [
        ([record("c2s", HANDSHAKE), "{not json"], 2, "not a valid record"),
        ([record("c2s", HANDSHAKE), '{"dir": "sideways", "hex": ""}'], 2, "not a valid record"),
        ([record("s2c", OPEN)], 1, "must start with a handshake"),
        ([record("c2s", HANDSHAKE), record("s2c", b"\x00\x00\x00\x02zz")], 2, "do not decode"),
        ([record("c2s", HANDSHAKE), record("c2s", frame(b"x"))], 2, "do not decode"),
        ([record("c2s", HANDSHAKE)], 1, "not an OpenListReply"),
    ],
)
def test_a_transcript_that_cannot_be_played_names_the_file_and_line(
    tmp_path: Path, lines: list[str], line: int, problem: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RecordingError) as caught:
        Recording.load(path)
    assert caught.value.line == line and problem in caught.value.reason
    assert str(caught.value).startswith(f"{path} line {line}: ")
    assert isinstance(caught.value, AcnetProtoError)


@pytest.mark.parametrize("content", [b"", b"\n\n", b"\xff\xfe"])
def test_an_empty_or_binary_file_is_refused_naming_it(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(content)
    with pytest.raises(RecordingError) as caught:
        Recording.load(path)
    assert caught.value.line is None and str(caught.value).startswith(f"{path}: ")


class FakeAcceptor:
    """An in-memory acceptor: any token completes it, a MIC is ``b"signed " + message``."""

    def __init__(self) -> None:
        self.complete = False
        self.initiator: str | None = None

    def step(self, token: bytes) -> bytes | None:
        self.complete, self.initiator = True, "operator@FNAL.GOV"
        return b"live " + token

    def verify_mic(self, message: bytes, mic: bytes) -> bool:
        return mic == b"signed " + message


def live_session(acceptor: type[FakeAcceptor] = FakeAcceptor) -> ReplaySession:
    def auth() -> LiveAuth:
        return ServerSettings("daeset/bd", acceptor, SettingsPolicy())

    return Replay(Recording.load(WRITE), live_auth=auth).session()


def authenticate(session: ReplaySession, mic: bytes) -> list[list[Message]]:
    """The client's three Kerberos requests; the replies to each."""
    list_id = opened(session)
    return [
        send(session, dpm.AuthenticateRequest(list_id=list_id, token=b"")),
        send(session, dpm.AuthenticateRequest(list_id=list_id, token=b"ticket")),
        send(session, dpm.EnableSettingsRequest(list_id=list_id, mic=mic, message=b"1234")),
    ]


def test_live_kerberos_answers_in_place_of_the_recorded_tokens() -> None:
    session = live_session()
    assert authenticate(session, b"signed 1234") == [
        [dpm.AuthenticateReply(service_name="daeset/bd")],  # recorded: daeset/bd@dpm01.example
        [dpm.AuthenticateReply(token=b"live ticket")],
        # the MIC verified: the recorded reply, its timestamp as recorded
        [dpm.StatusReply(ref_id=0, timestamp=1763769600000, cycle=0, status=0)],
    ]
    assert session.mismatch is None and not session.finished


def test_write_through_live_kerberos_plays_the_recorded_result() -> None:
    session = live_session()
    authenticate(session, b"signed 1234")
    # the rest of the recorded write, as write() sends it without the Kerberos part
    list_id = 48815
    send(
        session,
        dpm.StopListRequest(list_id=list_id),
        dpm.ClearListRequest(list_id=list_id),
        dpm.AddToListRequest(list_id=list_id, ref_id=5, drf_request="#ROLE:testing"),
        dpm.AddToListRequest(list_id=list_id, ref_id=6, drf_request="Z:ACLTST.SETTING@N"),
        dpm.StartListRequest(list_id=list_id),
    )
    apply = dpm.ApplySettingsRequest(
        user_name="operator@FNAL.GOV",
        list_id=list_id,
        scaled_array=[dpm.ScaledSetting(ref_id=6, data=[45.0])],
    )
    assert send(session, apply) == [
        dpm.ApplySettingsReply(status=[dpm.SettingStatus(ref_id=6, status=0)])
    ]
    assert session.complete and session.mismatch is None


def test_a_mic_that_does_not_verify_live_is_refused_and_departs() -> None:
    session = live_session()
    *_, enabled = authenticate(session, b"forged")
    assert enabled == [dpm.StatusReply(ref_id=0, timestamp=0, cycle=0, status=DPM_PRIV.status)]
    mismatch = session.mismatch
    assert session.finished and mismatch is not None and mismatch.line == 7
    assert mismatch.reason == "Kerberos refused it: the EnableSettings MIC does not verify"


class RefusingAcceptor(FakeAcceptor):
    def step(self, token: bytes) -> bytes | None:
        raise AuthenticationError("the client's Kerberos token was refused (for another service)")


def test_a_ticket_the_live_acceptor_refuses_is_refused_and_departs() -> None:
    session = live_session(RefusingAcceptor)
    list_id = opened(session)
    send(session, dpm.AuthenticateRequest(list_id=list_id, token=b""))
    refused = send(session, dpm.AuthenticateRequest(list_id=list_id, token=b"ticket"))
    assert refused == [dpm.StatusReply(ref_id=0, timestamp=0, cycle=0, status=DPM_PRIV.status)]
    mismatch = session.mismatch
    assert session.finished and mismatch is not None and mismatch.line == 5
    assert mismatch.reason.startswith("Kerberos refused it: the client's Kerberos token was")


def test_without_a_keytab_a_client_giving_up_authenticating_hears_of_it() -> None:
    session = session_of(WRITE)
    list_id = opened(session)
    send(session, dpm.AuthenticateRequest(list_id=list_id, token=b""))
    # a recorded token: a real client's GSS context refuses it, and the client hangs up
    [reply] = send(session, dpm.AuthenticateRequest(list_id=list_id, token=b"ticket"))
    assert isinstance(reply, dpm.AuthenticateReply) and reply.token is not None
    session.receive(b"")
    mismatch = session.mismatch
    assert mismatch is not None and mismatch.line == 7
    assert "--keytab KEYTAB" in mismatch.advice and mismatch.advice in str(mismatch)


def test_a_departure_outside_authentication_keeps_the_usual_advice() -> None:
    session = session_of(WRITE)
    authenticate(session, b"any")  # not live: the MIC is not checked
    session.receive(b"")
    assert session.mismatch is not None and session.mismatch.advice == (
        "fix the client, or record the session again"
    )

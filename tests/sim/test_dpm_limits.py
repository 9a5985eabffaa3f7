"""The limits a simulated DPM session enforces, spoken to in memory by a client-role engine.

No socket and no clock: bytes go from one engine to the other. What the server does
with connections (timeouts, the connection cap) is tested over loopback in
``tests/adapters/sim/test_dpm_limits.py``.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from acnet_proto import drf
from acnet_proto.engine import frame
from acnet_proto.errors import RemoteProtocolError
from acnet_proto.limits import DEFAULT_LIMITS, ServerLimits, StreamQuota
from acnet_proto.pc import dpm
from acnet_proto.sim import DeviceModel, SettingsPolicy
from acnet_proto.sim.dpm import FIRST_LIST_ID, TOO_MANY_ENTRIES, TOO_MANY_STREAMS, DPMSession
from acnet_proto.sim.schedule import ClockEvents
from acnet_proto.sim.settings import ServerSettings
from acnet_proto.status import Status
from tests.support.peers import WALL, SessionPeer

DPM_BAD_REQUEST = Status.from_name("DPM_BAD_REQUEST").status
MODEL = DeviceModel.default()
BIG_DRF = "M:OUTTMP" + "x" * 1_000_000  # a 1 MB DRF


class Counting(DeviceModel):
    """The default model, counting the DRFs it was asked to bind."""

    bound: list[str]

    def add_to_list(self, list_id: int, ref_id: int, text: str) -> Any:
        self.bound.append(text)
        return super().add_to_list(list_id, ref_id, text)


def counting() -> Counting:
    model = Counting.default()
    assert isinstance(model, Counting)
    model.bound = []
    return model


class Pair(SessionPeer):
    """A client engine and a session; ``refusals`` is what the session told of its limits."""

    def __init__(self, peer: str = "10.0.0.1", **options: Any) -> None:
        ids = itertools.count(FIRST_LIST_ID)
        settings = ServerSettings("daeset/bd", None, SettingsPolicy.default())
        self.refusals: list[tuple[str, str]] = []
        super().__init__(
            DPMSession(
                options.pop("model", MODEL),
                ClockEvents(MODEL, 0.0),
                settings,
                lambda: next(ids),
                peer=peer,
                refused=lambda limit, text: self.refusals.append((limit, text)),
                **options,
            )
        )

    def add(self, ref: int, text: str) -> list[Any]:
        return self.send(dpm.AddToListRequest(list_id=self.list_id, ref_id=ref, drf_request=text))

    def start(self) -> list[Any]:
        return self.send(dpm.StartListRequest(list_id=self.list_id))


def statuses(events: list[Any]) -> list[int]:
    return [e.status for e in events if isinstance(e, dpm.AddToListReply)]


def test_the_simulator_serves_lists_as_long_as_its_device_family() -> None:
    assert DEFAULT_LIMITS.max_list_entries == 10_000
    assert Pair().session.limits == DEFAULT_LIMITS


# ------------------------------------------------------------------------- DRF length


def test_a_1_mb_drf_is_refused_before_it_is_parsed_or_kept() -> None:
    model = counting()
    pair = Pair(model=model)
    assert statuses(pair.add(1, BIG_DRF)) == [DPM_BAD_REQUEST]
    assert statuses(pair.add(2, "#ROLE:" + "x" * 2000)) == [DPM_BAD_REQUEST]
    assert model.bound == []  # never handed to the model to parse
    session = pair.session
    assert (session.entries, session.refused, session.properties) == ({}, {}, {})
    (limit, text), _ = pair.refusals
    assert limit == "drf length"
    assert str(drf.MAX_DRF_LENGTH) in text and len(text) < 200  # the DRF itself is not in it


def test_a_drf_at_the_limit_is_left_to_the_model() -> None:
    model = counting()
    longest = "M:OUTTMP@p,1000 " + "x" * (drf.MAX_DRF_LENGTH - 16)
    assert len(longest) == drf.MAX_DRF_LENGTH
    pair = Pair(model=model)
    pair.add(1, longest)
    assert model.bound == [longest]
    assert pair.refusals == []


# ------------------------------------------------------------------------ list entries


def test_the_entry_beyond_max_list_entries_is_refused() -> None:
    pair = Pair(limits=ServerLimits(max_list_entries=3))
    got = [statuses(pair.add(ref, f"Z:SIM{ref:04d}@p,1000"))[0] for ref in range(1, 5)]
    assert got == [0, 0, 0, TOO_MANY_ENTRIES]
    assert sorted(pair.session.entries) == [1, 2, 3]
    assert pair.refusals == [("list entries", "max_list_entries=3")]


def test_list_properties_and_refused_streams_count_as_entries() -> None:
    pair = Pair(limits=ServerLimits(max_list_entries=2))
    assert statuses(pair.add(1, "#ROLE:testing")) == [0]
    assert statuses(pair.add(2, "Z:NOTFND@p,1000")) != [0]  # refused, but kept for StartList
    assert statuses(pair.add(3, "M:OUTTMP@I")) == [TOO_MANY_ENTRIES]


def test_removed_and_cleared_entries_make_room_again() -> None:
    pair = Pair(limits=ServerLimits(max_list_entries=2))
    for round_ in range(50):  # far more adds than the limit, in all
        first = 1 + 3 * round_
        assert statuses(pair.add(first, "M:OUTTMP@I")) == [0]
        assert statuses(pair.add(first + 1, "Z:ACLTST@I")) == [0]
        pair.send(dpm.RemoveFromListRequest(list_id=pair.list_id, ref_id=first))
        assert statuses(pair.add(first + 2, "Z:ACLTST@I")) == [0]
        pair.send(dpm.ClearListRequest(list_id=pair.list_id))
    assert pair.refusals == []


def test_a_client_that_keeps_adding_past_the_limit_is_dropped() -> None:
    pair = Pair(limits=ServerLimits(max_list_entries=2))
    for ref in range(1, 5):  # twice the limit: each one past it refused
        pair.add(ref, "Z:NOTFND@I")
    with pytest.raises(RemoteProtocolError, match="max_list_entries=2"):
        pair.add(5, "Z:NOTFND@I")


def test_a_client_that_keeps_sending_long_drfs_is_dropped() -> None:
    # the engine keeps each ref's text until it is removed: at most a request's worth
    pair = Pair(limits=ServerLimits(max_request_bytes=5000))
    long_drf = "M:OUTTMP" + "x" * 3000
    assert statuses(pair.add(1, long_drf)) == [DPM_BAD_REQUEST]
    pair.send(dpm.RemoveFromListRequest(list_id=pair.list_id, ref_id=1))  # gives it back
    assert statuses(pair.add(2, long_drf)) == [DPM_BAD_REQUEST]
    with pytest.raises(RemoteProtocolError, match="over max_request_bytes=5000"):
        pair.add(3, long_drf)


# ----------------------------------------------------------------------------- frames


def test_a_frame_longer_than_max_request_bytes_breaks_the_protocol() -> None:
    pair = Pair(limits=ServerLimits(max_request_bytes=1000))
    small = frame(dpm.encode(dpm.StopListRequest(list_id=pair.list_id)))
    pair.session.receive(small, 0.0, WALL)
    with pytest.raises(RemoteProtocolError, match="max_frame_size=1000"):
        pair.session.receive((2000).to_bytes(4, "big"), 0.0, WALL)  # only its length prefix


# ---------------------------------------------------------------------------- streams


def test_a_stream_beyond_max_streams_per_peer_is_refused_with_a_status() -> None:
    quota = StreamQuota(ServerLimits(max_streams_per_peer=1))
    first, second = Pair(quota=quota), Pair(quota=quota)
    for pair in (first, second):
        pair.add(1, "M:OUTTMP@p,1000")
    assert [e.status for e in first.start() if isinstance(e, dpm.StartListReply)] == [0]
    refused = second.start()
    assert refused == [dpm.StartListReply(list_id=second.list_id, status=TOO_MANY_STREAMS)]
    assert second.session.groups == [] and not second.session.streaming
    ((limit, why),) = second.refusals
    assert limit == "streams" and "max_streams_per_peer=1" in why
    first.send(dpm.StopListRequest(list_id=first.list_id))
    second.send(dpm.StopListRequest(list_id=second.list_id))
    restarted = second.start()
    assert [e.status for e in restarted if isinstance(e, dpm.StartListReply)] == [0]
    assert second.session.groups != []


def test_other_peers_have_their_own_streams_up_to_the_server_limit() -> None:
    quota = StreamQuota(ServerLimits(max_streams_per_peer=1, max_streams=2))
    pairs = [Pair(peer=f"10.0.0.{i}", quota=quota) for i in range(3)]
    replies = []
    for pair in pairs:
        pair.add(1, "M:OUTTMP@p,1000")
        replies += [e.status for e in pair.start() if isinstance(e, dpm.StartListReply)]
    assert replies == [0, 0, TOO_MANY_STREAMS]
    ((limit, why),) = pairs[2].refusals
    assert limit == "streams" and "max_streams=2" in why


def test_a_list_answered_at_once_holds_no_stream() -> None:
    quota = StreamQuota(ServerLimits(max_streams_per_peer=1))
    pairs = [Pair(quota=quota) for _ in range(3)]
    for pair in pairs:
        pair.add(1, "M:OUTTMP@I")
        assert any(isinstance(e, dpm.ScalarReply) for e in pair.start())
    assert quota.open() == 0


def test_restarting_a_list_keeps_its_one_stream() -> None:
    quota = StreamQuota(ServerLimits(max_streams_per_peer=1))
    pair = Pair(quota=quota)
    pair.add(1, "M:OUTTMP@p,1000")
    for _ in range(3):
        assert [e.status for e in pair.start() if isinstance(e, dpm.StartListReply)] == [0]
        pair.send(dpm.StopListRequest(list_id=pair.list_id))
    pair.start()
    assert (quota.open("10.0.0.1"), quota.open()) == (1, 1)
    pair.send(dpm.ClearListRequest(list_id=pair.list_id))
    assert quota.open() == 0


def test_a_closed_connection_gives_its_stream_back() -> None:
    quota = StreamQuota(ServerLimits(max_streams_per_peer=1))
    pair = Pair(quota=quota)
    pair.add(1, "M:OUTTMP@p,1000")
    pair.start()
    assert quota.open() == 1
    pair.session.receive(b"", 0.0, WALL)  # the client closed its side
    assert (quota.open("10.0.0.1"), quota.open()) == (0, 0)
    pair.session.release()  # the server releases again when the socket goes: no double count
    assert quota.open() == 0

"""The simulated DPM's pure session, spoken to in memory by a client-role engine.

No socket and no clock: bytes go from one engine to the other, and time is
whatever the test says it is.
"""

from __future__ import annotations

import itertools
from typing import Any

from acnet_proto import drf
from acnet_proto.engine import FrameSplitter, frame
from acnet_proto.pc import dpm
from acnet_proto.sim import DeviceModel, SettingsPolicy
from acnet_proto.sim.dpm import FIRST_LIST_ID, DPMSession
from acnet_proto.sim.schedule import ClockEvents, Group, fire_due, next_due, schedule
from acnet_proto.sim.settings import ServerSettings
from acnet_proto.status import Status
from tests.support.peers import WALL, SessionPeer

DPM_PRIV = Status.from_name("DPM_PRIV").status
ABSENT = Status.from_name("DPM_PEND").status  # the lab's answer for a missing device


class Pair(SessionPeer):
    """A client engine and a session of its own model, with the time the test sets;
    :attr:`notes` is why the session refused settings."""

    def __init__(self, **options: Any) -> None:
        self.model = DeviceModel.default()
        ids = itertools.count(FIRST_LIST_ID)
        settings = ServerSettings("daeset/bd", None, SettingsPolicy.default())
        clock = ClockEvents(self.model, 0.0)
        self.notes: list[str] = []
        super().__init__(
            DPMSession(
                self.model, clock, settings, lambda: next(ids), note=self.notes.append, **options
            )
        )


def names(events: list[Any]) -> list[str]:
    return [type(e).__name__ for e in events]


def test_the_handshake_opens_a_list_from_the_first_id() -> None:
    pair = Pair()
    assert pair.list_id == FIRST_LIST_ID
    assert pair.session.next_due() == 2.0  # the first heartbeat, one period after the open


def test_start_answers_in_the_recorded_order() -> None:
    pair = Pair()
    lid = pair.list_id
    added = pair.send(
        dpm.AddToListRequest(list_id=lid, ref_id=1, drf_request="M:OUTTMP@I"),
        dpm.AddToListRequest(list_id=lid, ref_id=2, drf_request="Z:NOTFND@p,1000"),
        dpm.AddToListRequest(list_id=lid, ref_id=3, drf_request="Z:NOTFND@I"),
    )
    assert [e.status for e in added] == [0, ABSENT, ABSENT]
    started = pair.send(dpm.StartListRequest(list_id=lid))
    # metadata, the start, a status for the refused stream only, then the @I reading
    assert names(started) == ["DeviceInfoReply", "StartListReply", "StatusReply", "ScalarReply"]
    assert started[2].ref_id == 2 and started[2].status == ABSENT
    assert started[3].ref_id == 1 and started[3].timestamp == round(WALL * 1000)


def test_periodic_entries_fire_on_the_period_and_heartbeats_between() -> None:
    pair = Pair()
    lid = pair.list_id
    pair.send(
        dpm.AddToListRequest(list_id=lid, ref_id=1, drf_request="M:OUTTMP@p,500"),
        dpm.StartListRequest(list_id=lid),
    )
    assert pair.session.next_due() == 0.5
    assert pair.tick(0.4) == []  # nothing due yet
    assert names(pair.tick(0.5)) == ["ScalarReply"]
    assert names(pair.tick(2.0)) == ["ScalarReply", "ListStatusReply"]  # 1.0 and 1.5 skipped
    assert pair.session.next_due() == 2.5


def test_stop_list_silences_the_streams() -> None:
    pair = Pair()
    lid = pair.list_id
    pair.send(
        dpm.AddToListRequest(list_id=lid, ref_id=1, drf_request="M:OUTTMP@p,500"),
        dpm.StartListRequest(list_id=lid),
    )
    pair.send(dpm.StopListRequest(list_id=lid))
    assert names(pair.tick(1.0)) == []
    assert pair.session.next_due() == 2.0  # only the heartbeat is left


def test_list_properties_are_kept_and_malformed_ones_refused() -> None:
    pair = Pair()
    lid = pair.list_id
    [good] = pair.send(dpm.AddToListRequest(list_id=lid, ref_id=0, drf_request="#ROLE:testing"))
    pair.send(dpm.ClearListRequest(list_id=lid))
    [bad] = pair.send(dpm.AddToListRequest(list_id=lid, ref_id=0, drf_request="#ROLE"))
    assert good.status == 0 and bad.status != 0
    assert pair.session.properties == {"ROLE": "testing"}


def test_settings_without_authentication_are_refused_with_dpm_priv() -> None:
    pair = Pair()
    lid = pair.list_id
    before = pair.model.device("Z:ACLTST").setting
    pair.send(
        dpm.AddToListRequest(list_id=lid, ref_id=1, drf_request="Z:ACLTST.SETTING@N"),
        dpm.StartListRequest(list_id=lid),
    )
    # the client engine would not send this: make the bytes as a rogue client would
    request = dpm.ApplySettingsRequest(
        user_name="nobody", list_id=lid, scaled_array=[dpm.ScaledSetting(ref_id=1, data=[45.0])]
    )
    [reply] = _decoded(pair.session.receive(_frame(request), 0.0, WALL))
    assert [s.status for s in reply.status] == [DPM_PRIV]
    assert pair.model.device("Z:ACLTST").setting == before


def test_insecure_settings_apply_what_is_on_the_list() -> None:
    pair = Pair(insecure_settings=True)
    lid = pair.list_id
    pair.send(
        dpm.AddToListRequest(list_id=lid, ref_id=1, drf_request="Z:ACLTST.SETTING@N"),
        dpm.StartListRequest(list_id=lid),
    )
    request = dpm.ApplySettingsRequest(
        user_name="nobody", list_id=lid, scaled_array=[dpm.ScaledSetting(ref_id=1, data=[45.0])]
    )
    [reply] = _decoded(pair.session.receive(_frame(request), 0.0, WALL))
    assert [s.status for s in reply.status] == [0]
    assert pair.model.device("Z:ACLTST").setting == [45.0]


def test_a_closed_client_closes_the_session() -> None:
    pair = Pair()
    assert pair.session.receive(b"", 1.0, WALL) == b""
    assert pair.session.closed
    assert pair.session.tick(5.0, WALL) == b""


def test_schedule_groups_entries_by_rate_and_clock_event() -> None:
    model = DeviceModel.default()
    clock = ClockEvents(model, origin=0.0)
    entries = [
        (1, model.resolve("M:OUTTMP@I")),
        (2, model.resolve("M:OUTTMP@p,500")),
        (3, model.resolve("G:AMANDA@p,500")),
        (4, model.resolve("M:OUTTMP@e,0f")),
        (5, model.resolve("Z:ACLTST@N")),
    ]
    immediate, groups = schedule(entries, now=10.0, clock=clock)
    assert [ref for ref, _ in immediate] == [1]
    assert sorted(len(g.members) for g in groups) == [1, 2]
    assert next_due(groups) == 10.5
    periodic = next(g for g in groups if g.period is not None)
    fired = fire_due(groups, now=10.5, wall=WALL, clock=clock)
    assert sorted(r.ref_id for r in fired) == [2, 3]
    assert periodic.due == 11.0
    assert isinstance(periodic, Group)


def test_clock_events_fire_on_a_machine_wide_schedule() -> None:
    model = DeviceModel.default()
    clock = ClockEvents(model, origin=100.0)
    event = drf.parse_event("e,0f")
    period = model.clock_period(0x0F)
    first = clock.next_after(event, 100.0)
    assert first == 100.0 + period
    assert clock.next_after(event, first) == first + period


def _frame(message: Any) -> bytes:
    return frame(dpm.encode(message))


def _decoded(data: bytes) -> list[Any]:
    """The replies in ``data``, decoded without a client engine's rules."""
    return [dpm.decode_reply(f) for f in FrameSplitter().feed(data)]

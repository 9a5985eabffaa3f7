"""Logger windows and fast time plots in the simulator's pure half, spoken to in memory."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from acnet_proto import drf
from acnet_proto.pc import dpm
from acnet_proto.sim import DeviceModel, RequestRejected, SettingsPolicy
from acnet_proto.sim import history as h
from acnet_proto.sim.dpm import FIRST_LIST_ID, DPMSession
from acnet_proto.sim.schedule import ClockEvents
from acnet_proto.sim.settings import ServerSettings
from acnet_proto.status import Status
from tests.support.peers import WALL, SessionPeer

#: A window start on no logger's grid, an hour before the session's wall clock.
START_MS = int(WALL * 1000) - 3_600_000 + 250


class Pair(SessionPeer):
    """A client engine and a session of its own model; :attr:`notes` is what it logged."""

    def __init__(self) -> None:
        self.model = DeviceModel.default()
        ids = itertools.count(FIRST_LIST_ID)
        settings = ServerSettings("daeset/bd", None, SettingsPolicy.default())
        self.notes: list[str] = []
        session = DPMSession(
            self.model,
            ClockEvents(self.model, 0.0),
            settings,
            lambda: next(ids),
            note=self.notes.append,
        )
        super().__init__(session)

    def start(self, *drfs: str) -> list[Any]:
        adds = [
            dpm.AddToListRequest(list_id=self.list_id, ref_id=ref, drf_request=text)
            for ref, text in enumerate(drfs, 1)
        ]
        return self.send(*adds, dpm.StartListRequest(list_id=self.list_id))

    def drain(self, ref_id: int) -> list[dpm.TimedScalarArrayReply]:
        """Tick until the logger entry ``ref_id`` sent its end of data; its chunks, in order."""
        chunks: list[dpm.TimedScalarArrayReply] = []
        for _ in range(1000):
            chunks += [e for e in self.tick(self.now) if getattr(e, "ref_id", None) == ref_id]
            if chunks and not len(chunks[-1].data):
                return chunks
        raise AssertionError(f"ref {ref_id} never ended")


def logger(start_ms: int, seconds: float, node: str = "") -> str:
    end = start_ms + round(seconds * 1000)
    return f"M:OUTTMP<-LOGGER:{start_ms}:{end}" + (f":{node}" if node else "")


def live_value(model: DeviceModel, us: int) -> float:
    reply = model.resolve("M:OUTTMP@I").reply(1, us / 1e6)
    assert isinstance(reply, dpm.ScalarReply)
    return reply.data


def test_a_logger_window_comes_as_chunks_then_an_empty_end() -> None:
    pair = Pair()
    events = pair.start(logger(START_MS, 1000))
    assert [type(e) for e in events] == [
        dpm.AddToListReply,
        dpm.DeviceInfoReply,
        dpm.StartListReply,
    ]
    chunks = pair.drain(1)
    end = chunks.pop()
    assert (end.status, len(end.data), len(end.micros)) == (0, 0, 0)
    assert [len(c.data) for c in chunks] == [487, 487, 26]  # 1000 s of ARKIV's 1 Hz grid
    micros = [int(us) for c in chunks for us in c.micros]
    first = (START_MS // 1000 + 1) * 1_000_000  # the first whole second after the start
    assert micros == list(range(first, first + 1000 * 1_000_000, 1_000_000))
    for c in chunks:
        assert c.status == 0 and c.timestamp == c.micros[0] // 1000
        assert list(c.data) == [live_value(pair.model, int(us)) for us in c.micros]


def test_the_node_chooses_the_logger_and_its_rate() -> None:
    pair = Pair()
    pair.start(logger(START_MS, 10, "fastlg"))
    micros = [int(us) for c in pair.drain(1) for us in c.micros]
    assert len(micros) == 100 and {b - a for a, b in itertools.pairwise(micros)} == {100_000}


def test_a_long_window_is_sent_a_slice_per_tick() -> None:
    pair = Pair()
    pair.start(logger(START_MS - 86_400_000, 20_000))
    first = [e for e in pair.tick(0.0) if isinstance(e, dpm.TimedScalarArrayReply)]
    assert len(first) == h.TICK_CHUNKS  # the rest waits for the next tick
    assert pair.session.next_due() == 0.0
    rest = pair.drain(1)
    assert sum(len(c.data) for c in first + rest) == 20_000


def test_a_window_that_ends_after_now_is_cut_at_now() -> None:
    pair = Pair()
    start = int(WALL * 1000) - 5000
    pair.start(logger(start, 3600))
    micros = [int(us) for c in pair.drain(1) for us in c.micros]
    assert micros[-1] == int(WALL) * 1_000_000 and len(micros) == 6


@pytest.mark.parametrize(
    ("text", "status"),
    [
        (logger(START_MS, 10, "NOPE"), "DPM_INVALID_DATASOURCE"),
        (logger(int(WALL * 1000) + 60_000, 10), "DAE_LJ_NO_DATA"),  # wholly in the future
        (logger(START_MS, 0.5), "DAE_LJ_NO_DATA"),  # between two of ARKIV's samples
        (f"Z:ACLTS1<-LOGGER:{START_MS}:{START_MS + 9000}", "DAE_LJ_NO_DATA"),  # a whole array
        (f"M:OUTTMP.RAW<-LOGGER:{START_MS}:{START_MS + 9000}", "DAE_LJ_NO_DATA"),
        (f"Z:STRTST<-LOGGER:{START_MS}:{START_MS + 9000}", "DAE_LJ_NO_DATA"),
        (f"Z:ACLTST.DESCRIPTION<-LOGGER:{START_MS}:{START_MS + 9000}", "DAE_LJ_NO_DATA"),
        (f"M:OUTTMP<-LOGGER:0:{START_MS}", "DPM_REPLY_OVERFLOW"),
        ("M:OUTTMP@I<-FTP", "DPM_BAD_EVENT"),
        ("M:OUTTMP@e,2<-FTP", "DPM_BAD_EVENT"),
        ("Z:ACLTS1@p,100<-FTP", "DPM_NOT_YET"),
    ],
)
def test_a_refused_entry_gets_one_status_after_the_start(text: str, status: str) -> None:
    pair = Pair()
    events = pair.start(text, "M:OUTTMP@I")
    assert [type(e) for e in events[-3:]] == [
        dpm.StartListReply,
        dpm.ScalarReply,
        dpm.StatusReply,
    ]
    refusal = events[-1]
    assert refusal.ref_id == 1 and Status.from_int(refusal.status).name == status
    assert all(e.ref_id != 1 for e in pair.tick(10.0) if hasattr(e, "ref_id"))
    assert pair.notes and pair.notes[-1].startswith("ref 1: ")


def test_an_element_of_an_array_is_logged() -> None:
    pair = Pair()
    pair.start(f"Z:ACLTS1[2]<-LOGGER:{START_MS}:{START_MS + 4000}")
    chunks = pair.drain(1)
    assert sum(len(c.data) for c in chunks) == 4


def test_the_event_of_a_logger_request_is_ignored() -> None:
    pair = Pair()
    pair.start(f"M:OUTTMP@p,1000,true<-LOGGER:{START_MS}:{START_MS + 4000}")
    assert sum(len(c.data) for c in pair.drain(1)) == 4
    assert all(not hasattr(e, "ref_id") for e in pair.tick(pair.now + 5))  # nothing repeats


def test_a_list_of_loggers_gives_its_stream_slot_back_once_sent() -> None:
    pair = Pair()
    pair.start(logger(START_MS, 10))
    assert pair.session.streaming
    pair.drain(1)
    assert not pair.session.streaming


def test_a_fast_time_plot_sends_what_it_sampled_since_the_last_batch() -> None:
    pair = Pair()
    events = pair.start("M:OUTTMP@p,100H<-FTP")
    assert isinstance(events[-1], dpm.StartListReply)
    assert pair.session.next_due() == h.FTP_BATCH_SECONDS
    batches = []
    for k in range(1, 5):
        got = pair.tick(k * h.FTP_BATCH_SECONDS)
        batches.append([e for e in got if isinstance(e, dpm.TimedScalarArrayReply)])
    micros = [int(us) for batch in batches for c in batch for us in c.micros]
    assert [sum(len(c.data) for c in batch) for batch in batches] == [50] * 4
    step = {b - a for a, b in itertools.pairwise(micros)}
    assert step == {10_000}  # every 10 ms, no sample twice, none missed
    assert micros[-1] == round((WALL + 2.0) * 1e6)
    values = [float(v) for batch in batches for c in batch for v in c.data]
    assert values == [live_value(pair.model, us) for us in micros]
    pair.send(dpm.StopListRequest(list_id=pair.list_id))
    assert not pair.session.feeds and not pair.session.streaming
    assert all(not hasattr(e, "ref_id") for e in pair.tick(pair.now + 1.0))


def test_a_plot_that_fell_behind_sends_its_latest_samples() -> None:
    pair = Pair()
    pair.start("M:OUTTMP@p,1000H<-FTP")
    got = [e for e in pair.tick(3600.0) if isinstance(e, dpm.TimedScalarArrayReply)]
    points = sum(len(c.data) for c in got)
    assert points <= 4 * h.CHUNK_POINTS + 1 and all(len(c.data) <= h.CHUNK_POINTS for c in got)
    assert got[-1].micros[-1] == round((WALL + 3600.0) * 1e6)
    assert pair.session.next_due() == 3600.0 + h.FTP_BATCH_SECONDS


def test_logger_samples_directly() -> None:
    model = DeviceModel.default()
    entry = model.resolve(logger(START_MS, 60))
    source = entry.request.source
    assert isinstance(source, drf.LoggerSource)
    samples = h.logger_samples(entry, source, WALL)
    assert (samples.period_us, samples.count) == (1_000_000, 60)
    slow = h.logger_samples(entry, source, WALL, {"ARKIV": h.Logger("ARKIV", 30_000_000)})
    assert slow.count == 2
    with pytest.raises(RequestRejected) as caught:
        h.logger_samples(entry, source, WALL, {"OTHER": h.Logger("OTHER", 1)})
    assert "no logger ARKIV; the loggers are OTHER" in str(caught.value)


def chunks_by_ref(events: list[Any]) -> dict[int, int]:
    """How many timed-array chunks each ref got in ``events``."""
    counts: dict[int, int] = {}
    for e in events:
        if isinstance(e, dpm.TimedScalarArrayReply):
            counts[e.ref_id] = counts.get(e.ref_id, 0) + 1
    return counts


def test_one_budget_per_tick_is_shared_round_robin_by_the_list() -> None:
    """A list of many long windows makes no more per tick than one long window does."""
    pair = Pair()
    entries = 3 * h.TICK_CHUNKS
    pair.start(*(logger(START_MS - 86_400_000, 20_000) for _ in range(entries)))
    seen: dict[int, int] = {}
    for _ in range(3):
        got = chunks_by_ref(pair.tick(0.0))
        assert sum(got.values()) == h.TICK_CHUNKS
        for ref, n in got.items():
            seen[ref] = seen.get(ref, 0) + n
    assert sorted(seen) == list(range(1, entries + 1))  # every entry had its turn


def test_few_feeds_share_the_budget_evenly() -> None:
    pair = Pair()
    pair.start(*(logger(START_MS - 86_400_000, 20_000) for _ in range(2)))
    got = chunks_by_ref(pair.tick(0.0))
    assert got == {1: h.TICK_CHUNKS // 2, 2: h.TICK_CHUNKS // 2}


def test_a_list_may_ask_for_max_list_points_of_logged_samples_in_all() -> None:
    """Entries are counted in list order; the one past the cap is refused, the rest served."""
    pair = Pair()
    seconds = h.MAX_LIST_POINTS * 2 // 5  # ARKIV logs once a second
    start = int(WALL * 1000) - seconds * 1000 - 10_000
    over = logger(start, seconds)
    events = pair.start(over, over, logger(START_MS, 10), over)
    refusals = [e for e in events if isinstance(e, dpm.StatusReply)]
    assert [(e.ref_id, Status.from_int(e.status).name) for e in refusals] == [
        (4, "DPM_REPLY_OVERFLOW")
    ]
    assert "over 2000000" in pair.notes[-1] and "split the list" in pair.notes[-1]
    assert set(chunks_by_ref(pair.tick(0.0))) == {1, 2, 3}


def test_feeds_directly() -> None:
    """Both servers' shared loop: start collects refusals, fire drops what ended."""
    model = DeviceModel.default()
    entries = [
        (10, model.resolve(logger(START_MS, 5))),
        (11, model.resolve("M:OUTTMP@I")),  # no source: not a feed
        (12, model.resolve(logger(START_MS, 5, "NOPE"))),
    ]
    feeds, refused = h.Feeds.start(entries, 0.0, WALL)
    assert len(feeds) == 1 and feeds.next_due() == 0.0
    assert [(key, Status.from_int(e.status).name) for key, e in refused] == [
        (12, "DPM_INVALID_DATASOURCE")
    ]
    fired = feeds.fire(0.0, WALL)
    assert [(key, len(c.micros)) for key, c in fired] == [(10, 5), (10, 0)]
    assert not feeds and feeds.next_due() is None and feeds.fire(1.0, WALL) == []


@pytest.mark.parametrize("event", ["p,999U", "s,Z:STATE,1,0,=", "p,1000,true"])
def test_a_logger_request_is_served_whatever_its_event(event: str) -> None:
    """The lab's DPM ignores the event of a logger request: none is refused for it."""
    pair = Pair()
    pair.start(f"M:OUTTMP@{event}<-LOGGER:{START_MS}:{START_MS + 4000}")
    assert sum(len(c.data) for c in pair.drain(1)) == 4

"""Watching a subscription from a thread of its own, with the time each item arrived.

The outage tests of every backend (tests/adapters/*/test_outage_notice.py) kill a server
under a live subscription and check *when* the subscription told its user: a
:class:`Watcher` runs one flavour's subscription (its callbacks, or its ``readings()``)
on a thread and records ``(monotonic seconds, item)`` for every reading, gap and
error, while the test stops and starts servers. The policy they reconnect with
(:data:`PATIENT`) and the port where nothing listens (:func:`free_port`) are here too.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from acnet_proto.streams.reconnect import Gap, Reconnect
from acnet_proto.types import Reading

#: What a run gets: ``record(item)`` for each reading, gap or error, and the event that
#: tells it to stop the subscription and return.
Run = Callable[[Callable[[object], None], threading.Event], None]
#: How long any wait here may take before the test calls it a hang.
GUARD = 10.0
#: Keeps trying while the server is away (a pause short enough to come back soon).
PATIENT = Reconnect(max_retries=None, initial_backoff=0.1, max_backoff=0.2, jitter=0.0)


def free_port() -> int:
    """A local port where nothing listens (just now: another process may take it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Seen:
    at: float
    item: object


class Watcher:
    """Runs ``run(record, stop)`` on a daemon thread; :attr:`seen` is what it recorded."""

    def __init__(self, run: Run) -> None:
        self.seen: list[Seen] = []
        self.failure: BaseException | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, args=(run,), daemon=True)
        self._thread.start()

    def _main(self, run: Run) -> None:
        try:
            run(self._record, self._stop)
        except BaseException as exc:  # the test reports it, on its own thread
            self.failure = exc

    def _record(self, item: object) -> None:
        with self._lock:
            self.seen.append(Seen(time.monotonic(), item))

    def items(self) -> list[object]:
        with self._lock:
            return [s.item for s in self.seen]

    def wait_for(self, found: Callable[[list[Seen]], Seen | None], limit: float = GUARD) -> Seen:
        """The first :class:`Seen` that ``found`` picks from what came so far, waiting up to
        ``limit`` seconds for it; AssertionError (naming what came) if it never does."""
        deadline = time.monotonic() + limit
        while True:
            with self._lock:
                seen = list(self.seen)
            hit = found(seen)
            if hit is not None:
                return hit
            assert self.failure is None, f"the subscription failed: {self.failure!r}"
            assert time.monotonic() < deadline, f"not within {limit} s; came: {seen}"
            time.sleep(0.005)

    def stop(self) -> None:
        """Stop the subscription and wait for the thread (idempotent); raise what it raised."""
        self._stop.set()
        self._thread.join(GUARD)
        assert not self._thread.is_alive(), "the subscription did not stop"
        if self.failure is not None:
            raise self.failure


def readings_after(at: float, count: int) -> Callable[[list[Seen]], Seen | None]:
    """The ``count``-th good reading that arrived after ``at``."""

    def found(seen: list[Seen]) -> Seen | None:
        good = [s for s in seen if s.at > at and isinstance(s.item, Reading) and s.item.ok]
        return good[count - 1] if len(good) >= count else None

    return found


def gap(open_: bool) -> Callable[[list[Seen]], Seen | None]:
    """The first open (or closed) gap."""

    def found(seen: list[Seen]) -> Seen | None:
        return next((s for s in seen if isinstance(s.item, Gap) and s.item.open is open_), None)

    return found


def check_outage(watcher: Watcher, opened: Seen, closed: Seen) -> tuple[Gap, Gap]:
    """One outage told twice, in order, with nothing between: the open gap, then the closed
    one spanning it, then readings."""
    items = watcher.items()
    first, last = items.index(opened.item), items.index(closed.item)
    assert last == first + 1, f"items between the gaps: {items[first : last + 1]}"
    open_gap, closed_gap = opened.item, closed.item
    assert isinstance(open_gap, Gap) and isinstance(closed_gap, Gap)
    assert open_gap.open and not closed_gap.open
    assert closed_gap.since == open_gap.since and closed_gap.drfs == open_gap.drfs
    assert closed_gap.until is not None and closed_gap.until >= closed_gap.since
    assert not any(isinstance(i, Gap) for i in items[:first]), "a gap before the outage"
    assert all(isinstance(i, Reading) for i in items[last + 1 :]), items[last + 1 :]
    return open_gap, closed_gap

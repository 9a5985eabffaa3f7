"""A small blocking DPM/TCP client over one socket, for scripts.

::

    from acnet_proto.adapters.dpm.sync import SyncClient

    with SyncClient("localhost", 6802) as client:
        print(client.read("M:OUTTMP"))                  # 41.7
        for reading in client.get_many(["M:OUTTMP", "Z:ACLTS1[0:4]"]):
            print(reading.name, reading.value, reading.units)
        with client.subscribe(["M:OUTTMP@p,1000"]) as sub:
            for reading, handle in sub.readings(timeout=5):
                print(reading.value)
                break

One connection carries the reads; each subscription opens its own, as DPM
lists stream until stopped, and opens another (pausing as its
:class:`~acnet_proto.streams.reconnect.Reconnect` policy says, inside
``readings()``) if that one dies or cannot be made, yielding an open
:class:`~acnet_proto.streams.reconnect.Gap` as soon as it is found dead and a
closed one when the list runs again. Nothing here is thread-safe: use the
threaded adapter for that.

Settings need ``auth=KerberosAuth()`` and ``role=``; without them the client
is read-only, so a script that only looks needs no Kerberos and cannot set
a device by accident. Settings go over a connection of their own,
authenticated once and reused, exactly as in the threaded backend (the same
code: :func:`acnet_proto.adapters.dpm._blocking.apply_settings`).
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from acnet_proto.adapters._streams import (
    DefaultTimeout,
    admitted,
    arrived,
    describe,
    freshness,
    waiting,
)
from acnet_proto.adapters.dpm._blocking import (
    _BROKEN,
    _left,
    _Link,
    apply_settings,
    open_stream,
    run_plan,
)
from acnet_proto.api.auth import Auth, AuthHolder
from acnet_proto.api.backend import setting_pairs
from acnet_proto.api.config import check_timeout
from acnet_proto.engine import HEARTBEAT_PERIOD
from acnet_proto.errors import ProtocolError
from acnet_proto.plans.history import history_of, logger_request
from acnet_proto.plans.lists import ListPlan, ReadBatch, value_of
from acnet_proto.plans.settings import WriteSequence, dpm_write_batch
from acnet_proto.streams.driver import Ending, GiveUp, StreamDriver, Wait, heartbeat_driver
from acnet_proto.streams.reconnect import Gap, Reconnect
from acnet_proto.streams.staleness import DEFAULT_MAX_AGE, Freshness
from acnet_proto.types import History, Reading, WriteResult

__all__ = ["SyncClient", "SyncSubscription"]

DEFAULT_TIMEOUT = 5.0


class SyncClient(AuthHolder, DefaultTimeout):
    """A blocking DPM client. Connects on first use; ``close()`` or ``with`` ends it.

    ``heartbeat_period``: how often the server sends a heartbeat on an open
    list (the lab's DPM: every 2 s); a stream that hears nothing for three of
    them counts its connection as dead. Change it only for a server that
    keeps another rate (``SimServer(heartbeat_period=...)``).
    """

    def __init__(
        self,
        host: str,
        port: int = 6802,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        auth: Auth | None = None,
        role: str | None = None,
        heartbeat_period: float = HEARTBEAT_PERIOD,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.auth = auth
        self.role = role
        self.heartbeat_period = check_timeout(heartbeat_period, "heartbeat_period")
        self._link: _Link | None = None
        self._writer: _Link | None = None

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections (a later call connects again)."""
        for link in (self._link, self._writer):
            if link is not None:
                link.close()
        self._link = self._writer = None

    def connect(self, timeout: float | None = None) -> SyncClient:
        """Connect now rather than at the first read; returns ``self``."""
        if self._link is None:
            self._link = _Link(self.host, self.port, self._deadline(timeout), self.heartbeat_period)
        return self

    def get_many(self, drfs: Sequence[str], timeout: float | None = None) -> list[Reading]:
        """Read every DRF once; readings in input order, errors as error readings.

        ``timeout`` bounds the whole batch. If it passes or the connection
        breaks, :class:`ReadError` carries what arrived and error readings
        (``ACNET_REQTMO`` / ``ACNET_DISCONNECTED``) for the rest. A read that
        finds the kept connection closed by the server before any reply is
        repeated once on a new one.
        """
        batch = ReadBatch(drfs)
        seconds = self._seconds(timeout)
        deadline = time.monotonic() + seconds
        while True:
            reused = self._link is not None
            try:
                link = self.connect(_left(deadline))._link
                assert link is not None
                run_plan(link, batch, deadline)
                return batch.readings()
            except TimeoutError as exc:
                self.close()
                raise batch.timed_out(seconds, exc) from exc
            except (OSError, ProtocolError) as exc:
                self.close()
                if not batch.may_repeat(reused):  # else: the server closed the idle connection
                    raise batch.disconnected(exc) from exc

    def get(self, drf: str, timeout: float | None = None) -> Reading:
        """Read one DRF; the :class:`Reading`, error or not."""
        return self.get_many([drf], timeout)[0]

    def read(self, drf: str, timeout: float | None = None) -> Any:
        """Read one DRF's value; :class:`DeviceError` if the reading is not ``ok``: an
        error, or no data (``DPM_PEND``, an unknown device)."""
        return value_of(self.get(drf, timeout))

    def history(
        self,
        drf: str,
        start: object,
        end: object,
        *,
        node: str | None = None,
        timeout: float | None = None,
    ) -> History:
        """What a data logger recorded of ``drf`` from ``start`` to ``end``; as
        :meth:`~acnet_proto.api.backend.Backend.history`."""
        return history_of(self.get(logger_request(drf, start, end, node).to_drf(), timeout))

    def write_many(
        self, settings: Sequence[tuple[Any, Any]] | Mapping[Any, Any], timeout: float | None = None
    ) -> list[WriteResult]:
        """Apply several settings in one ``ApplySettings``; results in input order.

        Needs ``auth=KerberosAuth()`` and ``role=``. If the connection breaks
        after the settings left, :class:`~acnet_proto.errors.SettingOutcomeUnknown`
        is raised and nothing is sent again.
        """
        batch = dpm_write_batch(setting_pairs(settings), self.auth, self.role)
        deadline = self._deadline(timeout)
        link, self._writer = self._writer, None
        self._writer = apply_settings(link, batch, self.auth, self.host, self.port, deadline)
        return batch.write_results()

    def write(self, drf: str, value: Any, timeout: float | None = None) -> WriteResult:
        """Apply one setting; a dict is an alarm write, its fields set one after another."""
        sequence = WriteSequence(drf, value)
        for step in sequence:
            sequence.record(self.write_many([step], timeout)[0])
        return sequence.result

    def subscribe(
        self,
        drfs: Sequence[str],
        timeout: float | None = None,
        reconnect: bool | Reconnect = True,
        max_age: float | None = DEFAULT_MAX_AGE,
    ) -> SyncSubscription:
        """Start streaming ``drfs`` on a connection of its own.

        ``timeout`` bounds the first connection (reconnections take the
        client's ``timeout``). The first connection is made here, but a
        server that cannot be reached is an outage like any later one:
        ``readings()`` yields an open :class:`Gap` and reconnects.
        ``reconnect``: if the connection dies, connect again with the default
        :class:`Reconnect` policy (True), a policy of your own, or not at all
        (False: ``readings()`` raises :class:`ConnectionLost`). ``max_age``:
        the staleness bound, as :func:`~acnet_proto.adapters._streams.freshness`
        says.
        """
        driver = heartbeat_driver(drfs, reconnect, self.heartbeat_period, self.host, self.port)
        fresh = freshness(driver, max_age)
        return SyncSubscription(self, driver, timeout, fresh)


class SyncSubscription:
    """A running stream; iterate :meth:`readings`, then :meth:`stop` (or use ``with``).

    Made by :meth:`SyncClient.subscribe`, which makes the first connection
    attempt here (within ``timeout``); if it fails, that is the stream's first
    outage, from that moment: ``readings()`` begins with it.
    """

    def __init__(
        self,
        client: SyncClient,
        driver: StreamDriver,
        timeout: float | None = None,
        fresh: Freshness | None = None,
    ) -> None:
        self._client = client
        self._fresh = fresh  # the bound on lateness, if any
        self._link: _Link | None = None  # None between a broken connection and the next
        self._plan: ListPlan | None = None  # the list running on _link
        self._driver = driver
        self.drfs = list(driver.drfs)
        self._buffer: deque[Reading | Gap] = deque()
        self.stopped = False
        # the error the driver gave up with, for the next wait to raise (after what came first)
        self._lost: Ending | None = None
        try:
            self._connect(timeout)
        except _BROKEN as exc:
            self._broke(describe(exc), exc)

    def __enter__(self) -> SyncSubscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def readings(
        self, timeout: float | None = None
    ) -> Iterator[tuple[Reading | Gap, SyncSubscription]]:
        """Yield ``(reading, self)`` pairs until :meth:`stop` or ``timeout`` of quiet.

        ``timeout`` is seconds to wait for each next reading (None waits
        forever, 0 drains what already arrived). A connection found dead
        (closed, broken, silent past the heartbeat rule, or its list not
        started in that time) yields an open :class:`Gap` at once; the next
        connection yields the closed gap when its list runs. With reconnection
        off or out of attempts, :class:`ConnectionLost` is raised instead.
        """
        while not self.stopped:
            # the wait is for the next reading: bytes that make none do not restart it
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self._buffer:
                if self.stopped or not self._wait(deadline):
                    return
            yield self._buffer.popleft(), self

    def _wait(self, deadline: float | None) -> bool:
        """Buffer what comes by ``deadline``, reconnecting if need be; False when it passed.
        Raises the driver's error (ConnectionLost) once it gave up."""
        if self._lost is not None:
            self.stopped = True
            raise self._lost
        link, plan, driver = self._link, self._plan, self._driver
        if link is None or plan is None:
            return self._reconnect(deadline)
        now = time.monotonic()
        until, cause = driver.wait(link.client.overdue_at, deadline)
        try:
            made = link.pump_for(max(0.0, min(until - now, 3600.0)))
        except TimeoutError as exc:
            if cause is None:
                return False
            self._broke(cause, exc)
            return True
        except _BROKEN as exc:
            self._broke(describe(exc), exc)
            return True
        more = functools.partial(waiting, link.sock)
        self._buffer.extend(admitted(self._fresh, arrived(driver, made, plan.started), more))
        return True

    def _broke(self, cause: str, exc: BaseException) -> None:
        """Drop the dead connection and buffer the open gap of the outage; if the driver
        gives up, keep its error for the next wait to raise."""
        link, self._link = self._link, None
        if link is not None:
            link.close()
        step = self._driver.broke(cause, datetime.now(UTC), time.monotonic(), error=exc)
        if isinstance(step, GiveUp):
            self._lost = step.error
        elif step.gap is not None:
            self._buffer.append(step.gap)

    def _reconnect(self, deadline: float | None) -> bool:
        """Wait for the next attempt and make it, unless ``deadline`` comes first."""
        step = self._driver.next_step(time.monotonic(), deadline)
        if isinstance(step, Wait):
            time.sleep(max(0.0, step.until - time.monotonic()))
            if not step.then_connect:
                return False
        try:
            self._connect()
        except _BROKEN as exc:
            self._broke(describe(exc), exc)
        return True

    def _connect(self, timeout: float | None = None) -> None:
        """A new connection with the list sent on it; the closed gap comes when it runs."""
        client = self._client
        # subscribe()'s timeout was never checked (0 makes the first attempt an outage at
        # once), and checking it now would make a call that worked raise
        deadline = time.monotonic() + (client.timeout if timeout is None else timeout)
        self._link, self._plan = open_stream(
            client.host, client.port, self._driver, deadline, client.heartbeat_period
        )

    def stop(self) -> None:
        """Stop the stream and close its connection."""
        if self.stopped:
            return
        self.stopped = True
        link, self._link = self._link, None
        if link is None:
            return
        with contextlib.suppress(OSError, ProtocolError):  # it is going away either way
            link.send(link.client.end(), time.monotonic() + self._client.timeout)
        link.close()

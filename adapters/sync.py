"""A small blocking DPM/TCP client over one socket, for scripts.

::

    from acnet_proto.adapters.sync import SyncClient

    with SyncClient("localhost", 6802) as client:
        print(client.read("M:OUTTMP"))                  # 41.7
        for reading in client.get_many(["M:OUTTMP", "Z:ACLTS1[0:4]"]):
            print(reading.name, reading.value, reading.units)
        with client.subscribe(["M:OUTTMP@p,1000"]) as sub:
            for reading, handle in sub.readings(timeout=5):
                print(reading.value)
                break

One connection carries the reads; each subscription opens its own, as DPM
lists stream until stopped. Nothing here is thread-safe: use the threaded
adapter for that.

It is read-only by design: scripts that only look need no Kerberos, and
cannot set a device by accident. For settings use the threaded backend
(``acnet_proto.dpm(auth=KerberosAuth(), role=...)``) or the asyncio/trio ones.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from typing import Any

from acnet_proto.errors import ConnectionLost, ProtocolError, ReadError
from acnet_proto.lists import ListPlan, ReadBatch, value_of
from acnet_proto.status import Status
from acnet_proto.types import Reading

from ._blocking import _left, _Link

__all__ = ["SyncClient", "SyncSubscription"]

DEFAULT_TIMEOUT = 5.0
_TIMED_OUT = Status.from_name("ACNET_REQTMO")
_DISCONNECTED = Status.from_name("ACNET_DISCONNECTED")


class SyncClient:
    """A blocking DPM client. Connects on first use; ``close()`` or ``with`` ends it."""

    def __init__(self, host: str, port: int = 6802, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._link: _Link | None = None

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (a later call connects again)."""
        if self._link is not None:
            self._link.close()
            self._link = None

    def connect(self, timeout: float | None = None) -> SyncClient:
        """Connect now rather than at the first read; returns ``self``."""
        if self._link is None:
            deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
            self._link = _Link(self.host, self.port, deadline)
        return self

    def get_many(self, drfs: Sequence[str], timeout: float | None = None) -> list[Reading]:
        """Read every DRF once; readings in input order, errors as error readings.

        ``timeout`` bounds the whole batch. If it passes or the connection
        breaks, :class:`ReadError` carries what arrived and error readings
        (``ACNET_REQTMO`` / ``ACNET_DISCONNECTED``) for the rest.
        """
        batch = ReadBatch(drfs)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        try:
            link = self.connect(_left(deadline))._link
            assert link is not None
            link.send(link.client.begin(batch))
            while not batch.done:
                link.pump(deadline)
            link.send(link.client.end())
        except TimeoutError as exc:
            self.close()
            raise ReadError(batch.readings(_TIMED_OUT), f"read timed out: {exc}") from exc
        except (OSError, ProtocolError) as exc:
            self.close()
            raise ReadError(batch.readings(_DISCONNECTED), f"connection failed: {exc}") from exc
        return batch.readings()

    def get(self, drf: str, timeout: float | None = None) -> Reading:
        """Read one DRF; the :class:`Reading`, error or not."""
        return self.get_many([drf], timeout)[0]

    def read(self, drf: str, timeout: float | None = None) -> Any:
        """Read one DRF's value; :class:`DeviceError` if the device answered an error."""
        return value_of(self.get(drf, timeout))

    def subscribe(self, drfs: Sequence[str], timeout: float | None = None) -> SyncSubscription:
        """Start streaming ``drfs`` on a connection of its own."""
        plan = ListPlan(drfs, default_event=None)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        link = _Link(self.host, self.port, deadline)
        link.send(link.client.begin(plan))
        return SyncSubscription(link, plan)


class SyncSubscription:
    """A running stream; iterate :meth:`readings`, then :meth:`stop` (or use ``with``)."""

    def __init__(self, link: _Link, plan: ListPlan) -> None:
        self._link = link
        self.drfs = plan.drfs
        self._buffer: list[Reading] = []
        self.stopped = False

    def __enter__(self) -> SyncSubscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def readings(self, timeout: float | None = None) -> Iterator[tuple[Reading, SyncSubscription]]:
        """Yield ``(reading, self)`` pairs until :meth:`stop` or ``timeout`` of quiet.

        ``timeout`` is seconds to wait for each next reading (None waits
        forever, 0 drains what already arrived). A dead or silent server
        raises :class:`ConnectionLost`.
        """
        while not self.stopped:
            if not self._buffer:
                if not self._wait(timeout):
                    return
                continue
            yield self._buffer.pop(0), self

    def _wait(self, timeout: float | None) -> bool:
        now = time.monotonic()
        overdue = self._link.client.overdue_at
        silent_for = float("inf") if overdue is None else overdue - now
        wait = silent_for if timeout is None else min(timeout, silent_for)
        try:
            made = self._link.pump_for(max(0.0, min(wait, 3600.0)))
        except TimeoutError:
            if timeout is None or silent_for <= timeout:
                self.stop()
                raise ConnectionLost("the server sent nothing for several heartbeats") from None
            return False
        except (OSError, ProtocolError) as exc:
            self.stop()
            raise ConnectionLost(f"subscription to {self.drfs} lost: {exc}") from exc
        self._buffer += [reading for _, reading in made]
        return True

    def stop(self) -> None:
        """Stop the stream and close its connection."""
        if self.stopped:
            return
        self.stopped = True
        with contextlib.suppress(OSError, ProtocolError):  # it is going away either way
            self._link.send(self._link.client.end())
        self._link.close()

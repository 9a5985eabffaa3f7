"""The backend API every backend offers (the seeds' ``Backend``), and what its subscriptions share.

A backend implements four things: :meth:`Backend.get_many` (one batch read),
:meth:`Backend.write_many`, :meth:`Backend.subscribe` and
:meth:`Backend.close`. This base builds ``get``, ``read``, ``read_many`` and
``write`` from them, so every backend (DPM over TCP, the in-memory
:class:`~acnet_proto.testing.FakeBackend`, ...) answers those the same way::

    with acnet_proto.dpm(host="localhost") as backend:
        backend.read("M:OUTTMP")                     # the value, or DeviceError
        backend.get("M:OUTTMP")                      # the Reading, error or not
        backend.read_many(["M:OUTTMP", "Z:ACLTST"])  # values, or ReadError

Timeouts are total deadlines in seconds for the whole call; ``None`` means
the backend's default. Nothing here does I/O.
"""

from __future__ import annotations

import abc
import enum
import inspect
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from acnet_proto import drf as _drf
from acnet_proto.errors import ReadError
from acnet_proto.plans.history import history_of, logger_request
from acnet_proto.plans.lists import value_of, values_of
from acnet_proto.plans.settings import WriteSequence
from acnet_proto.streams.reconnect import Gap, Reconnect
from acnet_proto.types import History, Reading, WriteResult

__all__ = [
    "DEFAULT_QUEUE_SIZE",
    "AsyncBackend",
    "AsyncSubscription",
    "Backend",
    "DispatchMode",
    "ErrorCallback",
    "QueuedSubscription",
    "ReadingCallback",
    "ReadingQueue",
    "Subscription",
    "SubscriptionHandle",
    "check_callbacks",
    "check_queue_size",
    "pairs_of",
    "setting_pairs",
]

#: How many readings a subscription holds for a slow consumer before it drops new ones.
DEFAULT_QUEUE_SIZE = 10_000

#: ``callback(reading, handle)``; when the connection is lost, and again when the list runs
#: again, it gets a :class:`Gap` in a reading's place (``docs/streaming.md``).
ReadingCallback = Callable[[Reading | Gap, "Subscription"], object]
ErrorCallback = Callable[[Exception, "Subscription"], object]


class DispatchMode(enum.Enum):
    """Which thread runs a subscription's callbacks.

    ``WORKER``: a thread of the subscription's own, fed through its bounded
    queue, so a slow callback never stalls the socket (readings beyond the
    bound are dropped and counted). ``DIRECT``: the thread that reads the
    socket, inline: nothing is queued or dropped, but a slow callback delays
    the stream (TCP then slows the server down).
    """

    WORKER = "worker"
    DIRECT = "direct"


def _check_callable(function: object, name: str, arguments: str) -> None:
    if function is None:
        return
    if not callable(function):
        raise TypeError(f"{name} must be callable, got {type(function).__name__}")
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # some builtins have no signature: trust them
        return
    try:
        signature.bind(None, None)
    except TypeError:
        raise TypeError(
            f"{name} must accept two arguments ({arguments}); {function!r} does not"
        ) from None


def check_callbacks(callback: object, on_error: object) -> None:
    """Raise TypeError now, not on the first reading, if a callback cannot be called as one."""
    _check_callable(callback, "callback", "reading, handle")
    _check_callable(on_error, "on_error", "exception, handle")


def check_queue_size(size: object) -> int:
    """``size`` if it is a positive integer (a subscription's ``queue_size``), else ValueError."""
    if type(size) is not int or size < 1:
        raise ValueError(f"queue_size must be a positive integer, got {size!r}")
    return size


class ReadingQueue:
    """A bounded FIFO of readings (and gaps) that counts what it turned away.

    When full, the *new* reading is dropped (the oldest are already promised
    to the consumer in order), except a :class:`Gap`, which is never lost:
    the newest queued reading makes room for it. Not thread-safe: callers
    hold their own lock.
    """

    def __init__(self, limit: int = DEFAULT_QUEUE_SIZE) -> None:
        self.limit = check_queue_size(limit)
        self.dropped = 0
        self._items: deque[Reading | Gap] = deque()

    def __len__(self) -> int:
        return len(self._items)

    def push(self, reading: Reading | Gap, alongside: deque[Any] | None = None) -> bool:
        """Queue ``reading``; False (and one more in :attr:`dropped`) if the queue is full.

        ``alongside``, a deque the caller keeps index for index with the
        queue, loses what the queue loses to make room for a gap (the caller
        appends its own entry for ``reading``).
        """
        if len(self._items) >= self.limit:
            if not isinstance(reading, Gap):
                self.dropped += 1
                return False
            self.dropped += make_room(self._items, alongside)
        self._items.append(reading)
        return True

    def pop(self) -> Reading | Gap:
        """The oldest reading (IndexError if empty: check ``len()`` first)."""
        return self._items.popleft()

    def __getitem__(self, index: int) -> Reading | Gap:
        """The reading ``index`` places from the oldest (0), without taking it."""
        return self._items[index]

    def clear(self) -> None:
        self._items.clear()


def make_room(items: deque[Reading | Gap], alongside: deque[Any] | None = None) -> int:
    """Drop the newest reading (not a gap) of ``items``, so that a gap can follow it, and the
    entry at the same index of ``alongside`` (kept index for index with ``items``), if given.

    Returns how many were dropped: 1, or 0 if ``items`` holds only gaps (the
    queue then grows by one rather than lose one).
    """
    for index in range(len(items) - 1, -1, -1):
        if not isinstance(items[index], Gap):
            del items[index]
            if alongside is not None:
                del alongside[index]
            return 1
    return 0


class Subscription(abc.ABC):
    """A running stream: iterate :meth:`readings` or get callbacks; :meth:`stop` ends it.

    ``drfs`` are the requests as given. Usable as a context manager, which
    stops it on exit. A stream that reconnects after its connection died
    delivers a :class:`~acnet_proto.streams.reconnect.Gap` where readings are
    missing, in order with the readings.
    """

    drfs: list[str]

    @property
    @abc.abstractmethod
    def stopped(self) -> bool:
        """True once stopped, by :meth:`stop` or because the stream died."""

    @property
    @abc.abstractmethod
    def dropped(self) -> int:
        """Readings discarded because the consumer fell a whole queue behind."""

    @property
    @abc.abstractmethod
    def exc(self) -> Exception | None:
        """What ended the stream, if it died, else None: a ConnectionLost, or a
        :class:`~acnet_proto.errors.PolicyDenied` if a supervised proxy refused it.

        A stream that reconnected is not dead: only one that could not (or
        was told not to) ends with an error.
        """

    @abc.abstractmethod
    def readings(
        self, timeout: float | None = None
    ) -> Iterator[tuple[Reading | Gap, Subscription]]:
        """Yield ``(reading, self)`` until stopped, or ``timeout`` seconds pass with none.

        ``timeout`` is the wait for each next reading: None waits as long as
        the stream lives, 0 only drains what has already arrived. After a
        reconnection a :class:`~acnet_proto.streams.reconnect.Gap` comes in a
        reading's place. If the stream died, the readings that arrived first
        are yielded, then its exception is raised.
        """

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop the stream (idempotent)."""

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


#: The seeds' name for :class:`Subscription` (``pacsys.types.SubscriptionHandle``): the same class.
SubscriptionHandle = Subscription


class QueuedSubscription(Subscription):
    """A :class:`Subscription` whose readings wait in a :class:`ReadingQueue` for ``readings()``.

    Holds what every such stream keeps: the callbacks, the queue, whether
    :meth:`stop` was asked (``_stop_requested``), whether the stream ended
    (``_ended``) and with what error (``_exc``). A subclass feeds the queue
    and implements :meth:`readings` and :meth:`stop`.
    """

    def __init__(
        self,
        drfs: list[str],
        callback: ReadingCallback | None,
        on_error: ErrorCallback | None,
        queue: ReadingQueue,
    ) -> None:
        self.drfs = drfs
        self._callback = callback
        self._on_error = on_error
        self._queue = queue
        self._stop_requested = False
        self._ended = False
        self._exc: Exception | None = None

    @property
    def stopped(self) -> bool:
        return self._stop_requested or self._ended

    @property
    def dropped(self) -> int:
        return self._queue.dropped

    @property
    def exc(self) -> Exception | None:
        return self._exc

    def _check_iterable(self) -> None:
        """RuntimeError if readings go to a callback, so there is nothing to iterate."""
        if self._callback is not None:
            raise RuntimeError("this subscription delivers to its callback; it has no readings()")


def pairs_of(settings: Iterable[tuple[Any, Any]] | Mapping[Any, Any]) -> list[tuple[Any, Any]]:
    """``settings`` (``[(target, value), ...]`` or ``{target: value}``) as a list of pairs.

    TypeError, naming the culprit, for anything else.
    """
    if isinstance(settings, Mapping):
        return list(settings.items())
    if isinstance(settings, (str, bytes)) or not isinstance(settings, Iterable):
        raise TypeError(
            "settings must be a list of (drf, value) pairs or a dict, "
            f"not {type(settings).__name__}"
        )
    pairs = list(settings)
    for number, pair in enumerate(pairs, 1):
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise TypeError(f"setting {number} must be a (drf, value) pair, got {pair!r}")
    return pairs


def setting_pairs(settings: Iterable[tuple[Any, Any]] | Mapping[Any, Any]) -> list[tuple[str, Any]]:
    """:func:`pairs_of` ``settings``, each DRF as text and checked to be writable.

    A DRF that cannot be written (see :func:`~acnet_proto.drf.to_write_drf`)
    raises :class:`~acnet_proto.drf.DRFError` before any I/O.
    """
    out = []
    for name, value in pairs_of(settings):
        text = name.to_drf() if isinstance(name, _drf.DataRequest) else name
        _drf.to_write_drf(text)
        out.append((text, value))
    return out


class Backend(abc.ABC):
    """A way to reach ACNET devices. Close it (or use ``with``) when done."""

    #: The default total timeout of an operation, in seconds.
    timeout: float

    @abc.abstractmethod
    def get_many(
        self, drfs: Sequence[str | _drf.DataRequest], timeout: float | None = None
    ) -> list[Reading]:
        """Read every DRF once, in one batch; readings in input order, errors as error readings.

        Invalid DRF text raises :class:`~acnet_proto.drf.DRFError` before any
        I/O, as does a DRF with the event ``@N`` (it never sends data). If the
        transport fails or ``timeout`` passes,
        :class:`~acnet_proto.errors.ReadError` carries what arrived and error
        readings for the rest (after a timeout, ``ACNET_REQTMO`` ones whose
        messages name the timeout).
        """

    @abc.abstractmethod
    def write_many(
        self, settings: Sequence[tuple[Any, Any]] | Mapping[Any, Any], timeout: float | None = None
    ) -> list[WriteResult]:
        """Apply several settings in one batch; results in input order."""

    @abc.abstractmethod
    def subscribe(
        self,
        drfs: Sequence[str | _drf.DataRequest],
        callback: ReadingCallback | None = None,
        on_error: ErrorCallback | None = None,
        *,
        reconnect: bool | Reconnect = True,
    ) -> Subscription:
        """Start streaming ``drfs`` (give each an event, e.g. ``@p,1000``).

        With ``callback``, each reading is passed to ``callback(reading,
        handle)``; without, iterate ``handle.readings()``. ``on_error(exc,
        handle)`` is called if the stream dies. ``reconnect``: if the stream
        breaks, connect again with the default :class:`Reconnect` policy
        (True), a policy of your own, or not at all (False).
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Stop every subscription and release every connection (idempotent)."""

    def get(self, drf: str | _drf.DataRequest, timeout: float | None = None) -> Reading:
        """Read one DRF; the :class:`Reading`, error or not."""
        return self.get_many([drf], timeout)[0]

    def read(self, drf: str | _drf.DataRequest, timeout: float | None = None) -> Any:
        """Read one DRF's value; :class:`~acnet_proto.errors.DeviceError` if the reading is
        not ``ok``: an error, or no data (``DPM_PEND``, an unknown device)."""
        return value_of(self.get(drf, timeout))

    def history(
        self,
        drf: str | _drf.DataRequest,
        start: object,
        end: object,
        *,
        node: str | None = None,
        timeout: float | None = None,
    ) -> History:
        """What a data logger recorded of ``drf`` from ``start`` to ``end``, both included.

        ``start`` and ``end`` are aware datetimes or Unix seconds; ``node`` names
        the logger (None: the server picks the best). The read waits for the
        end of data, within ``timeout``. An empty window (the logger holds
        nothing of it: ``DAE_LJ_NO_DATA``) is an empty :class:`History`; any
        other error status is a :class:`~acnet_proto.errors.DeviceError`.
        See ``docs/history.md``.
        """
        return history_of(self.get(logger_request(drf, start, end, node), timeout))

    def read_many(
        self, drfs: Sequence[str | _drf.DataRequest], timeout: float | None = None
    ) -> list[Any]:
        """Read every DRF's value; :class:`ReadError` (with all readings) if any is not ok."""
        readings = self.get_many(drfs, timeout)
        failed = [r.drf for r in readings if not r.ok]
        if failed:
            raise ReadError(readings, f"no usable value for {', '.join(failed)}")
        return [r.value for r in readings]

    def write(
        self, drf: str | _drf.DataRequest, value: Any, timeout: float | None = None
    ) -> WriteResult:
        """Apply one setting; its :class:`WriteResult`.

        A dict is an alarm write (``{"minimum": 40.0, "maximum": 50.0}`` on
        ``Z@ACLTST``): its fields are set one after another, as they share
        one hardware block, stopping at the first that fails; the result is
        that failure, else success. ``timeout`` bounds each field's setting.
        See :class:`~acnet_proto.plans.settings.WriteSequence`.
        """
        sequence = WriteSequence(drf, value)
        for step in sequence:
            sequence.record(self.write_many([step], timeout)[0])
        return sequence.result

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncBackend(abc.ABC):
    """:class:`Backend`'s surface, awaited: ``aclose()`` or ``async with`` ends it.

    A subclass implements :meth:`get_many`, :meth:`write_many` and
    :meth:`aclose`; ``get``, ``read``, ``read_many`` and ``write`` are built
    from them with :class:`Backend`'s semantics.
    """

    @abc.abstractmethod
    async def get_many(
        self, drfs: Sequence[str | _drf.DataRequest], timeout: float | None = None
    ) -> list[Reading]:
        """Read every DRF once; see :meth:`Backend.get_many`."""

    @abc.abstractmethod
    async def write_many(
        self, settings: Sequence[tuple[Any, Any]] | Mapping[Any, Any], timeout: float | None = None
    ) -> list[WriteResult]:
        """Apply several settings in one batch; see :meth:`Backend.write_many`."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Stop every subscription and release every connection (idempotent)."""

    async def get(self, drf: str | _drf.DataRequest, timeout: float | None = None) -> Reading:
        """Read one DRF; the :class:`Reading`, error or not."""
        return (await self.get_many([drf], timeout))[0]

    async def read(self, drf: str | _drf.DataRequest, timeout: float | None = None) -> Any:
        """Read one DRF's value; :class:`DeviceError` if the reading is not ``ok``: an
        error, or no data (``DPM_PEND``, an unknown device)."""
        return value_of(await self.get(drf, timeout))

    async def history(
        self,
        drf: str | _drf.DataRequest,
        start: object,
        end: object,
        *,
        node: str | None = None,
        timeout: float | None = None,
    ) -> History:
        """What a data logger recorded of ``drf``; see :meth:`Backend.history`."""
        return history_of(await self.get(logger_request(drf, start, end, node), timeout))

    async def read_many(
        self, drfs: Sequence[str | _drf.DataRequest], timeout: float | None = None
    ) -> list[Any]:
        """Read every DRF's value; :class:`ReadError` (with every reading) if any failed."""
        return values_of(await self.get_many(drfs, timeout))

    async def write(
        self, drf: str | _drf.DataRequest, value: Any, timeout: float | None = None
    ) -> WriteResult:
        """Apply one setting; a dict is an alarm write, its fields set one after another.

        See :meth:`Backend.write`; ``timeout`` bounds each field's setting.
        """
        sequence = WriteSequence(drf, value)
        for step in sequence:
            sequence.record((await self.write_many([step], timeout))[0])
        return sequence.result

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class AsyncSubscription(abc.ABC):
    """:class:`Subscription`'s surface, awaited: iterate :meth:`readings`, then :meth:`stop`.

    ``drfs`` are the requests as given, ``stopped`` is True once it ended,
    ``dropped`` counts readings turned away by a full queue. Usable with
    ``async with``, which stops it on exit.
    """

    drfs: list[str]
    stopped: bool
    if TYPE_CHECKING:
        # read-only to callers: a subscription keeps it as an attribute or a property

        @property
        def dropped(self) -> int: ...

    @abc.abstractmethod
    def readings(
        self, timeout: float | None = None
    ) -> AsyncIterator[tuple[Reading | Gap, AsyncSubscription]]:
        """Yield ``(reading, self)`` until stopped, or until no reading comes for ``timeout``.

        ``timeout`` is seconds to wait for each next reading (None waits
        forever, 0 yields only what already arrived). A stream the server
        completes stops the subscription after its readings; one that breaks
        raises :class:`~acnet_proto.errors.ConnectionLost` after them.
        """

    @abc.abstractmethod
    async def stop(self) -> None:
        """Cancel the stream; later calls do nothing."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

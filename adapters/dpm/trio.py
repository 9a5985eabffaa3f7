"""A trio DPM/TCP client: pooled reads, one connection per subscription.

::

    from acnet_proto.adapters.dpm.trio import TrioDPMBackend

    async with TrioDPMBackend("localhost", 6802) as backend:
        print(await backend.read("M:OUTTMP"))                    # 41.7
        for reading in await backend.get_many(["M:OUTTMP", "Z:ACLTS1[0:4]"]):
            print(reading.name, reading.value, reading.units)
        async with await backend.subscribe(["M:OUTTMP@p,1000"]) as sub:
            async for reading, handle in sub.readings(timeout=5):
                print(reading.value)
                break

        def on_reading(reading, handle):                  # or an async def
            print(reading.value)

        sub = await backend.subscribe(["M:OUTTMP@p,1000"], on_reading)
        await trio.sleep(5)
        await sub.stop()                                  # or leave async with

    async with TrioDPMBackend("localhost", auth=KerberosAuth(), role="testing") as backend:
        result = await backend.write("Z:ACLTST", 45.0)

The same surface as :mod:`acnet_proto.adapters.dpm.asyncio`, on trio's own
sockets and cancel scopes: reads borrow a ready connection from a pool of at
most ``pool_size`` (repeated once on another if an idle one turns out closed
before any reply), each subscription has a connection of its own (connected
again, as its :class:`~acnet_proto.streams.reconnect.Reconnect` policy says, if it
dies while being iterated, with an open :class:`~acnet_proto.streams.reconnect.Gap`
as soon as it is found dead and a closed one when the list runs again), and every
deadline is a cancel scope, so a caller's own ``trio.move_on_after`` around
any call also works (a connection cancelled mid-list is closed, not pooled).
Settings (``write``, ``write_many``, with ``auth=`` and ``role=``) use one
connection of their own, authenticated once and reused, with the threaded
backend's semantics down to :class:`~acnet_proto.errors.SettingOutcomeUnknown`;
a cancellation from an outer scope is re-raised as it is, even after the
settings left. Kerberos steps run inline: the first setting may wait on the
KDC for a service ticket. Callback subscriptions (``subscribe(drfs,
callback, on_error)``, callbacks plain or ``async def``, as in the asyncio
adapter) are the one thing that starts tasks: ``async with`` opens a nursery
for the backend, each callback subscription is delivered by a task in it
until ``stop()``, and leaving ``async with`` stops every subscription, so
those tasks end, cancels a callback still under way, then closes the
nursery; without ``async with`` a callback
subscription raises :class:`RuntimeError`. Use a backend from one
``trio.run``.
"""

from __future__ import annotations

import contextlib
import errno
import math
import socket
from types import TracebackType

# Absolute imports make this the trio package, not this module.
import trio

from acnet_proto.adapters.dpm._async import AsyncDPMBackend, AsyncDPMSubscription

__all__ = ["TrioDPMBackend", "TrioSubscription"]


class _FailAt:
    """A cancel scope that ends in the builtin TimeoutError, not trio.TooSlowError (callers
    say what timed out).

    A class, not a generator context manager: one is entered on every read.
    """

    def __init__(self, when: float | None) -> None:
        self._scope = trio.CancelScope(deadline=math.inf if when is None else when)

    async def __aenter__(self) -> trio.CancelScope:
        return self._scope.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        handled = self._scope.__exit__(exc_type, exc, tb)
        if self._scope.cancelled_caught:
            raise TimeoutError
        return handled


class _Slots:
    """A :class:`trio.Semaphore` whose free slot is taken without a trip through the
    scheduler (``acquire()`` makes one even then); only a wait for one is a checkpoint."""

    def __init__(self, size: int) -> None:
        self._semaphore = trio.Semaphore(size)

    async def __aenter__(self) -> None:
        try:
            self._semaphore.acquire_nowait()
        except trio.WouldBlock:
            await self._semaphore.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        self._semaphore.release()


def _translated(exc: OSError) -> trio.ClosedResourceError | trio.BrokenResourceError:
    """What a :class:`trio.SocketStream` raises for ``exc``."""
    if exc.errno == errno.EBADF:
        return trio.ClosedResourceError("this socket was already closed")
    return trio.BrokenResourceError(f"socket connection broken: {exc}")


class _Stream:
    """A connected TCP socket, driven through trio's I/O waits.

    A receive is a checkpoint, as a :class:`trio.SocketStream`'s: the wait for
    bytes, or a trip through the scheduler when they were there already. A
    send the socket takes at once makes none (a SocketStream's makes one on
    every call: two of the four trips of a read); a send that must wait is a
    checkpoint. It raises what a SocketStream does: ClosedResourceError once
    this side closed it, BrokenResourceError when the connection broke.
    """

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self._sock = sock

    async def receive_some(self, max_bytes: int) -> bytes:
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            data = self._receive(max_bytes)
        except BlockingIOError:
            pass
        else:
            await trio.lowlevel.cancel_shielded_checkpoint()  # the bytes are not lost to it
            return data
        while True:
            await trio.lowlevel.wait_readable(self._sock)
            with contextlib.suppress(BlockingIOError):
                return self._receive(max_bytes)

    def _receive(self, max_bytes: int) -> bytes:
        try:
            return self._sock.recv(max_bytes)
        except BlockingIOError:
            raise
        except OSError as exc:
            raise _translated(exc) from exc

    async def send_all(self, data: bytes) -> None:
        view = memoryview(data)
        while True:
            try:
                view = view[self._sock.send(view) :]
            except BlockingIOError:
                pass
            except OSError as exc:
                raise _translated(exc) from exc
            if not view:
                return
            await trio.lowlevel.wait_writable(self._sock)

    def close(self) -> None:
        """Close now; a task waiting on the socket gets ClosedResourceError."""
        trio.lowlevel.notify_closing(self._sock)
        self._sock.close()


class _TrioKit:
    """trio's sockets, clock, cancel scopes and locks for the shared backend."""

    broken: tuple[type[BaseException], ...] = (trio.BrokenResourceError,)
    closed: tuple[type[BaseException], ...] = (trio.ClosedResourceError,)

    async def connect(self, host: str, port: int) -> _Stream:
        # trio's happy eyeballs, and its socket options (TCP_NODELAY); the I/O is ours
        stream = await trio.open_tcp_stream(host, port)
        return _Stream(socket.socket(fileno=stream.socket.detach()))

    def now(self) -> float:
        return trio.current_time()

    def fail_at(self, when: float | None) -> _FailAt:
        return _FailAt(when)

    def expire(self, scope: trio.CancelScope) -> None:
        scope.cancel()

    def lock(self) -> trio.Lock:
        return trio.Lock()

    def semaphore(self, size: int) -> _Slots:
        return _Slots(size)

    def event(self) -> trio.Event:
        return trio.Event()

    def task_group(self) -> contextlib.AbstractAsyncContextManager[trio.Nursery]:
        return trio.open_nursery()

    def cancel_tasks(self, group: trio.Nursery) -> None:
        group.cancel_scope.cancel()

    async def abort(self, stream: _Stream) -> None:
        stream.close()  # no await: it closes even inside a cancelled scope

    async def aclose(self, stream: _Stream) -> None:
        stream.close()  # nothing is left unsent: send_all returned


class TrioSubscription(AsyncDPMSubscription):
    """A running stream on its own trio connection (see :class:`AsyncDPMSubscription`)."""


class TrioDPMBackend(AsyncDPMBackend):
    """A DPM/TCP client for trio, to use from one ``trio.run``; the parameters and methods
    are :class:`AsyncDPMBackend`'s, and every deadline is a cancel scope."""

    _kit = _TrioKit()
    _subscription_type = TrioSubscription

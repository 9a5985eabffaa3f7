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
streams and cancel scopes: reads borrow a ready connection from a pool of at
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
import math
from collections.abc import AsyncIterator

# Absolute imports make this the trio package, not this module.
import trio

from acnet_proto.adapters.dpm._async import AsyncDPMBackend, AsyncDPMSubscription

__all__ = ["TrioDPMBackend", "TrioSubscription"]


@contextlib.asynccontextmanager
async def _fail_at(when: float | None) -> AsyncIterator[trio.CancelScope]:
    """A cancel scope that ends in the builtin TimeoutError, not trio.TooSlowError."""
    with trio.move_on_at(math.inf if when is None else when) as scope:
        yield scope
    if scope.cancelled_caught:
        raise TimeoutError  # callers say what timed out


class _TrioKit:
    """trio's streams, clock, cancel scopes and locks for the shared backend."""

    broken: tuple[type[BaseException], ...] = (trio.BrokenResourceError,)
    closed: tuple[type[BaseException], ...] = (trio.ClosedResourceError,)

    async def connect(self, host: str, port: int) -> trio.SocketStream:
        return await trio.open_tcp_stream(host, port)

    def now(self) -> float:
        return trio.current_time()

    def fail_at(
        self, when: float | None
    ) -> contextlib.AbstractAsyncContextManager[trio.CancelScope]:
        return _fail_at(when)

    def expire(self, scope: trio.CancelScope) -> None:
        scope.cancel()

    def lock(self) -> trio.Lock:
        return trio.Lock()

    def semaphore(self, size: int) -> trio.Semaphore:
        return trio.Semaphore(size)

    def event(self) -> trio.Event:
        return trio.Event()

    def task_group(self) -> contextlib.AbstractAsyncContextManager[trio.Nursery]:
        return trio.open_nursery()

    def cancel_tasks(self, group: trio.Nursery) -> None:
        group.cancel_scope.cancel()

    async def abort(self, stream: trio.SocketStream) -> None:
        await trio.aclose_forcefully(stream)  # closes now, even inside a cancelled scope

    async def aclose(self, stream: trio.SocketStream) -> None:
        await trio.aclose_forcefully(stream)  # nothing is left unsent: send_all returned


class TrioSubscription(AsyncDPMSubscription):
    """A running stream on its own trio connection (see :class:`AsyncDPMSubscription`)."""


class TrioDPMBackend(AsyncDPMBackend):
    """A DPM/TCP client for trio, to use from one ``trio.run``; the parameters and methods
    are :class:`AsyncDPMBackend`'s, and every deadline is a cancel scope."""

    _kit = _TrioKit()
    _subscription_type = TrioSubscription

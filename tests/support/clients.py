"""One blocking face for every DPM client adapter, so one behavioural suite runs against all.

:data:`ADAPTERS` maps an adapter's name to a function that opens a
:class:`Client` on ``(host, port)``, with ``auth=`` and ``role=`` for
settings; :data:`WRITERS` names those that can write (all four).
Blocking backends (the seeds' sync
surface) are wrapped as they are; async backends run on a loop the face
keeps for the client's life (asyncio's ``Runner``; trio, which has no
re-entrant runner, in a thread of its own, reached with ``trio.from_thread``).
Adding an adapter with the sync surface is one line in :data:`ADAPTERS`.
The openers take an optional ``timeout=`` (the backend's default deadline,
which also bounds its connection attempts), and :meth:`Client.stream` passes
keyword options (``reconnect=``) on to ``subscribe``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import pytest

from acnet_proto.adapters.dpm.asyncio import AsyncioDPMBackend
from acnet_proto.adapters.dpm.sync import SyncClient
from acnet_proto.adapters.dpm.threaded import DPMBackend
from acnet_proto.streams.reconnect import Gap
from acnet_proto.types import Reading, WriteResult

try:
    import trio
except ImportError:  # without the [trio] extra its adapter is skipped
    trio = None


class Client(Protocol):
    """What the suite calls; every method blocks until the adapter's call returns or raises."""

    def read(self, drf: str, timeout: float | None = None) -> Any: ...

    def get(self, drf: str, timeout: float | None = None) -> Reading: ...

    def get_many(self, drfs: Sequence[str], timeout: float | None = None) -> list[Reading]: ...

    def read_many(self, drfs: Sequence[str], timeout: float | None = None) -> list[Any]: ...

    def stream(
        self, drfs: Sequence[str], count: int, timeout: float | None, **options: Any
    ) -> list[Reading | Gap]:
        """Subscribe (with ``options``), take readings (and gaps) until ``count`` or the
        iterator ends, stop; in arrival order."""
        ...

    def write(self, drf: str, value: Any, timeout: float | None = None) -> WriteResult: ...

    def write_many(
        self, settings: Sequence[tuple[str, Any]], timeout: float | None = None
    ) -> list[WriteResult]: ...

    def tasks(self) -> int:
        """How many tasks the client's event loop runs between calls (0 without a loop)."""
        ...

    def close(self) -> None: ...


class BlockingClient:
    """A backend with the seeds' blocking surface, as it is."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    def read(self, drf: str, timeout: float | None = None) -> Any:
        return self.backend.read(drf, timeout=timeout)

    def get(self, drf: str, timeout: float | None = None) -> Reading:
        return self.backend.get(drf, timeout=timeout)

    def get_many(self, drfs: Sequence[str], timeout: float | None = None) -> list[Reading]:
        return self.backend.get_many(drfs, timeout=timeout)

    def read_many(self, drfs: Sequence[str], timeout: float | None = None) -> list[Any]:
        if not hasattr(self.backend, "read_many"):
            pytest.skip(f"{type(self.backend).__name__} has no read_many")
        return self.backend.read_many(drfs, timeout=timeout)

    def stream(
        self, drfs: Sequence[str], count: int, timeout: float | None, **options: Any
    ) -> list[Reading | Gap]:
        got: list[Reading | Gap] = []
        with self.backend.subscribe(drfs, **options) as sub:
            for reading, handle in sub.readings(timeout=timeout):
                assert handle is sub, "readings() must yield the subscription as the handle"
                got.append(reading)
                if len(got) == count:
                    break
        assert sub.stopped, "leaving the with block must stop the subscription"
        return got

    def write(self, drf: str, value: Any, timeout: float | None = None) -> WriteResult:
        return self.backend.write(drf, value, timeout=timeout)

    def write_many(
        self, settings: Sequence[tuple[str, Any]], timeout: float | None = None
    ) -> list[WriteResult]:
        return self.backend.write_many(settings, timeout=timeout)

    def tasks(self) -> int:
        return 0

    def close(self) -> None:
        self.backend.close()


class Portal(Protocol):
    """Runs one async function to completion on a loop that outlives the call."""

    def run(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any: ...

    def tasks(self) -> int: ...

    def close(self) -> None: ...


class AsyncioPortal:
    def __init__(self) -> None:
        self._runner = asyncio.Runner()

    def run(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        return self._runner.run(fn(*args))

    def tasks(self) -> int:
        async def others() -> int:
            return len(asyncio.all_tasks()) - 1  # not this one

        return self._runner.run(others())

    def close(self) -> None:
        self._runner.close()


class TrioPortal:
    """A ``trio.run`` in its own thread that waits for work until closed."""

    def __init__(self) -> None:
        ready = threading.Event()
        done = trio.Event()

        async def main() -> None:
            self._token = trio.lowlevel.current_trio_token()
            ready.set()
            await done.wait()

        self._done = done
        self._thread = threading.Thread(target=trio.run, args=(main,), daemon=True)
        self._thread.start()
        ready.wait()

    def run(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        return trio.from_thread.run(fn, *args, trio_token=self._token)

    def tasks(self) -> int:
        def count(task: Any) -> int:
            return 1 + sum(count(t) for n in task.child_nurseries for t in n.child_tasks)

        async def every() -> int:
            return count(trio.lowlevel.current_root_task())

        return self.run(every)

    def close(self) -> None:
        trio.from_thread.run_sync(self._done.set, trio_token=self._token)
        self._thread.join()


class AsyncClient:
    """An async backend (``await backend.get(...)``, ``async with await backend.subscribe``)."""

    def __init__(self, backend: Any, portal: Portal) -> None:
        self.backend = backend
        self._portal = portal

    def read(self, drf: str, timeout: float | None = None) -> Any:
        return self._portal.run(self.backend.read, drf, timeout)

    def get(self, drf: str, timeout: float | None = None) -> Reading:
        return self._portal.run(self.backend.get, drf, timeout)

    def get_many(self, drfs: Sequence[str], timeout: float | None = None) -> list[Reading]:
        return self._portal.run(self.backend.get_many, drfs, timeout)

    def read_many(self, drfs: Sequence[str], timeout: float | None = None) -> list[Any]:
        return self._portal.run(self.backend.read_many, drfs, timeout)

    def stream(
        self, drfs: Sequence[str], count: int, timeout: float | None, **options: Any
    ) -> list[Reading | Gap]:
        return self._portal.run(self._stream, drfs, count, timeout, options)

    async def _stream(
        self, drfs: Sequence[str], count: int, timeout: float | None, options: dict[str, Any]
    ) -> list[Reading | Gap]:
        got: list[Reading | Gap] = []
        async with await self.backend.subscribe(drfs, **options) as sub:
            async for reading, handle in sub.readings(timeout=timeout):
                assert handle is sub, "readings() must yield the subscription as the handle"
                got.append(reading)
                if len(got) == count:
                    break
        assert sub.stopped, "leaving the async with block must stop the subscription"
        return got

    def write(self, drf: str, value: Any, timeout: float | None = None) -> WriteResult:
        return self._portal.run(self.backend.write, drf, value, timeout)

    def write_many(
        self, settings: Sequence[tuple[str, Any]], timeout: float | None = None
    ) -> list[WriteResult]:
        return self._portal.run(self.backend.write_many, settings, timeout)

    def tasks(self) -> int:
        return self._portal.tasks()

    def close(self) -> None:
        try:
            self._portal.run(self.backend.aclose)
        finally:
            self._portal.close()


def _given(**options: Any) -> dict[str, Any]:
    """The options that were given (not None): the backend's defaults stand for the rest."""
    return {name: value for name, value in options.items() if value is not None}


def _opener(make: Callable[..., Any], face: Callable[[Any], Client]) -> Callable[..., Client]:
    """``open(host, port, auth=None, role=None, timeout=None, heartbeat_period=None)`` for
    backends made by ``make``, behind the ``face`` that blocks on them."""

    def open_client(
        host: str,
        port: int,
        auth: Any = None,
        role: str | None = None,
        timeout: float | None = None,
        heartbeat_period: float | None = None,
    ) -> Client:
        options = _given(timeout=timeout, heartbeat_period=heartbeat_period)
        return face(make(host, port, auth=auth, role=role, **options))

    return open_client


def _trio_backend(host: str, port: int, **options: Any) -> Any:
    if trio is None:
        pytest.skip("trio is not installed (the [trio] extra)")
    from acnet_proto.adapters.dpm.trio import TrioDPMBackend

    return TrioDPMBackend(host, port, **options)


_sync = _opener(SyncClient, BlockingClient)
_threaded = _opener(DPMBackend, BlockingClient)
_asyncio = _opener(AsyncioDPMBackend, lambda backend: AsyncClient(backend, AsyncioPortal()))
_trio = _opener(_trio_backend, lambda backend: AsyncClient(backend, TrioPortal()))


#: name -> ``open(host, port, auth=None, role=None, timeout=None, heartbeat_period=None)``,
#: for DPM/TCP servers.
ADAPTERS: dict[str, Callable[..., Client]] = {
    "sync": _sync,
    "threaded": _threaded,
    "asyncio": _asyncio,
    "trio": _trio,
}
#: the adapters that can apply settings
WRITERS = ("sync", "threaded", "asyncio", "trio")


# --- DPM over gRPC: the same faces; tests/adapters/grpc/test_grpc.py runs them on DAQSimServer ---
# (the suite above replays DPM/TCP conversations, which a gRPC client cannot take part in)


def _grpc(host: str, port: int, auth: Any = None) -> Client:
    from acnet_proto.adapters.grpc.threaded import GRPCBackend

    return BlockingClient(GRPCBackend(host, port, auth=auth))


def _grpc_asyncio(host: str, port: int, auth: Any = None) -> Client:
    from acnet_proto.adapters.grpc.asyncio import AsyncioGRPCBackend

    return AsyncClient(AsyncioGRPCBackend(host, port, auth=auth), AsyncioPortal())


def _grpc_trio(host: str, port: int, auth: Any = None) -> Client:
    if trio is None:
        pytest.skip("trio is not installed (the [trio] extra)")
    from acnet_proto.adapters.grpc.trio import TrioGRPCBackend

    return AsyncClient(TrioGRPCBackend(host, port, auth=auth), TrioPortal())


#: name -> ``open(host, port, auth=None)``, for DPM/gRPC servers.
GRPC_ADAPTERS: dict[str, Callable[..., Client]] = {
    "grpc": _grpc,
    "grpc-asyncio": _grpc_asyncio,
    "grpc-trio": _grpc_trio,
}


# --- ACL over HTTP: read-only, and no DPM conversation to take part in; test_behaviour.py runs
# the tests that need no DPM server (bad DRFs, a mute server) over READ_ADAPTERS


def _acl(host: str, port: int) -> Client:
    from acnet_proto.adapters.acl import ACLBackend

    return BlockingClient(ACLBackend(f"http://{host}:{port}/cgi-bin/acl.pl"))


#: name -> ``open(host, port)``: every DPM adapter, and the ACL one for reads.
READ_ADAPTERS: dict[str, Callable[[str, int], Client]] = {**ADAPTERS, "acl": _acl}

"""An asyncio server run on an event loop of its own, in a daemon thread, for sync code.

The simulated DPM and the transcript recorder are asyncio servers; tests, the
demo and scripts that are not async use them through :func:`in_thread`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Protocol, TypeVar

__all__ = ["STARTUP_TIMEOUT", "in_thread"]

log = logging.getLogger(__name__)

#: How long starting, and stopping, may take before it is called a failure.
STARTUP_TIMEOUT = 10.0


class AsyncServer(Protocol):
    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


_S = TypeVar("_S", bound=AsyncServer)


@contextlib.contextmanager
def in_thread(server: _S, what: str, thread_name: str) -> Iterator[_S]:
    """Run ``server`` (called ``what`` in errors) on its own event loop, in a daemon
    thread called ``thread_name``.

    Yields ``server`` once its ``start()`` returned (it listens); on exit
    awaits its ``aclose()`` and joins the thread. A failure to start (the
    port is taken, say) is raised here; a start that takes longer than
    :data:`STARTUP_TIMEOUT` is a RuntimeError naming ``what``.
    """
    started = threading.Event()
    failure: list[BaseException] = []
    stop: list[Callable[[], object]] = []

    async def main() -> None:
        stopping = asyncio.Event()
        try:
            await server.start()
        except BaseException as e:
            failure.append(e)
            started.set()
            return
        loop = asyncio.get_running_loop()
        stop.append(lambda: loop.call_soon_threadsafe(stopping.set))
        started.set()
        try:
            await stopping.wait()
        finally:
            await server.aclose()

    thread = threading.Thread(target=asyncio.run, args=(main(),), name=thread_name, daemon=True)
    thread.start()
    if not started.wait(STARTUP_TIMEOUT):
        raise RuntimeError(f"{what} did not start within {STARTUP_TIMEOUT} s")
    if failure:
        thread.join()
        raise failure[0]
    try:
        yield server
    finally:
        stop[0]()
        thread.join(STARTUP_TIMEOUT)
        if thread.is_alive():
            log.warning(
                "%s (thread %s) did not stop within %s s", what, thread_name, STARTUP_TIMEOUT
            )

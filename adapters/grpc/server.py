"""What our gRPC servers share: listening on ``host``:``port``, starting, stopping, serving.

The simulated DAQ (:mod:`acnet_proto.adapters.sim.daq`) and DevDB
(:mod:`acnet_proto.adapters.sim.devdb`) services and the supervised server
(:mod:`acnet_proto.adapters.proxy.supervised`) are each a :class:`GRPCServer` that
adds its own services to a thread-pooled ``grpc.server``.
"""

from __future__ import annotations

import abc

# Absolute imports make this the standard library's asyncio, not a module of ours.
import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Self, TypeVar

import grpc

from acnet_proto.api.config import host_port

__all__ = ["GRPCServer", "serve_until_cancelled"]


class GRPCServer(abc.ABC):
    """A gRPC server on ``host``:``port`` (0: a free port); :meth:`start` (or ``with``) starts it.

    ``workers`` is how many calls are served at once. A subclass says what it
    is in :attr:`_what` (for errors), names its threads with
    :attr:`_thread_prefix` and adds its services in :meth:`_add_services`.
    """

    #: How errors name the server, e.g. ``"the simulated DAQ"``.
    _what: str
    _thread_prefix: str

    def __init__(self, host: str, port: int, workers: int) -> None:
        self._host = host
        self._port = port
        self._workers = workers
        self._server: grpc.Server | None = None

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        """The port it listens on (the real one once started, even if 0 was asked)."""
        return self._port

    def __repr__(self) -> str:
        state = "listening" if self._server is not None else "stopped"
        return f"{type(self).__name__}({self._host!r}, {self._port}, {state})"

    @abc.abstractmethod
    def _add_services(self, server: grpc.Server) -> None:
        """Add the servicers to ``server``, which then starts listening."""

    def start(self) -> None:
        """Start listening; returns once calls are accepted. OSError if the port is taken."""
        if self._server is not None:
            raise RuntimeError(f"this {type(self).__name__} is already started")
        pool = ThreadPoolExecutor(self._workers, thread_name_prefix=self._thread_prefix)
        server = grpc.server(pool)
        self._add_services(server)
        where = f"{self._host}:{self._port}"
        try:
            port = server.add_insecure_port(host_port(self._host, self._port))
        except RuntimeError as e:
            raise OSError(f"{self._what} cannot listen on {where}: {e}") from None
        if port == 0:
            raise OSError(f"{self._what} cannot listen on {where}")
        server.start()
        self._server, self._port = server, port

    def stop(self) -> None:
        """Stop listening and end every call (open streams end ``CANCELLED``); idempotent."""
        server, self._server = self._server, None
        if server is not None:
            server.stop(None).wait()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


_Server = TypeVar("_Server", bound=GRPCServer)


async def serve_until_cancelled(
    server: _Server, ready: Callable[[_Server], None] | None = None
) -> None:
    """Start ``server``, call ``ready(server)``, and serve until cancelled; then stop it.

    The server runs in its own threads; this only keeps a loop's task alive
    beside the other simulators, and stops the server off the loop.
    """
    server.start()
    try:
        if ready is not None:
            ready(server)
        await asyncio.Event().wait()
    finally:
        await asyncio.to_thread(server.stop)

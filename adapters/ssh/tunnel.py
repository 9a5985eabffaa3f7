"""Local port forwards: :class:`Tunnel`, made by :meth:`SSHClient.forward`.

A tunnel only needs a way to open a channel for each connection, which the
client hands it, so this module does not import the client.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
from collections.abc import Callable

import paramiko

from acnet_proto.adapters.ssh.channel import CHUNK, JOIN_TIMEOUT, close_channel
from acnet_proto.adapters.ssh.errors import SSHError

__all__ = ["Tunnel"]

log = logging.getLogger(__name__)


class Tunnel:
    """A local port forward made by :meth:`SSHClient.forward`.

    One thread accepts; one per connection copies bytes both ways, passing a
    half-close (EOF one way) on rather than dropping the connection.
    ``stop()`` (or leaving a ``with`` block) closes the port and every
    connection through it.
    """

    def __init__(
        self,
        local_port: int,
        remote_host: str,
        remote_port: int,
        open_channel: Callable[[tuple[str, int]], paramiko.Channel],
    ) -> None:
        self.remote_host = remote_host
        self.remote_port = remote_port
        self._open_channel = open_channel
        try:
            self._listener = socket.create_server(("127.0.0.1", local_port))
        except OSError as exc:
            problem = f"cannot listen on 127.0.0.1:{local_port}: {exc.strerror}"
            raise OSError(exc.errno, problem) from None
        self.local_port: int = self._listener.getsockname()[1]
        # Readable once stop() starts: wakes every select() below.
        self._stop_r, self._stop_w = socket.socketpair()
        self._lock = threading.Lock()
        self._links: dict[threading.Thread, tuple[socket.socket, paramiko.Channel | None]] = {}
        self._stopped = False
        self._acceptor = threading.Thread(
            target=self._accept, name=f"ssh-forward-{self.local_port}", daemon=True
        )
        self._acceptor.start()

    @property
    def active(self) -> bool:
        return not self._stopped

    def __enter__(self) -> Tunnel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "active" if self.active else "stopped"
        return (
            f"Tunnel(127.0.0.1:{self.local_port} -> {self.remote_host}:{self.remote_port}, {state})"
        )

    def stop(self) -> None:
        """Close the listening port and all connections; wait for the threads (idempotent)."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            links = list(self._links.items())
        self._stop_w.send(b"x")
        for _, (sock, chan) in links:
            # Unblocks a sendall() stuck on a peer that stopped reading.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            if chan is not None:
                close_channel(chan)
        self._acceptor.join(JOIN_TIMEOUT)
        for thread, _ in links:
            thread.join(JOIN_TIMEOUT)
        self._listener.close()
        self._stop_r.close()
        self._stop_w.close()

    def _accept(self) -> None:
        while True:
            ready, _, _ = select.select([self._listener, self._stop_r], [], [])
            if self._stop_r in ready:
                return
            try:
                conn, peer = self._listener.accept()
            except OSError:
                continue  # the client gave up between select() and accept()
            thread = threading.Thread(
                target=self._carry, args=(conn, peer), name=f"ssh-forward-{peer[1]}", daemon=True
            )
            with self._lock:
                if self._stopped:
                    conn.close()
                    return
                self._links[thread] = (conn, None)
            thread.start()

    def _carry(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        me = threading.current_thread()
        chan = None
        try:
            chan = self._open_channel(peer)
            with self._lock:
                if self._stopped:
                    return
                self._links[me] = (conn, chan)
            self._splice(conn, chan)
        except SSHError as exc:
            log.warning(
                "forward 127.0.0.1:%d -> %s:%d: no channel for %s: %s",
                self.local_port,
                self.remote_host,
                self.remote_port,
                peer,
                exc,
            )
        except OSError as exc:  # a reset by either end just ends this connection
            log.debug("forward connection from %s ended: %s", peer, exc)
        finally:
            if chan is not None:
                close_channel(chan)
            conn.close()
            with self._lock:
                self._links.pop(me, None)

    def _splice(self, conn: socket.socket, chan: paramiko.Channel) -> None:
        # Each end maps to where its data goes; an end leaves the map at its EOF.
        targets: dict[socket.socket | paramiko.Channel, socket.socket | paramiko.Channel] = {
            conn: chan,
            chan: conn,
        }
        while targets:
            ready, _, _ = select.select([*targets, self._stop_r], [], [])
            if self._stop_r in ready:
                return
            for source in ready:
                target = targets[source]
                data = source.recv(CHUNK)
                if data:
                    target.sendall(data)
                    continue
                del targets[source]
                if target is conn:
                    conn.shutdown(socket.SHUT_WR)
                else:
                    chan.shutdown_write()

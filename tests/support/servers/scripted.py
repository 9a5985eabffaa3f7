"""A TCP server on loopback that plays the server side of a transcript, byte for byte.

For each connection it walks the transcript: a ``c2s`` line must arrive
exactly (however TCP chunks it), an ``s2c`` line is written as recorded.
Any difference is recorded in :attr:`ScriptedServer.errors` and the
connection is closed, so a client that strays from the recording fails
visibly instead of hanging.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Sequence

from acnet_proto.engine.transcript import Line


class ScriptedServer:
    """Serves ``lines`` to each client in turn; use as a context manager."""

    def __init__(self, lines: Sequence[Line], *, hold_open: bool = True) -> None:
        self.lines = list(lines)
        self.hold_open = hold_open
        self.errors: list[str] = []
        self.completed = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.host, self.port = self._listener.getsockname()[:2]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._closing = threading.Event()

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self._thread.join(5)
        self._listener.close()

    def _serve(self) -> None:
        # closing a listening socket does not wake a blocked accept(): poll
        self._listener.settimeout(0.05)
        while not self._closing.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with sock:
                sock.settimeout(5)
                self._play(sock)

    def _play(self, sock: socket.socket) -> None:
        for number, line in enumerate(self.lines, 1):
            if line.direction == "s2c":
                sock.sendall(line.data)
                continue
            got = _read_exactly(sock, len(line.data))
            if got != line.data:
                self.errors.append(
                    f"line {number} ({line.note}): expected {line.data.hex()}, got {got.hex()}"
                )
                return
        self.completed += 1
        if self.hold_open:
            # wait for the client to hang up, as a real server would
            try:
                while sock.recv(65536):
                    pass
            except OSError:
                pass


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    try:
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    return bytes(data)

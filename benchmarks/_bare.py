"""A bare DPM socket for the ``floor`` rows: no client library, only the codec.

It does the handshake, learns its list id, and from then on writes request
bytes encoded once and splits (and, where asked, decodes) what comes back,
with no state machine and no ``Reading``: about the least any client could
do against a server, so it shows how much of a read is the server's and the
kernel's. It uses no adapter code, so that it measures the same thing while
the adapters change.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Sequence

from acnet_proto.pc import dpm
from acnet_proto.pc._message import Message

HANDSHAKE = b"GET /dpm HTTP/1.1\r\nContent-Type: application/pc\r\n\r\n"

# what a list sends besides its data replies
_NOT_DATA = (dpm.AddToListReply, dpm.DeviceInfoReply, dpm.StartListReply, dpm.ListStatusReply)


def frame(message: Message) -> bytes:
    body = dpm.encode(message)
    return len(body).to_bytes(4, "big") + body


def one_shot(drf: str) -> str:
    """``drf`` with the immediate event, as clients send a one-shot read."""
    return drf if "@" in drf else drf + "@I"


class BareList:
    """A connected, handshaken DPM socket, blocking, with ``timeout`` set once (SO_RCVTIMEO).

    ``start(drfs)`` are the bytes of ``AddToList`` (refs 1..n) and
    ``StartList``; ``end`` those of ``StopList`` and ``ClearList``.
    """

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.sock = socket.create_connection((host, port), timeout)
        self.sock.settimeout(None)
        seconds = int(timeout)
        timeval = struct.pack("ll", seconds, int((timeout - seconds) * 1e6))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._pending, self._pos = b"", 0
        self.sock.sendall(HANDSHAKE)
        opened = dpm.decode_reply(self.next_frame())
        if not isinstance(opened, dpm.OpenListReply):
            raise RuntimeError(f"floor: expected OpenList_reply, got {opened!r}")
        self.list_id = opened.list_id
        self.end = frame(dpm.StopListRequest(list_id=self.list_id)) + frame(
            dpm.ClearListRequest(list_id=self.list_id)
        )

    def start(self, drfs: Sequence[str]) -> bytes:
        adds = [
            frame(dpm.AddToListRequest(list_id=self.list_id, ref_id=ref, drf_request=text))
            for ref, text in enumerate(drfs, 1)
        ]
        return b"".join(adds) + frame(dpm.StartListRequest(list_id=self.list_id))

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise RuntimeError("floor: the server closed the connection")
        self._pending = self._pending[self._pos :] + chunk
        self._pos = 0

    def next_frame(self) -> bytes:
        """The next frame's body, waiting for it if it is not in yet."""
        while True:
            pending, pos = self._pending, self._pos
            if len(pending) - pos >= 4:
                end = pos + 4 + int.from_bytes(pending[pos : pos + 4], "big")
                if end <= len(pending):
                    self._pos = end
                    return pending[pos + 4 : end]
            self._fill()

    def count(self) -> int:
        """Receive once; the number of frames completed, none of them decoded."""
        self._fill()
        pending, pos, frames = self._pending, 0, 0
        while len(pending) - pos >= 4:
            end = pos + 4 + int.from_bytes(pending[pos : pos + 4], "big")
            if end > len(pending):
                break
            pos, frames = end, frames + 1
        self._pos = pos
        return frames

    def read(self, request: bytes, data_replies: int) -> int:
        """Send ``request``, decode replies until ``data_replies`` data replies are in,
        send :attr:`end`; the number of those that were not ``ok`` (status 0)."""
        self.sock.sendall(request)
        failed = 0
        while data_replies:
            reply = dpm.decode_reply(self.next_frame())
            if not isinstance(reply, _NOT_DATA):
                data_replies -= 1
                failed += getattr(reply, "status", 0) != 0
        self.sock.sendall(self.end)
        return failed

    def close(self) -> None:
        self.sock.close()

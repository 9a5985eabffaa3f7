"""DPM/TCP framing: the handshake, then 4-byte big-endian length-prefixed frames.

The client opens with :data:`HANDSHAKE`; from then on both directions carry
frames. The acsys proxy that fronts DPM may refuse instead, answering with an
HTTP status line: the first four bytes a client reads are then ``HTTP``.

>>> splitter = FrameSplitter()
>>> splitter.feed(b"\\x00\\x00\\x00\\x03ab")
[]
>>> splitter.feed(b"c\\x00\\x00\\x00\\x01z")
[b'abc', b'z']
"""

from __future__ import annotations

import struct
from typing import Generic, TypeVar

from acnet_proto.errors import ConnectionRefusedByProxy, RemoteProtocolError

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "HANDSHAKE",
    "FrameMemo",
    "FrameSplitter",
    "HandshakeReader",
    "frame",
]

_K = TypeVar("_K")
_V = TypeVar("_V")
_LENGTH = struct.Struct(">I")

HANDSHAKE = b"GET /dpm HTTP/1.1\r\nContent-Type: application/pc\r\n\r\n"
DEFAULT_MAX_FRAME_SIZE = 64 * 1024 * 1024
_MAX_STATUS_LINE = 4096
_MAX_HANDSHAKE = 8192


def frame(payload: bytes) -> bytes:
    """``payload`` with its 4-byte big-endian length in front."""
    return len(payload).to_bytes(4, "big") + payload


class FrameMemo(dict[_K, _V], Generic[_K, _V]):
    """A dict of frames already made or already decoded, holding at most ``limit`` entries.

    Look up with :meth:`dict.get`; :meth:`remember` forgets everything first
    when the memo is full. Clearing costs far less than an LRU's bookkeeping
    on every hit, and a working set larger than ``limit`` costs one insertion
    per miss, no more.
    """

    __slots__ = ("limit",)

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def remember(self, key: _K, value: _V) -> None:
        if len(self) >= self.limit:
            self.clear()
        self[key] = value


class FrameSplitter:
    """Split a byte stream into frames, however it was chunked.

    :meth:`feed` takes whatever arrived and returns every frame it completed,
    in order; a partial frame waits for the next call. With
    ``detect_http_refusal=True`` (the client side), a stream that starts with
    ``HTTP`` raises :class:`~acnet_proto.errors.ConnectionRefusedByProxy` once
    its status line is complete.
    """

    def __init__(
        self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE, *, detect_http_refusal: bool = False
    ) -> None:
        if max_frame_size < 1:
            raise ValueError(f"max_frame_size must be at least 1, got {max_frame_size}")
        self.max_frame_size = max_frame_size
        self._buffer = bytearray()
        self._checking_refusal = detect_http_refusal
        self._failure: RemoteProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received that do not yet make a whole frame."""
        return len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Add ``data`` and return the frames it completed (possibly none).

        Raises :class:`RemoteProtocolError` for a length prefix above
        ``max_frame_size`` (nothing is allocated for it) and
        :class:`ConnectionRefusedByProxy` for an HTTP refusal.
        """
        if self._failure is not None:
            raise self._failure
        buf = self._buffer
        frames: list[bytes] = []
        if not buf and not self._checking_refusal and type(data) is bytes:
            # Nothing held back: cut the frames straight out of ``data``.
            try:
                pos = self._split(data, frames)
            except RemoteProtocolError:
                buf += data  # held, as the copying path below holds it
                raise
            if pos < len(data):
                buf += memoryview(data)[pos:]
            return frames
        buf += data
        if self._checking_refusal:
            if not self._refusal_ruled_out(buf):
                return []
            self._checking_refusal = False
        with memoryview(buf) as view:
            pos = self._split(view, frames)
        if pos:
            del buf[:pos]
        return frames

    def _split(self, data: bytes | memoryview, frames: list[bytes]) -> int:
        """Append the whole frames at the start of ``data`` to ``frames``; return where
        the rest begins."""
        pos, end_of_data = 0, len(data)
        while end_of_data - pos >= 4:
            (size,) = _LENGTH.unpack_from(data, pos)
            if size > self.max_frame_size:
                self._failure = RemoteProtocolError(
                    f"a frame claims {size} bytes, more than max_frame_size="
                    f"{self.max_frame_size}; the peer is not speaking DPM framing"
                )
                if not frames:
                    raise self._failure
                # Hand over the frames that came before it; the next call raises.
                break
            end = pos + 4 + size
            if end > end_of_data:
                break
            frames.append(bytes(data[pos + 4 : end]))
            pos = end
        return pos

    @property
    def failed(self) -> bool:
        """True once a bad length prefix was found: the next :meth:`feed` raises it."""
        return self._failure is not None

    def _refusal_ruled_out(self, buf: bytearray) -> bool:
        """True once the stream is known not to start with an HTTP refusal."""
        if not b"HTTP".startswith(bytes(buf[:4])):
            return True
        if len(buf) < 4:
            return False
        line_end = buf.find(b"\r\n")
        if line_end < 0 and len(buf) < _MAX_STATUS_LINE:
            return False
        status_line = bytes(buf[: line_end if line_end >= 0 else _MAX_STATUS_LINE])
        raise ConnectionRefusedByProxy(status_line.decode("latin-1").strip())

    def close(self) -> None:
        """The stream ended: raise if it ended inside a frame or a status line."""
        if self._failure is not None:
            raise self._failure
        if self._checking_refusal and self._buffer.startswith(b"HTTP"):
            raise ConnectionRefusedByProxy(bytes(self._buffer).decode("latin-1").strip())
        if self._buffer:
            have = len(self._buffer)
            want = int.from_bytes(self._buffer[:4], "big") + 4 if have >= 4 else 4
            raise RemoteProtocolError(
                f"the peer closed the connection inside a frame ({have} of {want} bytes received)"
            )


class HandshakeReader:
    """The server side of the handshake: consume the client's HTTP-style request.

    :meth:`feed` returns ``None`` until the request's blank line has arrived,
    then the bytes that followed it (the start of the frame stream). The
    request line must be ``GET /dpm HTTP/1.x``.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes | bytearray | memoryview) -> bytes | None:
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > _MAX_HANDSHAKE or not _could_be_handshake(self._buffer):
                raise RemoteProtocolError(
                    f"expected the DPM handshake {HANDSHAKE!r}, got {bytes(self._buffer[:80])!r}"
                )
            return None
        request_line = bytes(self._buffer[: self._buffer.find(b"\r\n")])
        parts = request_line.split()
        if (
            len(parts) != 3
            or parts[0] != b"GET"
            or parts[1] != b"/dpm"
            or not parts[2].startswith(b"HTTP/1.")
        ):
            raise RemoteProtocolError(f"expected 'GET /dpm HTTP/1.1', got {request_line!r}")
        rest = bytes(self._buffer[end + 4 :])
        self._buffer.clear()
        return rest


def _could_be_handshake(buf: bytearray) -> bool:
    head = bytes(buf[:8])
    return b"GET /dpm".startswith(head) or head.startswith(b"GET /dpm")

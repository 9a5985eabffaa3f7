"""``acnet-proto record``: a proxy that records DPM sessions to transcripts.

Point a client (pacsys, the lab's tools, ours) at the proxy; it forwards
every byte to the real server unchanged and writes each connection's
conversation as a JSONL transcript (see :mod:`acnet_proto.engine.transcript`).
Kerberos tokens and MICs are zeroed in the file unless ``redact=False``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

from acnet_proto.engine.transcript import Line, dump, redact

__all__ = ["Recorder"]

log = logging.getLogger(__name__)
_CHUNK = 256 * 1024


class Recorder:
    """Forwards connections on ``host``:``port`` to ``upstream``, recording each one.

    The first connection is written to ``output``; later ones to
    ``output`` with ``-2``, ``-3``, ... before the suffix.
    """

    def __init__(
        self,
        upstream: tuple[str, int],
        output: str | Path,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        redact: bool = True,
    ) -> None:
        self.upstream = upstream
        self.output = Path(output)
        self.host = host
        self.port = port
        self.redact = redact
        self.written: list[Path] = []
        self._server: asyncio.Server | None = None
        self._count = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._proxy, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def _path(self, number: int) -> Path:
        if number == 1:
            return self.output
        return self.output.with_name(f"{self.output.stem}-{number}{self.output.suffix}")

    async def _proxy(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._count += 1
        path = self._path(self._count)
        lines: list[Line] = []
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError as exc:
            log.warning("cannot reach %s:%d: %s", *self.upstream, exc)
            writer.close()
            return
        await asyncio.gather(
            _pump(reader, up_writer, lambda d: lines.append(Line("c2s", d))),
            _pump(up_reader, writer, lambda d: lines.append(Line("s2c", d))),
        )
        dump(redact(lines) if self.redact else lines, path)
        self.written.append(path)
        log.info("recorded %d writes to %s", len(lines), path)


async def _pump(
    source: asyncio.StreamReader, sink: asyncio.StreamWriter, record: Callable[[bytes], None]
) -> None:
    """Copy until EOF, recording each chunk; then pass the EOF on."""
    try:
        while data := await source.read(_CHUNK):
            record(data)
            sink.write(data)
            await sink.drain()
    except OSError:
        pass  # the other side went away: the recording ends here
    finally:
        with contextlib.suppress(OSError):
            sink.close()

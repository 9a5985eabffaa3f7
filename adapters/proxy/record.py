"""``acnet-proto record``: a proxy that records DPM sessions to transcripts.

Point a client (pacsys, the lab's tools, ours) at the proxy; it forwards
every byte to the real server unchanged and writes each connection's
conversation as a JSONL transcript (see :mod:`acnet_proto.engine.transcript`).
Kerberos tokens and MICs are zeroed in the file unless ``redact=False``; a
connection whose secrets cannot be zeroed is not written at all (see
:attr:`Recorder.refused`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acnet_proto.adapters._in_thread import in_thread
from acnet_proto.engine.transcript import Line, RedactionError, dump, redact

__all__ = ["Recorder", "Refusal"]

log = logging.getLogger(__name__)
_CHUNK = 256 * 1024


@dataclass(frozen=True, slots=True)
class Refusal:
    """A connection that was not recorded: ``path`` is where it would have gone."""

    path: Path
    error: RedactionError

    def __str__(self) -> str:
        return f"not recorded: {self.path}: {self.error}"


class Recorder:
    """Forwards connections on ``host``:``port`` to ``upstream``, recording each one.

    The first connection is written to ``output``; later ones to
    ``output`` with ``-2``, ``-3``, ... before the suffix. Each connection is
    held in memory until it closes, then written in one go and added to
    :attr:`written`. With ``redact`` (the default) a connection whose
    Kerberos secrets cannot be zeroed (:class:`RedactionError`) is written
    nowhere: it is logged as a warning, added to :attr:`refused` and passed to
    ``on_refused`` if given.
    """

    def __init__(
        self,
        upstream: tuple[str, int],
        output: str | Path,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        redact: bool = True,
        on_refused: Callable[[Refusal], None] | None = None,
    ) -> None:
        self.upstream = upstream
        self.output = Path(output)
        self.host = host
        self.port = port
        self.redact = redact
        self.on_refused = on_refused
        self.written: list[Path] = []
        self.refused: list[Refusal] = []
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

    @classmethod
    def in_thread(
        cls, upstream: tuple[str, int], output: str | Path, **options: Any
    ) -> contextlib.AbstractContextManager[Recorder]:
        """A recorder on an event loop of its own in a daemon thread, for sync code.

        Yields once it is listening (read ``.host``/``.port``); on exit stops
        it and joins the thread. A failure to start is raised here.
        """
        return in_thread(cls(upstream, output, **options), "the recorder", "recorder")

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
        self._write(lines, path)

    def _write(self, lines: list[Line], path: Path) -> None:
        """Write the transcript, or refuse it when its secrets cannot be zeroed."""
        try:
            kept = redact(lines) if self.redact else lines
        except RedactionError as exc:
            refusal = Refusal(path, exc)
            self.refused.append(refusal)
            log.warning("%s", refusal)
            if self.on_refused is not None:
                self.on_refused(refusal)
            return
        dump(kept, path)
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

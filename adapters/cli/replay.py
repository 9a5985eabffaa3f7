"""``acnet-proto replay SESSION.jsonl --port P``: serve a recorded DPM session to any client.

The transcripts (each with the files the recorder numbered after it:
``session-2.jsonl``, ...) are read before anything listens; one that cannot
be read or played is a usage error (exit 2) naming the file and the line.
Each client connection plays the next recorded one. Every departure from
the recording is one line on stderr, as it happens. The command returns
once every recorded connection was served and closed, at the first
departure, or at Ctrl-C: exit 0 if the client played the whole recording,
1 if it departed or made fewer connections than recorded (one line on
stderr for each connection it never made). A port that cannot be listened
on is exit 3.

``--keytab KEYTAB`` plays Kerberos live, so a real Kerberos client can
replay a recorded write: the server announces ``daeset/bd`` and accepts
tickets for ``daeset/bd@FNAL.GOV`` from the keytab, as ``acnet-proto sim
--keytab`` does. A keytab that is missing or cannot accept as that
principal is a usage error (exit 2), before anything listens.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acnet_proto.adapters.cli.exits import DEVICE_ERROR, OK, usage

if TYPE_CHECKING:  # imported when run: the CLI starts without the servers
    from acnet_proto.adapters.sim.replay import ReplayServer
    from acnet_proto.engine.recording import Recording
    from acnet_proto.engine.replay import ReplayMismatch

__all__ = ["replay", "replay_options"]


def replay_options(commands: Any) -> None:
    """Add the ``replay`` subcommand to ``commands`` (argparse subparsers)."""
    rep = commands.add_parser("replay", help="serve the server side of recorded DPM sessions")
    rep.add_argument("transcripts", nargs="+", metavar="SESSION.jsonl")
    rep.add_argument("--host", default="127.0.0.1")
    rep.add_argument("--port", type=int, default=6802, help="0 picks a free port")
    rep.add_argument(
        "--keytab", help="keytab holding daeset/bd: authenticate live, so recorded writes replay"
    )


def replay(args: argparse.Namespace) -> int:
    """Serve the recording until it was played, the client departed, or Ctrl-C; the exit
    code says whether the client played all of it (see the module docstring)."""
    from acnet_proto.adapters.cli.serve import serving

    recording = _recording(args.transcripts)
    departed = asyncio.Event()

    def report(mismatch: ReplayMismatch) -> None:
        _print(mismatch)
        departed.set()

    server = _server(args, recording, report)
    live = f"; Kerberos live with {args.keytab}" if args.keytab else ""

    async def run() -> None:
        await server.start()
        print(
            f"replaying {len(recording)} recorded connection(s) on {server.host}:{server.port}"
            f"{live}; Ctrl-C stops it",
            flush=True,
        )
        try:
            await _first(server.done, departed)
        finally:
            await server.aclose()

    serving(run())
    return _outcome(server)


def _recording(transcripts: list[str]) -> Recording:
    """The recording in ``transcripts``; one that cannot be read or played is a usage error."""
    from acnet_proto.adapters.sim.replay import load
    from acnet_proto.engine.recording import RecordingError

    try:
        return load(*transcripts)
    except OSError as exc:
        what = exc.filename or transcripts[0]
        usage(f"cannot read {what}: {exc.strerror or exc}; check the path")
    except RecordingError as exc:
        usage(str(exc))


async def _first(*events: asyncio.Event) -> None:
    """Return once any of ``events`` is set."""
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


def _outcome(server: ReplayServer) -> int:
    """OK if the client played the whole recording; else DEVICE_ERROR, once each recorded
    connection it never made is reported (its departures were, as they happened)."""
    for unmade in server.replay.unserved():
        _print(unmade)
    return DEVICE_ERROR if server.problems() else OK


def _server(
    args: argparse.Namespace, recording: Recording, report: Callable[[ReplayMismatch], None]
) -> ReplayServer:
    """The server for ``args``; a keytab that cannot accept as daeset/bd is a usage error."""
    from acnet_proto.adapters.sim.replay import ReplayServer
    from acnet_proto.errors import AuthenticationError

    if args.keytab and not Path(args.keytab).is_file():
        usage(f"--keytab {args.keytab}: no such file; give the keytab holding daeset/bd")
    try:
        return ReplayServer(recording, args.host, args.port, on_mismatch=report, keytab=args.keytab)
    except AuthenticationError as exc:  # the keytab is checked as the server is made
        usage(f"--keytab {args.keytab}: {exc}")


def _print(mismatch: Exception) -> None:
    print(f"acnet-proto replay: {mismatch}", file=sys.stderr, flush=True)

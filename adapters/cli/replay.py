"""``acnet-proto replay SESSION.jsonl --port P``: serve a recorded DPM session to any client.

The transcripts (each with the files the recorder numbered after it:
``session-2.jsonl``, ...) are read before anything listens; one that cannot
be read or played is a usage error (exit 2) naming the file and the line.
Each client connection plays the next recorded one. Every departure from
the recording is one line on stderr, as it happens. The command returns
once every recorded connection was served and closed: exit 0 if the client
kept to the recording, 1 if it departed. A port that cannot be listened on
is exit 3.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from acnet_proto.adapters.cli.exits import DEVICE_ERROR, OK, usage

__all__ = ["replay", "replay_options"]


def replay_options(commands: Any) -> None:
    """Add the ``replay`` subcommand to ``commands`` (argparse subparsers)."""
    rep = commands.add_parser("replay", help="serve the server side of recorded DPM sessions")
    rep.add_argument("transcripts", nargs="+", metavar="SESSION.jsonl")
    rep.add_argument("--host", default="127.0.0.1")
    rep.add_argument("--port", type=int, default=6802, help="0 picks a free port")


def replay(args: argparse.Namespace) -> int:
    """Serve the recording until every recorded connection was played (or Ctrl-C)."""
    from acnet_proto.adapters.cli.serve import serving
    from acnet_proto.adapters.sim.replay import ReplayServer, load
    from acnet_proto.engine.recording import RecordingError

    try:
        recording = load(*args.transcripts)
    except OSError as exc:
        what = exc.filename or args.transcripts[0]
        usage(f"cannot read {what}: {exc.strerror or exc}; check the path")
    except RecordingError as exc:
        usage(str(exc))
    server = ReplayServer(recording, args.host, args.port, on_mismatch=_print)

    async def run() -> None:
        await server.start()
        print(
            f"replaying {len(recording)} recorded connection(s) on {server.host}:{server.port}; "
            "Ctrl-C stops it",
            flush=True,
        )
        try:
            await server.done.wait()
        finally:
            await server.aclose()

    serving(run())
    return DEVICE_ERROR if server.mismatches else OK


def _print(mismatch: Exception) -> None:
    print(f"acnet-proto replay: {mismatch}", file=sys.stderr, flush=True)

"""Command-line tools: ``acnet-proto`` (get, put, monitor, info, decode, sim, record, replay,
demo).

``acnet-proto get|put|monitor|info`` are the canonical names of the
EPICS-style tools; ``acget``, ``acput``, ``acmonitor`` and ``acinfo`` are
the same commands under pacsys's names. Every failure is one line on stderr
and an exit status (see :mod:`~acnet_proto.adapters.cli.exits`).

This is an entry point, not part of the pure core: it imports adapters.
Each command's module is imported when that command runs, not before.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

from acnet_proto.adapters.cli.exits import run_tool
from acnet_proto.adapters.cli.options import Parser

__all__ = [
    "TOOLS",
    "acget_main",
    "acinfo_main",
    "acmonitor_main",
    "acput_main",
    "main",
]

#: ``acnet-proto NAME`` -> what it does; ``acNAME`` runs the same: ``acNAME()`` of module NAME
TOOLS: dict[str, str] = {
    "get": "read devices once (also: acget)",
    "put": "set devices, showing the setting before and after (also: acput)",
    "monitor": "stream devices (also: acmonitor)",
    "info": "describe devices (also: acinfo)",
}


def _tool(name: str) -> Callable[[Sequence[str] | None, str], int]:
    """Tool ``name``: ``acNAME(argv, prog)`` of module NAME, imported when it runs (inside
    :func:`run_tool`, so that a failure to import it is one error line too)."""

    def command(argv: Sequence[str] | None, prog: str) -> int:
        module = importlib.import_module(f"acnet_proto.adapters.cli.{name}")
        tool: Callable[[Sequence[str] | None, str], int] = getattr(module, f"ac{name}")
        return tool(argv, prog)

    return command


def _entry(name: str) -> Callable[[Sequence[str] | None], int]:
    """The ``acNAME`` console script: ``argv`` (None: the command line) in, exit status out."""

    def run(argv: Sequence[str] | None = None) -> int:
        return run_tool(f"ac{name}", _tool(name), argv)

    run.__name__ = f"ac{name}_main"
    run.__doc__ = f"``ac{name}`` (``acnet-proto {name}``): ``argv`` in, exit status out."
    return run


acget_main = _entry("get")
acput_main = _entry("put")
acmonitor_main = _entry("monitor")
acinfo_main = _entry("info")


def _parser() -> Parser:
    parser = Parser(
        prog="acnet-proto",
        description="Read, set and stream ACNET devices; simulate, record and decode DPM.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, what in TOOLS.items():
        # listed for --help; main() hands their arguments to the tool before parsing
        commands.add_parser(name, help=what, add_help=False)
    dec = commands.add_parser("decode", help="print a JSONL transcript readably")
    dec.add_argument("file")
    dec.add_argument(
        "--check", action="store_true", help="report the first frame that breaks the state machine"
    )
    from acnet_proto.adapters.cli.serve import serve_options

    serve_options(commands)
    from acnet_proto.adapters.cli.replay import replay_options

    replay_options(commands)
    demo = commands.add_parser("demo", help="tour the library against an in-process simulator")
    demo.add_argument("--no-kerberos", action="store_true", help="skip the throwaway KDC")
    return parser


def _command(argv: Sequence[str] | None, prog: str) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in TOOLS:  # its errors name it: "acnet-proto get: ..."
        return run_tool(f"{prog} {argv[0]}", _tool(argv[0]), argv[1:])
    args = _parser().parse_args(argv)
    if args.command == "decode":
        from acnet_proto.adapters.cli.decode import decode

        return decode(args.file, args.check)
    if args.command in ("sim", "record"):
        from acnet_proto.adapters.cli import serve

        return serve.sim(args) if args.command == "sim" else serve.record(args)
    if args.command == "replay":
        from acnet_proto.adapters.cli.replay import replay

        return replay(args)
    from acnet_proto.adapters.cli.demo import run as run_demo

    return run_demo(kerberos=not args.no_kerberos)


def main(argv: Sequence[str] | None = None) -> int:
    """``acnet-proto``: see ``acnet-proto --help``."""
    return run_tool("acnet-proto", _command, argv)


if __name__ == "__main__":
    sys.exit(main())

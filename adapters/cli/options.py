"""The options the ``ac*`` tools share, and a parser whose errors are one line.

Every tool takes ``-b/--backend`` (dpm, grpc, dmq, acl), ``-H/--host``,
``-P/--port``, ``--timeout``, ``--sim`` and ``--format`` (text, json, csv);
the tools that set devices take ``--role`` and ``--principal`` too. What a
backend does not use is a usage error, not silently ignored.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from acnet_proto.adapters.cli.exits import usage
from acnet_proto.adapters.default import BACKENDS, KINDS

__all__ = [
    "BACKENDS",
    "FORMATS",
    "Parser",
    "connection_options",
    "credential_options",
    "require",
    "whole_number",
]

FORMATS = ("text", "json", "csv")

#: the backends that take no --host/--port (ACL's URL comes from $ACNET_ACL_URL)
_NO_ADDRESS = ("acl",)


def _unused(backend: str) -> list[str]:
    """The options ``backend`` cannot use: --role unless it takes one, --principal unless it
    takes Kerberos credentials (and --host/--port for :data:`_NO_ADDRESS`)."""
    kind = KINDS[backend]
    unused = ["host", "port"] if backend in _NO_ADDRESS else []
    if not kind.role:
        unused.append("role")
    if "kerberos" not in kind.takes:
        unused.append("principal")
    return unused


#: what argparse should take for a negative number, not an option: -5, -1e-3, -.5, -inf, -nan
_NEGATIVE_NUMBER = re.compile(
    r"^-(?:(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?|inf(?:inity)?|nan)$", re.IGNORECASE
)


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors raise a usage :class:`CLIError` (one line, exit 2).

    Arguments that look like negative numbers (``-1e-3``, ``-inf``) are
    values, not options, as ``-5`` already is for argparse.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # argparse's own pattern knows -5 and -.5 only (an internal of argparse, kept since 3.2)
        self._negative_number_matcher = _NEGATIVE_NUMBER

    def error(self, message: str) -> NoReturn:
        usage(f"{message}; see {self.prog} --help")

    def parse(self, argv: Sequence[str] | None) -> argparse.Namespace:
        """``parse_args(argv)``, then a usage error for an option the backend does not use."""
        ns = self.parse_args(argv)
        backend = getattr(ns, "backend", None)
        for name in _unused(backend) if backend is not None else ():
            if getattr(ns, name, None) is not None:
                usage(f"--{name} is not used by the {backend} backend; leave it out")
        return ns


def require(backend: str, operation: str) -> None:
    """A usage error if ``backend`` cannot do ``operation`` (``"stream"`` or ``"set"``)."""
    why = KINDS[backend].cannot.get(operation)
    if why is not None:
        able = ", ".join(b for b in BACKENDS if operation not in KINDS[b].cannot)
        usage(f"the {backend} backend cannot {operation} ({why}); use -b {able.replace(', ', '|')}")


def whole_number(low: int) -> Callable[[str], int]:
    """An option type: a whole number of at least ``low``."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{text!r} must be at least {low}")
        return value

    return convert


def _seconds(text: str) -> float:
    """A ``--timeout`` value: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number of seconds")
    return value


def connection_options(parser: argparse.ArgumentParser) -> None:
    """Add the options that say which server to use, how long to wait, and the output format."""
    parser.add_argument(
        "-b", "--backend", choices=BACKENDS, default="dpm", help="which service (default dpm)"
    )
    parser.add_argument(
        "--sim", action="store_true", help="use a simulator of the backend started in this process"
    )
    parser.add_argument(
        "-H", "--host", help="server host (default: $ACNET_DPM_HOST, $ACNET_GRPC_HOST...)"
    )
    parser.add_argument("-P", "--port", type=int, help="server port (default: the backend's)")
    parser.add_argument(
        "--timeout",
        type=_seconds,
        metavar="S",
        help="seconds to wait (default 5; acmonitor: forever)",
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="text", help="output format (default text)"
    )


def credential_options(parser: argparse.ArgumentParser) -> None:
    """Add what settings need: the role (DPM) and the Kerberos principal (DPM, DMQ)."""
    parser.add_argument("--role", help="the settings role, for DPM (default testing)")
    parser.add_argument("--principal", help="Kerberos principal (default: the ticket's)")

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

__all__ = [
    "BACKENDS",
    "FORMATS",
    "Parser",
    "connection_options",
    "credential_options",
    "require",
    "whole_number",
]

BACKENDS = ("dpm", "grpc", "dmq", "acl")
FORMATS = ("text", "json", "csv")

#: what each backend cannot do at all (ACL over HTTP answers each request once, read-only)
_CANNOT = {"acl": {"stream": "ACL over HTTP answers each request once", "set": "ACL is read-only"}}

#: options each backend cannot use (ACL's URL comes from $ACNET_ACL_URL)
_UNUSED_BY_BACKEND = {
    "acl": ("host", "port", "role", "principal"),
    "grpc": ("role", "principal"),
    "dmq": ("role",),
}


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
        for name in _UNUSED_BY_BACKEND.get(backend or "", ()):
            if getattr(ns, name, None) is not None:
                usage(f"--{name} is not used by the {backend} backend; leave it out")
        return ns


def require(backend: str, operation: str) -> None:
    """A usage error if ``backend`` cannot do ``operation`` (``"stream"`` or ``"set"``)."""
    why = _CANNOT.get(backend, {}).get(operation)
    if why is not None:
        able = ", ".join(b for b in BACKENDS if operation not in _CANNOT.get(b, {}))
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

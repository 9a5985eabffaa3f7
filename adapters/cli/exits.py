"""Exit codes, and how every failure becomes one line on stderr.

The command-line tools never show a traceback. Each failure is one line,
``PROG: what went wrong (naming the input); what to do``, and the exit
status says which kind it was:

====  ==================================================================
0     everything worked
1     a device answered an error, a setting was refused or not verified,
      or a read or stream timed out
2     usage: bad arguments, DRFs or values; missing configuration or
      credentials; a bad simulator file
3     no connection: could not connect, or the connection was lost (and,
      for ``acnet-proto sim``/``record``, the port could not be listened on,
      or a helper server it starts, a KDC or a broker, did not start)
130   interrupted (Ctrl-C)
====  ==================================================================

When several things went wrong, the highest code wins.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from acnet_proto.api.backend import Backend
from acnet_proto.drf import DRFError
from acnet_proto.errors import (
    AcnetProtoError,
    AuthenticationError,
    ConfigurationError,
    ConnectionLost,
    ProtocolError,
    ReadError,
    SettingOutcomeUnknown,
)
from acnet_proto.types import Reading

__all__ = [
    "DEVICE_ERROR",
    "INTERRUPTED",
    "NO_CONNECTION",
    "OK",
    "UNREACHABLE",
    "USAGE",
    "CLIError",
    "drf_problem",
    "explain",
    "get_readings",
    "read_failure",
    "report",
    "reported",
    "run_tool",
    "usage",
]

OK = 0
DEVICE_ERROR = 1
USAGE = 2
NO_CONNECTION = 3
INTERRUPTED = 130

#: what a dead or unreachable server looks like (exit 3)
UNREACHABLE = (OSError, ProtocolError, ConnectionLost)


class CLIError(AcnetProtoError):
    """A command-line tool's failure: ``code`` is its exit status, the message its one line.

    The message names the input and says what to do next; the tool's name
    is put in front of it when it is printed.
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def usage(message: str) -> NoReturn:
    """Fail with a usage error (exit 2)."""
    raise CLIError(USAGE, message)


def drf_problem(exc: DRFError) -> str:
    """A :class:`DRFError` on one line (its own message draws a caret on the next ones)."""
    expected = f" (expected {exc.expected})" if exc.expected else ""
    return (
        f"{exc.subject} {exc.text!r} at position {exc.position}: {exc.problem}{expected}; "
        "fix the DRF (DEVICE[.PROPERTY][range][.FIELD][@EVENT])"
    )


def read_failure(exc: ReadError) -> CLIError:
    """What a read cut short means: a timeout (exit 1) if its deadline passed, else no
    connection (exit 3: the connection failed or broke)."""
    if exc.timed_out:
        return CLIError(DEVICE_ERROR, f"{exc} (--timeout sets how long to wait)")
    return CLIError(NO_CONNECTION, f"{exc}; check the host and port, and that the server is up")


def get_readings(backend: Backend, drfs: Sequence[str]) -> tuple[list[Reading], CLIError | None]:
    """The readings of ``drfs`` in one batch; if the read was cut short, what arrived (error
    readings for the rest) and why (:func:`read_failure`), else None."""
    try:
        return backend.get_many(drfs), None
    except ReadError as exc:
        return exc.readings, read_failure(exc)


def report(prog: str, message: str) -> None:
    """Print one error line for ``prog`` on stderr (newlines in ``message`` folded)."""
    text = " ".join(message.split())
    print(f"{prog}: {text}", file=sys.stderr, flush=True)


def reported(prog: str, code: int, failure: CLIError | None) -> int:
    """``code``; with a ``failure``, that reported (after what was printed) and the higher code."""
    if failure is None:
        return code
    report(prog, failure.message)
    return max(code, failure.code)


def explain(exc: BaseException) -> tuple[int, str]:
    """The exit status and the line for an error (a command's own, or one it did not handle)."""
    if isinstance(exc, CLIError):
        return exc.code, exc.message
    if isinstance(exc, DRFError):
        return USAGE, drf_problem(exc)
    if isinstance(exc, ConfigurationError):
        hint = "" if "--sim" in str(exc) else "; or add --sim to use a simulator in-process"
        return USAGE, f"{exc}{hint}"
    if isinstance(exc, AuthenticationError):
        return USAGE, str(exc)
    if isinstance(exc, ReadError):
        return explain(read_failure(exc))
    if isinstance(exc, (SettingOutcomeUnknown, *UNREACHABLE)):
        return NO_CONNECTION, f"{exc}; check that the server is up, then try again"
    if isinstance(exc, AcnetProtoError):
        return DEVICE_ERROR, str(exc)
    # the last resort: a bug is still one line, not a traceback
    what = f"{type(exc).__name__}: {exc}"
    return DEVICE_ERROR, f"unexpected error ({what}); please report it with the command line"


def run_tool(
    prog: str, command: Callable[[Sequence[str] | None, str], int], argv: Sequence[str] | None
) -> int:
    """Run ``command(argv, prog)``; any failure it raises becomes one line and an exit code."""
    try:
        return command(argv, prog)
    except KeyboardInterrupt:
        return INTERRUPTED
    except BrokenPipeError:  # the reader went away (`acmonitor ... | head -3`): that is the end
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the exit's flush does not fail again
        return OK
    except Exception as exc:
        code, message = explain(exc)
        report(prog, message)
        return code

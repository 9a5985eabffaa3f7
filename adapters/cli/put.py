"""``acput DEVICE VALUE [DEVICE VALUE...]`` (``acnet-proto put``): set devices (like ``caput``).

For each pair it prints the setting before (``Old``) and after (``New``),
read from the SETTING property (for a ``|``/``&`` command, the STATUS).
Every pair is checked before anything is sent: one bad pair and nothing is
written. Pairs go in one batch; ``--verify`` then reads each back until it
shows (for a command, until the STATUS bit it changes does).

DPM settings need a Kerberos ticket (``kinit``) and ``--role``; gRPC a JWT
in ``$ACNET_JWT_TOKEN``; DMQ a Kerberos ticket.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from acnet_proto.adapters.cli.connect import connect
from acnet_proto.adapters.cli.exits import (
    DEVICE_ERROR,
    NO_CONNECTION,
    OK,
    USAGE,
    CLIError,
    explain,
    get_readings,
    report,
    reported,
    usage,
)
from acnet_proto.adapters.cli.options import (
    Parser,
    connection_options,
    credential_options,
    require,
    whole_number,
)
from acnet_proto.adapters.cli.output import (
    Printer,
    error_text,
    reading_json,
    reading_text,
    value_cell,
)
from acnet_proto.adapters.cli.values import Setting, plan, typed
from acnet_proto.api.backend import Backend
from acnet_proto.api.device import Device
from acnet_proto.api.verify import Verify
from acnet_proto.drf import DRFError
from acnet_proto.errors import SettingOutcomeUnknown
from acnet_proto.types import Reading, WriteResult

__all__ = ["acput"]


def _parser(prog: str) -> Parser:
    parser = Parser(
        prog=prog,
        description="Set ACNET devices (like EPICS caput): acput DEVICE VALUE [DEVICE VALUE ...]",
    )
    parser.add_argument(
        "pairs", nargs="+", metavar="DEVICE VALUE", help="a number, a,b,c, text, or on/off/reset..."
    )
    parser.add_argument(
        "--verify", action="store_true", help="read back until the setting shows (exit 1 if not)"
    )
    parser.add_argument(
        "--tolerance", type=float, help="how far a number read back may be off (implies --verify)"
    )
    parser.add_argument(
        "--retries", type=whole_number(1), default=3, help="readbacks before --verify gives up"
    )
    connection_options(parser)
    credential_options(parser)
    return parser


@dataclass
class _Outcome:
    """What happened to the pairs: the setting before, the results, the setting after."""

    before: list[Reading]
    results: list[WriteResult]
    after: list[Reading]
    #: why the readback after the settings failed, if it did
    failure: CLIError | None


def acput(argv: Sequence[str] | None, prog: str = "acput") -> int:
    """Set every pair, print Old/New; exit 1 if a setting was refused or not verified."""
    args = _parser(prog).parse(argv)
    require(args.backend, "set")
    check = _verify_of(args)
    settings = _plans(prog, args.pairs)
    with connect(args, settings=True) as backend:
        outcome = _apply(backend, settings, check)
    _show(args.format, settings, outcome)
    code = OK if all(r.confirmed for r in outcome.results) else DEVICE_ERROR
    # written and shown as far as known: now say what failed, if anything did
    return reported(prog, code, outcome.failure)


def _apply(backend: Backend, settings: Sequence[Setting], check: Verify | None) -> _Outcome:
    """Read the settings, send the new ones in one batch, verify if asked, read them again."""
    before, failure = _read(backend, settings)
    if failure is not None:  # nothing written yet
        raise failure
    values = [typed(s, now) for s, now in zip(settings, before, strict=True)]
    try:
        results = backend.write_many([(s.target, v) for s, v in zip(settings, values, strict=True)])
    except SettingOutcomeUnknown as exc:  # keep what was there before: the line says it
        was = ", ".join(f"{s.drf} {reading_text(r)}" for s, r in zip(settings, before, strict=True))
        raise CLIError(NO_CONNECTION, f"{exc}; before them: {was}") from exc
    if check is not None:
        results = [
            _verified(backend, s, v, r, check)
            for s, v, r in zip(settings, values, results, strict=True)
        ]
    after, failure = _read(backend, settings)
    return _Outcome(before, results, after, failure)


def _verify_of(args: argparse.Namespace) -> Verify | None:
    if not (args.verify or args.tolerance is not None):
        return None
    try:
        return Verify(tolerance=args.tolerance or 0.0, attempts=args.retries)
    except ValueError as exc:
        usage(f"--tolerance {args.tolerance}: {exc}")


def _plans(prog: str, pairs: Sequence[str]) -> list[Setting]:
    """Every pair checked; if any is wrong, each problem is reported and nothing is sent."""
    if len(pairs) % 2:
        usage(f"{pairs[-1]!r} has no value: give DEVICE VALUE pairs (e.g. Z:ACLTST 45.0)")
    settings, problems = [], []
    for drf, text in zip(pairs[::2], pairs[1::2], strict=True):
        try:
            settings.append(plan(drf, text))
        except (DRFError, CLIError) as exc:
            problems.append(explain(exc)[1])
    if problems:
        for problem in problems[:-1]:
            report(prog, problem)
        suffix = " (nothing was set)" if len(pairs) > 2 else ""
        raise CLIError(USAGE, problems[-1] + suffix)
    return settings


def _read(backend: Backend, settings: Sequence[Setting]) -> tuple[list[Reading], CLIError | None]:
    """The readback of each setting; if the read failed, what arrived and why it failed."""
    return get_readings(backend, [s.readback for s in settings])


def _verified(
    backend: Backend, setting: Setting, value: Any, result: WriteResult, check: Verify
) -> WriteResult:
    """``result`` with the verdict of reading the setting (or the status bit) back."""
    if setting.command is not None:  # the whole device's STATUS bit, as its Old and New show
        return Device(setting.device, backend).confirm(result, value, check)
    # the property, range and field that were set, as Old and New show them
    device = Device(setting.target, backend)
    return device.confirm(result, value, check, prop=setting.target.property.value)


def _show(fmt: str, settings: Sequence[Setting], outcome: _Outcome) -> None:
    Printer(fmt).records(
        zip(settings, outcome.before, outcome.results, outcome.after, strict=True),
        ["drf", "old", "new", "units", "ok", "verified", "error"],
        text=lambda pair: _text(*pair),
        json=lambda pair: _json(*pair),
        rows=lambda pair: [_csv_row(*pair)],
    )


def _text(setting: Setting, old: Reading, result: WriteResult, new: Reading) -> list[str]:
    return [
        f"Old : {setting.drf} {reading_text(old)}",
        f"New : {setting.drf} {_outcome(result, new)}",
    ]


def _outcome(result: WriteResult, new: Reading) -> str:
    if not result.ok:
        return f"REFUSED {error_text(result)}"
    shown = reading_text(new)
    if result.verified is True:
        return f"{shown} (verified)"
    if result.verified is False:
        return f"{shown} (NOT VERIFIED: {result.message})"
    return shown


def _json(setting: Setting, old: Reading, result: WriteResult, new: Reading) -> dict[str, Any]:
    before, after = reading_json(old), reading_json(new)
    return {
        "drf": setting.drf,
        "ok": result.ok,
        "old": before["value"],
        "new": after["value"],
        "units": after["units"] or before["units"],
        "verified": result.verified,
        "error": None if result.confirmed else (result.message or str(result.status)),
    }


def _csv_row(setting: Setting, old: Reading, result: WriteResult, new: Reading) -> list[Any]:
    data = _json(setting, old, result, new)
    verified = "" if result.verified is None else result.verified
    row = [setting.drf, value_cell(old), value_cell(new), data["units"] or ""]
    return [*row, result.ok, verified, data["error"] or ""]

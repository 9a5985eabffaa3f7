"""PC/SDD codec speed: acnet_proto against pacsys 0.3.0, side by side, in one run.

Run from the repository root::

    .venv/bin/python benchmarks/codec.py [--json results.json] [--repeat 7] [--min-time 0.1]

Both codecs get the same bytes and equal messages; the script first checks
that they decode those bytes to equal values and encode the messages to
identical bytes, and prints a WARNING if not. The pacsys calls are the ones a
pacsys user's code runs on the DPM path (``pacsys.dpm_connection`` and
``pacsys.backends.dpm_http``): ``unmarshal_reply(_Cursor(data))`` to decode
and ``bytes(msg.marshal())`` to encode. ``_Cursor`` is pacsys's fastest
decoder input (it decodes arrays of doubles with numpy in one pass).

Timing is ``timeit`` (garbage collector off while timing): each case is
calibrated to about ``--min-time`` seconds per round, then ours and pacsys's
are timed in alternating rounds so that load from other processes falls on
both. The best (minimum) round is the figure of merit, the median shows the
spread. The speedup is pacsys's best time over ours.
"""

from __future__ import annotations

import argparse
import gc
import math
import statistics
import sys
import timeit
import tracemalloc
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from _harness import describe_machine, write_json
from pacsys import dpm_protocol as pac

from acnet_proto.pc import dpm

ARRAY_LENGTH = 1024

# The speedups (pacsys time / ours) that issue 16 asks for.
TARGETS = {
    "Scalar_reply decode": 6.0,
    "ScalarArray_reply(1024) decode": 5.0,
    "Scalar_reply encode": 6.0,
}


# ------------------------------------------------------------------ inputs


def _messages() -> dict[str, Any]:
    """The messages under test, with realistic, non-trivial field values."""
    return {
        "Scalar_reply": dpm.ScalarReply(
            ref_id=1234, timestamp=1_700_000_000_123, cycle=77, status=0, data=math.pi * 1e3
        ),
        "ScalarArray_reply": dpm.ScalarArrayReply(
            ref_id=1234,
            timestamp=1_700_000_000_123,
            cycle=77,
            status=0,
            data=[math.sin(i / 7) * 1e3 for i in range(ARRAY_LENGTH)],
        ),
        "AddToList_request": dpm.AddToListRequest(
            list_id=48813, ref_id=1234, drf_request="M:OUTTMP.READING@p,1000"
        ),
    }


def _pacsys_message(message: Any) -> Any:
    """pacsys's object for ``message``: same class name on the wire, same attribute values."""
    obj = getattr(pac, message.schema.wire_name)()
    for name, value in zip(message.field_names, message):
        # pacsys's marshal_array accepts only a list.
        setattr(obj, name, list(value) if isinstance(value, tuple | np.ndarray) else value)
    return obj


def _pacsys_decoder(kind: str) -> Callable[[bytes], Any]:
    unmarshal = pac.unmarshal_reply if kind == "reply" else pac.unmarshal_request
    return lambda data: unmarshal(pac._Cursor(data))


def _ours_decoder(kind: str) -> Callable[[bytes], Any]:
    return dpm.decode_reply if kind == "reply" else dpm.decode_request


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray | list | tuple) or isinstance(b, np.ndarray | list | tuple):
        return bool(np.array_equal(np.asarray(a, dtype=float), np.asarray(b, dtype=float)))
    return type(a) is type(b) and a == b


def check_agreement(messages: dict[str, Any]) -> list[str]:
    """Warnings for every way the two codecs disagree on the benchmark inputs."""
    warnings = []
    for wire, message in messages.items():
        kind = message.schema.kind
        ours_bytes = dpm.encode(message)
        pac_bytes = bytes(_pacsys_message(message).marshal())
        if ours_bytes != pac_bytes:
            warnings.append(
                f"{wire}: encodings differ (ours {len(ours_bytes)} bytes "
                f"{ours_bytes[:24].hex()}..., pacsys {len(pac_bytes)} bytes "
                f"{pac_bytes[:24].hex()}...)"
            )
        ours = _ours_decoder(kind)(ours_bytes)
        theirs = _pacsys_decoder(kind)(ours_bytes)
        if ours != message:
            warnings.append(f"{wire}: ours does not round-trip: {ours!r}")
        for name, value in zip(ours.field_names, ours):
            other = getattr(theirs, name, None)
            if not _same_value(value, other):
                warnings.append(f"{wire}.{name}: ours decodes {value!r}, pacsys {other!r}")
    return warnings


# ------------------------------------------------------------------ timing


@dataclass
class Side:
    best_us: float
    median_us: float
    ops_per_s: float
    loops: int
    rounds: int


@dataclass
class Result:
    case: str
    ours: Side
    pacsys: Side | None
    speedup: float | None
    speedup_median: float | None
    target: float | None
    verdict: str | None
    note: str = ""


def _loops_for(fn: Callable[[], Any], min_time: float) -> int:
    """The smallest power-of-two loop count whose run takes at least ``min_time``."""
    timer = timeit.Timer(fn)
    loops = 1
    while timer.timeit(loops) < min_time:
        loops *= 2
    return loops


def _side(per_op: list[float], loops: int) -> Side:
    best = min(per_op)
    return Side(best * 1e6, statistics.median(per_op) * 1e6, 1 / best, loops, len(per_op))


def measure(
    case: str,
    ours: Callable[[], Any],
    theirs: Callable[[], Any] | None,
    repeat: int,
    min_time: float,
    note: str = "",
) -> Result:
    contenders = [ours] if theirs is None else [ours, theirs]
    loops = [_loops_for(fn, min_time) for fn in contenders]
    timers = [timeit.Timer(fn) for fn in contenders]
    per_op: list[list[float]] = [[] for _ in contenders]
    for _ in range(repeat):
        for i, timer in enumerate(timers):
            per_op[i].append(timer.timeit(loops[i]) / loops[i])
    sides = [_side(t, n) for t, n in zip(per_op, loops)]
    ours_side, pac_side = sides[0], (sides[1] if theirs is not None else None)
    speedup = speedup_median = verdict = None
    target = TARGETS.get(case)
    if pac_side is not None:
        speedup = pac_side.best_us / ours_side.best_us
        speedup_median = pac_side.median_us / ours_side.median_us
        if target is not None:
            verdict = "PASS" if speedup >= target else "MISS"
    return Result(case, ours_side, pac_side, speedup, speedup_median, target, verdict, note)


def run_timings(messages: dict[str, Any], repeat: int, min_time: float) -> list[Result]:
    scalar, array, add = (
        messages[k] for k in ("Scalar_reply", "ScalarArray_reply", "AddToList_request")
    )
    scalar_bytes, array_bytes, add_bytes = dpm.encode(scalar), dpm.encode(array), dpm.encode(add)
    pac_scalar, pac_array, pac_add = map(_pacsys_message, (scalar, array, add))
    cursor = pac._Cursor
    decoded_array = dpm.decode_reply(array_bytes)
    n = ARRAY_LENGTH
    cases: list[tuple[str, Callable[[], Any], Callable[[], Any] | None, str]] = [
        (
            "Scalar_reply decode",
            lambda: dpm.decode_reply(scalar_bytes),
            lambda: pac.unmarshal_reply(cursor(scalar_bytes)),
            "",
        ),
        (
            "Scalar_reply encode",
            lambda: dpm.encode(scalar),
            lambda: bytes(pac_scalar.marshal()),
            "",
        ),
        (
            f"ScalarArray_reply({n}) decode",
            lambda: dpm.decode_reply(array_bytes),
            lambda: pac.unmarshal_reply(cursor(array_bytes)),
            "",
        ),
        (
            f"ScalarArray_reply({n}) encode",
            lambda: dpm.encode(array),
            lambda: bytes(pac_array.marshal()),
            "data built from a list of floats (ours keeps a tuple, pacsys the list)",
        ),
        (
            f"ScalarArray_reply({n}) encode, ndarray data",
            lambda: dpm.encode(decoded_array),
            None,
            "ours only: re-encoding a decoded reply; pacsys's marshal_array needs a list",
        ),
        ("AddToList_request encode", lambda: dpm.encode(add), lambda: bytes(pac_add.marshal()), ""),
        (
            "AddToList_request decode",
            lambda: dpm.decode_request(add_bytes),
            lambda: pac.unmarshal_request(cursor(add_bytes)),
            "",
        ),
    ]
    results = []
    for name, ours, theirs, note in cases:
        results.append(measure(name, ours, theirs, repeat, min_time, note))
        print(f"  timed {name}", file=sys.stderr)
    # pacsys's generated byte-at-a-time path, which unmarshal_reply takes when
    # handed iter(data) instead of a _Cursor; for context only, no targets.
    for name, data in (
        ("Scalar_reply decode", scalar_bytes),
        (f"ScalarArray_reply({n}) decode", array_bytes),
    ):
        results.append(
            measure(
                f"{name} vs pacsys iter()",
                lambda d=data: dpm.decode_reply(d),
                lambda d=data: pac.unmarshal_reply(iter(d)),
                repeat,
                min_time,
                "pacsys given iter(data): its byte-at-a-time path (context only)",
            )
        )
        print(f"  timed {name} vs pacsys iter()", file=sys.stderr)
    return results


# ------------------------------------------------------------------ memory


@dataclass
class Memory:
    retained_bytes: float
    peak_bytes: float


def decode_memory(decode: Callable[[bytes], Any], data: bytes, count: int = 200) -> Memory:
    """Bytes each decoded message keeps alive, and the peak allocated while decoding one.

    numpy reports its data buffers to tracemalloc, so array storage is counted.
    """
    decode(data)  # warm caches (numpy dtypes, lazily built tables) outside the trace
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [decode(data) for _ in range(count)]
        retained = (tracemalloc.get_traced_memory()[0] - before) / count
        del kept
        gc.collect()
        peaks = []
        for _ in range(20):
            base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            decode(data)
            peaks.append(tracemalloc.get_traced_memory()[1] - base)
    finally:
        tracemalloc.stop()
    return Memory(retained, min(peaks))


# ------------------------------------------------------------------ report


def _fmt_us(us: float) -> str:
    return f"{us:,.2f}" if us < 100 else f"{us:,.0f}"


def print_report(
    info: dict[str, Any], warnings: list[str], results: list[Result], memory: dict[str, Memory]
) -> None:
    print(
        f"python {info['python']} ({info['implementation']}), numpy {info['numpy']}, "
        f"pacsys {info['pacsys']}, acnet-proto {info['acnet_proto']}"
    )
    print(f"{info['processor']}, {info['cpus']} CPUs, {info['platform']}")
    for w in warnings:
        print(f"WARNING: {w}")
    if not warnings:
        print("agreement: both codecs decode the inputs to equal values and encode identical bytes")
    head = (
        f"{'case':<46} {'ours µs':>9} {'ours op/s':>11} {'pacsys µs':>10} "
        f"{'pacsys op/s':>11} {'speedup':>8} {'(median)':>8}  target"
    )
    print()
    print(head)
    print("-" * len(head))
    for r in results:
        if r.pacsys is None:
            theirs = f"{'—':>10} {'—':>11} {'':>8} {'':>8}"
        else:
            theirs = (
                f"{_fmt_us(r.pacsys.best_us):>10} {r.pacsys.ops_per_s:>11,.0f} "
                f"{r.speedup:>7.1f}x {r.speedup_median:>7.1f}x"
            )
        target = f"  ≥{r.target:g}x {r.verdict}" if r.target is not None else ""
        print(
            f"{r.case:<46} {_fmt_us(r.ours.best_us):>9} {r.ours.ops_per_s:>11,.0f} {theirs}{target}"
        )
    print("µs and op/s from the best round; (median) is the speedup from median rounds.")
    notes = [(r.case, r.note) for r in results if r.note]
    for case, note in notes:
        print(f"  {case}: {note}")
    print()
    print(f"decode memory per ScalarArray_reply({ARRAY_LENGTH}) (tracemalloc):")
    for who, m in memory.items():
        print(
            f"  {who:<7} retained {m.retained_bytes:>8,.0f} B/message   "
            f"peak while decoding {m.peak_bytes:>8,.0f} B"
        )
    print(f"  ({ARRAY_LENGTH} float64 values are {8 * ARRAY_LENGTH:,} B)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="FILE", help="also write the results to FILE as JSON")
    parser.add_argument("--repeat", type=int, default=7, help="timed rounds per side (default 7)")
    parser.add_argument(
        "--min-time", type=float, default=0.1, help="seconds per round, at least (default 0.1)"
    )
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.min_time <= 0:
        parser.error("--repeat must be at least 1 and --min-time positive")

    info = describe_machine()
    messages = _messages()
    warnings = check_agreement(messages)
    results = run_timings(messages, args.repeat, args.min_time)
    array_bytes = dpm.encode(messages["ScalarArray_reply"])
    memory = {
        "ours": decode_memory(dpm.decode_reply, array_bytes),
        "pacsys": decode_memory(_pacsys_decoder("reply"), array_bytes),
    }
    print_report(info, warnings, results, memory)

    if args.json:
        doc = {
            "machine": info,
            "method": {
                "repeat": args.repeat,
                "min_time_s": args.min_time,
                "figure_of_merit": "best round; speedup = pacsys / ours",
            },
            "agreement_warnings": warnings,
            "results": [asdict(r) for r in results],
            "decode_memory_scalar_array": {k: asdict(v) for k, v in memory.items()},
        }
        write_json(args.json, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())

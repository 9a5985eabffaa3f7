"""Checking the DRFs a tool is given, before any I/O.

A DRF that does not parse, or asks for something the tool cannot do, gets
one usage line on stderr; the tool goes on with the others (their readings
are still printed) and exits 2 at the end. Streams need an event: a DRF
without one (or with the default ``@U``) is streamed at :data:`DEFAULT_EVENT`,
as pacsys's ``acmonitor`` does, and a one-shot event (``@I``, ``@N``) is a
usage error rather than a stream that never ends.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from acnet_proto import drf as _drf
from acnet_proto.adapters.cli.exits import OK, CLIError, explain, report, usage

__all__ = ["DEFAULT_EVENT", "Checked", "for_devices", "for_reading", "for_streaming"]

#: the event of a streamed DRF that names none (once a second, as pacsys's acmonitor)
DEFAULT_EVENT = "p,1000"


@dataclass
class Checked:
    """The usable DRFs (as they will be requested), and the exit status of the rest."""

    drfs: list[str] = field(default_factory=list)
    code: int = OK


def _check(
    prog: str, texts: Sequence[str], usable: Callable[[str, _drf.DataRequest], str]
) -> Checked:
    checked = Checked()
    for text in texts:
        try:
            checked.drfs.append(usable(text, _drf.parse(text)))
        except (_drf.DRFError, CLIError) as exc:
            code, message = explain(exc)
            report(prog, message)
            checked.code = max(checked.code, code)
    return checked


def _readable(text: str, request: _drf.DataRequest) -> str:
    if request.property is _drf.Property.CONTROL:
        usage(
            f"{text!r} asks for the CONTROL property, which takes commands and cannot be read; "
            f"read {request.device}.STATUS, or send a command with acput"
        )
    return text


def _streamable(text: str, request: _drf.DataRequest) -> str:
    _readable(text, request)
    event = request.event
    if event is None or isinstance(event, _drf.DefaultEvent):
        return _drf.with_event(text, DEFAULT_EVENT)
    if isinstance(event, _drf.ImmediateEvent | _drf.NeverEvent):
        usage(
            f"{text!r} has the one-shot event @{event.to_drf()}, which never streams; "
            f"give a streaming event such as @{DEFAULT_EVENT}, or read it with acget"
        )
    return text


def for_reading(prog: str, texts: Sequence[str]) -> Checked:
    """``texts`` that can be read once, as typed."""
    return _check(prog, texts, _readable)


def for_streaming(prog: str, texts: Sequence[str]) -> Checked:
    """``texts`` that can be streamed, each with an event (:data:`DEFAULT_EVENT` if it had none)."""
    return _check(prog, texts, _streamable)


def for_devices(prog: str, texts: Sequence[str]) -> Checked:
    """The device names of ``texts`` (device names or whole DRFs)."""
    return _check(prog, texts, lambda text, request: request.device)

r"""ACL over HTTP, the pure half: the CGI's query text, its printed output, and batch reads.

The ACL CGI (default ``https://www-bd.fnal.gov/cgi-bin/acl.pl``, spec §5)
runs the ACL script in its query string and answers with what it printed::

    GET <base>?acl=read+M:OUTTMP\;read+G:AMANDA

    M:OUTTMP       = 41.7 DegF
    G:AMANDA       = 1 A

The query
---------
The CGI takes the script from the ``acl=`` parameter and decodes only ``+``
and ``%20`` (a space) and ``%27`` (a quote). Every other character reaches ACL
as sent, so DRF characters (``: [ ] { } . , /``) must go raw: ``%5B`` would
reach ACL as the three characters ``%5B``. Commands are separated by ``\;``,
as ACL's CGI usage asks: a bare ``;``, like ``&``, separates query parameters,
so it would end the script there (the simulated CGI,
:mod:`acnet_proto.adapters.sim.acl`, does just that). :func:`encode_script`
therefore writes a space (or tab) as ``+``, a quote as ``%27``, ``;`` (or a line break)
as ``\;``, and leaves everything else alone. Some text cannot be sent at all
and is refused: ``#`` (it starts the URL's fragment, which is never sent),
``&``, control characters and non-ASCII. A literal ``+`` cannot be sent
either: the CGI reads it as a space, so ``+`` in script text *means* a space,
and ``%20``, ``%27`` and ``\;`` pass unchanged. A script already written for
the URL (``read+M:OUTTMP\;read+G:AMANDA``) thus encodes to itself.

The output
----------
Each ``read`` prints one ``NAME = VALUE UNITS`` line: one number, or an
array's numbers separated by spaces, then the units if the device has any;
a text device prints ``NAME = text``; ``read DEVICE/raw`` prints the raw
data as big-endian hex numbers, one per field (:func:`format_raw`). A
field of an alarm or of the basic status is named in words between the
device and the ``=`` (:func:`value_label`): ``Z:ACLTST alarm maximum = 50
blip``, ``Z:ACLTST is on = True``. An error line has no such ``=`` and ends
in ``- ERROR_NAME``, sometimes ``- DEVICE ERROR_NAME`` (``Invalid device
name (Z:NOTFND) in read device command at line 1 - DBM_NOREC``), or starts
with ``!``. ACL stops the whole script at the first error, so the
lines of a batch are the readings of its first devices, then maybe one
error line, then nothing. The error name becomes the reading's ACNET status
(:func:`status_of`; a name this library does not know, such as the
``DBM_NOREC`` the lab's ACL gives for a device that does not exist, becomes
``ACNET_NXE``, with ACL's line kept as the message).

ACL reads the device argument as a DRF, or in its own ``DEVICE.FIELD`` form
for a field of the analog alarm or the basic status (``Z:ACLTST.MAX`` is
``Z:ACLTST.ANALOG.MAX``, ``Z:ACLTST.ON`` is ``Z:ACLTST.STATUS.ON``):
:func:`parse_device`.

Reads
-----
A DRF becomes ``read DEVICE``: the canonical DRF without its event
(:func:`read_command`). ``@I``, ``@U`` or no event read now; a clock event
``@e,...`` becomes ``read/pendwait DEVICE/event='e,...'`` (ACL waits for the
event); the ``.RAW`` field becomes ``/raw``. ACL has no periodic, never or
state events: such a DRF gets a ``DIO_NOT_SUPPORTED`` error reading and is not
sent. Logged data (``<-LOGGER``, ``<-FTP``) is refused before anything is
sent (a :class:`~acnet_proto.drf.DRFError` naming DPM). A basic status field
(``.STATUS.ON``) reads as 1.0 or 0.0, as it does over DPM. The CGI's output
carries no timestamps, device index or description: readings are stamped
with the time the answer arrived and carry no
:class:`~acnet_proto.types.DeviceMeta` (so the units ACL prints are read past,
not kept: ``reading.units`` is None).

:class:`ACLRead` plans a batch read: URLs of at most ``max_url_length``
characters (default 8,000, under the common 8 KB request-line limit),
then, when ACL stops a batch at an error, a read of the device it stopped
at on its own (so an error is only ever reported for the device that has
it) and a new batch for the devices after it. Nothing here does I/O.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from numpy.typing import NDArray

from acnet_proto import drf as _drf
from acnet_proto._text import shown
from acnet_proto.errors import (
    AcnetProtoError,
    ConfigurationError,
    LocalProtocolError,
    ReadError,
    RemoteProtocolError,
)
from acnet_proto.plans.lists import FirstReadings, ListPlan, error_reading
from acnet_proto.status import Status
from acnet_proto.types import Reading, ValueType

__all__ = [
    "DEFAULT_BASE_URL",
    "MAX_URL_LENGTH",
    "NOT_SUPPORTED",
    "SEPARATOR",
    "UNTRANSLATED",
    "ACLRead",
    "ErrorLine",
    "UnsupportedRead",
    "ValueLine",
    "check_base_url",
    "decode_output",
    "decode_query",
    "encode_script",
    "format_error",
    "format_raw",
    "format_value",
    "parse_device",
    "parse_line",
    "read_command",
    "script_error",
    "script_query",
    "status_of",
    "value_label",
    "value_of_line",
]

#: Where the ACL CGI lives.
DEFAULT_BASE_URL = "https://www-bd.fnal.gov/cgi-bin/acl.pl"
#: The longest URL a batch read sends (web servers refuse request lines over about 8 KB).
MAX_URL_LENGTH = 8000
#: What separates two commands in the ``acl=`` parameter.
SEPARATOR = "\\;"
#: The status of an error line whose name is missing or unknown here.
UNTRANSLATED = Status.from_name("ACNET_NXE")
#: The status of a DRF that ACL cannot read (periodic, never or state events).
NOT_SUPPORTED = Status.from_name("DIO_NOT_SUPPORTED")

_P = _drf.Property
_F = _drf.Field


# --- the query ---------------------------------------------------------------------------

# the forms the CGI already decodes come first, so that they pass unchanged
_TO_ENCODE = re.compile(r"%20|%27|\\;|\r?\n|[ \t';]")
_ENCODED = {" ": "+", "\t": "+", "'": "%27", ";": SEPARATOR, "\n": SEPARATOR, "\r\n": SEPARATOR}
_UNSENDABLE = re.compile(r"\r(?!\n)|[^\t\n\r -~]|[#&]")


def encode_script(script: str) -> str:
    """ACL ``script`` as the value of the ``acl=`` parameter (see the module docstring).

    ``ValueError`` naming the script and the character for text no query
    can carry: ``#``, ``&``, control characters, non-ASCII.
    """
    if not isinstance(script, str):
        raise TypeError(f"an ACL script must be a str, not {type(script).__name__}")
    bad = _UNSENDABLE.search(script)
    if bad is not None:
        raise ValueError(
            f"ACL script {script!r}: {bad.group()!r} (at {bad.start()}) cannot be sent to the "
            "ACL CGI, which reads its script from a URL query"
        )
    return _TO_ENCODE.sub(lambda m: _ENCODED.get(m.group(), m.group()), script)


def script_query(commands: Iterable[str]) -> str:
    r"""The query string (after ``?``) that runs ``commands`` in order: ``acl=read+A\;read+B``."""
    return "acl=" + SEPARATOR.join(encode_script(command) for command in commands)


_PARAMETER_END = re.compile(r"&|(?<!\\);")
_DECODED = re.compile(r"\+|%20|%27")


def decode_query(query: str) -> list[str] | None:
    """The commands the CGI hands ACL for ``query`` (the URL's text after ``?``).

    The server's side of :func:`script_query`: the ``acl=`` parameter runs
    to the first ``&`` or bare ``;``; ``+``, ``%20`` and ``%27`` are decoded
    and nothing else; ``\\;`` separates commands. None if there is no
    ``acl=`` parameter; empty commands are dropped.
    """
    script = next((p[4:] for p in _PARAMETER_END.split(query) if p.startswith("acl=")), None)
    if script is None:
        return None
    decoded = (
        _DECODED.sub(lambda m: "'" if m.group() == "%27" else " ", part).strip()
        for part in script.split(SEPARATOR)
    )
    return [command for command in decoded if command]


def check_base_url(url: object) -> str:
    """``url`` if it can be the CGI's address: http(s), a host, no query or fragment."""
    if not isinstance(url, str):
        raise ConfigurationError(f"base_url must be a str, got {url!r}")
    if any(not "!" <= c <= "~" for c in url):
        raise ConfigurationError(f"base_url must be printable ASCII without spaces, got {url!r}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"base_url must be an http(s) URL such as {DEFAULT_BASE_URL!r}, got {url!r}"
        )
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise ConfigurationError(
            f"base_url {url!r} must have no query or fragment: the script is sent as ?acl=..."
        )
    return url


class UnsupportedRead(AcnetProtoError, ValueError):
    """A valid DRF that ACL cannot read (its event asks for a stream or for nothing)."""

    def __init__(self, drf: str, reason: str) -> None:
        self.drf = drf
        self.reason = reason
        super().__init__(f"{drf}: {reason}")


def read_command(request: _drf.DataRequest) -> str:
    """The ACL command that reads ``request`` once, as ACL text (:func:`encode_script` it).

    ``Z:ACLTS1[0:3]`` -> ``read Z:ACLTS1[0:3]``; ``M_OUTTMP.RAW@e,2`` ->
    ``read/pendwait M:OUTTMP.SETTING/raw/event='e,2'``. Qualifier characters
    become property names (ACL knows only ``:``). :class:`UnsupportedRead`
    for periodic, never and state events, and for logged data.
    """
    event = request.event
    verb, qualifiers = "read", ""
    if request.source is not None:
        raise UnsupportedRead(
            request.to_drf(),
            "ACL reads the device's value now: it cannot serve logged data "
            f"(<-{request.source.to_drf()}); use a DPM or gRPC backend",
        )
    if isinstance(event, _drf.ClockEvent):
        verb, qualifiers = "read/pendwait", f"/event='{event.to_drf()}'"
    elif event is not None and not isinstance(event, _drf.DefaultEvent | _drf.ImmediateEvent):
        raise UnsupportedRead(
            request.to_drf(),
            f"ACL reads once, on request: it cannot serve the event @{event.to_drf()} "
            "(no streaming; use a DPM, gRPC or DMQ backend)",
        )
    if request.field is _F.RAW:
        qualifiers = "/raw" + qualifiers
        request = replace(request, field=None)
    return f"{verb} {replace(request, event=None).to_drf()}{qualifiers}"


# ACL's DEVICE.FIELD form: the property each field belongs to
_SHORT_FIELDS = {
    **dict.fromkeys((_F.MIN, _F.MAX, _F.NOM, _F.TOL), _P.ANALOG),
    **dict.fromkeys((_F.ON, _F.READY, _F.REMOTE, _F.POSITIVE, _F.RAMP), _P.STATUS),
}


def parse_device(text: str) -> _drf.DataRequest:
    """The data ACL reads for the device argument ``text`` of a ``read`` (the server's side).

    A DRF, or ACL's ``DEVICE.FIELD`` form for a field of the analog alarm
    (MIN, MAX, NOM, TOL) or of the basic status (ON, READY, REMOTE, POSITIVE,
    RAMP) on a device written without property: ``Z:ACLTST.MAX`` is
    ``Z:ACLTST.ANALOG.MAX``. :class:`~acnet_proto.drf.DRFError` (the DRF's)
    for anything else.
    """
    try:
        return _drf.parse(text)
    except _drf.DRFError:
        short = _short_form(text)
        if short is None:
            raise
        return short


def _short_form(text: str) -> _drf.DataRequest | None:
    device, dot, word = text.rpartition(".")
    field = _F.__members__.get(word.upper()) if dot and "." not in device else None
    prop = _SHORT_FIELDS.get(field) if field is not None else None
    if prop is None:
        return None
    try:
        request = _drf.parse(device)
    except _drf.DRFError:
        return None
    if request.property is not _P.READING or request.range is not None:
        return None
    return replace(request, property=prop, field=field)


# --- the output --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ValueLine:
    """``NAME = VALUE`` or ``NAME label = VALUE``: ``text`` is everything after the ``=``,
    stripped; ``label`` the lower-case words naming a field (``alarm maximum``), if any."""

    name: str
    text: str
    label: str = ""


@dataclass(frozen=True, slots=True)
class ErrorLine:
    """An error ACL printed: the whole ``line``, and the status name it ends with, if any."""

    line: str
    status_name: str | None

    @property
    def status(self) -> Status:
        return status_of(self.status_name)


# the label is lower-case words only, so that no error message reads as a value
_VALUE_LINE = re.compile(r"([^\s=]+)((?:\s+[a-z]+)*)\s*=(.*)")
_STATUS_NAME = r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+"
# "... - DIO_NO_SUCH", or "... - Z:ACLTST DIO_NOATT" (the device, then the status)
_ERROR_END = re.compile(rf"\s-\s+(?:\S+\s+)?({_STATUS_NAME})$")


def parse_line(line: str) -> ValueLine | ErrorLine | None:
    """One line of output as a value or an error; None for anything else (and blank lines)."""
    text = line.strip()
    end = _ERROR_END.search(text)
    if text.startswith("!"):
        return ErrorLine(text, end.group(1) if end else None)
    value = _VALUE_LINE.fullmatch(text)
    if value is not None:
        return ValueLine(value.group(1), value.group(3).strip(), " ".join(value.group(2).split()))
    return ErrorLine(text, end.group(1)) if end else None


def status_of(name: str | None) -> Status:
    """The ACNET status ACL named, or :data:`UNTRANSLATED` if none, unknown, or not an error."""
    if name is not None:
        try:
            status = Status.from_name(name)
        except KeyError:
            return UNTRANSLATED
        if status.is_error:
            return status
    return UNTRANSLATED


def decode_output(content: bytes, charset: str | None) -> str:
    """The CGI's answer ``content`` as text, in the ``charset`` its Content-Type named.

    Undecodable bytes become U+FFFD. A charset Python does not know, one that
    is no text encoding or cannot replace errors (``idna``, ``undefined``,
    ``punycode``), or no name at all (a NUL in it) is the server's mistake:
    UTF-8 is used instead, so the output is read, never a bare ``LookupError``
    or ``ValueError``.
    """
    if charset:
        try:
            return content.decode(charset, "replace")
        except (LookupError, ValueError):  # UnicodeError is a ValueError
            pass
    return content.decode("utf-8", "replace")


def script_error(output: str) -> ErrorLine | None:
    """The first error line in ``output``, or None if ACL reported none."""
    for line in output.splitlines():
        parsed = parse_line(line)
        if isinstance(parsed, ErrorLine):
            return parsed
    return None


_NUMBER = re.compile(r"[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|inf|nan)", re.IGNORECASE)
_HEX = re.compile(r"(?:0[xX])?([0-9a-fA-F]+)")
_TEXT_PROPERTIES = frozenset({_P.DESCRIPTION, _P.LONG_NAME, _P.ALARM_LIST_NAME})
_STATUS_FLAGS = frozenset({_F.ON, _F.READY, _F.REMOTE, _F.POSITIVE, _F.RAMP})
_FLAG_VALUES = {"True": 1.0, "False": 0.0}


def value_of_line(request: _drf.DataRequest, text: str) -> tuple[Any, ValueType]:
    """The value a ``read`` of ``request`` printed as ``text`` (a :class:`ValueLine`'s).

    ``.RAW``: bytes, each hex number's bytes reversed (ACL prints them
    big-endian). DESCRIPTION, LONG_NAME, ALARM_LIST_NAME and ``.TEXT``:
    the text. A basic status field (``.STATUS.ON``) printed ``True`` or
    ``False``: 1.0 or 0.0, as over DPM. Otherwise numbers, optionally followed by one word of units,
    are a float (one) or a float64 array (several); anything else is text.
    ``ValueError`` if ``/raw`` output has no hex number.
    """
    if request.field is _F.RAW:
        chunks = []
        for word in text.split():
            digits = _HEX.fullmatch(word)
            if digits is None:
                break  # the units, if any
            hexa = digits.group(1)
            chunks.append(bytes.fromhex(hexa.zfill(len(hexa) + len(hexa) % 2))[::-1])
        if not chunks:
            raise ValueError(f"no hex number in ACL's /raw output {shown(text)}")
        return b"".join(chunks), ValueType.RAW
    if request.property in _TEXT_PROPERTIES or request.field is _F.TEXT:
        return text, ValueType.TEXT
    if request.property is _P.STATUS and request.field in _STATUS_FLAGS and text in _FLAG_VALUES:
        return _FLAG_VALUES[text], ValueType.SCALAR
    words = text.split()
    if words and _NUMBER.fullmatch(words[-1]) is None:
        words = words[:-1]  # one word of units
    if not words or not all(_NUMBER.fullmatch(w) for w in words):
        return text, ValueType.TEXT
    if len(words) == 1:
        return float(words[0]), ValueType.SCALAR
    return np.array([float(w) for w in words]), ValueType.SCALAR_ARRAY


# the words ACL prints between the device and the "=" for a field: "alarm minimum",
# "alarm maximum" and the "is ..." of the basic status are the lab's; the rest name the
# field the same way
_LABELS = {
    (_P.ANALOG, _F.MIN): "alarm minimum",
    (_P.ANALOG, _F.MAX): "alarm maximum",
    (_P.ANALOG, _F.NOM): "alarm nominal",
    (_P.ANALOG, _F.TOL): "alarm tolerance",
    (_P.DIGITAL, _F.NOM): "alarm nominal",
    (_P.DIGITAL, _F.MASK): "alarm mask",
    **{(p, _F.ALARM_ENABLE): "alarm enabled" for p in (_P.ANALOG, _P.DIGITAL)},
    **{(p, _F.ALARM_STATUS): "alarm status" for p in (_P.ANALOG, _P.DIGITAL)},
    **{(p, _F.ABORT): "alarm abort" for p in (_P.ANALOG, _P.DIGITAL)},
    **{(p, _F.ABORT_INHIBIT): "alarm abort inhibit" for p in (_P.ANALOG, _P.DIGITAL)},
    **{(p, _F.TRIES_NEEDED): "alarm tries needed" for p in (_P.ANALOG, _P.DIGITAL)},
    **{(p, _F.TRIES_NOW): "alarm tries now" for p in (_P.ANALOG, _P.DIGITAL)},
    (_P.STATUS, _F.ON): "is on",
    (_P.STATUS, _F.READY): "is ready",
    (_P.STATUS, _F.REMOTE): "is remote",
    (_P.STATUS, _F.POSITIVE): "is positive",
    (_P.STATUS, _F.RAMP): "is ramping",
}


def value_label(request: _drf.DataRequest) -> str:
    """The words ACL prints after the device for a read of ``request`` ("" for none).

    ``Z:ACLTST.ANALOG.MAX``: ``alarm maximum``; ``Z:ACLTST.STATUS.ON``:
    ``is on`` (its value is then ``True`` or ``False``).
    """
    if request.field is None:
        return ""
    return _LABELS.get((request.property, request.field), "")


def _number(value: float) -> str:
    shown = repr(float(value))
    return shown[:-2] if shown.endswith(".0") else shown


def format_value(
    name: str,
    value: float | Sequence[float] | NDArray[np.float64] | str,
    units: str | None = None,
    label: str = "",
) -> str:
    """The line ACL prints for a read of ``name`` that gave ``value`` (the server's side).

    Numbers are written exactly (shortest round-trip form) and followed by
    ``units``; text is written as it is, line breaks as spaces. ``label``
    (:func:`value_label`) goes between the name and the ``=``.
    """
    if isinstance(value, str):
        shown = " ".join(value.splitlines())
    else:
        numbers = [value] if isinstance(value, int | float) else value
        shown = " ".join(_number(v) for v in numbers)
        if units:
            shown += f" {units}"
    if label:
        return f"{name} {label} = {shown}"
    return f"{name:<14} = {shown}"


def format_raw(name: str, data: bytes, width: int | Sequence[int] = 1) -> str:
    """The ``read NAME/raw`` line: ``data`` as big-endian hex numbers of ``width`` bytes.

    ``width`` is one size for every number, or the sizes of the first ones
    in order (a structure's fields); bytes past them are printed one by one.
    """
    widths = [width] * -(-len(data) // width) if isinstance(width, int) else list(width)
    words, at = [], 0
    for size in widths + [1] * len(data):
        if at >= len(data):
            break
        words.append(data[at : at + size][::-1].hex().upper())
        at += size
    return format_value(name, " ".join(words))


def format_error(message: str, status_name: str, device: str | None = None) -> str:
    """An error line, ``message - STATUS_NAME``, or ``message - DEVICE STATUS_NAME``
    (the server's side).

    ``message`` must not start with a word, lower-case words and ``=``: that
    line would read as a value.
    """
    if device is not None:
        return f"{message} - {device} {status_name}"
    return f"{message} - {status_name}"


# --- batch reads -------------------------------------------------------------------------


class ACLRead(FirstReadings):
    """One batch read over the ACL CGI: which URLs to GET, and the readings their answers give.

    ::

        plan = ACLRead(["M:OUTTMP", "Z:NOTFND", "G:AMANDA"], base_url)
        while (url := plan.next_url()) is not None:
            plan.receive(http_get(url), now=time.time())
        readings = plan.readings()

    DRFs are checked first, as for every read: an empty list or invalid text raises
    ``ValueError`` (:class:`~acnet_proto.drf.DRFError` for the text), anything but a list of
    strings or DataRequests ``TypeError``; a DRF ACL cannot read gets its
    ``DIO_NOT_SUPPORTED`` reading without being sent. The rest go in batches whose URLs fit
    ``max_url_length`` (a read too long for it alone still goes, alone). When ACL stops a
    batch at an error, the readings before it are kept, the device it stopped at is read
    alone (its answer, value or error, is its reading), and the devices after it form a new
    batch: a bad device costs two more requests, whatever the batch size. :meth:`receive`
    raises :class:`~acnet_proto.errors.RemoteProtocolError` for output that is not ACL's;
    the adapter then ends the read with :meth:`failed`, or :meth:`timed_out` (naming the
    caller's timeout) when its deadline passed.
    """

    _unfinished = "the read is not done"
    _what = "ACL read"

    def __init__(
        self,
        drfs: Sequence[str | _drf.DataRequest],
        base_url: str = DEFAULT_BASE_URL,
        max_url_length: int = MAX_URL_LENGTH,
    ) -> None:
        # checked as every DPM read checks them, with the same errors
        plan = ListPlan(drfs, default_event=None)
        self.drfs: list[str] = plan.drfs
        self._requests = plan.requests
        self._expect_readings(self._requests)
        self._commands: list[str] = [""] * len(self.drfs)
        pending = []
        for index, request in enumerate(self._requests):
            try:
                self._commands[index] = encode_script(read_command(request))
            except UnsupportedRead as e:
                refused = error_reading(self.drfs[index], NOT_SUPPORTED, note=e.reason)
                self._keep([(index, refused)])
            else:
                pending.append(index)
        self._prefix = f"{base_url}?acl="
        self._limit = max_url_length
        self._queue: deque[list[int]] = deque(self._split(pending))
        self._sent: list[int] | None = None
        #: How many URLs :meth:`next_url` has handed out.
        self.urls_sent = 0

    def _split(self, indexes: list[int]) -> list[list[int]]:
        batches: list[list[int]] = []
        length = 0
        for index in indexes:
            size = len(SEPARATOR) + len(self._commands[index])
            if batches and length + size <= self._limit:
                batches[-1].append(index)
                length += size
            else:
                batches.append([index])
                length = len(self._prefix) + len(self._commands[index])
        return batches

    @property
    def done(self) -> bool:
        """True once every DRF has its reading."""
        # by the URLs left, not the readings: output receive() refused ends the read too
        return not self._queue and self._sent is None

    def next_url(self) -> str | None:
        """The next URL to GET, or None when the read is done.

        :class:`~acnet_proto.errors.LocalProtocolError` if the last one is
        still unanswered (give its answer to :meth:`receive` first).
        """
        if self._sent is not None:
            raise LocalProtocolError("the last URL is still unanswered: receive() its output first")
        if not self._queue:
            return None
        self._sent = batch = self._queue.popleft()
        self.urls_sent += 1
        return self._prefix + SEPARATOR.join(self._commands[i] for i in batch)

    def receive(self, output: str, now: float) -> None:
        """Take the body the last URL answered with, received at ``now`` (Unix seconds)."""
        batch, self._sent = self._sent, None
        if batch is None:
            raise LocalProtocolError("no URL is waiting for an answer: call next_url() first")
        at = datetime.fromtimestamp(now, UTC)
        values: list[ValueLine] = []
        error: ErrorLine | None = None
        for line in output.splitlines():
            if not line.strip():
                continue
            parsed = parse_line(line)
            if parsed is None:
                raise RemoteProtocolError(
                    f"the ACL CGI printed a line that is not ACL's: {shown(line)}; "
                    "check that base_url is the ACL CGI"
                )
            if isinstance(parsed, ErrorLine):
                error = parsed
                break  # ACL stopped here; nothing after it is a reading
            values.append(parsed)
        if len(values) > len(batch):
            raise RemoteProtocolError(f"ACL printed {len(values)} values for {len(batch)} reads")
        self._keep((index, self._reading(index, line, at)) for index, line in zip(batch, values))
        rest = batch[len(values) :]
        if not rest:
            return
        if error is not None and len(batch) == 1:
            alone = Reading(
                self.drfs[rest[0]],
                facility_code=error.status.facility,
                error_code=error.status.error,
                message=error.line,
                timestamp=at,
            )
            self._keep([(rest[0], alone)])
        elif error is not None:
            # ACL stopped at rest[0]: only a read of it alone tells whether the error is its own
            if rest[1:]:
                self._queue.appendleft(rest[1:])
            self._queue.appendleft(rest[:1])
        elif values:
            self._queue.appendleft(rest)  # the output stopped short: ask again for the rest
        else:
            raise RemoteProtocolError(f"ACL printed nothing for {len(batch)} reads")

    def _reading(self, index: int, line: ValueLine, at: datetime) -> Reading:
        drf = self.drfs[index]
        try:
            value, value_type = value_of_line(self._requests[index], line.text)
        except ValueError as e:
            return Reading(
                drf,
                facility_code=UNTRANSLATED.facility,
                error_code=UNTRANSLATED.error,
                message=str(e),
                timestamp=at,
            )
        return Reading(drf, value_type, value=value, timestamp=at)

    def failed(self, cause: object) -> ReadError:
        """The :class:`ReadError` ending this read on a failure that is not the deadline
        (:meth:`timed_out` is that one): missing readings get ``ACNET_DISCONNECTED``.
        Adapters raise it ``from`` the failure."""
        return self._ended(f"ACL read failed: {cause}", timed_out=False, note=str(cause))

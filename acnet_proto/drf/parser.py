"""Reading DRF text: :func:`parse`, :func:`parse_event`, and the helpers that rewrite a DRF.

Hand-written: one left-to-right pass, no backtracking, exact error
positions. Invalid text raises :class:`~acnet_proto.drf.request.DRFError`
and nothing else; non-``str`` input raises :class:`TypeError`.
"""

from __future__ import annotations

import functools
from dataclasses import replace

from acnet_proto.drf.events import (
    MAX_CLOCK_EVENT,
    MAX_STATE_VALUE,
    MAX_TIME_US,
    ClockEvent,
    ClockType,
    DefaultEvent,
    Event,
    ImmediateEvent,
    NeverEvent,
    PeriodicEvent,
    StateEvent,
    StateOp,
)
from acnet_proto.drf.request import (
    FIELD_BY_NAME,
    MAX_DRF_LENGTH,
    MAX_INDEX,
    PROPERTY_BY_NAME,
    PROPERTY_BY_QUALIFIER,
    WRITE_PROPERTY,
    ArrayRange,
    ByteRange,
    DataRequest,
    DRFError,
    Field,
    Property,
    Range,
    fail,
    field_list,
)
from acnet_proto.drf.sources import (
    MAX_LOGGER_MS,
    MAX_NODE,
    NODE_CHARS,
    FTPSource,
    LoggerSource,
    Source,
)

__all__ = [
    "canonical",
    "parse",
    "parse_event",
    "to_write_drf",
    "with_default_event",
    "with_event",
]

_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_LETTERS = _UPPER | frozenset("abcdefghijklmnopqrstuvwxyz")
_DIGITS = frozenset("0123456789")
_HEX = _DIGITS | frozenset("abcdefABCDEF")
_NAME_CHARS = _LETTERS | _DIGITS | frozenset("_:-")
_WORD_CHARS = _LETTERS | _DIGITS | frozenset("_")
_MAX_NAME = 62  # characters after the qualifier; 64 in all

_EVENT_FORMS = (
    "an event: U, I, N, p,<period>, q,<period>, e,<hex>, or s,<device>,<value>,<delay>,<op>"
)
_TIME_FORM = "digits, then optionally a unit S, M (the default), U, H or K"
_DEVICE_FORM = "a device name such as M:OUTTMP"

_SOURCE_FORMS = "LOGGER:<start ms>:<end ms>[:<node>] or FTP"
# sources the lab's DPM knows but this library does not serve or plan
_KNOWN_UNSUPPORTED = frozenset(
    ("LIVEDATA", "LOGGERSINGLE", "LOGGERDURATION", "SRFILE", "SDAFILE", "REDIR", "MIRROR")
)
_SOURCE_MARK = "<-"

_TIME_UNITS_US = {"S": 1_000_000, "M": 1000, "U": 1}
_FREQUENCY_UNITS_US = {"H": 1_000_000, "K": 1000}  # period = unit / n
_STATE_OPS = {op.value: op for op in StateOp}
_CLOCK_TYPES = {t.value: t for t in ClockType}


def _check_characters(text: str) -> None:
    if text.isascii() and text.isprintable() and " " not in text:
        return
    for i, c in enumerate(text):
        if c.isspace():
            fail(text, i, "whitespace is not allowed in a DRF", "no spaces, tabs or line breaks")
        if not (c.isascii() and c.isprintable()):
            fail(text, i, f"character {c!r} is not allowed in a DRF", "printable ASCII only")


def _check_length(text: str, what: str) -> None:
    if not text:
        fail(text, 0, f"empty {what}", _DEVICE_FORM if what == "DRF" else _EVENT_FORMS)
    if len(text) > MAX_DRF_LENGTH:
        fail(
            text,
            MAX_DRF_LENGTH,
            f"{what} is {len(text)} characters long; the limit is {MAX_DRF_LENGTH}",
        )


def _scan_device(text: str, i: int, end: int) -> tuple[str, str, int]:
    """Read ``X?NAME`` at ``i``; return (canonical device, qualifier, next index)."""
    if i >= end:
        fail(text, i, "missing device name", _DEVICE_FORM)
    if text[i] not in _LETTERS and text[i] != "0":
        fail(text, i, f"a device name cannot start with {text[i]!r}", "a letter (or 0)")
    if i + 1 >= end:
        fail(text, i + 1, "device name ends after one character", "':' and the rest of the name")
    qualifier = text[i + 1]
    if qualifier not in PROPERTY_BY_QUALIFIER:
        fail(
            text,
            i + 1,
            f"{qualifier!r} is not a property qualifier",
            "one of : ? _ | & @ $ ~ ^ # !",
        )
    j = i + 2
    while j < end and text[j] in _NAME_CHARS:
        j += 1
    if j == i + 2:
        fail(text, j, "missing device name after the qualifier", "letters, digits, '_', ':' or '-'")
    if j - (i + 2) > _MAX_NAME:
        fail(text, i + 2 + _MAX_NAME, "device name is longer than 64 characters")
    return (text[i] + ":" + text[i + 2 : j]).upper(), qualifier, j


def _scan_word(text: str, i: int) -> tuple[str, int]:
    j = i
    while j < len(text) and text[j] in _WORD_CHARS:
        j += 1
    return text[i:j].upper(), j


def _scan_number(text: str, i: int, end: int, what: str, limit: int) -> tuple[int | None, int]:
    """Read optional decimal digits at ``i``; return (value or None, next index)."""
    j = i
    while j < end and text[j] in _DIGITS:
        j += 1
    if j == i:
        return None, j
    # bound the digit count before int() so huge inputs stay cheap
    if j - i > len(str(limit)) or int(text[i:j]) > limit:
        fail(text, i, f"{what} {text[i:j]} is too large", f"at most {limit}")
    return int(text[i:j]), j


def _scan_range(text: str, i: int) -> tuple[Range, int]:
    closer = "]" if text[i] == "[" else "}"
    array = closer == "]"
    first, j = _scan_number(text, i + 1, len(text), "index" if array else "offset", MAX_INDEX)
    second: int | None = None
    colon_at = -1
    if j < len(text) and text[j] == ":":
        colon_at = j
        second, j = _scan_number(text, j + 1, len(text), "index" if array else "length", MAX_INDEX)
    if j >= len(text) or text[j] != closer:
        found = "end of text" if j >= len(text) else repr(text[j])
        fail(text, j, f"unexpected {found} in a range", f"digits, ':' or {closer!r}")
    start = first or 0
    if array:
        if colon_at < 0:
            return ArrayRange(start, first), j + 1  # [n] is [n:n]; [] is [:]
        if second is not None and second < start:
            fail(text, colon_at + 1, f"range end {second} is before its start {start}")
        return ArrayRange(start, second), j + 1
    length = 1 if colon_at < 0 and first is not None else second
    if length == 0:
        fail(text, colon_at + 1, "a byte range needs at least 1 byte", "a length of 1 or more")
    if length is not None and start + length > MAX_INDEX + 1:
        fail(
            text,
            i + 1,
            "byte range ends past the largest offset",
            f"offset + length <= {MAX_INDEX + 1}",
        )
    return ByteRange(start, length), j + 1


def _scan_field(text: str, i: int, prop: Property) -> tuple[Field, int]:
    name, j = _scan_word(text, i)
    field = FIELD_BY_NAME.get(name)
    if field is None:
        if not name:
            fail(text, i, "missing field name after '.'", field_list(prop))
        if name in PROPERTY_BY_NAME:
            fail(text, i, f"{name} is a property; only one may be given, before any range")
        fail(text, i, f"unknown field {text[i:j]!r}", field_list(prop))
    if field not in prop.fields:
        fail(
            text,
            i,
            f"field {field.name} is not valid for the {prop.name} property",
            field_list(prop),
        )
    return field, j


def _parse_request(text: str) -> DataRequest:
    _check_length(text, "DRF")
    _check_characters(text)
    # "<" appears nowhere else in a DRF except as a state operator, and no
    # operator contains "-", so the first "<-" starts the source
    end = _source_at(text)
    source = None if end == len(text) else _scan_source(text, end + len(_SOURCE_MARK))
    device, qualifier, i = _scan_device(text, 0, end)
    prop = PROPERTY_BY_QUALIFIER[qualifier]
    rng: Range | None = None
    field: Field | None = None
    if i < end and text[i] == ".":
        name, j = _scan_word(text, i + 1)
        given = PROPERTY_BY_NAME.get(name)
        if given is not None:
            if qualifier != ":" and given is not prop:
                fail(
                    text,
                    i + 1,
                    f"property {given.name} contradicts the {qualifier!r} qualifier ({prop.name})",
                    f"{prop.name}, or ':' in the device name",
                )
            prop, i = given, j
        elif name in FIELD_BY_NAME:
            # DEVICE.FIELD: a field of the qualifier's (or default) property
            field, i = _scan_field(text, i + 1, prop)
        elif not name:
            fail(
                text,
                i + 1,
                "missing property or field name after '.'",
                "a property or a field name",
            )
        else:
            props = ", ".join(p.name for p in Property)
            fail(
                text,
                i + 1,
                f"unknown property or field {text[i + 1 : j]!r}",
                f"a property ({props}) or a field: {field_list(prop)}",
            )
    if field is None and i < end and text[i] in "[{":
        rng, i = _scan_range(text, i)
    if field is None and i < end and text[i] == ".":
        field, i = _scan_field(text, i + 1, prop)
    event: Event | None = None
    if i < end and text[i] == "@":
        event = _scan_event(text, i + 1, end)
        i = end
    if i < end:
        c = text[i]
        if c in "[{" and rng is not None:
            fail(text, i, "only one range may be given")
        if c in "[{":
            fail(text, i, "a range must come before the field", "'@' and an event, or the end")
        if c == "." and field is not None:
            fail(text, i, "only one field may be given", "'@' and an event, or the end")
        nexts = [] if field is not None else ["'.' and a field"]
        if rng is None and field is None:
            nexts.insert(0, "a range")
        fail(text, i, f"unexpected {c!r}", ", ".join([*nexts, "'@' and an event", "the end"]))
    return DataRequest(device, prop, rng, field, event, source)


def _source_at(text: str) -> int:
    """Where ``<-`` starts in ``text``, or ``len(text)`` when there is none."""
    at = text.find(_SOURCE_MARK)
    return len(text) if at < 0 else at


def _number(text: str, at: int, item: str, what: str) -> int:
    if not item or not item.isdigit() or not item.isascii():
        bad = next((k for k, c in enumerate(item) if c not in "0123456789"), 0)
        problem = f"missing {what}" if not item else f"unexpected {item[bad]!r} in the {what}"
        fail(text, at + bad, problem, "Unix milliseconds (digits only)")
    if len(item) > len(str(MAX_LOGGER_MS)) or int(item) > MAX_LOGGER_MS:
        fail(text, at, f"{what} {item} is too large", f"at most {MAX_LOGGER_MS} (year 9999)")
    return int(item)


def _logger(text: str, at: int, items: list[str]) -> LoggerSource:
    """Read ``LOGGER``'s items (after the name); ``at`` is where the first starts."""
    if len(items) < 2:
        fail(text, len(text), "a LOGGER source needs a start and an end", _SOURCE_FORMS)
    if len(items) > 3:
        extra = at + sum(len(i) + 1 for i in items[:3]) - 1
        fail(text, extra, "too many items in a LOGGER source", "the end")
    start = _number(text, at, items[0], "start time")
    end_at = at + len(items[0]) + 1
    end = _number(text, end_at, items[1], "end time")
    if end < start:
        fail(text, end_at, f"end time {end} is before start time {start}", f"at least {start}")
    node = None
    if len(items) == 3:
        node_at = end_at + len(items[1]) + 1
        node = items[2].upper()
        if not node:
            fail(text, node_at, "missing logger node after ':'", "a logger name, or no ':'")
        bad = next((k for k, c in enumerate(node) if c not in NODE_CHARS), None)
        if bad is not None:
            fail(
                text,
                node_at + bad,
                f"unexpected {node[bad]!r} in the logger node",
                "letters, digits or '_'",
            )
        if len(node) > MAX_NODE:
            fail(text, node_at + MAX_NODE, f"logger node is longer than {MAX_NODE} characters")
    return LoggerSource(start, end, node)


def _scan_source(text: str, at: int) -> Source:
    """Read the source that starts at ``text[at]`` (just after ``<-``) and runs to the end."""
    name, *items = text[at:].split(":")
    kind = name.upper()
    if kind == "LOGGER":
        return _logger(text, at + len(name) + 1, items)
    if kind == "FTP":
        if items:
            fail(text, at + len(name), "an FTP source takes no arguments", "the end")
        return FTPSource()
    if not kind:
        fail(text, at, "missing data source after '<-'", _SOURCE_FORMS)
    if kind in _KNOWN_UNSUPPORTED:
        fail(text, at, f"the {kind} source is not supported", _SOURCE_FORMS)
    fail(text, at, f"unknown data source {name!r}", _SOURCE_FORMS)


def _split_items(text: str, i: int, end: int) -> list[tuple[int, str]]:
    """Split ``text[i:end]`` at commas into (position, item) pairs."""
    items = []
    for item in text[i:end].split(","):
        items.append((i, item))
        i += len(item) + 1
    return items


def _scan_time(text: str, at: int, item: str, what: str, minimum: int) -> int:
    """Read a period or delay item such as ``1000``, ``1S`` or ``5H``; return µs."""
    k = 0
    while k < len(item) and item[k] in _DIGITS:
        k += 1
    if k == 0:
        fail(
            text,
            at,
            f"missing {what}" if not item else f"{what} must start with digits",
            _TIME_FORM,
        )
    if k > 15:
        fail(text, at, f"{what} {item[:k]} is too large", f"at most {MAX_TIME_US // 1000} ms")
    number = int(item[:k])
    unit = item[k:].upper() or "M"
    if len(unit) > 1 or (unit not in _TIME_UNITS_US and unit not in _FREQUENCY_UNITS_US):
        bad = k if item[k].upper() not in "SMUHK" else k + 1
        fail(text, at + bad, f"unexpected {item[bad]!r} in a {what}", _TIME_FORM)
    if unit in _TIME_UNITS_US:
        us = number * _TIME_UNITS_US[unit]
    elif number == 0:
        fail(text, at, f"a frequency of 0 gives no {what}", "a frequency of 1 or more")
    else:
        scale = _FREQUENCY_UNITS_US[unit]
        us = (scale + number // 2) // number  # round half up, like Java's Math.round
    if us < minimum:
        problem = (
            f"{what} must be positive" if number == 0 else f"{what} {item} is under 1 microsecond"
        )
        fail(text, at, problem, f"at least {minimum} microsecond")
    if us > MAX_TIME_US:
        fail(
            text,
            at,
            f"{what} {item} is too long",
            f"at most {MAX_TIME_US // 1000} ms (about 24.8 days)",
        )
    return us


def _scan_event(text: str, i: int, end: int) -> Event:
    """Read the event that starts at ``i`` and runs to ``end``."""
    items = _split_items(text, i, end)
    at, kind = items[0]
    if not kind:
        fail(text, at, "missing event", _EVENT_FORMS)
    letter = kind[0].upper()
    if letter not in "UINPQES":
        fail(text, at, f"unknown event type {kind[0]!r}", _EVENT_FORMS)
    if len(kind) > 1:
        fail(text, at + 1, f"unexpected {kind[1]!r} after event type {letter}", "',' or the end")
    args = items[1:]
    if letter in "UIN":
        if args:
            fail(text, args[0][0] - 1, f"event {letter} takes no arguments", "the end")
        return {"U": DefaultEvent, "I": ImmediateEvent, "N": NeverEvent}[letter]()
    if letter in "PQ":
        return _periodic(text, letter, args)
    if letter == "E":
        return _clock(text, args, end)
    return _state(text, args, end)


def _too_many(text: str, args: list[tuple[int, str]], allowed: int, what: str) -> None:
    if len(args) > allowed:
        fail(text, args[allowed][0] - 1, f"too many items in a {what} event", "the end")


def _periodic(text: str, letter: str, args: list[tuple[int, str]]) -> PeriodicEvent:
    _too_many(text, args, 2, "periodic")
    if not args:
        # bare "p": the Java reference's default of once a second
        return PeriodicEvent(1_000_000, continuous=letter == "P")
    period = _scan_time(text, *args[0], "period", 1)
    immediate = True
    if len(args) == 2:
        at, flag = args[1]
        if flag.upper() not in ("T", "TRUE", "F", "FALSE"):
            fail(text, at, f"bad immediate flag {flag!r}", "T or F (TRUE or FALSE)")
        immediate = flag.upper()[0] == "T"
    return PeriodicEvent(period, continuous=letter == "P", immediate=immediate)


def _clock(text: str, args: list[tuple[int, str]], end: int) -> ClockEvent:
    _too_many(text, args, 3, "clock")
    if not args:
        fail(
            text,
            end,
            "a clock event needs an event number",
            "',' and a hex number such as 8f",
        )
    at, number = args[0]
    if not number or any(c not in _HEX for c in number):
        bad = next((k for k, c in enumerate(number) if c not in _HEX), 0)
        fail(text, at + bad, "clock event number must be hexadecimal", "hex digits such as 8f")
    if len(number) > 8 or int(number, 16) > MAX_CLOCK_EVENT:
        fail(text, at, f"clock event number {number} is too large", f"at most {MAX_CLOCK_EVENT:x}")
    clock_type = ClockType.EITHER
    if len(args) > 1:
        at, kind = args[1]
        if kind.upper() not in _CLOCK_TYPES:
            fail(
                text,
                at,
                f"bad clock event type {kind!r}",
                "H (hardware), S (software) or E (either)",
            )
        clock_type = _CLOCK_TYPES[kind.upper()]
    delay = _scan_time(text, *args[2], "delay", 0) if len(args) > 2 else 0
    return ClockEvent(int(number, 16), clock_type, delay)


def _state(text: str, args: list[tuple[int, str]], end: int) -> StateEvent:
    _too_many(text, args, 4, "state")
    if len(args) < 4:
        missing = ("a device", "a value", "a delay", "an operator")[len(args)]
        fail(
            text,
            end,
            "a state event needs a device, value, delay and operator",
            f"',' and {missing}",
        )
    (at, device_text), (value_at, value_text), delay_item, (op_at, op_text) = args
    name_end = at + len(device_text)
    device, qualifier, j = _scan_device(text, at, name_end)
    if j < name_end:
        fail(text, j, f"unexpected {text[j]!r} in the state device name", "',' and a value")
    if qualifier != ":":
        fail(text, at + 1, "a state device takes no property qualifier", "':'")
    value, j = _scan_number(
        text, value_at, value_at + len(value_text), "state value", MAX_STATE_VALUE
    )
    if value is None or j != value_at + len(value_text):
        fail(text, j, "state value must be a whole number", "digits")
    delay = _scan_time(text, *delay_item, "delay", 0)
    op = _STATE_OPS.get(op_text)
    if op is None:
        fail(text, op_at, f"bad state operator {op_text!r}", "one of = != > < >= <= *")
    return StateEvent(device, value, delay, op)


# --- public functions --------------------------------------------------------


def _as_str(text: object, what: str = "DRF") -> str:
    if type(text) is str:
        return text
    if isinstance(text, str):
        # a subclass could override __eq__/__hash__ and poison the cache
        return str.__str__(text)
    raise TypeError(f"a {what} must be a str, not {type(text).__name__}")


@functools.lru_cache(maxsize=4096)
def _parse_cached(text: str) -> DataRequest:
    return _parse_request(text)


def parse(text: str) -> DataRequest:
    """Parse DRF ``text`` into a :class:`DataRequest`.

    Names are case-insensitive. Raises :class:`DRFError` for any invalid text
    (with the position of the first problem), :class:`TypeError` for a
    non-``str``. Results are cached: the same text parses once.
    """
    return _parse_cached(_as_str(text))


@functools.lru_cache(maxsize=256)
def _parse_event_cached(text: str) -> Event:
    _check_length(text, "event")
    _check_characters(text)
    return _scan_event(text, 1 if text.startswith("@") else 0, len(text))


def parse_event(text: str) -> Event:
    """Parse event text such as ``"I"``, ``"p,1000"`` or ``"@e,8f,H,100"``.

    The leading ``@`` is optional. Raises :class:`DRFError` or
    :class:`TypeError` like :func:`parse`.
    """
    return _parse_event_cached(_as_str(text, "DRF event"))


def canonical(text: str) -> str:
    """The canonical form of DRF ``text``: ``str(parse(text))``."""
    return parse(text).to_drf()


def _as_request(drf: object) -> tuple[DataRequest, str | None]:
    if isinstance(drf, DataRequest):
        return drf, None
    text = _as_str(drf, "DRF (str or DataRequest)")
    return parse(text), text


def _as_event(event: object) -> Event:
    if isinstance(event, Event):
        return event
    return parse_event(_as_str(event, "DRF event (str or Event)"))


def _event_at(text: str) -> int:
    # In a valid DRF the first "@" after the qualifier starts the event:
    # names, properties, ranges and fields never contain one.
    return text.find("@", 2)


def with_event(drf: str | DataRequest, event: Event | str) -> str:
    """``drf`` with its event set to ``event`` (replacing any it had).

    Text keeps every character the caller wrote outside the event, a
    ``<-`` source included; only the event is rewritten. A
    :class:`DataRequest` comes back in canonical form.
    """
    request, text = _as_request(drf)
    new = _as_event(event)
    if text is None:
        return replace(request, event=new).to_drf()
    head, tail = _split_source(text)
    at = _event_at(head)
    return f"{head if at < 0 else head[:at]}@{new.to_drf()}{tail}"


def _split_source(text: str) -> tuple[str, str]:
    """``text`` cut before its ``<-`` source: (the rest, the source with its mark)."""
    at = _source_at(text)
    return text[:at], text[at:]


def with_default_event(drf: str | DataRequest, event: Event | str) -> str:
    """``drf`` with ``event`` appended if it has none; otherwise unchanged.

    This is how one-shot reads get ``@I``: ``with_default_event("M:OUTTMP",
    "I") == "M:OUTTMP@I"``, while ``"M:OUTTMP@p,1000"`` (or an explicit
    ``@U``) comes back as given. Text is validated but kept byte for byte.
    The event goes before a ``<-`` source (``"M:OUTTMP<-FTP"`` ->
    ``"M:OUTTMP@I<-FTP"``); a logger request comes back unchanged, because
    its window says what is sent and the lab's DPM refuses ``@I`` with it.
    """
    request, text = _as_request(drf)
    new = _as_event(event)
    written = request.to_drf() if text is None else text
    if request.event is not None or isinstance(request.source, LoggerSource):
        return written
    head, tail = _split_source(written)
    return f"{head}@{new.to_drf()}{tail}"


def to_write_drf(drf: str | DataRequest) -> str:
    """The DRF a setting of ``drf`` is sent as.

    READING becomes SETTING and STATUS becomes CONTROL; SETTING, CONTROL,
    ANALOG and DIGITAL stay; range and field stay; the event is forced to
    ``@N``. ``"Z:ACLTST"`` -> ``"Z:ACLTST.SETTING@N"``, ``"Z|ACLTST"`` ->
    ``"Z:ACLTST.CONTROL@N"``, ``"Z@ACLTST.MAX"`` -> ``"Z:ACLTST.ANALOG.MAX@N"``.
    Raises :class:`DRFError` for a property that cannot be written
    (DESCRIPTION, INDEX, LONG_NAME, ALARM_LIST_NAME), a field that has no
    writable counterpart (e.g. ``STATUS.ON``), or a request with a ``<-``
    source (logged and plotted data are read-only).
    """
    request, text = _as_request(drf)
    shown = request.to_drf()
    # name what the caller passed; the caret points into the canonical form
    subject = "cannot write" if text in (None, shown) else f"cannot write {text!r}, read as"
    if request.source is not None:
        raise DRFError(
            shown,
            _source_at(shown),
            f"a {request.source.to_drf().split(':')[0]} source is read-only",
            "a request without '<-' (the live device)",
            subject=subject,
        )
    target = WRITE_PROPERTY.get(request.property)
    if target is None:
        raise DRFError(
            shown,
            len(request.device) + 1,
            f"the {request.property.name} property is read-only",
            "a READING, SETTING, STATUS, CONTROL, ANALOG or DIGITAL request",
            subject=subject,
        )
    if request.field is not None and request.field not in target.fields:
        at = _event_at(shown)
        raise DRFError(
            shown,
            (shown if at < 0 else shown[:at]).rfind(".") + 1,
            f"field {request.field.name} cannot be written as {target.name}",
            field_list(target),
            subject=subject,
        )
    return DataRequest(request.device, target, request.range, request.field, NeverEvent()).to_drf()

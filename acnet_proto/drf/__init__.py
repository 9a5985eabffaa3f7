"""DRF3 data requests: parse, check, format.

A DRF names one piece of data and when to send it::

    DEVICE{.PROPERTY}[range]{.FIELD}{@EVENT}{<-SOURCE}
    M:OUTTMP   Z_ACLTST   M:OUTTMP.READING[0:9].RAW@p,1000   Z@ACLTST.MAX@e,8f,H,100
    M:OUTTMP<-LOGGER:1700000000000:1700000600000   M:OUTTMP@p,100H<-FTP

:func:`parse` turns text into an immutable :class:`DataRequest`;
``str(request)`` (or ``request.to_drf()``) turns it back into canonical text,
and ``parse(str(r)) == r`` for every valid request ``r``. Invalid text raises
:class:`DRFError` (a :class:`ValueError`) and nothing else; non-``str`` input
raises :class:`TypeError`. Nothing here does I/O.

Canonical form
--------------
- The device is upper case with ``:`` as its second character; a property
  qualifier (``Z_ACLTST``, ``Z|ACLTST``, ...) becomes the property.
- Property and field aliases become their DRF3 names (``.READ`` ->
  ``.READING``, ``.VOLTS`` -> ``.PRIMARY``, ``.MINIMUM`` -> ``.MIN``).
- ``.READING`` is left out, because it is the default, *unless* a field
  follows: ``M:OUTTMP.READING.RAW`` rather than ``M:OUTTMP.RAW``, so that every
  DRF parser reads the name after the dot as a field without having to guess.
- A field appears only when one was given; no default field is added or
  removed (``.READING.SCALED`` stays as written).
- Ranges: ``[n]`` is ``[n:n]`` and is written ``[n]``; ``[]``, ``[:]`` and
  ``[0:]`` are the whole array, written ``[:]``; ``[:n]`` is ``[0:n]``. Byte
  ranges are ``{offset:length}``; ``{n}`` is one byte, ``{n:1}``, written ``{n}``.
- The event appears only when one was given, so an explicit ``@U`` is kept
  and ``request.event is None`` tells that none was given. Events are
  written as described in :mod:`acnet_proto.drf.events` (``I``, ``N``,
  ``U``, ``p,1000``, ``q,500U``, ``e,8f,H,100``, ``s,V:STATE,5,0,=``).
- The source appears only when one was given (``request.source is None`` is
  the live device) and is written last: ``<-LOGGER:<start ms>:<end ms>``
  with ``:<NODE>`` (upper case) when a logger node was named, or ``<-FTP``.
  See :mod:`acnet_proto.drf.sources`.
"""

from acnet_proto.drf.events import (
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
from acnet_proto.drf.parser import (
    canonical,
    parse,
    parse_event,
    to_write_drf,
    with_default_event,
    with_event,
)
from acnet_proto.drf.request import (
    MAX_DRF_LENGTH,
    ArrayRange,
    ByteRange,
    DataRequest,
    DRFError,
    Field,
    Property,
    Range,
)
from acnet_proto.drf.sources import MAX_LOGGER_MS, FTPSource, LoggerSource, Source

__all__ = [
    "MAX_DRF_LENGTH",
    "MAX_LOGGER_MS",
    "ArrayRange",
    "ByteRange",
    "ClockEvent",
    "ClockType",
    "DRFError",
    "DataRequest",
    "DefaultEvent",
    "Event",
    "FTPSource",
    "Field",
    "ImmediateEvent",
    "LoggerSource",
    "NeverEvent",
    "PeriodicEvent",
    "Property",
    "Range",
    "Source",
    "StateEvent",
    "StateOp",
    "canonical",
    "parse",
    "parse_event",
    "to_write_drf",
    "with_default_event",
    "with_event",
]

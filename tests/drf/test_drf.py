"""DRF3 parsing, canonical formatting, and the write/event helpers."""

from __future__ import annotations

import dataclasses
import pickle
import subprocess
import sys

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from acnet_proto import drf
from acnet_proto.drf import (
    ArrayRange,
    ByteRange,
    ClockEvent,
    ClockType,
    DataRequest,
    DefaultEvent,
    DRFError,
    Field,
    ImmediateEvent,
    NeverEvent,
    PeriodicEvent,
    Property,
    StateEvent,
    StateOp,
)
from tests.support import ROOT

P, F = Property, Field

# text, expected request, canonical text
VALID = [
    ("M:OUTTMP", DataRequest("M:OUTTMP"), "M:OUTTMP"),
    ("m:outtmp", DataRequest("M:OUTTMP"), "M:OUTTMP"),
    ("M:OUTTMP.READING", DataRequest("M:OUTTMP"), "M:OUTTMP"),
    (
        "m:outtmp.read@p,1000",
        DataRequest("M:OUTTMP", event=PeriodicEvent(1_000_000)),
        "M:OUTTMP@p,1000",
    ),
    ("M:OUTTMP.PRREAD", DataRequest("M:OUTTMP"), "M:OUTTMP"),
    ("M?OUTTMP", DataRequest("M:OUTTMP"), "M:OUTTMP"),
    ("M_OUTTMP", DataRequest("M:OUTTMP", P.SETTING), "M:OUTTMP.SETTING"),
    ("M:OUTTMP.SET", DataRequest("M:OUTTMP", P.SETTING), "M:OUTTMP.SETTING"),
    ("M:OUTTMP.prset", DataRequest("M:OUTTMP", P.SETTING), "M:OUTTMP.SETTING"),
    ("Z|ACLTST", DataRequest("Z:ACLTST", P.STATUS), "Z:ACLTST.STATUS"),
    ("Z:ACLTST.BASIC_STATUS", DataRequest("Z:ACLTST", P.STATUS), "Z:ACLTST.STATUS"),
    ("Z:ACLTST.STS", DataRequest("Z:ACLTST", P.STATUS), "Z:ACLTST.STATUS"),
    ("Z:ACLTST.PRBSTS", DataRequest("Z:ACLTST", P.STATUS), "Z:ACLTST.STATUS"),
    ("Z&ACLTST", DataRequest("Z:ACLTST", P.CONTROL), "Z:ACLTST.CONTROL"),
    ("Z:ACLTST.BASIC_CONTROL", DataRequest("Z:ACLTST", P.CONTROL), "Z:ACLTST.CONTROL"),
    ("Z:ACLTST.CTRL", DataRequest("Z:ACLTST", P.CONTROL), "Z:ACLTST.CONTROL"),
    ("Z:ACLTST.PRBCTL", DataRequest("Z:ACLTST", P.CONTROL), "Z:ACLTST.CONTROL"),
    ("Z@ACLTST", DataRequest("Z:ACLTST", P.ANALOG), "Z:ACLTST.ANALOG"),
    ("Z:ACLTST.ANALOG_ALARM", DataRequest("Z:ACLTST", P.ANALOG), "Z:ACLTST.ANALOG"),
    ("Z:ACLTST.AA", DataRequest("Z:ACLTST", P.ANALOG), "Z:ACLTST.ANALOG"),
    ("Z:ACLTST.PRANAB", DataRequest("Z:ACLTST", P.ANALOG), "Z:ACLTST.ANALOG"),
    ("Z$ACLTST", DataRequest("Z:ACLTST", P.DIGITAL), "Z:ACLTST.DIGITAL"),
    ("Z:ACLTST.DIGITAL_ALARM", DataRequest("Z:ACLTST", P.DIGITAL), "Z:ACLTST.DIGITAL"),
    ("Z:ACLTST.DA", DataRequest("Z:ACLTST", P.DIGITAL), "Z:ACLTST.DIGITAL"),
    ("Z:ACLTST.PRDABL", DataRequest("Z:ACLTST", P.DIGITAL), "Z:ACLTST.DIGITAL"),
    ("Z~ACLTST", DataRequest("Z:ACLTST", P.DESCRIPTION), "Z:ACLTST.DESCRIPTION"),
    ("Z:ACLTST.DESC", DataRequest("Z:ACLTST", P.DESCRIPTION), "Z:ACLTST.DESCRIPTION"),
    ("Z:ACLTST.PRDESC", DataRequest("Z:ACLTST", P.DESCRIPTION), "Z:ACLTST.DESCRIPTION"),
    ("Z^ACLTST", DataRequest("Z:ACLTST", P.INDEX), "Z:ACLTST.INDEX"),
    ("Z#ACLTST", DataRequest("Z:ACLTST", P.LONG_NAME), "Z:ACLTST.LONG_NAME"),
    ("Z:ACLTST.LNGNAM", DataRequest("Z:ACLTST", P.LONG_NAME), "Z:ACLTST.LONG_NAME"),
    ("Z:ACLTST.PRLNAM", DataRequest("Z:ACLTST", P.LONG_NAME), "Z:ACLTST.LONG_NAME"),
    ("Z!ACLTST", DataRequest("Z:ACLTST", P.ALARM_LIST_NAME), "Z:ACLTST.ALARM_LIST_NAME"),
    ("Z:ACLTST.LSTNAM", DataRequest("Z:ACLTST", P.ALARM_LIST_NAME), "Z:ACLTST.ALARM_LIST_NAME"),
    ("Z:ACLTST.PRALNM", DataRequest("Z:ACLTST", P.ALARM_LIST_NAME), "Z:ACLTST.ALARM_LIST_NAME"),
    # an explicit property that agrees with the qualifier is fine
    ("Z_ACLTST.SETTING", DataRequest("Z:ACLTST", P.SETTING), "Z:ACLTST.SETTING"),
    # ':' is no qualifier, so any property may follow
    ("Z:ACLTST.ANALOG", DataRequest("Z:ACLTST", P.ANALOG), "Z:ACLTST.ANALOG"),
    # fields, with and without a property
    ("M:OUTTMP.RAW", DataRequest("M:OUTTMP", field=F.RAW), "M:OUTTMP.READING.RAW"),
    ("M:OUTTMP.READING.RAW", DataRequest("M:OUTTMP", field=F.RAW), "M:OUTTMP.READING.RAW"),
    ("M:OUTTMP.READING.SCALED", DataRequest("M:OUTTMP", field=F.SCALED), "M:OUTTMP.READING.SCALED"),
    ("M:OUTTMP.COMMON", DataRequest("M:OUTTMP", field=F.SCALED), "M:OUTTMP.READING.SCALED"),
    ("M:OUTTMP.volts", DataRequest("M:OUTTMP", field=F.PRIMARY), "M:OUTTMP.READING.PRIMARY"),
    (
        "M_OUTTMP.PRIMARY",
        DataRequest("M:OUTTMP", P.SETTING, field=F.PRIMARY),
        "M:OUTTMP.SETTING.PRIMARY",
    ),
    ("Z@ACLTST.MAX", DataRequest("Z:ACLTST", P.ANALOG, field=F.MAX), "Z:ACLTST.ANALOG.MAX"),
    ("Z@ACLTST.MINIMUM", DataRequest("Z:ACLTST", P.ANALOG, field=F.MIN), "Z:ACLTST.ANALOG.MIN"),
    ("Z@ACLTST.TOLERANCE", DataRequest("Z:ACLTST", P.ANALOG, field=F.TOL), "Z:ACLTST.ANALOG.TOL"),
    (
        "Z:ACLTST.AA.RAW_MAX",
        DataRequest("Z:ACLTST", P.ANALOG, field=F.RAW_MAX),
        "Z:ACLTST.ANALOG.RAW_MAX",
    ),
    ("Z$ACLTST.MASK", DataRequest("Z:ACLTST", P.DIGITAL, field=F.MASK), "Z:ACLTST.DIGITAL.MASK"),
    ("Z$ACLTST.NOMINAL", DataRequest("Z:ACLTST", P.DIGITAL, field=F.NOM), "Z:ACLTST.DIGITAL.NOM"),
    ("Z|ACLTST.ON", DataRequest("Z:ACLTST", P.STATUS, field=F.ON), "Z:ACLTST.STATUS.ON"),
    (
        "Z|ACLTST.bit_names",
        DataRequest("Z:ACLTST", P.STATUS, field=F.BIT_NAMES),
        "Z:ACLTST.STATUS.BIT_NAMES",
    ),
    ("Z&ACLTST.RAW", DataRequest("Z:ACLTST", P.CONTROL, field=F.RAW), "Z:ACLTST.CONTROL.RAW"),
    # array ranges
    ("M:OUTTMP[0:10]", DataRequest("M:OUTTMP", range=ArrayRange(0, 10)), "M:OUTTMP[0:10]"),
    ("M:OUTTMP[3]", DataRequest("M:OUTTMP", range=ArrayRange(3, 3)), "M:OUTTMP[3]"),
    ("M:OUTTMP[3:3]", DataRequest("M:OUTTMP", range=ArrayRange(3, 3)), "M:OUTTMP[3]"),
    ("M:OUTTMP[:]", DataRequest("M:OUTTMP", range=ArrayRange()), "M:OUTTMP[:]"),
    ("M:OUTTMP[]", DataRequest("M:OUTTMP", range=ArrayRange()), "M:OUTTMP[:]"),
    ("M:OUTTMP[0:]", DataRequest("M:OUTTMP", range=ArrayRange()), "M:OUTTMP[:]"),
    ("M:OUTTMP[5:]", DataRequest("M:OUTTMP", range=ArrayRange(5)), "M:OUTTMP[5:]"),
    ("M:OUTTMP[:7]", DataRequest("M:OUTTMP", range=ArrayRange(0, 7)), "M:OUTTMP[0:7]"),
    ("M:OUTTMP[007:010]", DataRequest("M:OUTTMP", range=ArrayRange(7, 10)), "M:OUTTMP[7:10]"),
    (
        "M:OUTTMP[0:2147483647]",
        DataRequest("M:OUTTMP", range=ArrayRange(0, 2**31 - 1)),
        "M:OUTTMP[0:2147483647]",
    ),
    # byte ranges are {offset:length}
    ("M:OUTTMP{4}", DataRequest("M:OUTTMP", range=ByteRange(4, 1)), "M:OUTTMP{4}"),
    ("M:OUTTMP{4:1}", DataRequest("M:OUTTMP", range=ByteRange(4, 1)), "M:OUTTMP{4}"),
    ("M:OUTTMP{4:8}", DataRequest("M:OUTTMP", range=ByteRange(4, 8)), "M:OUTTMP{4:8}"),
    ("M:OUTTMP{4:}", DataRequest("M:OUTTMP", range=ByteRange(4)), "M:OUTTMP{4:}"),
    ("M:OUTTMP{}", DataRequest("M:OUTTMP", range=ByteRange()), "M:OUTTMP{:}"),
    ("M:OUTTMP{:}", DataRequest("M:OUTTMP", range=ByteRange()), "M:OUTTMP{:}"),
    ("M:OUTTMP{:2}", DataRequest("M:OUTTMP", range=ByteRange(0, 2)), "M:OUTTMP{0:2}"),
    # everything at once
    (
        "m_outtmp.set[2:3].raw@Q,2S,false",
        DataRequest(
            "M:OUTTMP", P.SETTING, ArrayRange(2, 3), F.RAW, PeriodicEvent(2_000_000, False, False)
        ),
        "M:OUTTMP.SETTING[2:3].RAW@q,2000,F",
    ),
    (
        "M:OUTTMP.READING[0:9].RAW@p,1000",
        DataRequest(
            "M:OUTTMP", range=ArrayRange(0, 9), field=F.RAW, event=PeriodicEvent(1_000_000)
        ),
        "M:OUTTMP.READING[0:9].RAW@p,1000",
    ),
    (
        "M:OUTTMP[1:2]@I",
        DataRequest("M:OUTTMP", range=ArrayRange(1, 2), event=ImmediateEvent()),
        "M:OUTTMP[1:2]@I",
    ),
    # device names: digits, '_', ':', '-', device indices, 64 characters
    ("G:AMANDA", DataRequest("G:AMANDA"), "G:AMANDA"),
    ("E:TR1DHS", DataRequest("E:TR1DHS"), "E:TR1DHS"),
    ("Z:A_B-C:D", DataRequest("Z:A_B-C:D"), "Z:A_B-C:D"),
    ("0:12345", DataRequest("0:12345"), "0:12345"),
    ("Z:" + "A" * 62, DataRequest("Z:" + "A" * 62), "Z:" + "A" * 62),
]


@pytest.mark.parametrize(("text", "request_", "canonical"), VALID)
def test_parse_valid(text: str, request_: DataRequest, canonical: str) -> None:
    """Every spelling parses to the expected parts and formats canonically."""
    parsed = drf.parse(text)
    assert parsed == request_
    assert str(parsed) == canonical
    assert parsed.to_drf() == canonical
    assert drf.canonical(text) == canonical
    assert drf.parse(canonical) == parsed


EVENTS = [
    ("U", DefaultEvent(), "U"),
    ("u", DefaultEvent(), "U"),
    ("I", ImmediateEvent(), "I"),
    ("N", NeverEvent(), "N"),
    ("n", NeverEvent(), "N"),
    ("p,1000", PeriodicEvent(1_000_000), "p,1000"),
    ("P,1000", PeriodicEvent(1_000_000), "p,1000"),
    ("p,1000M", PeriodicEvent(1_000_000), "p,1000"),
    ("p,1S", PeriodicEvent(1_000_000), "p,1000"),
    ("p,1s", PeriodicEvent(1_000_000), "p,1000"),
    ("p,1500U", PeriodicEvent(1500), "p,1500U"),
    ("p,15000U", PeriodicEvent(15_000), "p,15"),
    ("p,2H", PeriodicEvent(500_000), "p,500"),
    ("p,3H", PeriodicEvent(333_333), "p,333333U"),
    ("p,1K", PeriodicEvent(1000), "p,1"),
    ("p,1000000H", PeriodicEvent(1), "p,1U"),
    ("p,1000,T", PeriodicEvent(1_000_000), "p,1000"),
    ("p,1000,TRUE", PeriodicEvent(1_000_000), "p,1000"),
    ("p,1000,F", PeriodicEvent(1_000_000, immediate=False), "p,1000,F"),
    ("p,1000,false", PeriodicEvent(1_000_000, immediate=False), "p,1000,F"),
    ("p", PeriodicEvent(1_000_000), "p,1000"),
    ("q,500", PeriodicEvent(500_000, continuous=False), "q,500"),
    ("Q,500,F", PeriodicEvent(500_000, False, False), "q,500,F"),
    ("p,2147483647", PeriodicEvent(2_147_483_647_000), "p,2147483647"),
    ("e,8f", ClockEvent(0x8F), "e,8f"),
    ("E,8F", ClockEvent(0x8F), "e,8f"),
    ("e,02", ClockEvent(2), "e,2"),
    ("e,0", ClockEvent(0), "e,0"),
    ("e,ffff", ClockEvent(0xFFFF), "e,ffff"),
    ("e,8f,H", ClockEvent(0x8F, ClockType.HARDWARE), "e,8f,H"),
    ("e,8f,s", ClockEvent(0x8F, ClockType.SOFTWARE), "e,8f,S"),
    ("e,8f,E", ClockEvent(0x8F), "e,8f"),
    ("e,8f,E,0", ClockEvent(0x8F), "e,8f"),
    ("e,8f,H,0", ClockEvent(0x8F, ClockType.HARDWARE), "e,8f,H"),
    ("e,8f,H,100", ClockEvent(0x8F, ClockType.HARDWARE, 100_000), "e,8f,H,100"),
    ("e,8f,E,100", ClockEvent(0x8F, ClockType.EITHER, 100_000), "e,8f,E,100"),
    ("e,8f,h,250u", ClockEvent(0x8F, ClockType.HARDWARE, 250), "e,8f,H,250U"),
    ("s,V:STATE,5,0,=", StateEvent("V:STATE", 5, 0, StateOp.EQ), "s,V:STATE,5,0,="),
    ("S,v:state,5,1S,!=", StateEvent("V:STATE", 5, 1_000_000, StateOp.NE), "s,V:STATE,5,1000,!="),
    ("s,V:STATE,0,10,>", StateEvent("V:STATE", 0, 10_000, StateOp.GT), "s,V:STATE,0,10,>"),
    ("s,V:STATE,1,0,<", StateEvent("V:STATE", 1, 0, StateOp.LT), "s,V:STATE,1,0,<"),
    ("s,V:STATE,1,0,>=", StateEvent("V:STATE", 1, 0, StateOp.GE), "s,V:STATE,1,0,>="),
    ("s,V:STATE,1,0,<=", StateEvent("V:STATE", 1, 0, StateOp.LE), "s,V:STATE,1,0,<="),
    ("s,V:STATE,1,5U,*", StateEvent("V:STATE", 1, 5, StateOp.ANY), "s,V:STATE,1,5U,*"),
]


@pytest.mark.parametrize(("text", "event", "canonical"), EVENTS)
def test_parse_event(text: str, event: drf.Event, canonical: str) -> None:
    """Events parse alone (with or without '@') and inside a DRF, alike."""
    assert drf.parse_event(text) == event
    assert drf.parse_event("@" + text) == event
    assert str(event) == canonical
    request = drf.parse(f"M:OUTTMP@{text}")
    assert request.event == event
    assert str(request) == f"M:OUTTMP@{canonical}"


# text, position of the problem, words the message must contain
INVALID = [
    ("", 0, "empty DRF"),
    (" M:OUTTMP", 0, "whitespace"),
    ("M:OUTTMP ", 8, "whitespace"),
    ("M:OUT TMP", 5, "whitespace"),
    ("M:OUTTMP\n", 8, "whitespace"),
    ("M:OUTTMP\t@I", 8, "whitespace"),
    ("M:OUTTMP\x00", 8, "not allowed"),
    ("M:OUTTMP\u00e9", 8, "not allowed"),
    ("M:" + "A" * 1100, 1024, "limit is 1024"),
    ("M", 1, "one character"),
    ("M:", 2, "missing device name"),
    ("1:OUTTMP", 0, "cannot start with '1'"),
    (":OUTTMP", 0, "cannot start with ':'"),
    ("MXOUTTMP", 1, "'X' is not a property qualifier"),
    ("M%OUTTMP", 1, "not a property qualifier"),
    ("Z:" + "A" * 63, 64, "longer than 64"),
    ("M:OUTTMP.", 9, "missing property or field"),
    ("M:OUTTMP.FOO", 9, "unknown property or field 'FOO'"),
    ("M:OUTTMP.READING.", 17, "missing field"),
    ("M:OUTTMP.READING.FOO", 17, "unknown field 'FOO'"),
    ("M:OUTTMP.READING.ON", 17, "not valid for the READING property"),
    ("M:OUTTMP.MAX", 9, "not valid for the READING property"),
    ("Z@ACLTST.MASK", 9, "not valid for the ANALOG property"),
    ("Z$ACLTST.MIN", 9, "not valid for the DIGITAL property"),
    ("Z~ACLTST.RAW", 9, "not valid for the DESCRIPTION property"),
    ("M:OUTTMP.READING.SETTING", 17, "is a property"),
    ("M:OUTTMP.READING.RAW.SCALED", 20, "only one field"),
    ("Z_ACLTST.READING", 9, "contradicts the '_' qualifier"),
    ("Z|ACLTST.CONTROL", 9, "contradicts the '|' qualifier"),
    ("M:OUTTMP[", 9, "end of text"),
    ("M:OUTTMP[1", 10, "end of text"),
    ("M:OUTTMP[1:2", 12, "end of text"),
    ("M:OUTTMP[1}", 10, "unexpected '}'"),
    ("M:OUTTMP{1]", 10, "unexpected ']'"),
    ("M:OUTTMP[-1]", 9, "unexpected '-'"),
    ("M:OUTTMP[a]", 9, "unexpected 'a'"),
    ("M:OUTTMP[1:2:3]", 12, "unexpected ':'"),
    ("M:OUTTMP[5:2]", 11, "before its start"),
    ("M:OUTTMP[2147483648]", 9, "too large"),
    ("M:OUTTMP[99999999999999999999]", 9, "too large"),
    ("M:OUTTMP{4:0}", 11, "at least 1 byte"),
    ("M:OUTTMP{2147483647:2}", 9, "past the largest offset"),
    ("M:OUTTMP[0][1]", 11, "only one range"),
    ("M:OUTTMP.RAW[0]", 12, "range must come before the field"),
    ("M:OUTTMP[0]X", 11, "unexpected 'X'"),
    ("M:OUTTMP]", 8, "unexpected ']'"),
    ("M:OUTTMP@", 9, "missing event"),
    ("M:OUTTMP@X", 9, "unknown event type 'X'"),
    ("M:OUTTMP@IMM", 10, "unexpected 'M'"),
    ("M:OUTTMP@I,5", 10, "takes no arguments"),
    ("M:OUTTMP@N@I", 10, "unexpected '@'"),
    ("M:OUTTMP@p,", 11, "missing period"),
    ("M:OUTTMP@p,x", 11, "must start with digits"),
    ("M:OUTTMP@p,-5", 11, "must start with digits"),
    ("M:OUTTMP@p,0", 11, "must be positive"),
    ("M:OUTTMP@p,0S", 11, "must be positive"),
    ("M:OUTTMP@p,0H", 11, "frequency of 0"),
    ("M:OUTTMP@p,3000000H", 11, "under 1 microsecond"),
    ("M:OUTTMP@p,1000X", 15, "unexpected 'X'"),
    ("M:OUTTMP@p,1000SS", 16, "unexpected 'S'"),
    ("M:OUTTMP@p,2147483648", 11, "too long"),
    ("M:OUTTMP@p,3000000S", 11, "too long"),
    ("M:OUTTMP@p,9999999999999999", 11, "too large"),
    ("M:OUTTMP@p,1000,X", 16, "immediate flag"),
    ("M:OUTTMP@p,1000,T,X", 17, "too many items"),
    ("M:OUTTMP@e", 10, "needs an event number"),
    ("M:OUTTMP@e,", 11, "hexadecimal"),
    ("M:OUTTMP@e,8g", 12, "hexadecimal"),
    ("M:OUTTMP@e,10000", 11, "too large"),
    ("M:OUTTMP@e,8f,X", 14, "clock event type"),
    ("M:OUTTMP@e,8f,H,", 16, "missing delay"),
    ("M:OUTTMP@e,8f,H,1,2", 17, "too many items"),
    ("M:OUTTMP@s", 10, "needs a device"),
    ("M:OUTTMP@s,V:STATE,5", 20, "needs a device"),
    ("M:OUTTMP@s,,5,0,=", 11, "missing device name"),
    ("M:OUTTMP@s,V_STATE,5,0,=", 12, "no property qualifier"),
    ("M:OUTTMP@s,V:ST.ATE,5,0,=", 15, "in the state device"),
    ("M:OUTTMP@s,V:STATE,x,0,=", 19, "whole number"),
    ("M:OUTTMP@s,V:STATE,5x,0,=", 20, "whole number"),
    ("M:OUTTMP@s,V:STATE,5,0,==", 23, "bad state operator"),
    ("M:OUTTMP@s,V:STATE,5,0,=,1", 24, "too many items"),
]


@pytest.mark.parametrize(("text", "position", "words"), INVALID)
def test_parse_invalid(text: str, position: int, words: str) -> None:
    """Invalid text raises DRFError pointing at the first bad character."""
    with pytest.raises(DRFError) as info:
        drf.parse(text)
    error = info.value
    assert isinstance(error, ValueError)
    assert error.text == text
    assert error.position == position
    assert words in str(error)


def test_error_message_layout() -> None:
    """The message names the input, shows it, and puts a caret under the culprit."""
    with pytest.raises(DRFError) as info:
        drf.parse("M:OUTTMP.READING.ON@p,1000")
    header, shown, caret, expected = str(info.value).split("\n")
    assert "'M:OUTTMP.READING.ON@p,1000'" in header
    assert "position 17" in header
    assert caret.index("^") == shown.index("M:OUTTMP") + 17
    assert expected == "expected one of RAW, PRIMARY, SCALED"


def test_error_caret_in_long_text() -> None:
    """Long text is windowed around the problem, and the caret still lines up."""
    text = "Z:" + "A" * 62 + "B" * 900
    with pytest.raises(DRFError) as info:
        drf.parse(text)
    _, shown, caret, *_ = str(info.value).split("\n")
    assert info.value.position == 64
    assert shown[caret.index("^")] == "B"
    assert len(shown) < 100


def test_error_pickles() -> None:
    """A DRFError survives pickling with its attributes (for process pools)."""
    with pytest.raises(DRFError) as info:
        drf.parse("M:OUTTMP.FOO")
    copy = pickle.loads(pickle.dumps(info.value))
    assert (copy.text, copy.position, str(copy)) == ("M:OUTTMP.FOO", 9, str(info.value))


@pytest.mark.parametrize("value", [None, b"M:OUTTMP", 42, ["M:OUTTMP"], DataRequest])
def test_parse_rejects_non_str(value: object) -> None:
    """Anything but a str is a TypeError that names the type."""
    with pytest.raises(TypeError, match=type(value).__name__):
        drf.parse(value)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=type(value).__name__):
        drf.parse_event(value)  # type: ignore[arg-type]


def test_parse_accepts_str_subclass() -> None:
    """A str subclass parses as its plain-str value."""

    class Name(str):
        pass

    assert drf.parse(Name("m:outtmp@I")) == DataRequest("M:OUTTMP", event=ImmediateEvent())


def test_explicit_default_event_is_kept() -> None:
    """'@U' is an event the caller chose; no event at all is recorded as None."""
    assert drf.parse("M:OUTTMP@U").event == DefaultEvent()
    assert drf.parse("M:OUTTMP").event is None
    assert drf.parse("M:OUTTMP@U") != drf.parse("M:OUTTMP")


def test_parse_is_cached() -> None:
    """Parsing the same text twice returns the very same immutable object."""
    assert drf.parse("M:CACHED@p,1000") is drf.parse("M:CACHED@p,1000")


@pytest.mark.parametrize(
    "value",
    [
        DataRequest("M:OUTTMP"),
        ArrayRange(1, 2),
        ByteRange(1, 2),
        PeriodicEvent(1000),
        ClockEvent(1),
        StateEvent("V:X", 1, 0, StateOp.ANY),
        NeverEvent(),
    ],
)
def test_values_are_immutable(value: object) -> None:
    """Requests, ranges and events are frozen, slotted and hashable."""
    for field in dataclasses.fields(value):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, field.name, None)
    # a new attribute: no __dict__ to hold it (3.11 says TypeError, cpython#90562)
    with pytest.raises((AttributeError, TypeError)):
        value.extra = 1  # type: ignore[attr-defined]
    assert not hasattr(value, "__dict__")
    assert hash(value) == hash(dataclasses.replace(value))


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: DataRequest("m:outtmp"), ValueError),
        (lambda: DataRequest("M_OUTTMP"), ValueError),
        (lambda: DataRequest("M:OUTTMP", field=F.ON), ValueError),
        (lambda: DataRequest("M:OUTTMP", "READING"), TypeError),
        (lambda: DataRequest("M:OUTTMP", event="I"), TypeError),
        (lambda: ArrayRange(5, 2), ValueError),
        (lambda: ArrayRange(-1), ValueError),
        (lambda: ByteRange(0, 0), ValueError),
        (lambda: PeriodicEvent(0), ValueError),
        (lambda: PeriodicEvent(True), TypeError),
        (lambda: PeriodicEvent(1000, continuous=1), TypeError),
        (lambda: PeriodicEvent(2**31 * 1000), ValueError),
        (lambda: ClockEvent(0x10000), ValueError),
        (lambda: ClockEvent(1, "H"), TypeError),
        (lambda: ClockEvent(1, delay_us=-1), ValueError),
        (lambda: StateEvent("v:x", 1, 0, StateOp.EQ), ValueError),
        (lambda: StateEvent("V:X", -1, 0, StateOp.EQ), ValueError),
        (lambda: StateEvent("V:X", 1, 0, "="), TypeError),
        (lambda: drf.Event(), TypeError),
        (lambda: drf.Range(), TypeError),
    ],
)
def test_constructors_validate(make: object, error: type[Exception]) -> None:
    """Values built by hand are checked like parsed ones."""
    with pytest.raises(error):
        make()  # type: ignore[operator]


# --- write conversion ---------------------------------------------------------

WRITES = [
    # the writing guide's "Implicit Property Conversion" table, exactly
    ("Z:ACLTST", "Z:ACLTST.SETTING@N"),
    ("Z:ACLTST.READING", "Z:ACLTST.SETTING@N"),
    ("Z_ACLTST", "Z:ACLTST.SETTING@N"),
    ("Z:ACLTST@p,1000", "Z:ACLTST.SETTING@N"),
    ("Z|ACLTST", "Z:ACLTST.CONTROL@N"),
    ("Z&ACLTST", "Z:ACLTST.CONTROL@N"),
    ("Z@ACLTST.MAX", "Z:ACLTST.ANALOG.MAX@N"),
    # range and field survive
    ("Z:ACLTS1[0:10]", "Z:ACLTS1.SETTING[0:10]@N"),
    ("Z:ACLTST.SETTING.RAW", "Z:ACLTST.SETTING.RAW@N"),
    # and more
    ("M:OUTTMP", "M:OUTTMP.SETTING@N"),
    ("M:OUTTMP.STATUS", "M:OUTTMP.CONTROL@N"),
    ("z:acltst.read@I", "Z:ACLTST.SETTING@N"),
    ("Z:ACLTST.PRSET@U", "Z:ACLTST.SETTING@N"),
    ("Z:ACLTST.RAW", "Z:ACLTST.SETTING.RAW@N"),
    ("Z:ACLTST.volts", "Z:ACLTST.SETTING.PRIMARY@N"),
    ("Z:ACLTST[3]@e,8f", "Z:ACLTST.SETTING[3]@N"),
    ("Z:ACLTST{0:4}", "Z:ACLTST.SETTING{0:4}@N"),
    ("Z|ACLTST.RAW", "Z:ACLTST.CONTROL.RAW@N"),
    ("Z&ACLTST@N", "Z:ACLTST.CONTROL@N"),
    ("Z@ACLTST", "Z:ACLTST.ANALOG@N"),
    ("Z:ACLTST.ANALOG.MIN@p,1000", "Z:ACLTST.ANALOG.MIN@N"),
    ("Z$ACLTST", "Z:ACLTST.DIGITAL@N"),
    ("Z$ACLTST.MASK", "Z:ACLTST.DIGITAL.MASK@N"),
    ("Z:ACLTST.DA.ALARM_ENABLE", "Z:ACLTST.DIGITAL.ALARM_ENABLE@N"),
]


@pytest.mark.parametrize(("text", "wire"), WRITES)
def test_to_write_drf(text: str, wire: str) -> None:
    """Settings go out with the writable property and @N."""
    assert drf.to_write_drf(text) == wire
    assert drf.to_write_drf(drf.parse(text)) == wire
    assert drf.to_write_drf(wire) == wire  # converting twice changes nothing


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Z~ACLTST", "DESCRIPTION"),
        ("Z:ACLTST.DESC", "DESCRIPTION"),
        ("Z^ACLTST", "INDEX"),
        ("Z#ACLTST", "LONG_NAME"),
        ("Z!ACLTST@p,1000", "ALARM_LIST_NAME"),
    ],
)
def test_to_write_drf_read_only_property(text: str, name: str) -> None:
    """Properties that cannot be set are refused, by name, before anything is sent."""
    with pytest.raises(DRFError) as info:
        drf.to_write_drf(text)
    message = str(info.value)
    assert f"{name} property is read-only" in message
    assert repr(text) in message
    assert info.value.text[info.value.position :].startswith(name)


@pytest.mark.parametrize("text", ["Z|ACLTST.ON", "Z|ACLTST.TEXT", "Z:ACLTST.STATUS.BIT_NAMES@I"])
def test_to_write_drf_unwritable_field(text: str) -> None:
    """A status field has no CONTROL counterpart, so the write is refused."""
    with pytest.raises(DRFError, match="cannot be written as CONTROL") as info:
        drf.to_write_drf(text)
    field = drf.parse(text).field
    assert field is not None
    assert info.value.text[info.value.position :].startswith(field.name)


def test_to_write_drf_rejects_invalid_text() -> None:
    """Invalid text is a DRFError, not a half-converted string."""
    with pytest.raises(DRFError):
        drf.to_write_drf("Z:ACLTST.BOGUS")
    with pytest.raises(TypeError, match="int"):
        drf.to_write_drf(5)  # type: ignore[arg-type]


# --- event helpers ------------------------------------------------------------

DEFAULT_EVENTS = [
    ("M:OUTTMP", "I", "M:OUTTMP@I"),
    ("M:OUTTMP@p,1000", "I", "M:OUTTMP@p,1000"),
    ("M:OUTTMP@U", "I", "M:OUTTMP@U"),
    ("M:OUTTMP@I", "N", "M:OUTTMP@I"),
    # the caller's text is kept byte for byte, not canonicalised
    ("m:outtmp.read", "I", "m:outtmp.read@I"),
    ("Z@ACLTST.MAX", "I", "Z@ACLTST.MAX@I"),
    ("M:OUTTMP@p,1S", "I", "M:OUTTMP@p,1S"),
    ("M:OUTTMP[0:3]", "@I", "M:OUTTMP[0:3]@I"),
    ("M:OUTTMP", "p,1S", "M:OUTTMP@p,1000"),
]


@pytest.mark.parametrize(("text", "event", "result"), DEFAULT_EVENTS)
def test_with_default_event(text: str, event: str, result: str) -> None:
    """An event is appended only when the DRF has none."""
    assert drf.with_default_event(text, event) == result
    assert drf.with_default_event(text, drf.parse_event(event)) == result


def test_with_default_event_on_request() -> None:
    """A DataRequest comes back as canonical text."""
    assert drf.with_default_event(drf.parse("m_outtmp"), "I") == "M:OUTTMP.SETTING@I"
    assert drf.with_default_event(drf.parse("m:outtmp@q,5"), "I") == "M:OUTTMP@q,5"


@pytest.mark.parametrize(
    ("text", "event", "result"),
    [
        ("M:OUTTMP", "I", "M:OUTTMP@I"),
        ("M:OUTTMP@p,1000", "I", "M:OUTTMP@I"),
        ("m:outtmp[0:3]@e,8f", "p,500", "m:outtmp[0:3]@p,500"),
        ("Z@ACLTST.MAX@U", "N", "Z@ACLTST.MAX@N"),
        ("Z@ACLTST", "N", "Z@ACLTST@N"),
    ],
)
def test_with_event(text: str, event: str, result: str) -> None:
    """The event is set or replaced; everything before it is kept as written."""
    assert drf.with_event(text, event) == result
    assert drf.with_event(drf.parse(text), event) == str(drf.parse(result))


def test_event_helpers_validate() -> None:
    """Bad DRFs and bad events are refused, not passed through."""
    with pytest.raises(DRFError):
        drf.with_default_event("M:OUTTMP.BOGUS", "I")
    with pytest.raises(DRFError):
        drf.with_default_event("M:OUTTMP", "X")
    with pytest.raises(DRFError):
        drf.with_event("M:OUTTMP", "p,0")
    with pytest.raises(TypeError, match="int"):
        drf.with_event("M:OUTTMP", 5)  # type: ignore[arg-type]


# --- properties ---------------------------------------------------------------

devices = st.from_regex(r"[A-Z0]:[A-Z0-9_:\-]{1,62}", fullmatch=True)
indices = st.integers(0, 2**31 - 1)
times = st.integers(0, 2_147_483_647_000)


@st.composite
def ranges(draw: st.DrawFn) -> drf.Range:
    if draw(st.booleans()):
        start = draw(indices)
        end = draw(st.none() | st.integers(start, 2**31 - 1))
        return ArrayRange(start, end)
    offset = draw(indices)
    length = draw(st.none() | st.integers(1, 2**31 - offset))
    return ByteRange(offset, length)


events = st.one_of(
    st.builds(DefaultEvent),
    st.builds(ImmediateEvent),
    st.builds(NeverEvent),
    st.builds(PeriodicEvent, st.integers(1, 2_147_483_647_000), st.booleans(), st.booleans()),
    st.builds(ClockEvent, st.integers(0, 0xFFFF), st.sampled_from(ClockType), times),
    st.builds(StateEvent, devices, st.integers(0, 2**31 - 1), times, st.sampled_from(StateOp)),
)


@st.composite
def requests(draw: st.DrawFn) -> DataRequest:
    prop = draw(st.sampled_from(Property))
    fields = sorted(prop.fields, key=lambda f: f.value)
    field = draw(st.none() | st.sampled_from(fields)) if fields else None
    return DataRequest(
        draw(devices), prop, draw(st.none() | ranges()), field, draw(st.none() | events)
    )


@given(requests())
@example(DataRequest("M:OUTTMP", field=F.RAW))
@example(DataRequest("Z:ACLTST", P.ANALOG, ByteRange(2**31 - 1, 1), F.MAX, NeverEvent()))
def test_round_trip(request_: DataRequest) -> None:
    """parse(str(r)) == r for every valid request."""
    assert drf.parse(str(request_)) == request_


_ALIASES = {
    P.READING: ["READING", "READ", "PRREAD"],
    P.SETTING: ["SETTING", "SET", "PRSET"],
    P.STATUS: ["STATUS", "BASIC_STATUS", "STS", "PRBSTS"],
    P.CONTROL: ["CONTROL", "BASIC_CONTROL", "CTRL", "PRBCTL"],
    P.ANALOG: ["ANALOG", "ANALOG_ALARM", "AA", "PRANAB"],
    P.DIGITAL: ["DIGITAL", "DIGITAL_ALARM", "DA", "PRDABL"],
    P.DESCRIPTION: ["DESCRIPTION", "DESC", "PRDESC"],
    P.INDEX: ["INDEX", "IDX", "PRIDX"],
    P.LONG_NAME: ["LONG_NAME", "LNGNAM", "PRLNAM"],
    P.ALARM_LIST_NAME: ["ALARM_LIST_NAME", "LSTNAM", "PRALNM"],
}
_FIELD_SPELLINGS = {F.PRIMARY: ["PRIMARY", "VOLTS"], F.SCALED: ["SCALED", "COMMON"]}
_FIELD_SPELLINGS |= {F.MIN: ["MIN", "MINIMUM"], F.MAX: ["MAX", "MAXIMUM"]}
_FIELD_SPELLINGS |= {F.NOM: ["NOM", "NOMINAL"], F.TOL: ["TOL", "TOLERANCE"]}


def _time_spellings(us: int) -> list[str]:
    out = [f"{us}U", f"{us}u"]
    if us % 1000 == 0:
        out += [str(us // 1000), f"{us // 1000}M", f"{us // 1000}m"]
    if us % 1_000_000 == 0:
        out += [f"{us // 1_000_000}S"]
    return out


@st.composite
def spellings(draw: st.DrawFn, request_: DataRequest) -> str:
    """Any text DRF3 allows for ``request_``, not just the canonical one."""

    def case(text: str) -> str:
        return "".join(c.lower() if draw(st.booleans()) else c for c in text)

    device = request_.device
    use_qualifier = draw(st.booleans())
    if use_qualifier:
        device = device[0] + request_.property.qualifier + device[2:]
    # the property may go unsaid when the qualifier (or the READING default) says it
    must_say = not use_qualifier and request_.property is not P.READING
    prop = ""
    if must_say or draw(st.booleans()):
        prop = "." + draw(st.sampled_from(_ALIASES[request_.property]))
    text = case(device) + case(prop)
    if isinstance(request_.range, ArrayRange):
        r = request_.range
        if r.end is None:
            text += draw(
                st.sampled_from([f"[{r.start}:]"] + (["[]", "[:]"] if r.start == 0 else []))
            )
        else:
            start = draw(st.sampled_from([str(r.start)] + ([""] if r.start == 0 else [])))
            single = [f"[{r.start}]"] if r.start == r.end else []
            text += draw(st.sampled_from([f"[{start}:{r.end}]", *single]))
    elif isinstance(request_.range, ByteRange):
        r = request_.range
        options = [f"{{{r.offset}:{'' if r.length is None else r.length}}}"]
        options += [f"{{{r.offset}}}"] if r.length == 1 else []
        options += ["{}", "{:}"] if r.offset == 0 and r.length is None else []
        text += draw(st.sampled_from(options))
    if request_.field is not None:
        names = _FIELD_SPELLINGS.get(request_.field, [request_.field.value])
        text += "." + case(draw(st.sampled_from(names)))
    event = request_.event
    if event is not None:
        text += "@" + draw(event_spellings(event))
    return text


@st.composite
def event_spellings(draw: st.DrawFn, event: drf.Event) -> str:
    if isinstance(event, PeriodicEvent):
        letter = draw(st.sampled_from("pP" if event.continuous else "qQ"))
        text = f"{letter},{draw(st.sampled_from(_time_spellings(event.period_us)))}"
        flags = ["T", "TRUE", "true", ""] if event.immediate else ["F", "FALSE", "f"]
        flag = draw(st.sampled_from(flags))
        return f"{text},{flag}" if flag else text
    if isinstance(event, ClockEvent):
        number = draw(st.sampled_from([f"{event.event_number:x}", f"{event.event_number:04X}"]))
        text = f"{draw(st.sampled_from('eE'))},{number}"
        kind = draw(st.sampled_from([event.type.value, event.type.value.lower()]))
        delay = draw(st.sampled_from(_time_spellings(event.delay_us)))
        if event.delay_us or draw(st.booleans()):
            return f"{text},{kind},{delay}"
        if event.type is not ClockType.EITHER or draw(st.booleans()):
            return f"{text},{kind}"
        return text
    if isinstance(event, StateEvent):
        delay = draw(st.sampled_from(_time_spellings(event.delay_us)))
        return f"s,{event.device.lower()},{event.value},{delay},{event.op.value}"
    return draw(st.sampled_from([event.to_drf(), event.to_drf().lower()]))


@given(st.data())
def test_every_spelling_parses_to_the_same_request(data: st.DataObject) -> None:
    """Qualifiers, aliases, case, units and short forms all mean the same request."""
    request_ = data.draw(requests())
    text = data.draw(spellings(request_))
    assert drf.parse(text) == request_


DRF_ALPHABET = "MZG:_|&@$~^#!?.[]{},0123456789AaEeIiNnPpQqSsUuTFHK-=<>*RDXV "


@given(st.text() | st.text(alphabet=DRF_ALPHABET, max_size=40))
@example("M:OUTTMP@s,V:STATE,5,0,=")
@example("M:OUTTMP@e,ffffffffffffffffffff")
@example("M:OUTTMP@p," + "9" * 5000)
def test_arbitrary_text_only_raises_drf_error(text: str) -> None:
    """Any str either parses to a request that round-trips, or raises DRFError."""
    try:
        request_ = drf.parse(text)
    except DRFError as error:
        assert error.text == text
        assert 0 <= error.position <= len(text)
        assert "^" in str(error)
    else:
        assert drf.parse(str(request_)) == request_


@given(requests(), st.data())
def test_mutated_text_only_raises_drf_error(request_: DataRequest, data: st.DataObject) -> None:
    """Valid text with one character inserted, deleted or replaced never crashes."""
    text = str(request_)
    at = data.draw(st.integers(0, len(text)))
    char = data.draw(st.sampled_from(DRF_ALPHABET))
    mutated = data.draw(
        st.sampled_from(
            [
                text[:at] + char + text[at:],
                text[:at] + text[at + 1 :],
                text[:at] + char + text[at + 1 :],
            ]
        )
    )
    try:
        drf.parse(mutated)
    except DRFError as error:
        assert 0 <= error.position <= len(mutated)


@given(st.text(alphabet=DRF_ALPHABET, max_size=30))
def test_arbitrary_event_text_only_raises_drf_error(text: str) -> None:
    """parse_event obeys the same contract as parse."""
    try:
        event = drf.parse_event(text)
    except DRFError as error:
        assert 0 <= error.position <= len(text)
    else:
        assert drf.parse_event(str(event)) == event


def test_core_imports_no_io() -> None:
    """drf and status load without any I/O module, even from a bare source tree."""
    root = ROOT
    code = (
        "import sys; before = set(sys.modules)\n"
        "import acnet_proto.drf, acnet_proto.status\n"
        "acnet_proto.drf.parse('M:OUTTMP@p,1000'); acnet_proto.status.known_statuses()\n"
        "print(' '.join(sorted(set(sys.modules) - before)))\n"
    )
    # -S: no site-packages, so nothing pre-imported hides an import of ours
    done = subprocess.run(
        [sys.executable, "-S", "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    loaded = set(done.stdout.split())
    banned = {"socket", "asyncio", "trio", "threading", "requests", "pika", "grpc", "gssapi", "ssl"}
    assert "acnet_proto.drf" in loaded
    assert not loaded & banned

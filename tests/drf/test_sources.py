"""The ``<-SOURCE`` suffix of a DRF: logger windows and fast time plots."""

from __future__ import annotations

import pickle
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acnet_proto import drf
from acnet_proto.drf import (
    MAX_LOGGER_MS,
    DataRequest,
    DRFError,
    FTPSource,
    LoggerSource,
    PeriodicEvent,
)
from acnet_proto.errors import ConfigurationError

START, END = 1_700_000_000_000, 1_700_000_600_000


@pytest.mark.parametrize(
    ("text", "source", "canonical"),
    [
        (f"M:OUTTMP<-LOGGER:{START}:{END}", LoggerSource(START, END), None),
        (
            f"m:outtmp<-logger:{START}:{END}:ArkIv",
            LoggerSource(START, END, "ARKIV"),
            f"M:OUTTMP<-LOGGER:{START}:{END}:ARKIV",
        ),
        (f"M:OUTTMP<-LOGGER:{START}:{START}", LoggerSource(START, START), None),
        ("M:OUTTMP<-LOGGER:0:0", LoggerSource(0, 0), None),
        ("M:OUTTMP@p,100H<-FTP", FTPSource(), "M:OUTTMP@p,10<-FTP"),
        ("M:OUTTMP<-ftp", FTPSource(), "M:OUTTMP<-FTP"),
        ("M_OUTTMP.RAW<-FTP", FTPSource(), "M:OUTTMP.SETTING.RAW<-FTP"),
    ],
)
def test_parse_source(text: str, source: drf.Source, canonical: str | None) -> None:
    request = drf.parse(text)
    assert request.source == source
    assert str(request) == (canonical or text)
    assert drf.parse(str(request)) == request


def test_event_with_logger_is_kept_and_round_trips() -> None:
    """The server ignores it for the window, but the text keeps what was asked."""
    request = drf.parse(f"M:OUTTMP@P,1000,true<-LOGGER:{START}:{END}")
    assert request.event == PeriodicEvent(1_000_000)
    assert str(request) == f"M:OUTTMP@p,1000<-LOGGER:{START}:{END}"


def test_state_event_operator_before_source() -> None:
    """``<`` as a state operator is not mistaken for the source mark."""
    request = drf.parse("M:OUTTMP@s,V:STATE,5,0,<<-FTP")
    assert str(request.event) == "s,V:STATE,5,0,<"
    assert request.source == FTPSource()


@pytest.mark.parametrize(
    ("text", "position", "words"),
    [
        ("M:OUTTMP<-LOGGER:abc:2", 17, "start time"),
        ("M:OUTTMP<-LOGGER:1:2x", 20, "end time"),
        ("M:OUTTMP<-LOGGER:5:2", 19, "before start time 5"),
        ("M:OUTTMP<-NOPE", 10, "unknown data source 'NOPE'"),
        ("M:OUTTMP<-", 10, "missing data source"),
        ("M:OUTTMP<-LOGGER", 16, "needs a start and an end"),
        ("M:OUTTMP<-LOGGER:1", 18, "needs a start and an end"),
        ("M:OUTTMP<-LOGGER:1:", 19, "missing end time"),
        ("M:OUTTMP<-LOGGER:1:2:", 21, "missing logger node"),
        ("M:OUTTMP<-LOGGER:1:2:A-B", 22, "in the logger node"),
        ("M:OUTTMP<-LOGGER:1:2:" + "N" * 17, 37, "longer than 16"),
        ("M:OUTTMP<-LOGGER:1:2:X:Y", 22, "too many items"),
        (f"M:OUTTMP<-LOGGER:0:{MAX_LOGGER_MS + 1}", 19, "too large"),
        ("M:OUTTMP<-LOGGER:" + "9" * 40 + ":1", 17, "too large"),
        ("M:OUTTMP<-FTP:3", 13, "takes no arguments"),
        ("M:OUTTMP<-LOGGERDURATION:60000", 10, "not supported"),
        ("M:OUTTMP<-FTP<-FTP", 10, "unknown data source"),
        ("<-FTP", 0, "missing device"),
        ("M:OUTTMP@e<-FTP", 10, "needs an event number"),
        ("M:OUTTMP@s,V:X,1<-FTP", 16, "needs a device, value, delay and operator"),
        ("M:OUTTMP.<-FTP", 9, "missing property or field"),
    ],
)
def test_malformed_source(text: str, position: int, words: str) -> None:
    with pytest.raises(DRFError) as caught:
        drf.parse(text)
    assert caught.value.position == position
    assert words in str(caught.value)
    assert caught.value.text == text


def test_error_pickles() -> None:
    with pytest.raises(DRFError) as caught:
        drf.parse("M:OUTTMP<-LOGGER:abc:2")
    assert str(pickle.loads(pickle.dumps(caught.value))) == str(caught.value)


@pytest.mark.parametrize(
    ("make", "error", "names"),
    [
        (lambda: LoggerSource(2, 1), ConfigurationError, "end_ms"),
        (lambda: LoggerSource(-1, 1), ConfigurationError, "start_ms"),
        (lambda: LoggerSource(0, MAX_LOGGER_MS + 1), ConfigurationError, "end_ms"),
        (lambda: LoggerSource(1.0, 2), ConfigurationError, "start_ms"),  # type: ignore[arg-type]
        (lambda: LoggerSource(True, 2), ConfigurationError, "start_ms"),
        (lambda: LoggerSource(1, 2, "arkiv"), ConfigurationError, "node"),
        (lambda: LoggerSource(1, 2, ""), ConfigurationError, "node"),
        (lambda: LoggerSource(1, 2, 5), ConfigurationError, "node"),  # type: ignore[arg-type]
        (lambda: drf.Source(), TypeError, "abstract"),
        (lambda: DataRequest("M:OUTTMP", source="LOGGER:1:2"), TypeError, "source"),  # type: ignore[arg-type]
    ],
)
def test_constructors_validate(make: object, error: type[Exception], names: str) -> None:
    """A bad argument is a typed error that names it (ConfigurationError is a ValueError)."""
    with pytest.raises(error, match=names):
        make()  # type: ignore[operator]


def test_with_default_event_goes_before_the_source() -> None:
    assert drf.with_default_event("M:OUTTMP<-FTP", "I") == "M:OUTTMP@I<-FTP"
    assert drf.with_default_event("M:OUTTMP@p,10<-FTP", "I") == "M:OUTTMP@p,10<-FTP"
    request = drf.parse("M:OUTTMP<-FTP")
    assert drf.with_default_event(request, "p,100") == "M:OUTTMP@p,100<-FTP"


def test_with_default_event_leaves_a_logger_request_alone() -> None:
    """The window says what is sent; the lab's DPM refuses @I with a logger."""
    text = f"m:outtmp<-LOGGER:{START}:{END}"
    assert drf.with_default_event(text, "I") == text


def test_with_event_keeps_the_source() -> None:
    text = f"m:outtmp@p,1000<-LOGGER:{START}:{END}:arkiv"
    assert drf.with_event(text, "I") == f"m:outtmp@I<-LOGGER:{START}:{END}:arkiv"
    assert drf.with_event("M:OUTTMP<-FTP", "p,10") == "M:OUTTMP@p,10<-FTP"
    assert drf.with_event(drf.parse("M:OUTTMP<-FTP"), "p,10") == "M:OUTTMP@p,10<-FTP"


@pytest.mark.parametrize("text", [f"M:OUTTMP<-LOGGER:{START}:{END}", "M:OUTTMP@p,10<-FTP"])
def test_a_source_cannot_be_written(text: str) -> None:
    with pytest.raises(DRFError) as caught:
        drf.to_write_drf(text)
    assert caught.value.position == len("M:OUTTMP") + (len("@p,10") if "FTP" in text else 0)
    assert "read-only" in str(caught.value)


sources = (
    st.none()
    | st.builds(FTPSource)
    | st.builds(
        lambda a, b, node: LoggerSource(min(a, b), max(a, b), node),
        st.integers(0, MAX_LOGGER_MS),
        st.integers(0, MAX_LOGGER_MS),
        st.none() | st.from_regex(r"[A-Z0-9_]{1,16}", fullmatch=True),
    )
)


@given(
    st.sampled_from(["M:OUTTMP", "Z:ACLTST.SETTING[2].RAW", "G:AMANDA.STATUS.ON"]),
    st.none() | st.sampled_from([drf.ImmediateEvent(), PeriodicEvent(10_000)]),
    sources,
)
def test_round_trip_with_source(
    base: str, event: drf.Event | None, source: drf.Source | None
) -> None:
    request = replace(drf.parse(base), event=event, source=source)
    assert drf.parse(str(request)) == request

r"""ACL over HTTP: the pure query/output/batch logic, and the backend against the simulated CGI
on a real HTTP server (pacsys's ACL backend against it: tests/interop/test_acl.py).

The simulator (acnet_proto.adapters.sim.acl) decodes queries as the real CGI does: only
``+``/``%20``/``%27``, commands split at ``\;``, the parameter ending at ``&`` or a bare ``;``.
Its ``queries`` are what arrived on the wire, so the tests check the exact bytes sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import ssl
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

import acnet_proto
from acnet_proto import drf
from acnet_proto.adapters.acl import ACLBackend, acl
from acnet_proto.adapters.sim.acl import CGI_PATH, ACLSimServer, serve, tls_context
from acnet_proto.errors import (
    ACLError,
    ConfigurationError,
    DeviceError,
    LocalProtocolError,
    ReadError,
    RemoteProtocolError,
)
from acnet_proto.services.acl import (
    MAX_URL_LENGTH,
    SEPARATOR,
    ACLRead,
    ErrorLine,
    UnsupportedRead,
    ValueLine,
    decode_query,
    encode_script,
    format_error,
    format_raw,
    format_value,
    parse_device,
    parse_line,
    read_command,
    script_error,
    script_query,
    status_of,
    value_label,
    value_of_line,
)
from acnet_proto.sim import DeviceModel
from acnet_proto.types import ValueType
from tests.support.certificates import write_certificate

NOTFND = "Invalid device name (Z:NOTFND) in read command - DIO_NO_SUCH"
# what the lab's ACL (and the simulated one) prints for a device that does not exist
MISSING = "Invalid device name (Z:NOTFND) in read device command at line 1 - DBM_NOREC"


def status_name(reading: Any) -> str | None:
    return reading.status.name


def query_of(url: str) -> str:
    return urlsplit(url).query


# ================================================================ the query (pure)


def test_read_commands_go_raw_with_only_spaces_quotes_and_separators_escaped() -> None:
    drfs = ["M:OUTTMP", "Z:ACLTS1[0:3]", "Z_ACLTST", "Z|ACLTST", "Z#ACLTST", "M:OUTTMP.RAW@e,2"]
    commands = [read_command(drf.parse(d)) for d in drfs]
    assert commands == [
        "read M:OUTTMP",
        "read Z:ACLTS1[0:3]",
        "read Z:ACLTST.SETTING",  # ACL knows only ':' as a qualifier
        "read Z:ACLTST.STATUS",
        "read Z:ACLTST.LONG_NAME",  # '#' would start the URL's fragment
        "read/pendwait M:OUTTMP/raw/event='e,2'",
    ]
    assert script_query(commands) == (
        r"acl=read+M:OUTTMP\;read+Z:ACLTS1[0:3]\;read+Z:ACLTST.SETTING\;read+Z:ACLTST.STATUS"
        r"\;read+Z:ACLTST.LONG_NAME\;read/pendwait+M:OUTTMP/raw/event=%27e,2%27"
    )


def test_logged_data_is_refused() -> None:
    with pytest.raises(UnsupportedRead, match=r"cannot serve logged data.*DPM or gRPC"):
        read_command(drf.parse("M:OUTTMP<-LOGGER:1736942400000:1736946000000"))


@pytest.mark.parametrize("event", ["p,1000", "q,500", "N", "s,Z:ACLTST,1,0,="])
def test_events_acl_cannot_serve_are_refused(event: str) -> None:
    with pytest.raises(UnsupportedRead, match=rf"M:OUTTMP@{event}.*no streaming"):
        read_command(drf.parse(f"M:OUTTMP@{event}"))


@pytest.mark.parametrize("event", ["", "@I", "@U"])
def test_immediate_and_default_events_are_plain_reads(event: str) -> None:
    assert read_command(drf.parse(f"Z:ACLTS1[2]{event}")) == "read Z:ACLTS1[2]"


def test_script_text_and_url_form_encode_alike() -> None:
    natural = encode_script("read M:OUTTMP; read G:AMANDA\nread\tZ:ACLTST/event='e,2'")
    url_form = encode_script(r"read+M:OUTTMP\;+read+G:AMANDA\;read+Z:ACLTST/event=%27e,2%27")
    assert natural == url_form == (r"read+M:OUTTMP\;+read+G:AMANDA\;read+Z:ACLTST/event=%27e,2%27")
    assert encode_script("read%20M:OUTTMP") == "read%20M:OUTTMP"  # decoded by the CGI already
    # nothing else is touched: the CGI would not decode it
    assert encode_script(r"x[1]{2}|^\%41~") == r"x[1]{2}|^\%41~"


@pytest.mark.parametrize("bad", ["#", "&", "\x00", "\r", "é"])
def test_text_no_query_can_carry_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match=r"read M:OUTTMP.*cannot be sent") as raised:
        encode_script(f"read M:OUTTMP{bad}")
    assert repr(bad) in str(raised.value)


def test_the_cgi_decodes_plus_space_and_quote_only() -> None:
    assert decode_query("acl=read+Z:ACLTS1[0:3]%5Cx%20%27y%27") == ["read Z:ACLTS1[0:3]%5Cx 'y'"]


def test_the_cgi_ends_the_parameter_at_a_bare_semicolon_or_ampersand() -> None:
    assert decode_query(r"acl=read+A\;read+B") == ["read A", "read B"]
    assert decode_query("acl=read+A;read+B") == ["read A"]
    assert decode_query("acl=read+A%5C;read+B") == ["read A%5C"]  # a percent-encoded backslash
    assert decode_query("acl=read+A&read+B") == ["read A"]
    assert decode_query("x=1&acl=read+A") == ["read A"]
    assert decode_query("x=1") is None
    assert decode_query(r"acl=\;+\;") == []


_COMMAND_CHARS = "".join(chr(c) for c in range(32, 127) if chr(c) not in "#&+%\\;")


@given(
    st.lists(
        st.text(_COMMAND_CHARS, min_size=1, max_size=30).filter(lambda s: s.strip() == s),
        min_size=1,
        max_size=5,
    )
)
def test_the_cgi_reads_back_the_commands_the_client_encodes(commands: list[str]) -> None:
    assert decode_query(script_query(commands)) == commands


# ================================================================ the output (pure)


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        ("M:OUTTMP       = 41.7 DegF", ValueLine("M:OUTTMP", "41.7 DegF")),
        ("Z:STRTST = the quick brown fox", ValueLine("Z:STRTST", "the quick brown fox")),
        ("M:X = MODE - MAIN_INJ", ValueLine("M:X", "MODE - MAIN_INJ")),  # a value, not an error
        ("Z:EMPTY =", ValueLine("Z:EMPTY", "")),
        # a field, named in lower-case words (the lab's own lines)
        ("Z:ACLTST alarm maximum = 50 blip", ValueLine("Z:ACLTST", "50 blip", "alarm maximum")),
        ("Z:ACLTST is on = False", ValueLine("Z:ACLTST", "False", "is on")),
        (MISSING, "DBM_NOREC"),
        (
            "Error determining status text in read device command at line 1 - Z:ACLTST DIO_NOATT",
            "DIO_NOATT",
        ),
        # an "=" in an error message does not make it a value
        ("Invalid device specification (Z:A=1) in read command - DIO_SYNTAX", "DIO_SYNTAX"),
        # an error line, given as the status name it ends with
        (NOTFND, "DIO_NO_SUCH"),
        ("Error reading Z:X - Z:X DIO_NOATT", "DIO_NOATT"),
        ("! Unknown command 'x' - CLIB_SYNTAX", "CLIB_SYNTAX"),
        ("! something failed", ErrorLine("! something failed", None)),
        ("<html>Internal Server Error</html>", None),
        ("Error - lower_case", None),
        ("   ", None),
    ],
)
def test_output_lines(line: str, parsed: object) -> None:
    if isinstance(parsed, str):
        parsed = ErrorLine(line, parsed)
    assert parse_line(line) == parsed


def test_error_names_become_acnet_statuses() -> None:
    assert (status_of("DIO_NO_SUCH").facility, status_of("DIO_NO_SUCH").error) == (14, -17)
    assert status_of("DIO_NOSCALE").name == "DIO_NOSCALE"
    # unknown here, absent, or not an error at all: untranslatable, and the line keeps the name
    for name in ("CLIB_SYNTAX", None, "ACNET_PEND"):
        assert status_of(name).name == "ACNET_NXE"
    assert ErrorLine("! x - DBM_NOREC", "DBM_NOREC").status.name == "ACNET_NXE"


@pytest.mark.parametrize(
    ("request_drf", "text", "value", "value_type"),
    [
        ("M:OUTTMP", "41.7 DegF", 41.7, ValueType.SCALAR),
        ("M:OUTTMP", "-1.5e-3", -0.0015, ValueType.SCALAR),
        ("Z:ACLTS1[0:2]", "0 1.5 3 mm", [0.0, 1.5, 3.0], ValueType.SCALAR_ARRAY),
        ("Z:ACLTS1[0:1]", "0 1.5", [0.0, 1.5], ValueType.SCALAR_ARRAY),
        ("Z:STRTST", "the quick brown fox", "the quick brown fox", ValueType.TEXT),
        ("Z:STRTST", "1_000", "1_000", ValueType.TEXT),  # float() takes it; ACL never prints it
        ("Z:STRTST", "", "", ValueType.TEXT),
        ("M:OUTTMP.DESCRIPTION", "42", "42", ValueType.TEXT),
        ("Z:ACLTST.STATUS.TEXT", "1 2", "1 2", ValueType.TEXT),
        ("Z:ACLTST.STATUS.TEXT", "False", "False", ValueType.TEXT),
        ("Z:ACLTST.STATUS.ON", "False", 0.0, ValueType.SCALAR),  # as DPM gives it
        ("Z|ACLTST.RAMP", "True", 1.0, ValueType.SCALAR),
        ("Z:ACLTST.ANALOG.MAX", "50 blip", 50.0, ValueType.SCALAR),
        ("M:OUTTMP.RAW", "42266666", bytes.fromhex("66662642"), ValueType.RAW),
        ("Z:RAWTST.RAW", "00 11 0x22 units", bytes.fromhex("001122"), ValueType.RAW),
        ("Z:RAWTST.RAW", "ABC", bytes.fromhex("BC0A"), ValueType.RAW),  # odd digits: zero-padded
    ],
)
def test_values(request_drf: str, text: str, value: Any, value_type: ValueType) -> None:
    got, got_type = value_of_line(drf.parse(request_drf), text)
    assert got_type is value_type
    if value_type is ValueType.SCALAR_ARRAY:
        np.testing.assert_array_equal(got, value)
    else:
        assert got == value


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("Z:ACLTST.MAX", "Z:ACLTST.ANALOG.MAX"),
        ("z:acltst.min", "Z:ACLTST.ANALOG.MIN"),
        ("Z:ACLTST.TOL", "Z:ACLTST.ANALOG.TOL"),
        ("Z:ACLTST.ON", "Z:ACLTST.STATUS.ON"),
        ("Z:ACLTST.RAMP", "Z:ACLTST.STATUS.RAMP"),
        ("Z@ACLTST.MAX", "Z:ACLTST.ANALOG.MAX"),  # a DRF, as it is
        ("M:OUTTMP.RAW", "M:OUTTMP.READING.RAW"),
        ("N:H801.ANALOG.MIN", "N:H801.ANALOG.MIN"),
    ],
)
def test_acl_reads_a_drf_or_its_own_device_field_form(written: str, read: str) -> None:
    assert parse_device(written).to_drf() == read


@pytest.mark.parametrize(
    "written", ["Z:ACLTST.FOO", "Z_ACLTST.MAX", "Z:ACLTST.SETTING.MAX", "Z:ACLTS1[0].ON", ".MAX"]
)
def test_other_device_forms_are_the_drfs_error(written: str) -> None:
    with pytest.raises(drf.DRFError):
        parse_device(written)


def test_labelled_lines_read_back() -> None:
    request = drf.parse("Z:ACLTST.ANALOG.MAX")
    label = value_label(request)
    line = parse_line(format_value("Z:ACLTST", 50.0, "blip", label))
    assert line == ValueLine("Z:ACLTST", "50 blip", "alarm maximum")
    assert value_of_line(request, line.text) == (50.0, ValueType.SCALAR)
    assert value_label(drf.parse("Z:ACLTST.STATUS.RAMP")) == "is ramping"
    assert value_label(drf.parse("Z:ACLTST")) == value_label(drf.parse("Z:ACLTST.RAW")) == ""


def test_raw_data_of_a_structure_is_printed_field_by_field() -> None:
    data = bytes(range(1, 12))
    assert format_raw("Z:X", data, (2, 4)) == "Z:X            = 0201 06050403 07 08 09 0A 0B"


def test_raw_output_without_hex_is_an_error() -> None:
    with pytest.raises(ValueError, match="no hex number"):
        value_of_line(drf.parse("Z:RAWTST.RAW"), "DegF")


@given(st.lists(st.floats(allow_nan=False), min_size=1, max_size=6), st.sampled_from([None, "mm"]))
def test_numbers_are_printed_exactly(numbers: list[float], units: str | None) -> None:
    line = parse_line(format_value("Z:ACLTS1", numbers, units))
    assert isinstance(line, ValueLine) and line.name == "Z:ACLTS1"
    value, value_type = value_of_line(drf.parse("Z:ACLTS1"), line.text)
    if len(numbers) == 1:
        assert (value_type, value) == (ValueType.SCALAR, numbers[0])
    else:
        assert value_type is ValueType.SCALAR_ARRAY
        assert value.tolist() == numbers


def test_non_finite_numbers() -> None:
    line = parse_line(format_value("M:OUTTMP", [math.inf, -math.inf, math.nan]))
    value, _ = value_of_line(drf.parse("M:OUTTMP"), line.text)
    assert value[0] == math.inf and value[1] == -math.inf and math.isnan(value[2])


@given(st.binary(min_size=1, max_size=32), st.sampled_from([1, 2, 4]))
def test_raw_data_is_printed_big_endian_and_read_back(data: bytes, width: int) -> None:
    data = data[: len(data) - len(data) % width] or bytes(width)
    line = parse_line(format_raw("Z:RAWTST", data, width))
    assert value_of_line(drf.parse("Z:RAWTST.RAW"), line.text) == (data, ValueType.RAW)


def test_format_error_reads_back_as_its_status() -> None:
    line = parse_line(format_error("Error reading Z:ACLTST", "DIO_NOATT"))
    assert isinstance(line, ErrorLine) and line.status.name == "DIO_NOATT"


def test_script_error_finds_the_first_error() -> None:
    output = f"M:OUTTMP = 1 DegF\nsome other output\n{NOTFND}\n! later - CLIB_SYNTAX\n"
    assert script_error(output) == ErrorLine(NOTFND, "DIO_NO_SUCH")
    assert script_error("M:OUTTMP = 1 DegF\n") is None


# ================================================================ batch reads (pure)

BASE = "http://acl.example/cgi-bin/acl.pl"
NOW = 1_763_769_600.0
AT = datetime.fromtimestamp(NOW, UTC)


def test_a_batch_is_one_url_and_its_lines_are_its_readings() -> None:
    plan = ACLRead(["M:OUTTMP", "Z:ACLTS1[0:1]", "Z:STRTST"], BASE)
    url = plan.next_url()
    assert url == rf"{BASE}?acl=read+M:OUTTMP\;read+Z:ACLTS1[0:1]\;read+Z:STRTST"
    plan.receive("M:OUTTMP = 41.7 DegF\nZ:ACLTS1[0:1] = 0 1.5 mm\nZ:STRTST = fox\n", NOW)
    assert plan.done and plan.next_url() is None and plan.urls_sent == 1
    outtmp, array, text = plan.readings()
    assert (outtmp.drf, outtmp.value, outtmp.value_type, outtmp.timestamp) == (
        "M:OUTTMP",
        41.7,
        ValueType.SCALAR,
        AT,
    )
    assert array.value.tolist() == [0.0, 1.5]
    assert (text.value, text.value_type) == ("fox", ValueType.TEXT)
    assert all(r.ok and r.meta is None for r in (outtmp, array, text))


def test_a_stopped_batch_reads_the_device_it_stopped_at_alone_then_the_rest() -> None:
    plan = ACLRead(["M:OUTTMP", "Z:NOTFND", "G:AMANDA", "Z:ACLTST"], BASE)
    plan.next_url()
    plan.receive(f"M:OUTTMP = 41.7 DegF\n{NOTFND}\n", NOW)
    assert query_of(plan.next_url()) == "acl=read+Z:NOTFND"
    plan.receive(f"{NOTFND}\n", NOW)
    assert query_of(plan.next_url()) == r"acl=read+G:AMANDA\;read+Z:ACLTST"
    plan.receive("G:AMANDA = 1 A\nZ:ACLTST = 45 mm\n", NOW)
    assert plan.done
    readings = plan.readings()
    assert [r.ok for r in readings] == [True, False, True, True]
    bad = readings[1]
    assert (bad.drf, status_name(bad), bad.message, bad.timestamp) == (
        "Z:NOTFND",
        "DIO_NO_SUCH",
        NOTFND,
        AT,
    )


def test_an_error_that_was_not_the_devices_own_does_not_stick_to_it() -> None:
    # a script-level error before any read: the device read alone is fine
    plan = ACLRead(["M:OUTTMP", "G:AMANDA"], BASE)
    plan.next_url()
    plan.receive("! Script failed - CLIB_SYNTAX\n", NOW)
    assert query_of(plan.next_url()) == "acl=read+M:OUTTMP"
    plan.receive("M:OUTTMP = 41.7 DegF\n", NOW)
    assert query_of(plan.next_url()) == "acl=read+G:AMANDA"
    plan.receive("G:AMANDA = 1 A\n", NOW)
    assert [r.value for r in plan.readings()] == [41.7, 1.0]


def test_output_that_stops_short_without_an_error_asks_again_for_the_rest() -> None:
    plan = ACLRead(["M:OUTTMP", "G:AMANDA", "Z:ACLTST"], BASE)
    plan.next_url()
    plan.receive("M:OUTTMP = 41.7 DegF\n", NOW)
    assert query_of(plan.next_url()) == r"acl=read+G:AMANDA\;read+Z:ACLTST"


@pytest.mark.parametrize(
    ("output", "problem"),
    [
        ("<html>502 Bad Gateway</html>\n", "not ACL's"),
        ("M:OUTTMP = 1\nG:AMANDA = 2\n", "2 values for 1 reads"),
        ("\n", "printed nothing"),
    ],
)
def test_output_that_is_not_acls_is_a_remote_protocol_error(output: str, problem: str) -> None:
    plan = ACLRead(["M:OUTTMP"], BASE)
    plan.next_url()
    with pytest.raises(RemoteProtocolError, match=problem):
        plan.receive(output, NOW)
    failed = plan.failed("garbage")
    assert [status_name(r) for r in failed.readings] == ["ACNET_DISCONNECTED"]


def test_batches_are_split_to_fit_the_url_limit() -> None:
    drfs = [f"Z:SIM{i:04d}" for i in range(300)]
    plan = ACLRead(drfs, BASE, max_url_length=1000)
    urls = []
    while (url := plan.next_url()) is not None:
        urls.append(url)
        plan.receive("".join(f"x = {i}\n" for i in range(query_of(url).count(SEPARATOR) + 1)), NOW)
    assert all(len(u) <= 1000 for u in urls)
    # greedy: the next batch's first read would not have fitted
    for url, following in itertools.pairwise(urls):
        first = query_of(following).removeprefix("acl=").split(SEPARATOR)[0]
        assert len(url) + len(SEPARATOR) + len(first) > 1000
    sent = [c for u in urls for c in query_of(u).removeprefix("acl=").split(SEPARATOR)]
    assert sent == [f"read+{d}" for d in drfs]
    assert len(plan.readings()) == 300


def test_unsupported_drfs_get_their_error_without_being_sent() -> None:
    plan = ACLRead(["M:OUTTMP@p,1000", "G:AMANDA"], BASE)
    assert query_of(plan.next_url()) == "acl=read+G:AMANDA"
    plan.receive("G:AMANDA = 1 A\n", NOW)
    periodic, amanda = plan.readings()
    assert status_name(periodic) == "DIO_NOT_SUPPORTED" and "no streaming" in periodic.message
    assert amanda.ok


def test_bad_input_and_misuse() -> None:
    with pytest.raises(drf.DRFError, match="M:OUTTMP@@"):
        ACLRead(["M:OUTTMP", "M:OUTTMP@@"], BASE)
    with pytest.raises(TypeError, match="list of DRF strings, not str"):
        ACLRead("M:OUTTMP", BASE)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"drfs\[1\]"):
        ACLRead(["M:OUTTMP", None], BASE)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="empty"):
        ACLRead([], BASE)
    plan = ACLRead(["M:OUTTMP"], BASE)
    with pytest.raises(LocalProtocolError, match="next_url"):
        plan.receive("M:OUTTMP = 1\n", NOW)
    plan.next_url()
    with pytest.raises(LocalProtocolError, match="unanswered"):
        plan.next_url()
    with pytest.raises(RuntimeError, match="not done"):
        plan.readings()
    failed = plan.timed_out(2.5, TimeoutError("slow"))
    assert [status_name(r) for r in failed.readings] == ["ACNET_REQTMO"]
    assert "0 of 1 readings arrived" in failed.message
    assert "within 2.5 s" in failed.readings[0].message


# ================================================================ the backend and the simulated CGI


@pytest.fixture(scope="module")
def sim() -> Iterator[ACLSimServer]:
    with ACLSimServer() as server:
        yield server


@pytest.fixture
def backend(sim: ACLSimServer) -> Iterator[ACLBackend]:
    with ACLBackend(sim.base_url, timeout=5.0) as b:
        yield b


@contextlib.contextmanager
def sent(sim: ACLSimServer) -> Iterator[list[str]]:
    """The queries the simulator receives inside the block."""
    before = len(sim.queries)
    got: list[str] = []
    yield got
    got.extend(list(sim.queries)[before:])


def test_read_get_and_get_many(sim: ACLSimServer, backend: ACLBackend) -> None:
    model = DeviceModel.default()
    start = datetime.now(UTC) - timedelta(seconds=1)
    assert abs(backend.read("M:OUTTMP") - 41.7) <= 0.3
    reading = backend.get("Z:ACLTST.SETTING")
    assert (reading.drf, reading.value) == ("Z:ACLTST.SETTING", 45.0)
    assert reading.value_type is ValueType.SCALAR
    assert start <= reading.timestamp <= datetime.now(UTC)
    drfs = ["Z:ACLTS1[0:3]", "Z:STRTST", "Z:RAWTST.RAW", "M:OUTTMP.DESCRIPTION"]
    drfs.append("Z:ACLTST.ANALOG.MAX")
    with sent(sim) as queries:
        array, text, raw, description, alarm_max = backend.get_many(drfs)
    assert queries == [
        r"acl=read+Z:ACLTS1[0:3]\;read+Z:STRTST\;read+Z:RAWTST/raw\;read+M:OUTTMP.DESCRIPTION"
        r"\;read+Z:ACLTST.ANALOG.MAX"
    ]
    device = model.device("Z:ACLTS1")
    assert array.value_type is ValueType.SCALAR_ARRAY
    assert np.all(np.abs(array.value - device.setting[:4]) <= device.amplitude)
    assert (text.value, text.value_type) == ("the quick brown fox", ValueType.TEXT)
    assert raw.value == bytes.fromhex("00112233445566778899aabbccddeeff")
    assert description.value == "Outdoor temperature"
    assert alarm_max.value == 100.0


def test_the_array_and_raw_data_match_what_dpm_reads(backend: ACLBackend) -> None:
    # G:AMANDA does not move (amplitude 0): its raw float32 is exact
    assert backend.get("G:AMANDA.RAW").value == np.float32(1.0).tobytes()
    assert backend.read("Z:ACLTS1[3]") == pytest.approx(4.5, abs=0.5)  # one element: a scalar


def test_a_text_device(backend: ACLBackend) -> None:
    reading = backend.get("Z:STRTST")
    assert (reading.ok, reading.value) == (True, "the quick brown fox")
    assert reading.value_type is ValueType.TEXT


def test_a_clock_event_read_waits_for_the_event(sim: ACLSimServer, backend: ACLBackend) -> None:
    with sent(sim) as queries:
        reading = backend.get("M:OUTTMP@e,2")
    assert reading.ok and abs(reading.value - 41.7) <= 0.3
    assert queries == ["acl=read/pendwait+M:OUTTMP/event=%27e,2%27"]


@pytest.mark.parametrize("position", [0, 2, 5])
def test_an_unknown_device_in_a_batch_fails_alone(
    sim: ACLSimServer, backend: ACLBackend, position: int
) -> None:
    drfs = ["M:OUTTMP", "G:AMANDA", "Z:ACLTST", "Z:STRTST", "Z:ACLTS1[1]"]
    drfs.insert(position, "Z:NOTFND")
    with sent(sim) as queries:
        readings = backend.get_many(drfs)
    assert [r.drf for r in readings] == drfs
    bad = readings[position]
    # DBM_NOREC is not in the status table: untranslatable, the line kept as the message
    assert (bad.facility_code, status_name(bad), bad.message) == (1, "ACNET_NXE", MISSING)
    assert all(r.ok for i, r in enumerate(readings) if i != position)
    # the batch, the bad device alone, then the devices after it (if any) as one batch
    assert queries[1] == "acl=read+Z:NOTFND"
    assert len(queries) == (3 if position < len(drfs) - 1 else 2)
    with pytest.raises(DeviceError, match="Z:NOTFND") as raised:
        backend.read("Z:NOTFND")
    assert (raised.value.facility_code, raised.value.error_code) == (1, -44)
    assert raised.value.message == MISSING


def test_read_many_raises_with_every_reading(backend: ACLBackend) -> None:
    with pytest.raises(ReadError, match="Z:NOTFND") as raised:
        backend.read_many(["M:OUTTMP", "Z:NOTFND"])
    good, bad = raised.value.readings
    assert good.ok and bad.message == MISSING
    assert backend.read_many(["G:AMANDA", "Z:STRTST"]) == [1.0, "the quick brown fox"]


def test_other_refusals_carry_acls_status(backend: ACLBackend) -> None:
    outtmp_setting, out_of_bounds, raw_device, status_block = backend.get_many(
        ["M:OUTTMP.SETTING", "Z:ACLTS1[20]", "Z:RAWTST", "Z|ACLTST"]
    )
    assert status_name(outtmp_setting) == "DIO_NOATT"  # M:OUTTMP is read-only
    assert status_name(out_of_bounds) == "DIO_OUT_OF_BOUNDS"
    assert status_name(raw_device) == "DIO_NOSCALE"
    assert status_name(status_block) == "DIO_NOT_SUPPORTED"


def test_two_thousand_devices_are_split_into_urls_under_8_kb(
    sim: ACLSimServer, backend: ACLBackend
) -> None:
    drfs = [f"Z:SIM{i:04d}" for i in range(2000)]
    drfs[1500] = "Z:NOTFND"
    with sent(sim) as queries:
        readings = backend.get_many(drfs)
    urls = [f"{sim.base_url}?{q}" for q in queries]
    assert all(len(url) <= MAX_URL_LENGTH for url in urls)
    # a few full URLs, then the bad device alone and a new batch after it: never one per device
    fewest = math.ceil(2000 * len(r"read+Z:SIM0000\;") / MAX_URL_LENGTH)
    assert fewest <= len(urls) <= fewest + 3
    assert "acl=read+Z:NOTFND" in queries
    assert [r.drf for r in readings] == drfs
    for i, reading in enumerate(readings):
        if i == 1500:
            assert reading.message == MISSING
        else:  # value 0.001 * i plus a wave of amplitude 1
            assert reading.ok and abs(reading.value - 0.001 * i) <= 1.0 + 1e-9, reading


def test_execute_runs_raw_acl(sim: ACLSimServer, backend: ACLBackend) -> None:
    with sent(sim) as queries:
        output = backend.execute("read M:OUTTMP; read G:AMANDA")
        again = backend.execute(r"read+M:OUTTMP\;read+G:AMANDA")
        listed = backend.execute(["read M:OUTTMP", "read G:AMANDA"])
    assert queries[0] == r"acl=read+M:OUTTMP\;+read+G:AMANDA"  # the CGI strips the space
    assert queries[1:] == [r"acl=read+M:OUTTMP\;read+G:AMANDA"] * 2
    for text in (output, again, listed):
        first, second = text.splitlines()
        assert first.startswith("M:OUTTMP ") and first.endswith(" DegF")
        assert second.split() == ["G:AMANDA", "=", "1", "A"]


def test_execute_raises_acl_error_when_acl_stops(sim: ACLSimServer, backend: ACLBackend) -> None:
    with pytest.raises(
        ACLError, match=r"\(Z:NOTFND\) in read device command at line 2 - DBM_NOREC"
    ):
        backend.execute("read M:OUTTMP; read Z:NOTFND")
    with pytest.raises(ACLError, match="CLIB_SYNTAX"):
        backend.execute("show M:OUTTMP")
    with sent(sim) as queries, pytest.raises(ValueError, match="cannot be sent"):
        backend.execute("read M:OUTTMP # a comment")
    assert queries == []


def test_writes_and_streams_are_refused(sim: ACLSimServer, backend: ACLBackend) -> None:
    with sent(sim) as queries:
        for write in (
            lambda: backend.write("Z:ACLTST", 45.0),
            lambda: backend.write("Z@ACLTST", {"minimum": 0.0, "maximum": 1.0}),
            lambda: backend.write_many([("Z:ACLTST", 45.0)]),
        ):
            with pytest.raises(NotImplementedError, match=r"read-only.*cannot write"):
                write()
        with pytest.raises(NotImplementedError, match="no streaming"):
            backend.subscribe(["M:OUTTMP@p,1000"])
    assert queries == []


def test_bad_drfs_raise_before_any_request(sim: ACLSimServer, backend: ACLBackend) -> None:
    with sent(sim) as queries:
        with pytest.raises(drf.DRFError, match=r"M:OUTTMP@@"):
            backend.get_many(["M:OUTTMP", "M:OUTTMP@@"])
        with pytest.raises(TypeError):
            backend.get(42)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="empty"):
            backend.get_many([])
    assert queries == []


def test_the_cgi_sees_percent_encoded_drf_characters_as_they_are(sim: ACLSimServer) -> None:
    # what a client that percent-encodes gets (requests' default): ACL reads the escapes
    response = requests.get(f"{sim.base_url}?acl=read+Z:ACLTS1[0:3]\\;read+M:OUTTMP", timeout=5)
    assert sim.queries[-1] == "acl=read+Z:ACLTS1%5B0:3%5D%5C;read+M:OUTTMP"
    assert response.text.startswith(
        "Invalid device specification (Z:ACLTS1%5B0:3%5D%5C) in read device command at line 1: "
    )
    assert response.text.endswith(" - DIO_SYNTAX\n")


def test_the_cgi_answers_other_paths_and_queries_with_http_errors(sim: ACLSimServer) -> None:
    root = sim.base_url.removesuffix(CGI_PATH)
    assert requests.get(f"{root}/cgi-bin/other.pl?acl=read+M:OUTTMP", timeout=5).status_code == 404
    assert requests.get(f"{sim.base_url}?x=1", timeout=5).status_code == 400
    assert requests.get(f"{sim.base_url}?acl=", timeout=5).text.endswith("- CLIB_SYNTAX\n")


def test_one_backend_serves_many_threads(backend: ACLBackend) -> None:
    def read(i: int) -> list[float]:
        return backend.read_many([f"Z:SIM{i:04d}", "G:AMANDA"])

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(read, range(40)))
    assert all(
        amanda == 1.0 and abs(sim_value - 0.001 * i) <= 1.0 + 1e-9
        for i, (sim_value, amanda) in enumerate(results)
    )


# ---------------------------------------------------------------- failures


class Scripted:
    """An HTTP server answering each request with the next of ``answers``: a body (200), a
    ``(status, body, headers)`` tuple, or None to drop the connection unanswered."""

    def __init__(self, answers: list[str | tuple[int, str, dict[str, str]] | None]) -> None:
        self.answers = list(answers)
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                outer.requests.append(self.path)
                answer = outer.answers.pop(0)
                if answer is None:
                    self.close_connection = True
                    return
                status, body, headers = answer if isinstance(answer, tuple) else (200, answer, {})
                data = body.encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}{CGI_PATH}"

    def __enter__(self) -> Scripted:
        serve = self._server.serve_forever
        threading.Thread(target=serve, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def test_a_dropped_connection_gives_the_readings_that_arrived() -> None:
    drfs = ["M:OUTTMP", "Z:NOTFND", "G:AMANDA"]
    with (
        Scripted([f"M:OUTTMP = 41.7 DegF\n{NOTFND}\n", None]) as server,
        ACLBackend(server.url) as b,
        pytest.raises(ReadError) as raised,
    ):
        b.get_many(drfs)
    assert isinstance(raised.value.__cause__, requests.ConnectionError)
    first, second, third = raised.value.readings
    assert (first.drf, first.value) == ("M:OUTTMP", 41.7)
    assert [status_name(second), status_name(third)] == ["ACNET_DISCONNECTED"] * 2
    assert [r.drf for r in raised.value.readings] == drfs
    assert "1 of 3 readings arrived" in raised.value.message


@pytest.mark.parametrize(
    ("answer", "problem"),
    [((500, "Internal Server Error", {}), "HTTP 500"), ("<html>oops</html>", "not ACL's")],
)
def test_a_broken_server_fails_the_read(answer: Any, problem: str) -> None:
    with (
        Scripted([answer]) as server,
        ACLBackend(server.url) as b,
        pytest.raises(ReadError, match=problem) as raised,
    ):
        b.get_many(["M:OUTTMP", "G:AMANDA"])
    assert [status_name(r) for r in raised.value.readings] == ["ACNET_DISCONNECTED"] * 2


def test_a_redirect_names_the_new_address() -> None:
    moved = (301, "", {"Location": "https://elsewhere/cgi-bin/acl.pl"})
    with (
        Scripted([moved]) as server,
        ACLBackend(server.url) as b,
        pytest.raises(ReadError, match=r"HTTP 301.*redirects to https://elsewhere/cgi-bin/acl\.pl"),
    ):
        b.get("M:OUTTMP")


def test_no_server_gives_disconnected_readings() -> None:
    with ACLSimServer() as gone:
        url = gone.base_url
    with ACLBackend(url) as b, pytest.raises(ReadError) as raised:
        b.get_many(["M:OUTTMP", "G:AMANDA"])
    assert [status_name(r) for r in raised.value.readings] == ["ACNET_DISCONNECTED"] * 2
    with ACLBackend(url) as b, pytest.raises(ACLError, match="request failed"):
        b.execute("read M:OUTTMP")


def test_a_silent_server_times_out() -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as listener:  # accepts (backlog), never answers
        url = f"http://127.0.0.1:{listener.getsockname()[1]}{CGI_PATH}"
        with ACLBackend(url, timeout=0.2) as b:
            with pytest.raises(ReadError, match="timed out") as raised:
                b.get_many(["M:OUTTMP", "G:AMANDA"])
            assert [status_name(r) for r in raised.value.readings] == ["ACNET_REQTMO"] * 2
            with pytest.raises(ACLError, match="timed out"):
                b.execute("read M:OUTTMP", timeout=0.2)


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    "url",
    [
        "ftp://host/acl.pl",
        "https:///acl.pl",
        "http://host/acl.pl?acl=x",
        "http://h/a#b",
        "http://h/a b",
        "http://hé/acl.pl",
        42,
    ],
)
def test_bad_base_urls_are_refused(url: Any) -> None:
    with pytest.raises(ConfigurationError, match="base_url"):
        ACLBackend(url)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="timeout"):
        ACLBackend(timeout=0)
    with pytest.raises(ConfigurationError, match="max_url_length"):
        ACLBackend("http://h/acl.pl", max_url_length=10)
    b = ACLBackend("http://h/acl.pl")
    b.close()
    b.close()
    with pytest.raises(RuntimeError, match="closed"):
        b.get("M:OUTTMP")


def test_the_factory_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACNET_ACL_URL", raising=False)
    monkeypatch.setenv("PACSYS_ACL_URL", "http://pacsys-host/acl.pl")
    with acnet_proto.acl() as b:
        assert (b.base_url, b.timeout) == ("http://pacsys-host/acl.pl", 5.0)
    monkeypatch.setenv("ACNET_ACL_URL", "http://acnet-host/acl.pl")
    with acl(timeout=2) as b:
        assert (b.base_url, b.timeout) == ("http://acnet-host/acl.pl", 2.0)
    with acl("http://given/acl.pl") as b:
        assert b.base_url == "http://given/acl.pl"
    monkeypatch.delenv("ACNET_ACL_URL")
    monkeypatch.delenv("PACSYS_ACL_URL")
    with acl() as b:
        assert b.base_url == "https://www-bd.fnal.gov/cgi-bin/acl.pl"


def test_serve_runs_until_cancelled() -> None:
    async def main() -> tuple[str, float, bool]:
        started: list[ACLSimServer] = []
        task = asyncio.create_task(serve(ready=started.append))
        while not started:
            await asyncio.sleep(0.01)
        with ACLBackend(started[0].base_url) as b:
            value = await asyncio.to_thread(b.read, "G:AMANDA")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return started[0].base_url, value, "stopped" in repr(started[0])

    base_url, value, stopped = asyncio.run(main())
    assert base_url.endswith(CGI_PATH) and value == 1.0 and stopped


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, str]:
    """A server context with a fresh self-signed certificate for 127.0.0.1, and its path."""
    cert, key = write_certificate(tmp_path_factory.mktemp("tls"))
    return tls_context(cert, key), str(cert)


def test_https_sends_the_query_raw_too(tls: tuple[ssl.SSLContext, str]) -> None:
    context, ca = tls
    with ACLSimServer(ssl_context=context) as server, ACLBackend(server.base_url, verify=ca) as b:
        assert server.base_url.startswith("https://")
        array, missing = b.get_many(["Z:ACLTS1[0:1]", "Z:NOTFND"])
        assert server.queries[0] == r"acl=read+Z:ACLTS1[0:1]\;read+Z:NOTFND"
    assert array.value.shape == (2,) and missing.message == MISSING
    with (
        ACLSimServer(ssl_context=context) as server,
        ACLBackend(server.base_url) as b,
        pytest.raises(ReadError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        b.get("M:OUTTMP")  # not signed by a CA the system trusts


@pytest.mark.parametrize("charset", ["idna", "undefined"])
def test_a_charset_python_cannot_decode_with_is_read_as_utf8(charset: str) -> None:
    # found by fuzz/fuzz_text.py: these raised a bare UnicodeError out of read and execute
    headers = {"Content-Type": f"text/plain; charset={charset}"}
    answer = (200, "M:OUTTMP       = 41.7 DegF\n", headers)
    with Scripted([answer, answer]) as server, ACLBackend(server.url) as b:
        assert b.read("M:OUTTMP") == 41.7
        assert "41.7" in b.execute("read M:OUTTMP")

"""ACL's pure half under a hostile CGI: what acnet_proto.services.acl makes of any answer.

The query text, the output format and batch reads are tested with the
simulated CGI in tests/adapters/test_acl.py; these are the answers
fuzz/fuzz_text.py found (or checks) that must stay typed.
"""

from __future__ import annotations

import pytest

from acnet_proto._text import SHOWN_CHARS
from acnet_proto.errors import RemoteProtocolError
from acnet_proto.services.acl import DEFAULT_BASE_URL, ACLRead, decode_output, format_value

OUTPUT = format_value("M:OUTTMP", 41.7, "DegF") + "\n"


@pytest.mark.parametrize(
    "charset",
    [
        "idna",  # decodes, but refuses the "replace" error handler: UnicodeError
        "undefined",  # refuses every decode: UnicodeError
        "punycode",  # raises UnicodeDecodeError even with "replace"
        "a\0b",  # no codec name at all: ValueError
        "hex",  # a bytes-to-bytes codec: LookupError
        "no-such-charset",  # LookupError
        "",
        None,
    ],
)
def test_any_charset_a_server_names_gives_its_output_as_text(charset: str | None) -> None:
    assert decode_output(OUTPUT.encode("utf-8") + b"\xff", charset) == OUTPUT + "\ufffd"


def test_a_charset_python_knows_is_used() -> None:
    assert decode_output("É = 1".encode("latin-1"), "latin-1") == "É = 1"


def test_a_line_that_is_not_acls_is_named_bounded_and_escaped() -> None:
    plan = ACLRead(["M:OUTTMP"], DEFAULT_BASE_URL)
    plan.next_url()
    line = "\x1b[2J<html>" + "x" * 10_000
    with pytest.raises(RemoteProtocolError, match="not ACL's") as raised:
        plan.receive(line, now=0.0)
    message = str(raised.value)
    assert "\\x1b[2J<html>" in message and "\x1b" not in message
    assert len(message) < SHOWN_CHARS + 200


def test_raw_output_without_hex_is_an_error_reading_that_shows_it_bounded() -> None:
    plan = ACLRead(["M:OUTTMP.RAW"], DEFAULT_BASE_URL)
    plan.next_url()
    plan.receive("M:OUTTMP = \x07" + "z" * 5_000, now=0.0)
    [reading] = plan.readings()
    assert reading.status.name == "ACNET_NXE" and reading.message is not None
    assert "no hex number" in reading.message and "\\x07" in reading.message
    assert len(reading.message) < SHOWN_CHARS + 100

"""The simulated ACL CGI answers as the lab's does: ``HEAD`` like any CGI server, the field
forms the real ``acl`` accepts, printed in its words, and ``DBM_NOREC`` for a device that
does not exist. Every value expected here is what the same device model answers over DPM.
"""

from __future__ import annotations

import http.client
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from acnet_proto.adapters.acl import ACLBackend
from acnet_proto.adapters.sim.acl import ALARM_BLOCK_WIDTHS, CGI_PATH, ACLSimServer
from acnet_proto.errors import ACLError, DeviceError
from acnet_proto.services.acl import script_query, value_of_line
from acnet_proto.sim import DeviceModel, RequestRejected


@pytest.fixture(scope="module")
def sim() -> Iterator[ACLSimServer]:
    with ACLSimServer(DeviceModel.default()) as server:
        yield server


def model_says(sim: ACLSimServer, drf_text: str) -> Any:
    """What the simulator's own model answers for ``drf_text`` now (its reply's data)."""
    with sim.lock:
        return sim.model.resolve(drf_text).reply(0, time.time()).data


def acl(sim: ACLSimServer, *commands: str) -> str:
    """What the CGI prints for ``commands``, sent as a script exactly as written."""
    connection = http.client.HTTPConnection(sim.host, sim.port, timeout=5)
    try:
        connection.request("GET", f"{CGI_PATH}?{script_query(commands)}")
        response = connection.getresponse()
        assert response.status == 200
        return response.read().decode()
    finally:
        connection.close()


# ---------------------------------------------------------------- HEAD


def _exchange(sim: ACLSimServer, method: str, target: str) -> tuple[int, dict[str, str], bytes]:
    """``method`` then a GET of ``target`` on one kept-alive connection: the first's status,
    headers and body (a body sent after a HEAD answer would spoil the GET's answer)."""
    connection = http.client.HTTPConnection(sim.host, sim.port, timeout=5)
    try:
        connection.request(method, target)
        first = connection.getresponse()
        answer = (first.status, dict(first.getheaders()), first.read())
        connection.request("GET", target)
        again = connection.getresponse()
        assert again.status == first.status
        assert again.getheader("Content-Length") == first.getheader("Content-Length")
        assert len(again.read()) == int(first.getheader("Content-Length") or -1)
        return answer
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("target", "status"),
    [
        (f"{CGI_PATH}?acl=read+G:AMANDA", 200),
        (f"{CGI_PATH}?acl=read+Z:NOTFND", 200),  # ACL's errors are output, not HTTP errors
        ("/cgi-bin/other.pl?acl=read+G:AMANDA", 404),
        (f"{CGI_PATH}?x=1", 400),
    ],
)
def test_head_answers_with_the_get_status_and_headers_and_no_body(
    sim: ACLSimServer, target: str, status: int
) -> None:
    code, headers, body = _exchange(sim, "HEAD", target)
    assert (code, body) == (status, b"")
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert int(headers["Content-Length"]) > 0


def test_a_client_probing_with_head_finds_the_cgi_up(sim: ACLSimServer) -> None:
    # what pacsys's lab tests do to learn whether the CGI is there
    probe = urllib.request.Request(f"{sim.base_url}?acl=read+M:OUTTMP", method="HEAD")
    with urllib.request.urlopen(probe, timeout=5) as response:
        assert (response.status, response.read()) == (200, b"")


def test_other_methods_are_not_implemented(sim: ACLSimServer) -> None:
    response = requests.post(f"{sim.base_url}?acl=read+G:AMANDA", timeout=5)
    assert response.status_code == 501
    assert response.text == "acl.pl answers GET and HEAD only, not 'POST'\n"


# ---------------------------------------------------------------- the field forms


def _value_words(output: str) -> tuple[str, float, str]:
    """``NAME words = NUMBER UNITS``: the words to the ``=``, the number, the units."""
    (line,) = output.splitlines()
    *words, number, units = line.split()
    return " ".join(words), float(number), units


@pytest.mark.parametrize(
    ("written", "drf_text", "label"),
    [
        ("Z:ACLTST.MAX", "Z:ACLTST.ANALOG.MAX", "alarm maximum"),
        ("Z:ACLTST.MIN", "Z:ACLTST.ANALOG.MIN", "alarm minimum"),
        ("Z@ACLTST.MAX", "Z:ACLTST.ANALOG.MAX", "alarm maximum"),
        ("Z:ACLTST.ANALOG.MIN", "Z:ACLTST.ANALOG.MIN", "alarm minimum"),
    ],
)
def test_analog_alarm_limits_are_named_in_words_with_the_units(
    sim: ACLSimServer, written: str, drf_text: str, label: str
) -> None:
    units = sim.model.device("Z:ACLTST").units
    words, number, unit = _value_words(acl(sim, f"read {written}"))
    assert (words, number, unit) == (f"Z:ACLTST {label} =", model_says(sim, drf_text), units)


@pytest.mark.parametrize(
    ("written", "drf_text", "label"),
    [
        ("Z:ACLTST.STATUS.ON", "Z:ACLTST.STATUS.ON", "is on"),
        ("Z:ACLTST.ON", "Z:ACLTST.STATUS.ON", "is on"),
        ("Z|ACLTST.READY", "Z:ACLTST.STATUS.READY", "is ready"),
        ("Z:ACLTST.RAMP", "Z:ACLTST.STATUS.RAMP", "is ramping"),
    ],
)
def test_basic_status_fields_are_true_or_false(
    sim: ACLSimServer, written: str, drf_text: str, label: str
) -> None:
    flag = bool(model_says(sim, drf_text))
    assert acl(sim, f"read {written}") == f"Z:ACLTST {label} = {flag}\n"


def test_a_setting_is_printed_under_the_device_name(sim: ACLSimServer) -> None:
    units = sim.model.device("Z:ACLTST").units
    words, number, unit = _value_words(acl(sim, "read Z:ACLTST.SETTING"))
    assert (words, number, unit) == ("Z:ACLTST =", model_says(sim, "Z:ACLTST.SETTING"), units)


def _hex_words(line: str) -> list[str]:
    return line.partition("=")[2].split()


@pytest.mark.parametrize(
    ("written", "drf_text", "elements"),
    [
        ("G:AMANDA.RAW", "G:AMANDA.RAW", 1),
        ("G:AMANDA/raw", "G:AMANDA.RAW", 1),
        ("Z:ACLTS1.SETTING[0:3].RAW/raw", "Z:ACLTS1.SETTING[0:3].RAW", 4),
        ("Z:ACLTST.STATUS.RAW", "Z:ACLTST.STATUS.RAW", 1),
    ],
)
def test_raw_data_is_one_hex_number_per_element(
    sim: ACLSimServer, written: str, drf_text: str, elements: int
) -> None:
    line = acl(sim, f"read {written}")
    assert len(_hex_words(line)) == elements
    value, _ = value_of_line(sim.model.resolve(drf_text).request, line.partition("=")[2])
    assert value == bytes(model_says(sim, drf_text))


def test_a_raw_alarm_block_is_printed_field_by_field(sim: ACLSimServer) -> None:
    raw = bytes(model_says(sim, "Z:ACLTST.ANALOG.RAW"))
    words = _hex_words(acl(sim, "read Z:ACLTST.ANALOG.RAW"))
    assert [len(word) for word in words] == [2 * width for width in ALARM_BLOCK_WIDTHS]
    assert b"".join(bytes.fromhex(word)[::-1] for word in words) == raw


def test_forms_acl_does_not_know_stop_the_script_naming_the_device(sim: ACLSimServer) -> None:
    for written in ("Z:ACLTST.FOO", "Z:ACLTST.SETTING.MAX", "Z:ACLTS1[0:3].ON"):
        output = acl(sim, "read G:AMANDA", f"read {written}", "read G:AMANDA")
        first, error = output.splitlines()
        assert first.startswith("G:AMANDA ")
        assert error.startswith(
            f"Invalid device specification ({written}) in read device command at line 2: "
        )
        assert error.endswith(" - DIO_SYNTAX")


@pytest.mark.parametrize(
    ("written", "device"),
    [("M:OUTTMP.ON", "M:OUTTMP"), ("Z:ACLTST.REMOTE", "Z:ACLTST")],  # no status; no remote bit
)
def test_a_status_attribute_the_device_lacks_names_the_device(
    sim: ACLSimServer, written: str, device: str
) -> None:
    with pytest.raises(RequestRejected):  # the model has no such attribute either
        sim.model.resolve(f"{device}.STATUS.{written.rpartition('.')[2]}")
    assert acl(sim, f"read {written}") == (
        f"Error determining status text in read device command at line 1 - {device} DIO_NOATT\n"
    )


# ---------------------------------------------------------------- a device that does not exist


def test_a_device_that_does_not_exist_is_dbm_norec(sim: ACLSimServer) -> None:
    output = acl(sim, "read G:AMANDA", "read Z:NOTFND", "read M:OUTTMP")
    assert output.splitlines()[1:] == [
        "Invalid device name (Z:NOTFND) in read device command at line 2 - DBM_NOREC"
    ]
    with ACLBackend(sim.base_url, timeout=5) as backend:
        reading = backend.get("Z_NOTFND")  # its SETTING: the device is missing all the same
        assert reading.is_error and reading.value is None
        assert reading.message == (
            "Invalid device name (Z:NOTFND) in read device command at line 1 - DBM_NOREC"
        )
        with pytest.raises(DeviceError, match="DBM_NOREC"):
            backend.read("Z:NOTFND")
        with pytest.raises(ACLError, match="DBM_NOREC"):
            backend.execute("read Z:NOTFND")


# ---------------------------------------------------------------- our client reads them


def test_our_client_reads_status_fields_and_alarm_limits_as_dpm_does(sim: ACLSimServer) -> None:
    drfs = ["Z:ACLTST.STATUS.ON", "Z|ACLTST.RAMP", "Z@ACLTST.MAX", "M:OUTTMP.STATUS.ON"]
    with ACLBackend(sim.base_url, timeout=5) as backend:
        on, ramp, maximum, missing = backend.get_many(drfs)
    assert on.value == float(model_says(sim, "Z:ACLTST.STATUS.ON"))
    assert ramp.value == float(model_says(sim, "Z:ACLTST.STATUS.RAMP"))
    assert maximum.value == model_says(sim, "Z:ACLTST.ANALOG.MAX")
    assert missing.status.name == "DIO_NOATT"

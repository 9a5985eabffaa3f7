"""Settings of the lab's test devices, through Kerberos, and the services' own facts.

Every setting goes through :func:`~tests.lab.conftest.set_value` (or a
:class:`Device` named by :func:`~tests.lab.conftest.settable`), which refuses a
device the lab does not let tests set; each test puts back what it changed.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator

import pytest
import requests

from acnet_proto.api.backend import Backend
from acnet_proto.api.device import Device
from tests.lab.conftest import DMQ_PRINCIPAL, SETTABLE, Lab, T, set_value, settable

pytestmark = pytest.mark.integration


def dec_f_bytes(value: float) -> bytes:
    """``value`` (non-zero, in range) as DEC F_floating: the inverse of the lab's raw read."""
    fraction, exponent = math.frexp(abs(value))  # value = fraction * 2**exponent, 0.5 <= f < 1
    bits = round((fraction - 0.5) * (1 << 24)) & 0x7FFFFF
    high = (0x8000 if value < 0 else 0) | ((exponent + 128) << 7) | (bits >> 16)
    return struct.pack("<HH", high, bits & 0xFFFF)


@pytest.fixture
def kept(writer: Backend) -> Iterator[Backend]:
    """``writer``, with the settings of G:AMANDA and Z:ACLTST put back after the test."""
    saved = {name: writer.read(f"{name}.SETTING", T) for name in ("G:AMANDA", "Z:ACLTST")}
    yield writer
    for name, value in saved.items():
        set_value(writer, f"{name}.SETTING", value)


@pytest.mark.parametrize("value", [1.25, -3.5])
def test_g_amanda_takes_a_setting_and_its_raw_bytes_follow(kept: Backend, value: float) -> None:
    device = Device(settable("G:AMANDA"), kept)
    result = device.write(value, verify=True, timeout=T)
    assert result.ok and result.verified, result
    raw = kept.read("G:AMANDA.SETTING.RAW", T)
    assert struct.unpack("<f", raw)[0] == value  # both exact in binary floating point


def test_z_acltst_takes_a_raw_dec_setting_that_scales_one_to_one(kept: Backend) -> None:
    from acnet_proto.adapters.dmq import DMQBackend

    if isinstance(kept, DMQBackend):
        pytest.skip("DMQ sends no raw (binary) settings: the lab's DMQ server refuses them")
    assert set_value(kept, "Z:ACLTST.SETTING.RAW", dec_f_bytes(12.5)).ok
    assert kept.read("Z:ACLTST.SETTING", T) == pytest.approx(12.5, rel=1e-6)
    assert set_value(kept, "Z_ACLTST", 45.0).ok
    assert kept.read("Z:ACLTST.SETTING.RAW", T) == dec_f_bytes(45.0)


@pytest.mark.parametrize("name", ["Z:ACLTS2", "Z:CUBE_X", "Z:RICH"])
def test_a_settable_test_device_takes_a_setting(writer: Backend, name: str) -> None:
    assert name in SETTABLE
    before = writer.read(f"{name}.SETTING", T)
    try:
        result = Device(settable(name), writer).write(before + 1.0, verify=True, timeout=T)
        assert result.ok and result.verified, result
    finally:
        set_value(writer, f"{name}.SETTING", before)


def test_a_text_test_device_takes_a_setting(writer: Backend) -> None:
    before = writer.read("Z:STRTST", T)
    try:
        assert set_value(writer, "Z_STRTST", "lab suite").ok
        assert writer.read("Z:STRTST", T).rstrip("\x00 ") == "lab suite"
    finally:
        set_value(writer, "Z_STRTST", before)


def test_the_guard_refuses_a_device_the_lab_does_not_let_tests_set() -> None:
    with pytest.raises(pytest.fail.Exception, match="M:OUTTMP"):
        settable("M_OUTTMP@N")


def test_dmq_serves_the_labs_principal(lab: Lab, open_backend: object) -> None:
    """The lab's DMQ accepts a ticket for ``daeset/bd/dmq.fnal.gov@FNAL.GOV``, whatever
    host name the broker is reached by (the suite's DMQ backends all ask for it)."""
    backend = open_backend("dmq")  # type: ignore[operator]
    assert backend.service == DMQ_PRINCIPAL
    assert isinstance(backend.read("M:OUTTMP", T), float)


def test_the_acl_cgi_answers_head_like_any_cgi(lab: Lab) -> None:
    url = lab.need("acl")
    answer = requests.head(f"{url}?acl=read+M:OUTTMP", timeout=T, verify=lab.acl_verify)
    assert answer.status_code == 200 and answer.content == b""


def test_the_acl_cgi_reads_the_labs_devices(acl: Backend) -> None:
    temperature, text = acl.get_many(["M:OUTTMP", "B:BOOSBP"], T)
    assert isinstance(temperature.value, float) and isinstance(text.value, str)

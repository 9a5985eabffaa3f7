"""The PyPI pacsys ACL backend, unchanged, against the simulated ACL CGI, over HTTP and HTTPS.

pacsys is used as its own lab tests use it (``ACLBackend(base_url, verify_ssl=False)`` for
HTTPS, a ``HEAD`` to learn that the CGI is up): scalars, arrays, text, raw data, a device
that does not exist, the ``DEVICE.FIELD`` forms and the basic status it reads field by field.
Every expected value is what the simulator's own device model answers.
"""

from __future__ import annotations

import contextlib
import math
import ssl
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from acnet_proto.adapters.sim.acl import ACLSimServer, tls_context
from acnet_proto.sim import DeviceModel, RequestRejected
from tests.support.certificates import write_certificate

pytestmark = pytest.mark.integration
pacsys_acl = pytest.importorskip("pacsys.backends.acl")
pacsys_errors = pytest.importorskip("pacsys.errors")

DEADLINE = 10.0
STATUS_FIELDS = {"on": "ON", "ready": "READY", "remote": "REMOTE", "positive": "POSITIVE"}
STATUS_FIELDS["ramp"] = "RAMP"


@pytest.fixture(scope="module", params=["http", "https"])
def sim(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ACLSimServer]:
    context = None
    if request.param == "https":
        context = tls_context(*write_certificate(tmp_path_factory.mktemp("tls")))
    with ACLSimServer(DeviceModel.default(), ssl_context=context) as server:
        yield server


@pytest.fixture(scope="module")
def backend(sim: ACLSimServer) -> Iterator[Any]:
    with pacsys_acl.ACLBackend(base_url=sim.base_url, timeout=DEADLINE, verify_ssl=False) as b:
        yield b


def model_says(sim: ACLSimServer, drf_text: str) -> Any:
    """What the simulator's own model answers for ``drf_text`` now (its reply's data)."""
    with sim.lock:
        return sim.model.resolve(drf_text).reply(0, time.time()).data


def test_a_head_probe_finds_the_cgi_up(sim: ACLSimServer) -> None:
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    probe = urllib.request.Request(f"{sim.base_url}?acl=read+M:OUTTMP", method="HEAD")
    with urllib.request.urlopen(probe, timeout=DEADLINE, context=unverified) as response:
        assert (response.status, response.read()) == (200, b"")


def test_scalars(sim: ACLSimServer, backend: Any) -> None:
    assert backend.read("G:AMANDA") == model_says(sim, "G:AMANDA")
    outtmp = backend.get("M:OUTTMP")
    assert outtmp.ok and isinstance(outtmp.value, float) and math.isfinite(outtmp.value)
    assert backend.read("Z_ACLTST@I") == model_says(sim, "Z:ACLTST.SETTING")


def test_arrays_text_and_raw_data(sim: ACLSimServer, backend: Any) -> None:
    drfs = ["Z_ACLTS1[0:3]@I", "Z:STRTST", "M~OUTTMP", "G:AMANDA.RAW", "Z:ACLTS1.SETTING[0:3].RAW"]
    array, text, description, raw, raw_array = backend.get_many(drfs)
    assert array.value == list(model_says(sim, "Z:ACLTS1.SETTING[0:3]"))
    assert text.value == model_says(sim, "Z:STRTST")
    assert description.value == model_says(sim, "M:OUTTMP.DESCRIPTION")
    assert raw.value == bytes(model_says(sim, "G:AMANDA.RAW"))
    assert raw_array.value == bytes(model_says(sim, "Z:ACLTS1.SETTING[0:3].RAW"))


def test_a_device_that_does_not_exist(sim: ACLSimServer, backend: Any) -> None:
    amanda, missing, outtmp = backend.get_many(["G:AMANDA", "Z:NOTFND", "M:OUTTMP"])
    assert amanda.ok and outtmp.ok
    assert missing.is_error and "DBM_NOREC" in missing.message
    with pytest.raises(pacsys_errors.DeviceError, match="DBM_NOREC"):
        backend.read("Z:NOTFND")


def test_the_field_forms(sim: ACLSimServer, backend: Any) -> None:
    maximum = model_says(sim, "Z:ACLTST.ANALOG.MAX")
    assert backend.read("Z:ACLTST.MAX") == maximum  # pacsys sends it as written
    assert backend.read("Z@ACLTST.MAX") == maximum
    assert backend.read("Z:ACLTST.ANALOG.MIN") == model_says(sim, "Z:ACLTST.ANALOG.MIN")
    assert backend.read("Z:ACLTST.STATUS.ON") is bool(model_says(sim, "Z:ACLTST.STATUS.ON"))


def test_the_basic_status_read_field_by_field(sim: ACLSimServer, backend: Any) -> None:
    expected = {}
    for key, field in STATUS_FIELDS.items():
        with contextlib.suppress(RequestRejected):  # a bit the device lacks: no key, as in DPM
            expected[key] = bool(model_says(sim, f"Z:ACLTST.STATUS.{field}"))
    reading = backend.get("Z|ACLTST")
    assert reading.ok and reading.value == expected

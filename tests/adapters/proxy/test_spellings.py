"""The supervised proxy's policies cannot be spelled around: real grpcio, the real simulator.

The attack: a 5-unit ``SlewRatePolicy`` on Z:ACLTST was passed by 45-94
units through ``Z:ACLTST[0]``, ``Z:ACLTST.SETTING.SCALED`` and
``Z:ACLTST.SETTING[:]``, each spelling keeping its own history; a deny list
matched the DRF as written. Here a ``SupervisedServer`` on loopback stands in
front of a DPM backend to the simulated DPM (settings through a real KDC), and
a gRPC client sends each spelling exactly as written (``SettingBatch`` would
canonicalise some of them): every policy judges the canonical target.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

from acnet_proto.adapters.dpm.threaded import DPMBackend
from acnet_proto.adapters.grpc.stubs.DAQ_pb2_grpc import DAQStub
from acnet_proto.adapters.proxy.supervised import SupervisedServer
from acnet_proto.adapters.sim.dpm import SimServer
from acnet_proto.protos.controls.service.DAQ.v1 import DAQ_pb2
from acnet_proto.proxy import (
    POLICY_METADATA,
    SERVER_RULES,
    DeviceAccessPolicy,
    Policy,
    SlewLimit,
    SlewRatePolicy,
    ValueRangePolicy,
)
from acnet_proto.services.daq import setting_value
from tests.support.servers.kdc import KDC

pytest.importorskip("gssapi")
from acnet_proto.adapters.kerberos import KerberosAuth

pytestmark = pytest.mark.integration

WAIT = 10.0  # generous: the machine is shared
WRITE_Z = DeviceAccessPolicy(["Z:*"], mode="allow", action="set")
# every spelling of the scaled setting of Z:ACLTST (element 0 of it)
ACLTST_SPELLINGS = [
    "Z:ACLTST[0]",
    "Z:ACLTST.SETTING.SCALED",
    "Z:ACLTST.SETTING[:]",
    "z_acltst",
    "Z:ACLTST.SETTING",
    "z:acltst.setting[0].scaled",
    "Z_ACLTST[0:0]",
]


@pytest.fixture(scope="module")
def sim(start_sim: Callable[..., SimServer], kdc: KDC) -> SimServer:
    """The simulated DPM; its default policy lets any principal in ``testing`` set Z:*."""
    return start_sim(keytab=kdc.keytab)


@pytest.fixture
def backend(sim: SimServer) -> Iterator[DPMBackend]:
    with DPMBackend(sim.host, sim.port, auth=KerberosAuth(), role="testing") as dpm:
        yield dpm


@contextlib.contextmanager
def proxy(backend: DPMBackend, policies: list[Policy], **options: Any) -> Iterator[DAQStub]:
    with (
        SupervisedServer(backend, port=0, host="127.0.0.1", policies=policies, **options) as server,
        grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        yield DAQStub(channel)


def put(stub: DAQStub, settings: list[tuple[str, Any]]) -> list[int]:
    """One Set with each DRF exactly as given; the status_code of each setting."""
    request = DAQ_pb2.SettingList(
        setting=[DAQ_pb2.Setting(device=d, value=setting_value(d, v)) for d, v in settings]
    )
    return [s.status_code for s in stub.Set(request, timeout=WAIT).status]


def read(stub: DAQStub, drfs: list[str]) -> int:
    """How many replies one Read of ``drfs`` gets."""
    return len(list(stub.Read(DAQ_pb2.ReadingList(drf=drfs), timeout=WAIT)))


def refusal(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str, str | None]:
    """The status code, details and refusing policy (trailing metadata) ``call`` fails with."""
    with pytest.raises(grpc.RpcError) as info:
        call()
    error: Any = info.value
    policy = dict(error.trailing_metadata() or ()).get(POLICY_METADATA)
    return error.code(), error.details(), policy


def refused_put(stub: DAQStub, settings: list[tuple[str, Any]]) -> tuple[Any, str, str | None]:
    return refusal(lambda: put(stub, settings))


def setting_of(sim: SimServer, name: str) -> list[float]:
    device = sim.model.device(name)
    assert device is not None
    return list(device.setting_numbers)


def test_a_slew_limit_holds_across_every_spelling(sim: SimServer, backend: DPMBackend) -> None:
    slew = SlewRatePolicy({"Z:ACLTST": SlewLimit(max_step=5)})
    with proxy(backend, [WRITE_Z, slew]) as stub:
        assert put(stub, [("Z:ACLTST", 50.0)]) == [0]  # the first setting: no history
        for jump, spelling in zip([45, 52, 60, 68, 77, 85, 94], ACLTST_SPELLINGS, strict=True):
            for value in (50.0 + jump, 50.0 - jump):
                code, details, policy = refused_put(stub, [(spelling, value)])
                assert code == grpc.StatusCode.PERMISSION_DENIED, spelling
                assert details.startswith(f"Step {float(jump)} for Z:ACLTST exceeds max_step 5")
                assert policy == "SlewRatePolicy"
        assert setting_of(sim, "Z:ACLTST") == [50.0]  # nothing got through
        value = 50.0
        for spelling in ACLTST_SPELLINGS:  # 3 units at a time, each spelling after another
            value += 3.0
            assert put(stub, [(spelling, value)]) == [0], spelling
        assert setting_of(sim, "Z:ACLTST") == [value]
        code, details, _ = refusal(lambda: put(stub, [("Z:ACLTST", value), ("z_acltst[0]", 1.0)]))
        assert details.startswith("Z:ACLTST.SETTING[0]@N is set twice in one call")


def test_range_and_slew_limits_apply_to_each_element_of_an_array(
    sim: SimServer, backend: DPMBackend
) -> None:
    limits = ValueRangePolicy({"Z:ACLTS1": (0, 20)})
    slew = SlewRatePolicy({"Z:ACLTS1": SlewLimit(max_step=2)})
    start = [float(i) for i in range(len(setting_of(sim, "Z:ACLTS1")))]

    def denied(drf: str, values: list[float]) -> str:
        code, details, _ = refusal(lambda: put(stub, [(drf, values)]))
        assert code == grpc.StatusCode.PERMISSION_DENIED
        return details

    with proxy(backend, [WRITE_Z, limits, slew]) as stub:
        assert put(stub, [("Z:ACLTS1", start)]) == [0]
        assert denied("Z:ACLTS1[2:4]", [2.0, 3.0, 25.0]) == (
            "Value 25.0 for Z:ACLTS1 outside range [0, 20] (element 4)"
        )
        # element 4 was 4.0: 9.0 is a 5-unit step, though 2 and 3 hardly move
        assert denied("Z:ACLTS1[2:4]", [3.0, 4.0, 9.0]) == (
            "Step 5.0 for Z:ACLTS1 exceeds max_step 2 (element 4)"
        )
        assert denied("z:acltS1.setting[3]", [6.0]) == (
            "Step 3.0 for Z:ACLTS1 exceeds max_step 2 (element 3)"
        )
        assert put(stub, [("Z:ACLTS1[2:4]", [3.0, 4.0, 5.0])]) == [0]
        # the range write moved element 4's history to 5.0: a single-element spelling sees it
        assert (
            denied("z_acltS1[4]", [8.0]) == "Step 3.0 for Z:ACLTS1 exceeds max_step 2 (element 4)"
        )
        assert put(stub, [("Z:ACLTS1.SETTING[4]", [6.5])]) == [0]
        assert denied("Z:ACLTS1[2:4]", [3.0, 4.0]).startswith("2 values for Z:ACLTS1[2:4]")
    assert setting_of(sim, "Z:ACLTS1")[:6] == [0.0, 1.0, 3.0, 4.0, 6.5, 5.0]


@pytest.mark.parametrize(
    "spelling",
    ["g:amanda", "g_amanda", "G|AMANDA", "g@amanda.max", "G:AMANDA.SETTING[0]", "G$AMANDA"],
)
def test_a_denied_device_cannot_be_reached_by_another_spelling(
    backend: DPMBackend, spelling: str
) -> None:
    deny_g = DeviceAccessPolicy(["G:*"], mode="deny")
    allow_all = DeviceAccessPolicy(["*"], mode="allow", action="set")
    denied = (grpc.StatusCode.PERMISSION_DENIED, "Device G:AMANDA is denied", "DeviceAccessPolicy")
    with proxy(backend, [deny_g, allow_all]) as stub:
        assert refusal(lambda: read(stub, [f"{spelling}@I"])) == denied
        assert refusal(lambda: put(stub, [(spelling, 1.0)])) == denied
        assert read(stub, ["z:acltst@I"]) == 1  # the policy lets other devices through


def test_an_index_name_is_refused_while_the_server_has_no_resolver(
    sim: SimServer, backend: DPMBackend
) -> None:
    amanda, acltst = sim.model.device("G:AMANDA"), sim.model.device("Z:ACLTST")
    assert amanda is not None and acltst is not None
    with proxy(backend, [DeviceAccessPolicy(["G:*"], mode="deny"), WRITE_Z]) as stub:
        for call in (
            lambda: read(stub, [f"0:{amanda.di}@I"]),
            lambda: put(stub, [(f"0:{amanda.di}", 1.0)]),
            lambda: put(stub, [(f"0_{acltst.di}", 1.0)]),  # even a device the policy allows
        ):
            code, details, policy = refusal(call)
            assert (code, policy) == (grpc.StatusCode.PERMISSION_DENIED, SERVER_RULES)
            assert "names its device by index" in details and "use the device's name" in details


def test_with_a_resolver_an_index_name_is_judged_as_the_device_it_names(
    sim: SimServer, backend: DPMBackend
) -> None:
    def name_of(index_name: str) -> str | None:
        device = sim.model.device(index_name)
        return None if device is None else device.name

    amanda, acltst = sim.model.device("G:AMANDA"), sim.model.device("Z:ACLTST")
    assert amanda is not None and acltst is not None
    policies = [DeviceAccessPolicy(["G:*"], mode="deny"), WRITE_Z]
    with proxy(backend, policies, name_of=name_of) as stub:
        denied = (
            grpc.StatusCode.PERMISSION_DENIED,
            "Device G:AMANDA is denied",
            "DeviceAccessPolicy",
        )
        assert refusal(lambda: read(stub, [f"0:{amanda.di}@I"])) == denied
        assert refusal(lambda: put(stub, [(f"0:{amanda.di}", 1.0)])) == denied
        assert put(stub, [(f"0_{acltst.di}", 7.0)]) == [0]  # allowed as Z:ACLTST
        assert setting_of(sim, "Z:ACLTST")[0] == 7.0
        unknown = refusal(lambda: read(stub, ["0:999999@I"]))
        assert unknown[0] is grpc.StatusCode.PERMISSION_DENIED and unknown[2] == SERVER_RULES


def test_a_failing_resolver_leaves_the_index_unresolved(backend: DPMBackend) -> None:
    def broken(index_name: str) -> str | None:
        raise RuntimeError("the device list is unreachable")

    with proxy(backend, [WRITE_Z], name_of=broken) as stub:
        code, details, policy = refusal(lambda: read(stub, ["0:27235@I"]))
    assert (code, policy) == (grpc.StatusCode.PERMISSION_DENIED, SERVER_RULES)
    assert "0:27235" in details

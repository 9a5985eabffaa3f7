"""``acnet-proto demo``: a tour of the library against an in-process simulator.

Nothing leaves the machine: the simulated DPM listens on a free loopback
port, and settings are authenticated by a throwaway MIT Kerberos KDC in a
temporary directory (skipped, with a note, when krb5kdc is not installed).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import acnet_proto
from acnet_proto.adapters.cli.simulators import throwaway_kdc
from acnet_proto.adapters.dpm.threaded import DPMBackend
from acnet_proto.adapters.sim._processes import ServerStartFailed, ServerUnavailable
from acnet_proto.adapters.sim.dpm import SimServer
from acnet_proto.errors import DeviceError
from acnet_proto.types import Reading

__all__ = ["run"]


def _say(step: str) -> None:
    print(f"\n== {step}", flush=True)


def _show(reading: Reading) -> str:
    if not reading.ok:
        return f"{reading.drf:<22} {reading.message}"
    value = reading.value
    if isinstance(value, float):
        shown: object = round(value, 3)
    else:
        shown = value.round(3).tolist() if hasattr(value, "round") else value
    when = reading.timestamp.strftime("%H:%M:%S.%f")[:-3] if reading.timestamp else ""
    return f"{reading.drf:<22} {shown!s:<32} {reading.units or '':<5} {when}"


@contextlib.contextmanager
def _kerberos(enabled: bool) -> Iterator[Path | None]:
    """A KDC for FNAL.GOV with a ticket for operator@FNAL.GOV; yields the service keytab."""
    if not enabled:
        yield None
        return
    with contextlib.ExitStack() as stack:
        try:
            keytab = stack.enter_context(throwaway_kdc())
        except (ServerUnavailable, ServerStartFailed) as exc:
            print(f"   (no Kerberos: {exc}; settings will be skipped)")
            keytab = None
        else:
            print("   a throwaway KDC for FNAL.GOV, ticket for operator")
        yield keytab


def run(kerberos: bool = True) -> int:
    """Run the tour; returns a process exit status."""
    print("acnet-proto demo: everything below talks to a simulator on this machine")
    _say("1. start a Kerberos KDC and the simulated DPM")
    with _kerberos(kerberos) as keytab, SimServer.in_thread(keytab=keytab) as sim:
        print(f"   simulated DPM listening on {sim.host}:{sim.port}")
        acnet_proto.configure(dpm_host=sim.host, dpm_port=sim.port)
        try:
            _tour_reads()
        finally:
            acnet_proto.shutdown()
        if keytab is None:
            print("\n(settings skipped: they need Kerberos: install krb5-kdc, no --no-kerberos)")
        else:
            _tour_settings(sim)
    _say("done")
    return 0


def _tour_reads() -> None:
    _say('2. read one value: acnet_proto.read("M:OUTTMP")')
    print(f"   {acnet_proto.read('M:OUTTMP'):.3f}")
    _say('3. a batch in one request: acnet_proto.get_many(["M:OUTTMP", "Z:ACLTST", ...])')
    for reading in acnet_proto.get_many(["M:OUTTMP", "Z:ACLTST", "Z:ACLTS1[0:3]", "Z:STRTST"]):
        print(f"   {_show(reading)}")
    _say('4. stream five readings: acnet_proto.subscribe(["M:OUTTMP@p,200"])')
    with acnet_proto.subscribe(["M:OUTTMP@p,200"]) as stream:
        for count, (reading, _) in enumerate(stream.readings(timeout=5), 1):
            print(f"   {_show(reading)}")
            if count == 5:
                break
    _say('5. an error: acnet_proto.read("Z:NOTFND")')
    try:
        acnet_proto.read("Z:NOTFND")
    except DeviceError as exc:
        print(f"   DeviceError: {exc}")


def _tour_settings(sim: SimServer) -> None:
    from acnet_proto.adapters.kerberos import KerberosAuth

    auth = KerberosAuth()
    _say(f"6. a setting as {auth.principal}, role testing")
    print('   backend = acnet_proto.dpm(auth=KerberosAuth(), role="testing")')
    print('   backend.write("Z:ACLTST", 47.5)')
    with DPMBackend(sim.host, sim.port, auth=auth, role="testing") as backend:
        before = backend.read("Z:ACLTST.SETTING")
        result = backend.write("Z:ACLTST", 47.5)
        after = backend.read("Z:ACLTST.SETTING")
        print(f"   ok={result.ok}; Z:ACLTST setting {before:.3f} -> {after:.3f}")
        _say("7. a setting the policy refuses (role testing may only set Z: devices)")
        refused = backend.write("G:AMANDA", 2.0)
        print(f"   ok={refused.ok}: {refused.message}")

"""A throw-away MIT Kerberos KDC for realm FNAL.GOV on a loopback port.

The demo and the tests start one in a temporary directory: users
``operator`` and ``outsider`` with random passwords, and in one keytab the
DPM service ``daeset/bd`` and the DMQ service by both of its names:
``daeset/bd/localhost`` (ours) and ``daeset/bd/dmq.fnal.gov`` (what pacsys
asks for). :meth:`KDC.keytab_with` writes a keytab holding only some of them.

:func:`start_kdc` raises :class:`ServerUnavailable` if the MIT KDC's
programs are not installed, :class:`ServerStartFailed` if they are but the
KDC does not start; a Kerberos tool that fails later raises
:class:`KDCCommandFailed`.
"""

import itertools
import os
import re
import secrets
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from acnet_proto.adapters.sim._processes import (
    ServerStartFailed,
    ServerUnavailable,
    die_with_parent,
    find_program,
    free_port,
    stop_process_group,
    wait_ready,
)
from acnet_proto.errors import AcnetProtoError

__all__ = [
    "KDC",
    "REALM",
    "SERVICES",
    "USERS",
    "KDCCommandFailed",
    "ServerStartFailed",
    "ServerUnavailable",
    "start_kdc",
]

REALM = "FNAL.GOV"
USERS = ("operator", "outsider")
# daeset/bd is what DPM uses for settings; daeset/bd/localhost is the DMQ host-based form,
# daeset/bd/dmq.fnal.gov the lab's DMQ, which pacsys asks for whatever host it reaches.
SERVICES = ("daeset/bd", "daeset/bd/localhost", "daeset/bd/dmq.fnal.gov")
# Everything shares one clock, so a tight skew is safe, and it lets a ticket count as
# expired seconds (not the default 5 minutes) after its end time, on client and KDC.
CLOCKSKEW = 2
START_TIMEOUT = 30.0
CMD_TIMEOUT = 20.0

KRB5_CONF = """\
[libdefaults]
    default_realm = {realm}
    dns_lookup_kdc = false
    dns_lookup_realm = false
    rdns = false
    dns_canonicalize_hostname = false
    ignore_acceptor_hostname = true
    udp_preference_limit = 1
    clockskew = {clockskew}
    kdc_timeout = 2000
    max_retries = 1
    default_ccache_name = FILE:{dir}/krb5cc
    default_keytab_name = FILE:{dir}/krb5.keytab
    default_client_keytab_name = FILE:{dir}/client.keytab

[realms]
    {realm} = {{
        kdc = 127.0.0.1:{port}
    }}

[domain_realm]
    localhost = {realm}
    .localhost = {realm}
"""

KDC_CONF = """\
[kdcdefaults]
    kdc_ports = {port}
    kdc_tcp_ports = {port}

[realms]
    {realm} = {{
        database_name = {dir}/principal
        key_stash_file = {dir}/stash
        acl_file = {dir}/kadm5.acl
        # kdc_listen takes precedence over kdc_ports and keeps the KDC off non-loopback NICs.
        kdc_listen = 127.0.0.1:{port}
        kdc_tcp_listen = 127.0.0.1:{port}
        max_life = 10h
        max_renewable_life = 7d
        supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
    }}

[logging]
    kdc = FILE:{dir}/kdc.log
    default = FILE:{dir}/kdc.log
"""


class KDCCommandFailed(AcnetProtoError):
    """A Kerberos tool run against the throwaway KDC (``kinit``, ``kadmin.local``,
    ``kdestroy``, ``kdb5_util``) failed; the message holds what it printed."""


@dataclass
class KDC:
    realm: str
    dir: Path
    port: int
    krb5_conf: Path
    kdc_conf: Path
    keytab: Path
    ccache: Path
    passwords: dict[str, str]
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    _counter: "itertools.count[int]" = field(default_factory=itertools.count)

    @property
    def users(self) -> dict[str, str]:
        return {u: f"{u}@{self.realm}" for u in USERS}

    @property
    def services(self) -> dict[str, str]:
        return {s: f"{s}@{self.realm}" for s in SERVICES}

    def principal(self, name: str) -> str:
        return name if "@" in name else f"{name}@{self.realm}"

    def run(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args,
            input=input,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=CMD_TIMEOUT,
            check=False,
        )

    def kadmin(self, query: str) -> None:
        res = self.run(find_program("kadmin.local"), "-r", self.realm, "-q", query)
        # kadmin.local exits 0 even when the query fails; errors only show on stderr.
        if res.returncode != 0 or "error" in res.stderr.lower():
            shown = re.sub(r"-pw \S+", "-pw ***", query)  # the message may reach a terminal
            raise KDCCommandFailed(f"kadmin.local -q {shown!r} failed: {res.stderr}")

    def keytab_with(self, *services: str) -> Path:
        """A fresh keytab holding only ``services`` (names from :data:`SERVICES`), with the
        keys the KDC has now: tickets for them verify, tickets for the rest do not."""
        path = self.dir / f"keytab-{next(self._counter)}"
        names = " ".join(self.principal(s) for s in services)
        # -norandkey keeps the keys: a new one would spoil every keytab already written
        self.kadmin(f"ktadd -norandkey -k {path} {names}")
        return path

    def new_ccache(self, tag: str = "cc") -> Path:
        return self.dir / f"ccache-{tag}-{next(self._counter)}"

    def kinit(
        self, principal: str = "operator", ccache: Path | None = None, lifetime: str | None = None
    ) -> Path:
        """Get a TGT for `principal` into `ccache` (a fresh private one by default)."""
        principal = self.principal(principal)
        ccache = ccache or self.new_ccache(principal.split("@")[0].replace("/", "_"))
        args = [find_program("kinit"), "-c", f"FILE:{ccache}"]
        if lifetime:
            args += ["-l", lifetime]
        user = principal.split("@")[0]
        if user in self.passwords:
            res = self.run(*args, principal, input=self.passwords[user] + "\n")
        else:
            res = self.run(*args, "-k", "-t", str(self.keytab), principal)
        if res.returncode != 0:
            raise KDCCommandFailed(f"kinit {principal} failed: {res.stderr.strip()}")
        return ccache

    def kdestroy(self, ccache: Path) -> None:
        """Destroy the tickets in ``ccache``, as a user's ``kdestroy`` does."""
        res = self.run(find_program("kdestroy"), "-c", f"FILE:{ccache}")
        if res.returncode != 0:
            raise KDCCommandFailed(f"kdestroy -c {ccache} failed: {res.stderr.strip()}")

    def wait_until_expired(self, ccache: Path, within: float = 10.0) -> None:
        """Return once ``ccache`` holds no valid ticket; RuntimeError after ``within`` seconds."""
        deadline = time.monotonic() + within
        # klist -s fails once no valid ticket remains; poll rather than guess a sleep.
        while self.run(find_program("klist"), "-s", "-c", f"FILE:{ccache}").returncode == 0:
            if time.monotonic() > deadline:
                raise RuntimeError("ticket did not expire in time")
            time.sleep(0.2)

    def expired_ccache(self, principal: str = "operator") -> Path:
        """A ccache whose only TGT has expired, by more than the allowed clock skew."""
        ccache = self.kinit(principal, lifetime="1s")
        self.wait_until_expired(ccache)
        time.sleep(CLOCKSKEW + 0.5)
        return ccache

    def stop(self) -> None:
        if self.proc is not None:
            stop_process_group(self.proc)
            self.proc = None

    def env_vars(self) -> dict[str, str]:
        """The variables a test session exports so libkrb5 uses this KDC."""
        return {
            k: self.env[k]
            for k in (
                "KRB5_CONFIG",
                "KRB5_KDC_PROFILE",
                "KRB5CCNAME",
                "KRB5_KTNAME",
                "KRB5_CLIENT_KTNAME",
                "KRB5RCACHEDIR",
            )
        }


def start_kdc(workdir: Path) -> KDC:
    """A KDC for :data:`REALM` in ``workdir``, once it gives operator a ticket (see the
    module docstring for its failures)."""
    krbkdc = find_program("krb5kdc")
    kdb5_util = find_program("kdb5_util")
    find_program("kadmin.local")
    find_program("kinit")

    port = free_port(udp_too=True)
    krb5_conf, kdc_conf = workdir / "krb5.conf", workdir / "kdc.conf"
    krb5_conf.write_text(KRB5_CONF.format(realm=REALM, dir=workdir, port=port, clockskew=CLOCKSKEW))
    kdc_conf.write_text(KDC_CONF.format(realm=REALM, dir=workdir, port=port))
    (workdir / "kadm5.acl").write_text("")
    (workdir / "rcache").mkdir()
    ccache, keytab = workdir / "krb5cc", workdir / "krb5.keytab"
    env = {
        **os.environ,
        "KRB5_CONFIG": str(krb5_conf),
        "KRB5_KDC_PROFILE": str(kdc_conf),
        "KRB5CCNAME": f"FILE:{ccache}",
        "KRB5_KTNAME": f"FILE:{keytab}",
        "KRB5_CLIENT_KTNAME": f"FILE:{workdir}/client.keytab",
        "KRB5RCACHEDIR": str(workdir / "rcache"),
    }
    kdc = KDC(
        realm=REALM,
        dir=workdir,
        port=port,
        krb5_conf=krb5_conf,
        kdc_conf=kdc_conf,
        keytab=keytab,
        ccache=ccache,
        passwords={u: secrets.token_hex(16) for u in USERS},
        env=env,
    )

    try:
        _create_database(kdc, kdb5_util)
    except KDCCommandFailed as exc:
        raise ServerStartFailed(f"the KDC's database could not be made: {exc}") from exc

    log = workdir / "krb5kdc.out"
    with log.open("wb") as out:
        kdc.proc = subprocess.Popen(
            [krbkdc, "-n", "-r", REALM, "-P", str(workdir / "kdc.pid")],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    try:
        wait_ready(kdc.proc, _answers(kdc), [log, workdir / "kdc.log"], "krb5kdc", START_TIMEOUT)
    except BaseException:
        kdc.stop()
        raise
    return kdc


def _create_database(kdc: KDC, kdb5_util: str) -> None:
    """The realm, its users and services, and the service keytab; KDCCommandFailed if not."""
    res = kdc.run(kdb5_util, "-r", kdc.realm, "create", "-s", "-P", secrets.token_hex(24))
    if res.returncode != 0:
        raise KDCCommandFailed(f"kdb5_util create failed: {res.stderr}")
    for user, password in kdc.passwords.items():
        kdc.kadmin(f"addprinc -pw {password} {user}")
    for service in SERVICES:
        kdc.kadmin(f"addprinc -randkey {service}")
    kdc.kadmin(f"ktadd -k {kdc.keytab} {' '.join(SERVICES)}")


def _answers(kdc: KDC) -> Callable[[], str | None]:
    """A probe for :func:`wait_ready`: None once ``kdc`` gives operator a ticket."""

    def probe() -> str | None:
        try:
            kdc.kinit("operator", ccache=kdc.ccache)
        except (KDCCommandFailed, subprocess.TimeoutExpired) as exc:
            return str(exc)
        return None

    return probe

"""Kerberos tokens and MICs stay on the wire: never in a log, a repr, an error or a transcript.

Authenticated settings run for real (the session KDC, the simulator with its
keytab) through the threaded and the asyncio adapters, with every logger
recording at DEBUG. The client's connections pass through the fault proxy
(tests/support/faults), which keeps every frame the client sent, so the test knows
the very tokens and MICs that went over the wire; behind the proxy two
recorders (acnet_proto.adapters.proxy.record) write transcripts, one redacting
(the default) and one told not to. Then every text the run produced is
searched for those secrets in the forms a leak would take (raw, hex, base64,
a bytes repr, or a fragment of one): none may appear, except in the
transcript whose redaction was turned off, which shows the search can find
them.
"""

from __future__ import annotations

import base64
import contextlib
import io
import logging
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from acnet_proto.adapters.proxy.record import Recorder
from acnet_proto.adapters.sim.dpm import SimServer
from acnet_proto.errors import SettingOutcomeUnknown
from acnet_proto.pc import dpm
from acnet_proto.sim import SettingsPolicy
from tests.support.clients import ADAPTERS, Client
from tests.support.faults import Fault, Proxy
from tests.support.servers.kdc import KDC

pytest.importorskip("gssapi")
from acnet_proto.adapters.kerberos import KerberosAuth

pytestmark = pytest.mark.integration

POLICY = SettingsPolicy.from_toml(
    """
[roles.testing]
allow = ["Z:*"]

[principals."operator@FNAL.GOV"]
roles = ["testing"]
"""
)
# a fragment this long found anywhere is a leak, not a coincidence
FRAGMENT = 12


@contextlib.contextmanager
def every_logger_at_debug() -> Iterator[io.StringIO]:
    """Every logger, existing or not, records at DEBUG into the returned buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    loggers = [logging.getLogger(name) for name in list(root.manager.loggerDict)]
    saved = [(logger, logger.level, logger.disabled) for logger in [root, *loggers]]
    for logger, _, _ in saved:
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
    root.addHandler(handler)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        for logger, level, disabled in saved:
            logger.setLevel(level)
            logger.disabled = disabled


def wire_secrets(proxy: Proxy) -> list[bytes]:
    """The client's Kerberos tokens and MICs, as they went over the wire."""
    secrets = []
    for connection in proxy.connections:
        for name, payload in connection.frames["c2s"]:
            if name == "AuthenticateRequest":
                token = dpm.decode_request(payload).token
                if token:
                    secrets.append(bytes(token))
            elif name == "EnableSettingsRequest":
                secrets.append(bytes(dpm.decode_request(payload).mic))
    return secrets


def _windows(text: str, size: int) -> set[str]:
    return {text[i : i + size] for i in range(len(text) - size + 1)}


def leaks(text: str, secrets: list[bytes]) -> list[str]:
    """Every secret of which ``text`` holds any fragment of FRAGMENT bytes: raw (as a bytes
    repr shows it), in hex (any case, spaced or not) or in base64 (standard or URL-safe)."""
    lowered = text.lower()
    hex_windows = _windows(lowered, 2 * FRAGMENT)
    spaced_windows = _windows(lowered, 3 * FRAGMENT - 1)
    found = []
    for secret in secrets:
        pieces = [secret[i : i + FRAGMENT] for i in range(len(secret) - FRAGMENT + 1)]
        encodings = [  # from each of the three offsets a fragment can start at
            encode(secret[shift:]).decode().rstrip("=")
            for encode in (base64.b64encode, base64.urlsafe_b64encode)
            for shift in range(3)
        ]
        if (
            any(p.hex() in hex_windows or p.hex(" ") in spaced_windows for p in pieces)
            or any(repr(p)[2:-1] in text for p in pieces)
            # base64 keeps 3-byte groups: 16 characters from a group boundary are 12 bytes
            or any(e[i : i + 16] in text for e in encodings for i in range(0, len(e) - 15, 4))
        ):
            found.append(secret.hex())
    return found


def exception_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)


@pytest.mark.parametrize("adapter", ["threaded", "asyncio"])
def test_no_kerberos_secret_escapes(
    adapter: str, kdc: KDC, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    with (
        every_logger_at_debug() as logged,
        SimServer.in_thread(keytab=kdc.keytab, policy=POLICY) as sim,
        Recorder.in_thread((sim.host, sim.port), tmp_path / "raw.jsonl", redact=False) as raw,
        Recorder.in_thread((raw.host, raw.port), tmp_path / "clean.jsonl", redact=True) as clean,
        # the third settings are cut off once they left: SettingOutcomeUnknown
        Proxy(
            (clean.host, clean.port), [[Fault("close", at=2, match="ApplySettingsReply")]]
        ) as proxy,
    ):
        auth = KerberosAuth()
        client: Client = ADAPTERS[adapter](proxy.host, proxy.port, auth=auth, role="testing")
        try:
            assert client.write("Z:ACLTST", 12.5).ok
            results = client.write_many([("Z:ACLTST", 13.0), ("G:AMANDA", 1.0)])  # one refused
            assert [r.ok for r in results] == [True, False]
            with pytest.raises(SettingOutcomeUnknown) as unknown:
                client.write("Z:ACLTST", 14.0)
            errors.append(unknown.value)
            assert client.write("Z:ACLTST", 15.0).ok  # a third connection, authenticated anew
            outsider = KerberosAuth(ccache=kdc.kinit("outsider"))
            stranger = ADAPTERS[adapter](proxy.host, proxy.port, auth=outsider, role="testing")
            try:
                refused = stranger.write("Z:ACLTST", 1.0)
                assert not refused.ok and "DPM_PRIV" in (refused.message or "")
            finally:
                stranger.close()
            backend: Any = client.backend  # type: ignore[attr-defined]
            context = auth.context("daeset/bd@FNAL.GOV")
            first_token = context.step(None)
            reprs = [
                repr(backend),
                str(backend),
                repr(auth),
                str(auth),
                repr(outsider),
                repr(context),
                repr(results),
                repr(refused),
                repr(vars(backend)),
            ]
        finally:
            client.close()
        assert proxy.settle(5)
        connections = len(proxy.connections)
        # the recorders write a transcript once a connection ended: give them a moment
        deadline = time.monotonic() + 5
        while not len(clean.written) == len(raw.written) == connections:
            assert time.monotonic() < deadline, "the recorders wrote no transcript"
            time.sleep(0.01)

    secrets = wire_secrets(proxy)
    # a token and a MIC per authentication: the first connection, its replacement, the outsider
    assert len(secrets) == 2 * 3
    assert first_token and first_token not in secrets  # a token the wire never saw
    texts = {
        "caplog": caplog.text,
        "log records": "\n".join(
            f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records
        ),
        "every logger": logged.getvalue(),
        "reprs": "\n".join(reprs),
        "exceptions": "\n".join(exception_text(e) for e in errors),
        "transcripts": "\n".join(path.read_text() for path in clean.written),
    }
    assert caplog.records, "nothing was logged: the capture is not working"
    assert len(clean.written) == len(raw.written) == connections == 3
    for where, text in texts.items():
        assert not leaks(text, secrets), f"a Kerberos secret in the {where}"
    # the search works: the transcript recorded without redaction holds every secret
    unredacted = "\n".join(path.read_text() for path in raw.written)
    assert leaks(unredacted, secrets) == [secret.hex() for secret in secrets]

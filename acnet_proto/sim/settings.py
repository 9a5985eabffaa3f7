"""The server's half of DPM settings, kept pure: authenticate, enable, authorize.

A simulated (or test) server holds one :class:`ServerSettings` per client
connection and hands it the settings requests its engine delivers; it
answers with the messages to send. Kerberos is behind :class:`Acceptor`
(filled by ``acnet_proto.adapters.kerberos.KerberosAcceptor``), so this
module imports no gssapi.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from acnet_proto import drf as _drf
from acnet_proto.errors import AuthenticationError
from acnet_proto.pc import dpm
from acnet_proto.pc._message import Message
from acnet_proto.sim.policy import DPM_PRIV, SettingsPolicy
from acnet_proto.status import Status

__all__ = ["Acceptor", "ServerSettings"]

_ROLE_PREFIX = "#ROLE:"


class Acceptor(Protocol):
    """The acceptor side of a GSS-API context."""

    @property
    def complete(self) -> bool: ...

    @property
    def initiator(self) -> str | None: ...

    def step(self, token: bytes) -> bytes | None: ...

    def verify_mic(self, message: bytes, mic: bytes) -> bool: ...


class ServerSettings:
    """Settings state for one connection: who authenticated, and what they may set.

    ``service_name`` is what the server announces (``daeset/bd`` for the
    principal ``daeset/bd@FNAL.GOV``). ``make_acceptor`` is None when the
    server has no keytab: every authentication is then refused.
    """

    def __init__(
        self,
        service_name: str,
        make_acceptor: Callable[[], Acceptor] | None,
        policy: SettingsPolicy,
    ) -> None:
        self.service_name = service_name
        self.make_acceptor = make_acceptor
        self.policy = policy
        self.principal: str | None = None
        self._acceptor: Acceptor | None = None
        self.refusal: str | None = None

    @property
    def enabled(self) -> bool:
        return self.principal is not None

    def on_authenticate(self, request: dpm.AuthenticateRequest) -> list[Message]:
        """Answer an ``Authenticate``: the service name, or the next context token."""
        if not request.token:
            self.principal = None
            self._acceptor = None if self.make_acceptor is None else self.make_acceptor()
            return [dpm.AuthenticateReply(service_name=self.service_name)]
        if self._acceptor is None:
            return self._refuse("no Kerberos acceptor: the server has no keytab")
        try:
            token = self._acceptor.step(bytes(request.token))
        except AuthenticationError as exc:
            return self._refuse(str(exc))
        return [dpm.AuthenticateReply(token=token or None)]

    def on_enable(self, request: dpm.EnableSettingsRequest) -> list[Message]:
        """Answer ``EnableSettings``: status 0 if the MIC proves the context, else DPM_PRIV."""
        acceptor = self._acceptor
        if acceptor is None or not acceptor.complete:
            return self._refuse("EnableSettings before the Kerberos context was complete")
        if not acceptor.verify_mic(bytes(request.message), bytes(request.mic)):
            return self._refuse("the EnableSettings MIC does not verify")
        self.principal = acceptor.initiator
        self.refusal = None
        return [dpm.StatusReply(ref_id=0, timestamp=0, cycle=0, status=0)]

    def _refuse(self, why: str) -> list[Message]:
        self.principal = None
        self._acceptor = None
        self.refusal = why
        return [dpm.StatusReply(ref_id=0, timestamp=0, cycle=0, status=DPM_PRIV.status)]

    def authorize(
        self, entries: Mapping[int, str], ref_ids: list[int], protection: Callable[[str], int]
    ) -> dict[int, Status | None]:
        """For each ref in ``ref_ids``: None if it may be set, else the refusal status.

        ``entries`` is the list: ref → the device's name as the model knows it
        (a DRF is read as the device it names); ref 0 may hold
        ``#ROLE:<role>``. Roles judge the canonical name, so a server passes
        the name of the device each entry was bound to: no role allows an
        index name (``0:<di>``), and text that is not a DRF is refused
        ``DPM_PRIV``. ``protection(name)`` gives a device's protection mask
        (the console class is judged on it, whatever the name).
        A ref that is not on the list is refused: no one may set what they
        did not add.
        """
        role_entry = entries.get(0, "")
        role = role_entry[len(_ROLE_PREFIX) :] if role_entry.startswith(_ROLE_PREFIX) else None
        verdicts: dict[int, Status | None] = {}
        for ref in ref_ids:
            device = _device(entries.get(ref)) if ref > 0 else None
            if self.principal is None or device is None:
                verdicts[ref] = DPM_PRIV
                continue
            verdicts[ref] = self.policy.authorize(self.principal, role, device, protection(device))
        return verdicts


def _device(listed: str | None) -> str | None:
    """The device ``listed`` names, case and qualifier folded (None: nothing, or not a DRF)."""
    try:
        return None if listed is None else _drf.parse(listed).device
    except (_drf.DRFError, TypeError):
        return None

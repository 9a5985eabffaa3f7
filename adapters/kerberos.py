"""Kerberos through gssapi: the client's :class:`KerberosAuth`, and the server's acceptor.

These fill the core's :class:`~acnet_proto.plans.settings.GSSContext` interface,
so the settings flow itself stays in the pure core.
"""

from __future__ import annotations

from pathlib import Path

import gssapi
from gssapi.raw.misc import GSSError  # the base of every gssapi error, raw or high-level

from acnet_proto.api.auth import Auth
from acnet_proto.errors import AuthenticationError

__all__ = ["KerberosAcceptor", "KerberosAuth", "KerberosContext"]

# a bitmask, the form gssapi's SecurityContext(flags=...) is declared to take
_FLAGS = (
    gssapi.RequirementFlag.mutual_authentication
    | gssapi.RequirementFlag.integrity
    | gssapi.RequirementFlag.replay_detection
    | gssapi.RequirementFlag.out_of_sequence_detection
)
# gssapi's credential store: mechanism-specific keys ("ccache", "keytab") to locations
_Store = dict[bytes | str, bytes | str]
_KINIT_HINT = "run `kinit` (or `kinit <principal>`) to get a ticket, then try again"


def _gss_failure(what: str, exc: GSSError) -> AuthenticationError:
    # GSSError text is libkrb5's own, which names the cause (expired, no cache, ...)
    return AuthenticationError(f"{what}: {exc.gen_message()}")


class KerberosAuth(Auth):
    """Kerberos credentials from the credential cache (``kinit`` first).

    ``name`` picks a principal when the cache holds several; ``ccache`` a
    cache other than the default. Validated now: with no valid ticket this
    raises :class:`AuthenticationError` saying to run ``kinit``.
    """

    kind = "kerberos"

    def __init__(self, name: str | None = None, ccache: str | Path | None = None) -> None:
        self.name = name
        self.ccache = None if ccache is None else str(ccache)
        self._credentials = self._acquire()

    def _acquire(self) -> gssapi.Credentials:
        store: _Store | None = None if self.ccache is None else {"ccache": f"FILE:{self.ccache}"}
        wanted = (
            None
            if self.name is None
            else gssapi.Name(self.name, gssapi.NameType.kerberos_principal)
        )
        try:
            creds = gssapi.Credentials(name=wanted, usage="initiate", store=store)
            if creds.lifetime <= 0:
                raise AuthenticationError(f"the Kerberos ticket has expired; {_KINIT_HINT}")
        except GSSError as exc:
            raise _gss_failure(f"no usable Kerberos ticket; {_KINIT_HINT}", exc) from None
        return creds

    @property
    def principal(self) -> str:
        return str(self._credentials.name)

    @property
    def realm(self) -> str:
        return self.principal.rpartition("@")[2]

    def context(self, service: str, mutual: bool = True) -> KerberosContext:
        """A fresh initiator context aimed at ``service`` (a Kerberos principal).

        ``mutual=False`` leaves out mutual authentication: the context is then
        complete after its first token and can sign at once, as DMQ needs (its
        server never answers with a token).
        """
        mutual_flag = gssapi.RequirementFlag.mutual_authentication
        flags = _FLAGS if mutual else _FLAGS & ~mutual_flag
        try:
            self._credentials = self._acquire()  # a ticket may have expired since construction
            target = gssapi.Name(service, gssapi.NameType.kerberos_principal)
            inner = gssapi.SecurityContext(
                name=target, creds=self._credentials, flags=flags, usage="initiate"
            )
        except GSSError as exc:
            raise _gss_failure(f"cannot start a Kerberos context for {service}", exc) from None
        return KerberosContext(inner, self.principal)

    def __repr__(self) -> str:
        return f"KerberosAuth(principal={self.principal!r})"


class KerberosContext:
    """An initiator context: the core's :class:`~acnet_proto.plans.settings.GSSContext`."""

    def __init__(self, inner: gssapi.SecurityContext, initiator: str) -> None:
        self._inner = inner
        self.initiator = initiator

    @property
    def complete(self) -> bool:
        return bool(self._inner.complete)

    def step(self, token: bytes | None) -> bytes | None:
        try:
            # gssapi's decorator on step() hides its declared return type
            reply: bytes | None = self._inner.step(token)
        except GSSError as exc:
            raise _gss_failure("Kerberos authentication failed", exc) from None
        return reply

    def get_mic(self, message: bytes) -> bytes:
        try:
            return self._inner.get_signature(message)
        except GSSError as exc:  # e.g. the context outlived its ticket
            raise _gss_failure("cannot sign with the Kerberos context", exc) from None


class KerberosAcceptor:
    """The server side: accepts contexts with a keytab and checks MICs.

    One instance per client connection (a context is per connection).
    """

    def __init__(self, service: str, keytab: str | Path | None = None) -> None:
        store: _Store | None = None if keytab is None else {"keytab": f"FILE:{keytab}"}
        try:
            name = gssapi.Name(service, gssapi.NameType.kerberos_principal)
            self._creds = gssapi.Credentials(name=name, usage="accept", store=store)
        except GSSError as exc:
            raise _gss_failure(f"cannot accept as {service}", exc) from None
        self._inner: gssapi.SecurityContext | None = None

    def step(self, token: bytes) -> bytes | None:
        """Consume a client token; return the reply token (mutual auth), if any."""
        if self._inner is None:
            self._inner = gssapi.SecurityContext(creds=self._creds, usage="accept")
        try:
            reply: bytes | None = self._inner.step(token)  # its decorator hides the type
            # gssapi defers some failures (with a KRB-ERROR token) to the next call
            complete = bool(self._inner.complete)
        except GSSError as exc:
            self._inner = None
            raise _gss_failure("the client's Kerberos token was refused", exc) from None
        if not complete:
            # Kerberos accepts in one step (AP-REQ in, AP-REP out); an incomplete
            # context here carries a KRB-ERROR, e.g. for a replayed authenticator.
            self._inner = None
            raise AuthenticationError(
                "the client's Kerberos token was refused (replayed, expired or for another service)"
            )
        return reply

    @property
    def complete(self) -> bool:
        return self._inner is not None and bool(self._inner.complete)

    @property
    def initiator(self) -> str | None:
        """The authenticated client principal, once complete."""
        if not self.complete:
            return None
        assert self._inner is not None  # complete implies a context
        return str(self._inner.initiator_name)

    def verify_mic(self, message: bytes, mic: bytes) -> bool:
        """True if ``mic`` is this context's signature over ``message``."""
        if not self.complete:
            return False
        assert self._inner is not None  # complete implies a context
        try:
            self._inner.verify_signature(message, mic)
        except GSSError:
            return False
        return True

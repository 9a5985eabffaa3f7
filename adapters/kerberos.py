"""Kerberos through gssapi: the client's :class:`KerberosAuth`, and the server's acceptor.

These fill the core's :class:`~acnet_proto.plans.settings.GSSContext` interface,
so the settings flow itself stays in the pure core.

Every gssapi call in the package is made here, and every failure of one
leaves as an :class:`~acnet_proto.errors.AuthenticationError` made by
:func:`credential_error` (chained from gssapi's exception): it says what
happened to the ticket (none, expired, destroyed, a principal the KDC does
not know, a refusal) and what to do next (``kinit PRINCIPAL``).
"""

from __future__ import annotations

from pathlib import Path

import gssapi
from gssapi.exceptions import GeneralError  # high-level misuse, not a GSSError
from gssapi.raw.exceptions import (
    BadNameError,
    ExpiredCredentialsError,
    InvalidCredentialsError,
    MissingCredentialsError,
)
from gssapi.raw.misc import GSSError  # the base of every gssapi error, raw or high-level

from acnet_proto.api.auth import Auth
from acnet_proto.errors import AuthenticationError

__all__ = ["KerberosAcceptor", "KerberosAuth", "KerberosContext", "credential_error"]

# a bitmask, the form gssapi's SecurityContext(flags=...) is declared to take
_FLAGS = (
    gssapi.RequirementFlag.mutual_authentication
    | gssapi.RequirementFlag.integrity
    | gssapi.RequirementFlag.replay_detection
    | gssapi.RequirementFlag.out_of_sequence_detection
)
# gssapi's credential store: mechanism-specific keys ("ccache", "keytab") to locations
_Store = dict[bytes | str, bytes | str]
#: what any gssapi call may raise
GSS_FAILURES = (GSSError, GeneralError)


def _detail(exc: Exception) -> str:
    """libkrb5's own words for ``exc``: the minor status (it names the cause), else the major."""
    if not isinstance(exc, GSSError):
        return str(exc)
    for code, major in ((exc.min_code, False), (exc.maj_code, True)):
        if not code:  # no status of this kind
            continue
        try:
            words = [w for w in exc.get_all_statuses(code, major) if _meaningful(w)]
        except GSSError:  # no text for this code: try the other one
            words = []
        if words:
            return "; ".join(words)
    return str(exc)


def _meaningful(words: str) -> bool:
    # libkrb5 says "Success" for a minor code of none, and fails to word one it cannot map
    return bool(words) and words != "Success" and "gss_display_status" not in words


def credential_error(
    exc: Exception, principal: str | None = None, service: str | None = None
) -> AuthenticationError:
    """The :class:`AuthenticationError` for gssapi's ``exc``; ``raise ... from exc``.

    ``principal`` is the client's (or None if never known), ``service`` the
    target's when a context was being made. The message says what happened
    and what to do next, and quotes libkrb5's reason.
    """
    detail = _detail(exc)
    words = detail.lower()
    if isinstance(exc, ExpiredCredentialsError) or "expired" in words:
        return _expired(principal, detail)
    who = f" for {principal}" if principal else ""
    kinit = _kinit(principal)
    if isinstance(exc, InvalidCredentialsError):
        # credentials read before, whose cache has gone since (kdestroy, or the file removed)
        what = f"the Kerberos ticket{who} is gone: its credential cache was destroyed"
        then = f"{kinit} to get a new one"
    elif isinstance(exc, MissingCredentialsError):
        what = f"there is no Kerberos ticket{who} in the credential cache"
        then = f"{kinit} to get one"
    elif isinstance(exc, BadNameError):
        what = f"{service or principal!r} is not a valid Kerberos principal name"
        then = "give one like user@FNAL.GOV"
    elif "not found in kerberos database" in words:
        what = f"the Kerberos KDC does not know {service or principal or 'the principal'}"
        then = "check the principal's name and the realm in krb5.conf"
    else:
        target = f" a context for {service}" if service else " the credentials"
        what, then = f"Kerberos refused{target}", f"{kinit} for a fresh ticket"
    return _refused(what, detail, then)


def _kinit(principal: str | None) -> str:
    return f"run `kinit {principal}`" if principal else "run `kinit`"


def _expired(principal: str | None, detail: str | None = None) -> AuthenticationError:
    """The :class:`AuthenticationError` for ``principal``'s expired ticket: run ``kinit``."""
    who = f" for {principal}" if principal else ""
    then = f"{_kinit(principal)} to get a new one"
    return _refused(f"the Kerberos ticket{who} has expired", detail, then)


def _refused(what: str, detail: str | None = None, then: str | None = None) -> AuthenticationError:
    """The :class:`AuthenticationError` every Kerberos failure here raises: ``what`` happened,
    libkrb5's ``detail`` (when there is one), then what to do next (``then``), if anything."""
    said = "" if detail is None else f" (Kerberos: {detail})"
    advice = "" if then is None else f"; {then}, then try again"
    return AuthenticationError(f"{what}{said}{advice}")


class KerberosAuth(Auth):
    """Kerberos credentials from the credential cache (``kinit`` first).

    ``name`` picks a principal when the cache holds several; ``ccache`` a
    cache other than the default. Validated now, and again by each
    :meth:`check`, :attr:`principal` and :meth:`context`: with no valid
    ticket (none, expired, destroyed) they raise :class:`AuthenticationError`
    saying to run ``kinit``.
    """

    kind = "kerberos"

    def __init__(self, name: str | None = None, ccache: str | Path | None = None) -> None:
        self.name = name
        self.ccache = None if ccache is None else str(ccache)
        self._known: str | None = name  # the principal last seen in the cache, for messages
        self._credentials = self._acquire()

    def _acquire(self) -> gssapi.Credentials:
        """The cache's credentials, read now (a ticket may have expired since the last time)."""
        store: _Store | None = None if self.ccache is None else {"ccache": f"FILE:{self.ccache}"}
        try:
            wanted = (
                None
                if self.name is None
                else gssapi.Name(self.name, gssapi.NameType.kerberos_principal)
            )
            creds = gssapi.Credentials(name=wanted, usage="initiate", store=store)
            principal, lifetime = str(creds.name), creds.lifetime
        except GSS_FAILURES as exc:
            raise credential_error(exc, self._known) from exc
        self._known = principal
        if lifetime is not None and lifetime <= 0:
            raise _expired(principal)
        return creds

    def check(self) -> None:
        """Raise :class:`AuthenticationError` unless the cache holds a valid ticket now."""
        self._credentials = self._acquire()

    @property
    def principal(self) -> str:
        """Whose ticket it is, checked now (:class:`AuthenticationError` if it has gone)."""
        self.check()
        return str(self._known)

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
        self.check()  # a ticket may have expired since construction
        try:
            target = gssapi.Name(service, gssapi.NameType.kerberos_principal)
            inner = gssapi.SecurityContext(
                name=target, creds=self._credentials, flags=flags, usage="initiate"
            )
        except GSS_FAILURES as exc:
            raise credential_error(exc, self._known, service) from exc
        return KerberosContext(inner, str(self._known), service)

    def __repr__(self) -> str:
        # the principal last seen: a repr never touches the cache, so it never raises
        return f"KerberosAuth(principal={self._known!r})"


class KerberosContext:
    """An initiator context: the core's :class:`~acnet_proto.plans.settings.GSSContext`."""

    def __init__(self, inner: gssapi.SecurityContext, initiator: str, service: str) -> None:
        self._inner = inner
        self.initiator = initiator
        self.service = service

    @property
    def complete(self) -> bool:
        return bool(self._inner.complete)

    def step(self, token: bytes | None) -> bytes | None:
        try:
            # gssapi's decorator on step() hides its declared return type
            reply: bytes | None = self._inner.step(token)
        except GSS_FAILURES as exc:  # the ticket (or the KDC's) refused, expired, gone
            raise credential_error(exc, self.initiator, self.service) from exc
        return reply

    def get_mic(self, message: bytes) -> bytes:
        try:
            return self._inner.get_signature(message)
        except GSS_FAILURES as exc:  # e.g. the context outlived its session key
            raise credential_error(exc, self.initiator, self.service) from exc


class KerberosAcceptor:
    """The server side: accepts contexts with a keytab and checks MICs.

    ``service`` names the one principal tickets must be for; None accepts a
    ticket for any principal ``keytab`` holds (None: the default keytab,
    ``KRB5_KTNAME``), as a server known by several names must (the lab's
    DMQ is ``daeset/bd/dmq.fnal.gov`` to some clients, its host's name to
    others). A ticket for a principal the keytab lacks is refused by
    :meth:`step`. One instance per client connection (a context is per
    connection).
    """

    def __init__(self, service: str | None, keytab: str | Path | None = None) -> None:
        store: _Store | None = None if keytab is None else {"keytab": f"FILE:{keytab}"}
        try:
            kind = gssapi.NameType.kerberos_principal
            name = None if service is None else gssapi.Name(service, kind)
            self._creds = gssapi.Credentials(name=name, usage="accept", store=store)
        except GSS_FAILURES as exc:
            where = keytab or "the default keytab"
            if service is None:
                what = f"cannot accept Kerberos tickets with {where}"
                then = "check that it exists and holds the service principals"
            else:
                what, then = f"cannot accept as {service}: is it in {where}?", None
            raise _refused(what, _detail(exc), then) from exc
        self._inner: gssapi.SecurityContext | None = None

    def step(self, token: bytes) -> bytes | None:
        """Consume a client token; return the reply token (mutual auth), if any."""
        try:
            if self._inner is None:
                self._inner = gssapi.SecurityContext(creds=self._creds, usage="accept")
            reply: bytes | None = self._inner.step(token)  # its decorator hides the type
            # gssapi defers some failures (with a KRB-ERROR token) to the next call
            complete = bool(self._inner.complete)
        except GSS_FAILURES as exc:
            self._inner = None
            raise _refused("the client's Kerberos token was refused", _detail(exc)) from exc
        if not complete:
            # Kerberos accepts in one step (AP-REQ in, AP-REP out); an incomplete
            # context here carries a KRB-ERROR, e.g. for a replayed authenticator.
            self._inner = None
            raise _refused(
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
        except GSS_FAILURES:
            return False
        return True

"""Credentials in the pure core: JWTAuth.from_env as the seeds have it, and what a backend
holding credentials says about them (AuthHolder)."""

from __future__ import annotations

import base64
import json

import pytest

from acnet_proto.api.auth import Auth, AuthHolder, JWTAuth
from acnet_proto.errors import AuthenticationError, ConfigurationError

VARIABLES = ("ACNET_JWT_TOKEN", "PACSYS_JWT_TOKEN", "MY_TOKEN")


def token(sub: str) -> str:
    def part(obj: dict[str, str]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256'})}.{part({'sub': sub})}.c2lnbmF0dXJl"


@pytest.fixture(autouse=True)
def no_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_from_env_is_none_when_nothing_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    assert JWTAuth.from_env() is None
    monkeypatch.setenv("ACNET_JWT_TOKEN", "   ")  # empty counts as unset
    assert JWTAuth.from_env() is None
    assert JWTAuth.from_env(var="MY_TOKEN") is None


def test_from_env_reads_the_variable_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_TOKEN", token("mine"))
    monkeypatch.setenv("ACNET_JWT_TOKEN", token("ours"))
    auth = JWTAuth.from_env(var="MY_TOKEN")
    assert auth is not None and auth.principal == "mine"
    auth = JWTAuth.from_env(var="PACSYS_JWT_TOKEN")  # only the one named: unset here
    assert auth is None


def test_from_env_with_no_name_prefers_acnet_then_pacsys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PACSYS_JWT_TOKEN", token("theirs"))
    assert getattr(JWTAuth.from_env(), "principal", None) == "theirs"
    monkeypatch.setenv("ACNET_JWT_TOKEN", token("ours"))
    assert getattr(JWTAuth.from_env(), "principal", None) == "ours"


def test_from_env_names_a_variable_that_holds_no_jwt(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "not-a-jwt-but-maybe-a-password"
    monkeypatch.setenv("MY_TOKEN", secret)
    with pytest.raises(ConfigurationError, match="MY_TOKEN does not hold a JWT") as caught:
        JWTAuth.from_env(var="MY_TOKEN")
    assert secret not in str(caught.value)


class Lapsing(Auth):
    """Credentials that stop working when told to, as a Kerberos ticket does."""

    kind = "kerberos"

    def __init__(self) -> None:
        self.gone = False

    def check(self) -> None:
        if self.gone:
            raise AuthenticationError("the ticket is gone; run `kinit`")

    @property
    def principal(self) -> str:
        self.check()
        return "operator@FNAL.GOV"


class Holder(AuthHolder):
    def __init__(self, auth: Auth | None) -> None:
        self.auth = auth


def test_a_holder_says_who_and_whether() -> None:
    assert (Holder(None).authenticated, Holder(None).principal) == (False, None)
    credentials = Lapsing()
    holder = Holder(credentials)
    assert (holder.authenticated, holder.principal, holder.auth) == (
        True,
        "operator@FNAL.GOV",
        credentials,
    )
    credentials.gone = True
    with pytest.raises(AuthenticationError, match="kinit"):
        _ = holder.principal
    assert holder.authenticated  # it holds credentials; they no longer work


def test_a_holder_checks_credentials_when_given_them() -> None:
    credentials = Lapsing()
    credentials.gone = True
    with pytest.raises(AuthenticationError, match="kinit"):
        Holder(credentials)


def test_a_jwt_has_nothing_to_check_here() -> None:
    assert Holder(JWTAuth(token("operator"))).principal == "operator"


def test_a_payload_nested_too_deeply_for_json_is_a_configuration_error() -> None:
    # found by fuzz/fuzz_text.py: json gives up with RecursionError, which is no ValueError
    payload = base64.urlsafe_b64encode(b'{"sub":' + b"[" * 100_000).rstrip(b"=").decode()
    with pytest.raises(ConfigurationError, match="too deeply") as raised:
        JWTAuth(f"e30.{payload}.c2ln")
    assert payload not in str(raised.value)

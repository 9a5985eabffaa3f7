"""The KDC the fixtures start lives in the package (the demo uses it too); and what tests
of its tickets assert of a refusal."""

from acnet_proto.adapters.sim.kdc import KDC, REALM, SERVICES, USERS, start_kdc
from acnet_proto.errors import AuthenticationError

__all__ = ["KDC", "REALM", "SERVICES", "USERS", "assert_from_gssapi", "start_kdc"]


def assert_from_gssapi(error: BaseException, *words: str) -> None:
    """``error`` is an AuthenticationError naming each of ``words`` (the cause and the next
    step), chained from gssapi's exception."""
    from gssapi.raw.misc import GSSError  # the tests that call this need gssapi; not all do

    assert isinstance(error, AuthenticationError), repr(error)
    text = str(error)
    assert all(w in text for w in words), (text, words)
    assert isinstance(error.__cause__, GSSError)

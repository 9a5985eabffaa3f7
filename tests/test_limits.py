"""acnet_proto.limits: the limits' checks, the stream quota, peer addresses and burst logging."""

from __future__ import annotations

import pytest

from acnet_proto.drf import MAX_DRF_LENGTH
from acnet_proto.errors import ConfigurationError
from acnet_proto.limits import (
    DEFAULT_LIMITS,
    Burst,
    Bursts,
    ServerLimits,
    StreamQuota,
    peer_address,
    request_problem,
    unavailable,
)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max_connections", 0),
        ("max_connections", 1.5),
        ("idle_timeout", 0),
        ("max_wait", float("nan")),
        ("handshake_timeout", True),
        ("max_streams", -1),
    ],
)
def test_a_bad_limit_is_refused_naming_it(name: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=f"ServerLimits.{name} must be"):
        ServerLimits(**{name: value})  # type: ignore[arg-type]


def test_the_defaults_are_valid_and_immutable() -> None:
    assert ServerLimits() == DEFAULT_LIMITS
    with pytest.raises(AttributeError):
        DEFAULT_LIMITS.max_connections = 1  # type: ignore[misc]


def test_a_burst_is_logged_once_and_summed_when_it_ends() -> None:
    burst = Burst(quiet_period=5.0)
    starts = [burst.refused(t) for t in (0.0, 1.0, 2.0, 6.0)]
    assert starts == [True, False, False, False]
    assert burst.ended(10.0) is None  # 4 s after the last refusal: still the same burst
    assert burst.ended(11.0) == 4
    assert burst.ended(30.0) is None  # nothing to report twice
    assert burst.refused(31.0) is True


def test_bursts_of_each_kind_are_counted_apart_and_forgotten_once_reported() -> None:
    bursts = Bursts(quiet_period=5.0)
    assert bursts.refused("shed", 0.0) == (True, None)
    assert bursts.refused("shed", 1.0) == (False, None)
    assert bursts.refused("a stream", 2.0) == (True, None)
    assert bursts.ended_all(6.5) == [("shed", 2)]  # "a stream" was refused 4.5 s ago
    assert bursts.ended_all(6.5) == []
    # a refusal after the quiet period starts a new burst and reports the old one's total
    assert bursts.refused("a stream", 8.0) == (True, 1)
    assert bursts.ended_all(float("inf")) == [("a stream", 1)]


def test_a_peer_is_counted_under_its_address_without_the_port() -> None:
    assert peer_address("ipv4:10.0.0.1:5000") == peer_address("ipv4:10.0.0.1:6000")
    assert peer_address("ipv6:[::1]:5000") == "ipv6:[::1]"
    # without a port, nothing is cut from the address; what is not grpc's form stays whole
    unchanged = ["ipv4:10.0.0.1", "ipv6:[::1]", "10.0.0.1", "unix:/tmp/daq.sock", ""]
    unchanged += ["ipv4:127.0.0.1:²"]  # not a port: a peer's text, kept whole
    assert [peer_address(peer) for peer in unchanged] == unchanged


def test_the_stream_quota_refuses_the_newest_beyond_either_limit_naming_it() -> None:
    quota = StreamQuota(ServerLimits(max_streams_per_peer=2, max_streams=3), "/pendwait requests")
    assert [quota.take("a"), quota.take("a")] == [None, None]
    per_peer = quota.take("a")
    assert per_peer is not None
    assert "2 /pendwait requests open (max_streams_per_peer)" in per_peer
    assert "max_streams_per_peer=2" in per_peer and "end one first" in per_peer
    assert quota.take("b") is None
    total = quota.take("c")
    assert total is not None and "already serves 3 /pendwait requests (max_streams)" in total
    assert "max_streams=3" in total and "\n" not in total
    assert (quota.open("a"), quota.open("b"), quota.open("c"), quota.open()) == (2, 1, 0, 3)
    quota.give_back("a")
    assert quota.take("c") is None
    assert (quota.open("a"), quota.open("c"), quota.open()) == (1, 1, 3)


def test_a_request_listing_too_much_is_refused_before_it_is_looked_at() -> None:
    limits = ServerLimits(max_list_entries=2)
    assert request_problem(["M:OUTTMP", "x" * MAX_DRF_LENGTH], "ReadingList", limits) is None
    many = request_problem([1, 2, 3], "AlarmTextIdList", limits)
    assert many is not None and "AlarmTextIdList has 3 entries" in many
    long = request_problem(["\x1b" * (MAX_DRF_LENGTH + 1)], "DeviceList", limits)
    assert long is not None and "entry 0 of the DeviceList" in long and "\x1b" not in long


def test_giving_back_a_slot_never_taken_is_a_bug_not_more_capacity() -> None:
    quota = StreamQuota(ServerLimits(max_streams_per_peer=1, max_streams=1))
    with pytest.raises(LookupError, match="holds no streams slot"):
        quota.give_back("a")
    assert quota.open() == 0 and quota.take("a") is None and quota.take("b") is not None


def test_a_503_answer_is_whole_http_with_the_reason_as_its_body() -> None:
    answer = unavailable("busy: 512 connections")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert body == b"busy: 512 connections\n" and b"Content-Length: 22" in head

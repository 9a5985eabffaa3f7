"""A supervised call as the policies see it, their verdict, and how the verdicts combine.

Each call becomes a :class:`RequestContext` and goes through :func:`decide`
(the rules are in :mod:`acnet_proto.proxy`). The context carries each DRF's
canonical :class:`~acnet_proto.proxy.targets.Target`, computed once when the
call arrives: policies decide on it, never on the DRF as written. Pure: time
is the context's ``now`` (the server's monotonic clock); index names are
resolved by the server's ``name_of``.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from acnet_proto import drf as _drf
from acnet_proto._text import shown
from acnet_proto.proxy.targets import NameOf, Target, targets_of

__all__ = [
    "POLICY_METADATA",
    "SERVER_RULES",
    "Policy",
    "PolicyDecision",
    "RequestContext",
    "cannot_judge",
    "decide",
    "evaluate_policies",
    "is_one_shot",
    "malformed",
]

_METHODS = ("Read", "Set")
_SECRET_METADATA = frozenset({"authorization"})
#: The trailing-metadata key of a denial: its value names the policy that refused. A
#: client recognises a policy's refusal by it (a bare ``PERMISSION_DENIED`` may be anything).
POLICY_METADATA = "acnet-proto-policy"
#: What a denial by the proxy's own rules (not a policy's) is named.
SERVER_RULES = "SupervisedServer"


def _device(ctx: RequestContext, slot: int) -> str:
    target = ctx.targets[slot]
    return shown(ctx.drfs[slot]) if target is None else target.device


@dataclass(frozen=True)
class RequestContext:
    """One call, as policies see it.

    ``drfs`` are the call's DRFs as sent (slots: policies never change or
    reorder them); ``rpc_method`` is ``"Read"`` or ``"Set"``; ``peer`` is
    grpc's name for the caller (``ipv4:127.0.0.1:53312``); ``metadata`` the
    call's metadata without ``authorization``; ``values`` the settings,
    ``(drf, value)`` aligned with ``drfs`` (empty for a ``Read``);
    ``raw_request`` the protobuf message; ``allowed`` the approved slot
    indices; ``now`` the server's monotonic clock, in seconds, when the call
    arrived. ``targets`` are the DRFs' canonical targets (of the setting, for
    a ``Set``), aligned with ``drfs``: None for a DRF that is not valid; left
    empty, they are computed without an index resolver. ``resolves_indices``
    says whether the server had a resolver (it words the refusal of an index
    it could not resolve).
    """

    drfs: list[str]
    rpc_method: str
    peer: str
    metadata: dict[str, str]
    values: list[tuple[str, Any]]
    raw_request: object = None
    allowed: frozenset[int] = frozenset()
    now: float = 0.0
    targets: tuple[Target | None, ...] = ()
    resolves_indices: bool = False

    def __post_init__(self) -> None:
        if len(self.targets) != len(self.drfs):
            computed = targets_of(self.drfs, write=self.rpc_method == "Set")
            object.__setattr__(self, "targets", computed)

    @classmethod
    def of_call(
        cls,
        rpc_method: str,
        drfs: Sequence[str],
        peer: str,
        metadata: Sequence[tuple[str, Any]] = (),
        values: Sequence[tuple[str, Any]] = (),
        raw_request: object = None,
        now: float = 0.0,
        *,
        name_of: NameOf | None = None,
    ) -> RequestContext:
        """The context of a call as it arrives: reads all approved, settings none;
        secrets (``authorization``) left out of ``metadata``; each DRF's target
        computed, its index name (``0:<di>``) resolved by ``name_of`` if given
        (see :data:`~acnet_proto.proxy.targets.NameOf`)."""
        if rpc_method not in _METHODS:
            raise ValueError(f"rpc_method must be one of {_METHODS}, got {rpc_method!r}")
        kept = {
            str(key): value if isinstance(value, str) else repr(value)
            for key, value in metadata
            if str(key).lower() not in _SECRET_METADATA
        }
        slots = frozenset(range(len(drfs))) if rpc_method == "Read" else frozenset()
        targets = targets_of(drfs, write=rpc_method == "Set", name_of=name_of)
        return cls(
            list(drfs),
            rpc_method,
            peer,
            kept,
            list(values),
            raw_request,
            slots,
            now,
            targets,
            name_of is not None,
        )


@dataclass(frozen=True)
class PolicyDecision:
    """A policy's verdict.

    Denied: ``reason`` says why (required); ``policy`` names who refused (a
    policy leaves it None: :func:`evaluate_policies` fills in its class name).
    Allowed: ``ctx`` is None, or the context the next policy should see
    (approved slots, changed values).
    """

    allowed: bool
    reason: str | None = None
    ctx: RequestContext | None = None
    policy: str | None = None

    def __post_init__(self) -> None:
        if not self.allowed and not self.reason:
            raise ValueError("a PolicyDecision that denies must say why (reason=...)")


#: The verdict that lets a call through.
ALLOW = PolicyDecision(True)


def deny(reason: str, policy: str | None = None) -> PolicyDecision:
    """A denial, saying why (and, if given, naming who refused)."""
    return PolicyDecision(False, reason, policy=policy)


class Policy(abc.ABC):
    """A check every call goes through: implement :meth:`check`."""

    @property
    def allows_writes(self) -> bool:
        """True if this policy can approve settings (it decides the wording of a denial)."""
        return False

    @abc.abstractmethod
    def check(self, ctx: RequestContext) -> PolicyDecision:
        """Allow (perhaps with a new context) or deny ``ctx``; record nothing that only
        an allowed call may change (that is :meth:`commit`'s)."""

    def commit(self, ctx: RequestContext) -> None:
        """Record what the call ``ctx`` changes, now that :func:`decide` allowed it (every
        policy did, and every setting is approved); ``ctx`` is the final context. Called
        only then, so a call refused by a later policy or rule changes nothing here.
        Default: nothing."""
        return None  # most policies keep no state a call changes


def malformed(drfs: Sequence[str], rpc_method: str) -> str | None:
    """Why the call's DRFs cannot be checked (None if they can): the first that is empty,
    padded, not printable ASCII, does not parse, or (for a ``Set``) cannot be written."""
    for index, drf in enumerate(drfs):
        if not drf or drf != drf.strip() or not (drf.isascii() and drf.isprintable()):
            return f"DRF {index} ({shown(drf)}) is empty, padded or not printable ASCII"
        try:
            _drf.parse(drf)
            if rpc_method == "Set":
                _drf.to_write_drf(drf)
        except _drf.DRFError as e:
            return f"DRF {index} ({shown(drf)}) is not valid: {e.problem}"
    return None


def is_one_shot(drfs: Sequence[str]) -> bool:
    """True if every DRF is read once (``@I``): the call is one batch read, not a stream."""
    return all(isinstance(_drf.parse(d).event, _drf.ImmediateEvent) for d in drfs)


def cannot_judge(ctx: RequestContext) -> str | None:
    """Why no policy can judge ``ctx`` (None if one can): the first DRF with no target
    (not valid), or whose device is named by an index the server could not resolve."""
    for drf, target in zip(ctx.drfs, ctx.targets):
        if target is None:
            return malformed([drf], ctx.rpc_method) or f"DRF {shown(drf)} has no target"
        if target.resolved:
            continue
        if not ctx.resolves_indices:
            return (
                f"{shown(drf)} names its device by index, and this server has no resolver "
                "for index names; policies match device names: use the device's name "
                "(or give the server a name_of resolver)"
            )
        return (
            f"{shown(drf)} names its device by index, and the server's resolver does not "
            "know it; policies match device names: use the device's name"
        )
    return None


def _check_context(policy: Policy, ctx: RequestContext, original: RequestContext) -> None:
    name = type(policy).__name__
    drfs, method = original.drfs, original.rpc_method
    if ctx.drfs != drfs or ctx.rpc_method != method or ctx.targets != original.targets:
        raise ValueError(f"{name} changed the request's DRFs or method; policies may not")
    if not ctx.allowed <= frozenset(range(len(drfs))):
        raise ValueError(f"{name} approved a slot the request does not have")
    if [d for d, _ in ctx.values] != (drfs if method == "Set" else []):
        raise ValueError(f"{name} changed which settings the request makes; policies may not")


def evaluate_policies(policies: Sequence[Policy], ctx: RequestContext) -> PolicyDecision:
    """Run ``policies`` in order; the first denial is the verdict (the rest do not run).

    Each policy sees the context the previous one allowed with. An allowing
    verdict carries the final context; a denial names the policy that made it
    (its class name, unless it named itself). A policy that changes the DRFs,
    the method or which settings are made raises ValueError (a bug in it).
    Nothing is committed (:meth:`Policy.commit`): that is :func:`decide`'s.
    """
    current = ctx
    for policy in policies:
        decision = policy.check(current)
        if not decision.allowed:
            return replace(decision, policy=decision.policy or type(policy).__name__)
        if decision.ctx is not None:
            _check_context(policy, decision.ctx, ctx)
            current = decision.ctx
    return PolicyDecision(True, ctx=current)


def decide(policies: Sequence[Policy], ctx: RequestContext) -> PolicyDecision:
    """The proxy's verdict on ``ctx`` (see the module docstring); give it DRFs that
    :func:`malformed` accepts. If it allows the call, each policy then commits it
    (:meth:`Policy.commit`, in order), so a slew history moves only with calls that
    are let through."""
    if policies:
        why = cannot_judge(ctx)
        if why is not None:
            return deny(why, SERVER_RULES)
    decision = evaluate_policies(policies, ctx)
    if not decision.allowed:
        return decision
    assert decision.ctx is not None
    unapproved = [i for i in range(len(ctx.drfs)) if i not in decision.ctx.allowed]
    if not unapproved:
        for policy in policies:
            policy.commit(decision.ctx)
        return decision
    names = ", ".join(dict.fromkeys(_device(ctx, i) for i in unapproved))
    if ctx.rpc_method == "Read":
        return deny(f"Read denied by policy: {names}", SERVER_RULES)
    approvers = ", ".join(dict.fromkeys(type(p).__name__ for p in policies if p.allows_writes))
    if not approvers:
        return deny("No policy explicitly allows write operations", SERVER_RULES)
    # the policies that approve writes are the ones that did not approve these
    return deny(f"No write policy approves: {names}", approvers)

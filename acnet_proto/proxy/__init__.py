"""The supervised proxy's pure half: which requests it lets through, and what it records.

The supervised server (:mod:`acnet_proto.adapters.proxy.supervised`) serves the
DAQ gRPC service in front of any backend. Each call becomes a
:class:`RequestContext` carrying each DRF's canonical :class:`Target`
(:mod:`~acnet_proto.proxy.targets`): the device by its name, the property
(a setting's: the property it is written to), the field with its default
filled in, and the element range. Every policy decides on targets, never on
the DRF as written, so ``Z:ACLTST``, ``z_acltst``, ``Z:ACLTST[0]``,
``Z:ACLTST.SETTING.SCALED`` and ``Z:ACLTST.SETTING[:]`` are one setting of
Z:ACLTST's element 0; range and slew limits apply element by element. An
index name (``0:<di>``) is resolved by the server's ``name_of`` resolver
(``RequestContext.of_call(..., name_of=...)``). The context goes through
:func:`decide`:

1. with any policy configured, a DRF whose device is named by an index the
   server cannot resolve (it has no resolver, or its resolver does not know
   the index) is refused (:func:`cannot_judge`): policies match names, and
   an index could name anything; the refusal says to use the device's name;
2. the policies run in order (:func:`evaluate_policies`); the first denial
   ends the chain, and each policy sees the context the one before it
   returned (a policy may change values and approve slots, never the DRFs);
3. every DRF (slot) must then be approved: a ``Read`` starts with all of
   them approved (policies may only deny), a ``Set`` with none, so a write
   needs a policy that approves it, such as
   ``DeviceAccessPolicy(["Z:*"], mode="allow", action="set")``.

A denial names who refused (:attr:`PolicyDecision.policy`): the denying
policy's class; for a setting left unapproved (rule 3), the classes of the
policies that approve writes; else (rule 1, a read a policy withdrew, no
policy that approves writes) :data:`SERVER_RULES`. The server sends that
name as the :data:`POLICY_METADATA` trailing metadata of its
``PERMISSION_DENIED``, so that clients raise
:class:`~acnet_proto.errors.PolicyDenied` naming it.

The modules: :mod:`~acnet_proto.proxy.targets` (the canonical target of a
DRF), :mod:`~acnet_proto.proxy.decision` (the context, the verdict,
:func:`decide`), :mod:`~acnet_proto.proxy.policies` (the policies, with the
seeds' names and semantics), :mod:`~acnet_proto.proxy.audit` (the audit
log's records) and :mod:`~acnet_proto.proxy.budget` (how many refused calls
it writes).
"""

from acnet_proto.proxy.audit import audit_entry, json_value, proto_record, reply_entry
from acnet_proto.proxy.decision import (
    POLICY_METADATA,
    SERVER_RULES,
    Policy,
    PolicyDecision,
    RequestContext,
    cannot_judge,
    decide,
    evaluate_policies,
    is_one_shot,
    malformed,
)
from acnet_proto.proxy.policies import (
    DeviceAccessPolicy,
    RateLimitPolicy,
    ReadOnlyPolicy,
    SlewLimit,
    SlewRatePolicy,
    ValueRangePolicy,
)
from acnet_proto.proxy.targets import NameOf, Target, device_name, target_of, targets_of

__all__ = [
    "POLICY_METADATA",
    "SERVER_RULES",
    "DeviceAccessPolicy",
    "NameOf",
    "Policy",
    "PolicyDecision",
    "RateLimitPolicy",
    "ReadOnlyPolicy",
    "RequestContext",
    "SlewLimit",
    "SlewRatePolicy",
    "Target",
    "ValueRangePolicy",
    "audit_entry",
    "cannot_judge",
    "decide",
    "device_name",
    "evaluate_policies",
    "is_one_shot",
    "json_value",
    "malformed",
    "proto_record",
    "reply_entry",
    "target_of",
    "targets_of",
]

"""Settings on DPM/TCP, kept pure: authentication steps and the write list.

The flow (spec §2 "Settings"): ask the service name with an empty
``Authenticate``, step a GSS context with the server until it is complete,
prove it with ``EnableSettings`` carrying a MIC, then build a list of
settings (``#ROLE:<role>`` on ref 0, one ``@N`` entry per setting), start
it, and ``ApplySettings``. Kerberos itself lives in an adapter: this module
talks to it through :class:`GSSContext`, so the core imports no gssapi.

Plans here follow the shape of :class:`~acnet_proto.plans.lists.ListPlan`:
``commands(list_id)`` to begin, ``feed(event)`` for each engine event, and
``take_commands()`` for what to send next.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, cast

import numpy as np

from acnet_proto import drf as _drf
from acnet_proto.engine.events import ConnectionEvent
from acnet_proto.errors import AuthenticationError, ConfigurationError, SettingOutcomeUnknown
from acnet_proto.pc import dpm
from acnet_proto.pc._message import Message
from acnet_proto.status import Status
from acnet_proto.types import WriteResult

__all__ = [
    "ENABLE_MESSAGE",
    "AuthFlow",
    "GSSContext",
    "WriteBatch",
    "WritePlan",
    "WriteSequence",
    "dpm_write_batch",
    "expand_alarm_dict",
    "list_value",
    "outcome_unknown",
    "service_principal",
    "setting_for",
]

# What EnableSettings signs. The server only checks that the MIC matches it.
ENABLE_MESSAGE = b"1234"
_UNANSWERED = Status.from_name("ACNET_RETRY")


class GSSContext(Protocol):
    """The initiator side of a GSS-API context, as the settings flow needs it."""

    @property
    def complete(self) -> bool: ...

    @property
    def initiator(self) -> str:
        """The client principal, e.g. ``operator@FNAL.GOV``."""
        ...

    def step(self, token: bytes | None) -> bytes | None:
        """Consume the server's token (None at first); return the next one to send."""
        ...

    def get_mic(self, message: bytes) -> bytes: ...


def service_principal(announced: str | None, realm: str = "FNAL.GOV") -> str:
    """The Kerberos principal for the service name a DPM server announces.

    Servers announce a Java GSS name such as ``daeset/bd@dpm01.fnal.gov``;
    clients map ``@`` to ``/``, drop ``\\`` and append the realm:
    ``daeset/bd/dpm01.fnal.gov@FNAL.GOV``. A bare ``daeset/bd`` becomes
    ``daeset/bd@FNAL.GOV``.
    """
    if not isinstance(announced, str) or not announced.strip():
        raise AuthenticationError(f"the server announced no usable service name: {announced!r}")
    return announced.replace("\\", "").replace("@", "/") + "@" + realm


class AuthFlow:
    """Authenticate a DPM list and enable settings on it.

    ``make_context(principal)`` returns a fresh :class:`GSSContext` aimed at
    the service principal. :attr:`done` turns True when the server accepted
    ``EnableSettings``; a refusal raises :class:`AuthenticationError`.
    """

    def __init__(self, make_context: Callable[[str], GSSContext], realm: str = "FNAL.GOV") -> None:
        self.make_context = make_context
        self.realm = realm
        self.context: GSSContext | None = None
        self.done = False
        self._list_id = 0
        self._outbox: list[Message] = []
        self._enable_after_reply = False

    def commands(self, list_id: int) -> list[Message]:
        """The opening move: an empty ``Authenticate`` asks for the service name."""
        self._list_id = list_id
        return [dpm.AuthenticateRequest(list_id=list_id, token=b"")]

    def take_commands(self) -> list[Message]:
        out, self._outbox = self._outbox, []
        return out

    def teardown(self, list_id: int) -> list[Message]:
        """Nothing: the list stays as it is; the next plan empties it first."""
        return []

    def feed(self, event: ConnectionEvent) -> list[Any]:
        # `kind is` does not narrow `event` for mypy, hence the casts
        kind = type(event)
        if kind is dpm.AuthenticateReply:
            self._on_reply(cast(dpm.AuthenticateReply, event))
        elif kind is dpm.StatusReply:
            reply = cast(dpm.StatusReply, event)
            if reply.ref_id == 0 and self.context is not None:
                if reply.status != 0:
                    raise AuthenticationError(
                        f"the server refused to enable settings: {Status.from_int(reply.status)}"
                    )
                self.done = True
        return []

    def _on_reply(self, reply: dpm.AuthenticateReply) -> None:
        if self.context is None:
            self.context = self.make_context(service_principal(reply.service_name, self.realm))
            token = self.context.step(None)
        elif self._enable_after_reply:
            self._enable_after_reply = False
            self._enable()
            return
        else:
            token = self.context.step(reply.token or b"")
        if token:
            self._outbox.append(dpm.AuthenticateRequest(list_id=self._list_id, token=token))
            # a context complete on our side still owes the server this last token
            self._enable_after_reply = self.context.complete
        elif self.context.complete:
            self._enable()
        else:
            raise AuthenticationError("the GSS context stalled: no token to send and not complete")

    def _enable(self) -> None:
        assert self.context is not None
        mic = self.context.get_mic(ENABLE_MESSAGE)
        self._outbox.append(
            dpm.EnableSettingsRequest(list_id=self._list_id, mic=mic, message=ENABLE_MESSAGE)
        )


def _number(drf: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"cannot write {type(value).__name__} {value!r} to {drf}: expected a number, "
            "a str, bytes, or a list/array of numbers"
        )
    number = float(value)
    if not math.isfinite(number):
        raise ConfigurationError(f"cannot write {value!r} to {drf}: the value must be finite")
    return number


def list_value(drf: str, value: Any) -> list[Any] | None:
    """``value`` as a list if it is a list, tuple or 1-D array; None if it is none of these.

    An array of more dimensions is a TypeError, and an empty one a
    ValueError, naming ``drf``: every protocol writes arrays as 1-D lists.
    """
    if isinstance(value, np.ndarray):
        if value.ndim != 1:
            raise TypeError(f"cannot write a {value.ndim}-D array to {drf}: arrays must be 1-D")
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        return None
    if not value:
        raise ValueError(f"cannot write an empty list to {drf}")
    return list(value)


def setting_for(drf: str, ref_id: int, value: Any) -> tuple[str, Message]:
    """The setting struct for ``value``: ``("raw"|"scaled"|"text", struct)``.

    bytes → RawSetting; str or a list of str → TextSetting; a number, a
    list/tuple/1-D array of numbers, a bool or a BasicControl → ScaledSetting.
    Anything else is a TypeError naming ``drf`` and the value.
    """
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "raw", dpm.RawSetting(ref_id=ref_id, data=bytes(value))
    if isinstance(value, str):
        return "text", dpm.TextSetting(ref_id=ref_id, data=[value])
    if isinstance(value, bool):
        return "scaled", dpm.ScaledSetting(ref_id=ref_id, data=[float(value)])
    if isinstance(value, dict):
        raise TypeError(
            f"cannot write a dict to {drf} in a batch: dicts are alarm writes, "
            "give them to write() one device at a time"
        )
    items = list_value(drf, value)
    if items is not None:
        if all(isinstance(v, str) for v in items):
            return "text", dpm.TextSetting(ref_id=ref_id, data=items)
        return "scaled", dpm.ScaledSetting(ref_id=ref_id, data=[_number(drf, v) for v in items])
    return "scaled", dpm.ScaledSetting(ref_id=ref_id, data=[_number(drf, value)])


class WriteBatch:
    """Several settings sent in one ``ApplySettings``, on a list of their own.

    ``settings`` is a list of ``(drf, value)``; DRFs are converted for
    writing (READING→SETTING, STATUS→CONTROL, event ``@N``) and values to
    setting structs now, so bad input raises before anything is sent.
    ``role`` goes on ref 0 as ``#ROLE:<role>``.
    """

    def __init__(
        self, settings: Sequence[tuple[Any, Any]], role: str | None, user_name: str
    ) -> None:
        if isinstance(settings, (str, bytes, dict)) or not isinstance(settings, Sequence):
            raise TypeError(
                f"settings must be a list of (drf, value) pairs, not {type(settings).__name__}"
            )
        if not settings:
            raise ValueError("settings is empty: give at least one (drf, value) pair")
        self.drfs: list[str] = []
        self.wire: list[str] = []
        self.structs: list[tuple[str, Message]] = []
        for ref, pair in enumerate(settings, 1):
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise TypeError(f"setting {ref} must be a (drf, value) pair, got {pair!r}")
            name, value = pair
            name = name.to_drf() if isinstance(name, _drf.DataRequest) else name
            self.drfs.append(name)
            self.wire.append(_drf.to_write_drf(name))
            self.structs.append(setting_for(name, ref, value))
        self.role = role
        self.user_name = user_name
        self.results: list[WriteResult | None] = [None] * len(self.drfs)
        self.applied = False
        self._waiting = set(range(1, len(self.drfs) + 1))
        self._started = False
        self._outbox: list[Message] = []
        self._list_id = 0

    @property
    def done(self) -> bool:
        return all(r is not None for r in self.results)

    def commands(self, list_id: int) -> list[Message]:
        """Empty the list, then add the role and the settings and start it."""
        self._list_id = list_id
        out: list[Message] = [
            dpm.StopListRequest(list_id=list_id),
            dpm.ClearListRequest(list_id=list_id),
        ]
        if self.role:
            role = f"#ROLE:{self.role}"
            out.append(dpm.AddToListRequest(list_id=list_id, ref_id=0, drf_request=role))
        out += [
            dpm.AddToListRequest(list_id=list_id, ref_id=ref, drf_request=wire)
            for ref, wire in enumerate(self.wire, 1)
        ]
        out.append(dpm.StartListRequest(list_id=list_id))
        return out

    def take_commands(self) -> list[Message]:
        out, self._outbox = self._outbox, []
        return out

    def teardown(self, list_id: int) -> list[Message]:
        """Nothing: the list stays as it is; the next plan empties it first."""
        return []

    def feed(self, event: ConnectionEvent) -> list[Any]:
        # `kind is` does not narrow `event` for mypy, hence the casts
        kind = type(event)
        if kind is dpm.AddToListReply:
            added = cast(dpm.AddToListReply, event)
            self._on_added(added.ref_id, added.status)
        elif kind is dpm.StartListReply:
            self._started = True
        elif kind is dpm.ApplySettingsReply:
            self._on_applied(cast(dpm.ApplySettingsReply, event).status)
            return []
        if self._started and not self._waiting and not self.applied:
            self._apply()
        return []

    def _on_added(self, ref: int, status: int) -> None:
        if ref == 0:
            if status != 0:
                raise AuthenticationError(
                    f"the server refused role {self.role!r}: {Status.from_int(status)}"
                )
            return
        self._waiting.discard(ref)
        if status != 0 and 1 <= ref <= len(self.results):
            # a warning here is DPM_PEND, the lab's answer for a device it cannot find
            warned = not Status.from_int(status).is_error
            note = "nothing was set; check the device name" if warned else ""
            self.results[ref - 1] = _result(self.drfs[ref - 1], status, note)

    def _apply(self) -> None:
        self.applied = True
        arrays: dict[str, list[Message]] = {"raw": [], "scaled": [], "text": []}
        for index, (kind, struct) in enumerate(self.structs):
            if self.results[index] is None:
                arrays[kind].append(struct)
        if not any(arrays.values()):
            return  # every entry failed at AddToList: nothing to apply
        # setting_for filed each struct under its kind, so each list holds that kind's class
        self._outbox.append(
            dpm.ApplySettingsRequest(
                user_name=self.user_name,
                list_id=self._list_id,
                raw_array=cast(list[dpm.RawSetting], arrays["raw"]) or None,
                scaled_array=cast(list[dpm.ScaledSetting], arrays["scaled"]) or None,
                text_array=cast(list[dpm.TextSetting], arrays["text"]) or None,
            )
        )

    def _on_applied(self, statuses: Sequence[dpm.SettingStatus]) -> None:
        for entry in statuses:
            index = entry.ref_id - 1
            if 0 <= index < len(self.results) and self.results[index] is None:
                self.results[index] = _result(self.drfs[index], entry.status)
        for index, result in enumerate(self.results):
            if result is None:  # the server did not mention it: do not claim success
                self.results[index] = _result(
                    self.drfs[index], _UNANSWERED.status, "the reply gave no status for it"
                )

    def write_results(self) -> list[WriteResult]:
        """The results in input order (only once :attr:`done`)."""
        if not self.done:
            raise RuntimeError("the settings have not all been answered yet")
        return [r for r in self.results if r is not None]


def _result(drf: str, status: int, note: str = "") -> WriteResult:
    parts = Status.from_int(status)
    message = None if status == 0 else f"{parts}{': ' + note if note else ''}"
    return WriteResult(drf, parts.facility, parts.error, message)


class WritePlan:
    """Settings on one connection: authenticate first if the list is not enabled yet.

    Runs an :class:`AuthFlow` (unless ``enabled``) and then ``batch``, as one
    plan an adapter drives like any other. :attr:`applied` turns True when
    the ``ApplySettings`` is handed over for sending: from then on a broken
    connection means the outcome is unknown.
    """

    def __init__(
        self,
        batch: WriteBatch,
        make_context: Callable[[str], GSSContext],
        enabled: bool,
        realm: str = "FNAL.GOV",
    ) -> None:
        self.batch = batch
        self.auth = None if enabled else AuthFlow(make_context, realm)
        self._list_id = 0
        self._outbox: list[Message] = []

    @property
    def done(self) -> bool:
        return self.batch.done

    @property
    def applied(self) -> bool:
        return self.batch.applied

    def commands(self, list_id: int) -> list[Message]:
        self._list_id = list_id
        if self.auth is not None:
            return self.auth.commands(list_id)
        return self.batch.commands(list_id)

    def feed(self, event: ConnectionEvent) -> list[Any]:
        auth = self.auth
        if auth is not None and not auth.done:
            auth.feed(event)
            self._outbox += auth.take_commands()
            # feed() may have set it, but mypy keeps `not auth.done` from the test above
            if cast(bool, auth.done):
                self._outbox += self.batch.commands(self._list_id)
            return []
        self.batch.feed(event)
        self._outbox += self.batch.take_commands()
        return []

    def take_commands(self) -> list[Message]:
        out, self._outbox = self._outbox, []
        return out

    def teardown(self, list_id: int) -> list[Message]:
        return []


_ALARM_KEYS: dict[_drf.Property, dict[str, _drf.Field]] = {
    _drf.Property.ANALOG: {
        "minimum": _drf.Field.MIN,
        "maximum": _drf.Field.MAX,
        "alarm_enable": _drf.Field.ALARM_ENABLE,
        "abort_inhibit": _drf.Field.ABORT_INHIBIT,
        "tries_needed": _drf.Field.TRIES_NEEDED,
    },
    _drf.Property.DIGITAL: {
        "nominal": _drf.Field.NOM,
        "mask": _drf.Field.MASK,
        "alarm_enable": _drf.Field.ALARM_ENABLE,
        "abort_inhibit": _drf.Field.ABORT_INHIBIT,
        "tries_needed": _drf.Field.TRIES_NEEDED,
    },
}


def expand_alarm_dict(drf: str, values: dict[str, Any]) -> list[tuple[str, Any]]:
    """A dict alarm write as the per-field settings it stands for, in key order.

    ``Z@ACLTST`` with ``{"minimum": 40.0, "alarm_enable": True}`` becomes
    ``[("Z:ACLTST.ANALOG.MIN", 40.0), ("Z:ACLTST.ANALOG.ALARM_ENABLE", 1)]``.
    The fields share one hardware block, so callers apply them one at a
    time. Booleans become 0/1. Unknown keys, or a dict for a property that is
    not an alarm, raise ValueError saying what is allowed.
    """
    request = _drf.parse(drf)
    prop = request.property
    if prop in (_drf.Property.STATUS, _drf.Property.CONTROL):
        raise ValueError(
            f"Cannot write dict to {prop.name} property ({drf}): control commands are "
            f'single values; use BasicControl, e.g. write("{drf}", BasicControl.ON)'
        )
    keys = _ALARM_KEYS.get(prop)
    if keys is None:
        raise ValueError(
            f"Cannot write dict to {prop.name} property ({drf}): a dict is an alarm write, "
            "for an ANALOG (Z@NAME) or DIGITAL (Z$NAME) property"
        )
    if request.field is not None:
        raise ValueError(f"cannot write a dict to a single alarm field ({drf}); give the value")
    if not values:
        raise ValueError(f"the alarm dict for {drf} is empty; allowed keys: {sorted(keys)}")
    unknown = sorted(set(values) - set(keys))
    if unknown:
        raise ValueError(
            f"unknown {prop.name.lower()} alarm key(s) {unknown} for {drf}; allowed: {sorted(keys)}"
        )
    out = []
    for key, value in values.items():
        field_request = _drf.DataRequest(request.device, prop, request.range, keys[key])
        out.append((field_request.to_drf(), int(value) if isinstance(value, bool) else value))
    return out


class WriteSequence:
    """The settings one ``write(drf, value)`` stands for, to apply one after another.

    A plain value is one step, ``(drf, value)``. A dict is an alarm write
    (:func:`expand_alarm_dict`, which checks it now): one step per field, as
    the fields share one hardware block and would overwrite each other in one
    batch. Iterating stops after a step that failed, so the fields after it
    are left alone; the fields before it stay set. An adapter drives it::

        sequence = WriteSequence(drf, value)
        for step in sequence:
            sequence.record(backend.write_many([step], timeout)[0])
        return sequence.result
    """

    def __init__(self, drf: str | _drf.DataRequest, value: Any) -> None:
        self.drf = drf.to_drf() if isinstance(drf, _drf.DataRequest) else drf
        self._alarm = isinstance(value, dict)
        self.steps: list[tuple[Any, Any]] = (
            expand_alarm_dict(self.drf, value) if self._alarm else [(drf, value)]
        )
        self.results: list[WriteResult] = []

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        for index, step in enumerate(self.steps):
            if len(self.results) != index:
                raise RuntimeError("record() each step's result before taking the next step")
            if index and not self.results[-1].ok:
                return
            yield step

    def record(self, result: WriteResult) -> None:
        """The result of the step just taken."""
        self.results.append(result)

    @property
    def result(self) -> WriteResult:
        """One result for the whole write: a dict write's first failure (naming the field), else
        success under the DRF given."""
        if not self.results:
            raise RuntimeError("no step has been recorded yet")
        if not self._alarm:
            return self.results[0]
        failed = self.results[-1]
        if failed.ok:
            return WriteResult(self.drf)
        field = self.steps[len(self.results) - 1][0]
        return WriteResult(
            self.drf, failed.facility_code, failed.error_code, f"{field}: {failed.message}"
        )


def outcome_unknown(plan: WritePlan | None, exc: BaseException) -> SettingOutcomeUnknown | None:
    """What to raise instead of ``exc``, which broke ``plan``: None to let ``exc`` through.

    Once the ``ApplySettings`` left (:attr:`WritePlan.applied`) a failure
    means the settings may or may not have taken effect:
    :class:`SettingOutcomeUnknown`, and the caller must not send them again.
    Before that, or for an :class:`AuthenticationError`, nothing was set and
    ``exc`` stands.
    """
    if plan is None or not plan.applied or isinstance(exc, AuthenticationError):
        return None
    return SettingOutcomeUnknown(plan.batch.drfs, str(exc) or type(exc).__name__)


def dpm_write_batch(settings: Sequence[tuple[Any, Any]], auth: Any, role: str | None) -> WriteBatch:
    """The :class:`WriteBatch` for a DPM/TCP ``write_many``, after the seeds' checks.

    Bad DRFs and values fail first (ValueError/TypeError), then missing
    credentials: no ``auth`` → :class:`AuthenticationError` saying to pass
    ``KerberosAuth()``; an ``auth`` that cannot make GSS contexts (a JWT) or
    no ``role`` → :class:`AuthenticationError` saying what DPM needs.
    """
    batch = WriteBatch(settings, role, user_name="")
    if auth is None:
        raise AuthenticationError(
            "this backend is not configured for authenticated settings: "
            "pass auth=KerberosAuth() (after kinit) and role=... when creating it"
        )
    if not callable(getattr(auth, "context", None)):
        raise AuthenticationError(
            f"DPM settings need Kerberos (KerberosAuth), not {type(auth).__name__}; "
            "JWT tokens are for the gRPC backend"
        )
    if not role:
        raise AuthenticationError("Role required: pass role=... (e.g. role='testing') for settings")
    batch.user_name = auth.principal
    return batch

"""Hypothesis strategies that build valid messages of any catalogue type."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from acnet_proto.pc._message import Message
from acnet_proto.pc._schema import INT_RANGES
from acnet_proto.pc.sdd import Codec

_MAX_ITEMS = 12


def value_strategy(codec: Codec, type_name: str) -> st.SearchStrategy[Any]:
    if type_name in INT_RANGES:
        lo, hi = INT_RANGES[type_name]
        return st.integers(lo, hi)
    if type_name == "double":
        return st.floats(allow_nan=True, allow_infinity=True)
    if type_name == "bool":
        return st.booleans()
    if type_name == "string":
        return st.text(max_size=40)
    if type_name == "binary":
        return st.binary(max_size=40)
    if type_name in codec.enums:
        return st.sampled_from(list(codec.enums[type_name]))
    if type_name == "array<double>":
        doubles = st.lists(st.floats(), max_size=_MAX_ITEMS)
        return st.one_of(doubles, doubles.map(lambda xs: np.array(xs, dtype=np.float64)))
    if type_name.startswith("array<"):
        return st.lists(value_strategy(codec, type_name[6:-1]), max_size=_MAX_ITEMS)
    return message_strategy(codec, codec.classes[type_name])


def message_strategy(codec: Codec, cls: type[Message]) -> st.SearchStrategy[Message]:
    fields = {}
    for f in cls.schema.fields:
        value = value_strategy(codec, f.type)
        fields[f.attr] = st.one_of(st.none(), value) if f.optional else value
    return st.fixed_dictionaries(fields).map(lambda kw: cls(**kw))


def any_message(codec: Codec, kind: str | None = None) -> st.SearchStrategy[Message]:
    classes = [
        c
        for c in codec.classes.values()
        if c.schema.message_id is not None and (kind is None or c.schema.kind == kind)
    ]
    return st.sampled_from(classes).flatmap(lambda c: message_strategy(codec, c))

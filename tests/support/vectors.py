"""Load the shared golden vectors and convert their JSON field values to and from messages.

``SHARED`` is ``tests/shared``: a copy of the project's shared wire facts
(vectors, transcripts, spec) so a clone tests on its own; ``ACNET_SHARED``
points elsewhere, and tests/test_shared_copy.py checks the copy against
``../shared`` when that exists.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from acnet_proto.pc._message import Message
from acnet_proto.pc.sdd import Codec
from tests.support import ROOT

SHARED = Path(os.environ.get("ACNET_SHARED", ROOT / "tests" / "shared"))


def load_vectors(protocol: str) -> list[dict[str, Any]]:
    return json.loads((SHARED / "vectors" / f"{protocol}.json").read_text())["vectors"]


def from_json(codec: Codec, type_name: str, value: Any) -> Any:
    """A vector's JSON value as the Python value the encoder takes."""
    if type_name.startswith("array<"):
        return [from_json(codec, type_name[6:-1], v) for v in value]
    if type_name in codec.classes:
        cls = codec.classes[type_name]
        return message_from_json(codec, cls, value)
    if type_name == "binary":
        return bytes.fromhex(value["hex"])
    if type_name == "double":
        return float(value["float"]) if isinstance(value, dict) else float(value)
    if type_name in codec.enums:
        return codec.enums[type_name](value)
    return value


def message_from_json(codec: Codec, cls: type[Message], fields: dict[str, Any]) -> Message:
    kwargs = {
        f.attr: from_json(codec, f.type, fields[f.name])
        for f in cls.schema.fields
        if f.name in fields
    }
    return cls(**kwargs)


def to_json(value: Any) -> Any:
    """A decoded value in the vectors' JSON form."""
    if isinstance(value, Message):
        return {f.name: to_json(v) for f, v in zip(value.schema.fields, value) if v is not None}
    if isinstance(value, np.ndarray | tuple | list):
        return [to_json(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    if isinstance(value, float) and math.isinf(value):
        return {"float": "inf" if value > 0 else "-inf"}
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    return value

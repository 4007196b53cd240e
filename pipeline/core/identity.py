"""An output's identity: a short fingerprint of everything that shaped its bytes besides its date.

The fingerprint is a sha256 of the canonical JSON of the settings (sorted keys,
floats in their shortest exact form, dates in ISO form) and of the fingerprints
of the outputs it was made from, so a changed setting changes the fingerprint of
its output and of everything downstream, and nothing else.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Mapping

CHARS = 12  # hex digits kept: 48 bits, ample for the few configurations a date ever sees


def _plain(value):
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"a setting of an output's identity must be plain data, not {type(value).__name__}: {value!r}")


def canonical(identity: Mapping) -> str:
    """The identity as canonical JSON text (what is hashed, and what ``settings.json`` shows)."""
    return json.dumps(_plain(identity), sort_keys=True, separators=(",", ":"), allow_nan=False)


def fingerprint(identity: Mapping) -> str:
    """The first ``CHARS`` hex digits of the sha256 of ``canonical(identity)``."""
    return hashlib.sha256(canonical(identity).encode()).hexdigest()[:CHARS]

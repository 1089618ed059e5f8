"""A script's optional section (``silence:``, ``voicemail:``): absent, or a mapping of known keys.

The section parsers check their values; this is the shape check they all begin with, so a
typo (``wait:`` for ``beep_wait_s:``) is an error naming the section, never an ignored key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def section(raw: Any, name: str, keys: frozenset[str]) -> Mapping[str, Any] | None:
    """`raw` as the ``name:`` section (None: absent). Raises ValueError naming the bad key."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ValueError(f"{name} must be a mapping, got {type(raw).__name__}")
    unknown = sorted(str(k) for k in raw if k not in keys)
    if unknown:
        raise ValueError(f"{name} has unknown keys {unknown} (known: {', '.join(sorted(keys))})")
    return raw

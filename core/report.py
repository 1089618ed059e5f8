"""A command-line tool's JSON report (benches, training reports): printed, and kept on request.

Readable Chinese (no ``\\u`` escapes), indented for people; the file holds the same text as
stdout, so a run piped to a log and its ``--out`` copy never differ.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def emit_json(result: Mapping[str, Any], out: str | Path | None, *, indent: int = 2) -> None:
    """Print `result` as JSON on stdout and, when `out` is given, write the same text there."""
    text = json.dumps(result, ensure_ascii=False, indent=indent)
    print(text)
    if out:
        Path(out).write_text(text + "\n", encoding="utf-8")

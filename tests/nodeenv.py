"""The environment of a node over fake engines (telephony, ASR, TTS, NLU) on a SQLite file:
what node tests start with, in-process (`load_config(env=...)`) or as `main.py run`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def fake_node_env(
    tmp_path: Path, db_file: Path | None = None, *, inherit: bool = False, **overrides: str
) -> dict[str, str]:
    """`CALLBOT__*` settings of a fake-engine node dialling at any hour; `overrides` are
    further variables by name. `inherit`: start from this process's environment (for a
    subprocess), less any CALLBOT__ variable of the caller's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLBOT__")} if inherit else {}
    env.update(
        {
            "DATABASE_URL": f"sqlite:///{db_file or tmp_path / 'node.db'}",
            "CALLBOT__TELEPHONY__ENGINE": "fake",
            "CALLBOT__SPEECH__ASR_ENGINE": "fake",
            "CALLBOT__SPEECH__TTS_ENGINE": "fake",
            "CALLBOT__SPEECH__VAD_CONFIRM": "false",
            "CALLBOT__SPEECH__PROMPT_CACHE_DIR": str(tmp_path / "cache"),
            "CALLBOT__REPORT__FOLDER": str(tmp_path / "reports"),  # never the repo's var/
            "CALLBOT__NLU__ENGINE": "fake",
            "CALLBOT__CALLFLOW__NO_INPUT_TIMEOUT_S": "0.05",
            "CALLBOT__CAMPAIGN__CALLING_HOURS": "00:00-24:00",
        }
    )
    env.update(overrides)
    return env


def start_node(env: dict[str, str]) -> subprocess.Popen[str]:
    """`main.py run` as a child process with `env` over this one's, its output captured."""
    return subprocess.Popen(
        [sys.executable, "main.py", "run"],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

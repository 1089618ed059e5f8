"""Script authors' commands: ``script check FILE`` and ``script versions NAME``.

The checks themselves are ``callflow.check`` (pure: a file in, problems out); this module
wires in what callflow may not import: the product's intents (``nlu.base``), the recorded
prompts' manifest (``speech.tts.recorded``) and the database of script versions.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from callflow.check import RecordingLookup, check_script
from nlu.base import INTENTS


def recording_lookup(folder: str | Path) -> RecordingLookup:
    """Whether a line has a recording in the manifest under `folder`, and which of its files
    are missing on disk. A line still holding a placeholder matches a template by its text."""
    from speech.tts.recorded import load_manifest

    manifest = load_manifest(folder)

    def lookup(text: str) -> tuple[bool, list[str]]:
        key = " ".join(text.split())
        if key in manifest.lines:
            files = [manifest.lines[key]]
        else:
            found = [
                t for t in manifest.templates if t.match(key) or " ".join(t.source.split()) == key
            ]
            if not found:
                return False, []
            files = [p.file for p in found[0].parts if p.file is not None]
        return True, [f.name for f in files if not f.is_file()]

    return lookup


def script_check_main(
    files: Iterable[Path],
    out: TextIO,
    *,
    recordings: Path | None = None,
    fields: Iterable[str] = (),
) -> int:
    """Print ``FILE:LINE: error|warning: message`` per problem; 1 when any is an error."""
    lookup = None
    if recordings is not None:
        from speech.tts.recorded import ManifestError

        try:
            lookup = recording_lookup(recordings)
        except (ManifestError, OSError) as exc:
            print(f"{recordings}: error: recordings manifest: {exc}", file=out)
            return 1
    errors = 0
    for file in files:
        problems = check_script(file, known_intents=INTENTS, fields=fields, recording_of=lookup)
        for problem in problems:
            print(problem.render(str(file)), file=out)
        errors += sum(p.level == "error" for p in problems)
    return 1 if errors else 0


def _check(args: argparse.Namespace) -> int:
    return script_check_main(args.files, sys.stdout, recordings=args.recordings)


def _chat(args: argparse.Namespace) -> int:
    from app.chat import chat_main
    from app.config import load_config

    return chat_main(load_config(args.config), args.script, args.lead, sys.stdin, sys.stdout)


def _versions(args: argparse.Namespace) -> int:
    from app.config import load_config
    from campaigns.scriptversions import versions_main
    from models import init_db

    cfg = load_config(args.config)
    name = args.name
    if name.endswith((".yaml", ".yml")) and Path(name).is_file():  # a file: its name:
        from core.yamlload import YamlLoadError, load_yaml

        try:
            data = load_yaml(name, what="script file")
        except YamlLoadError as exc:
            print(f"script versions: {exc}", file=sys.stderr)
            return 1
        name = str(data.get("name", name)) if isinstance(data, dict) else name
    return versions_main(init_db(cfg.database.url), name, sys.stdout)


def add_commands(sub: Any) -> None:
    """`script check|versions` and `chat` on main.py's sub-command parser."""
    sc = sub.add_parser("script", help="script authoring: check a script, list its versions")
    ssub = sc.add_subparsers(dest="script_cmd", required=True)
    ck = ssub.add_parser("check", help="every problem, FILE:LINE: error|warning: message")
    ck.add_argument("files", nargs="+", type=Path, metavar="FILE")
    ck.add_argument(
        "--recordings", type=Path, help="a recorded-prompt folder: is every line recorded?"
    )
    ck.set_defaults(func=_check)
    vs = ssub.add_parser("versions", help="the stored versions of a script (campaigns pin one)")
    vs.add_argument("name", help="the script's name: (or its file)")
    vs.set_defaults(func=_versions)
    ch = sub.add_parser("chat", help="try a script as the callee: one line per turn on stdin")
    ch.add_argument("--script", required=True, type=Path, help="the script YAML")
    ch.add_argument(
        "--lead", help="the lead: name=王伟,gender=男,company=…; a JSON object; or FILE.csv[:ROW]"
    )
    ch.set_defaults(func=_chat)

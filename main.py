"""callbot: the command line. Composition lives in ``app/`` (config, engine factories, the
``Runtime`` that starts and stops a node's engines, the node and the demo).

python main.py demo [--keep-db]        three real SIP calls to the local simulated callee
python main.py callee                  the simulated callee on its own (SIP on loopback)
python main.py run                     a production node: dial active campaigns, deliver the CRM
python main.py campaign import N CSV   import leads (UTF-8 or GBK) into campaign N
python main.py report daily            one day's dials, outcomes, CRM, cost and ROI (JSON or CSV)
python main.py nlu classify            stdin lines -> JSON lines with intent and confidence
python main.py nlu train [--distill]   train the intent model
python main.py nlu eval FILE.tsv       evaluate on a TSV of intent<TAB>text (or --heldout)
python main.py asr transcribe A.wav    one JSON line per file: text, rtf
python main.py asr adapt ...           fine-tune Whisper on (audio, text) pairs -> CT2 int8

Every command takes ``--config`` (default config.yaml) and ``-v`` (debug logging).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from app.config import ConfigError, load_config
from app.engines import EngineConfigError
from callflow.script import ScriptError
from models.db import DatabaseInUseError


def _nlu(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    from nlu import cli

    if args.nlu_cmd == "classify":
        from app.engines import make_nlu

        context = {"timezone": args.timezone or cfg.campaign.timezone}
        return cli.classify_stream(make_nlu(cfg), sys.stdin, sys.stdout, context) or 0
    if args.nlu_cmd == "train":
        if args.distill:
            return cli.train_main(args.out, distill=True, stage=args.stage, work_dir=args.work) or 0
        return cli.train_main(args.out or "build/nlu/linear") or 0
    if args.nlu_cmd == "eval":
        from app.engines import make_nlu

        path = args.file
        if args.heldout:
            path = Path("build/nlu/heldout.tsv")
            path.parent.mkdir(parents=True, exist_ok=True)
            cli.write_heldout_tsv(path)
        if path is None:
            print("nlu eval: give a TSV file or --heldout", file=sys.stderr)
            return 2
        cli.eval_main(make_nlu(cfg), path)
        return 0
    raise AssertionError(args.nlu_cmd)


def _demo(args: argparse.Namespace) -> int:
    from app.demo import run_demo

    cfg = load_config(args.config)
    return asyncio.run(run_demo(cfg, keep_db=args.keep_db))


def _until_interrupted(main: Coroutine[Any, Any, None]) -> int:
    try:
        asyncio.run(main)
    except KeyboardInterrupt:
        pass
    return 0


def _callee(args: argparse.Namespace) -> int:
    from app.demo import run_callee_forever

    return _until_interrupted(run_callee_forever(load_config(args.config)))


def _campaign_import(args: argparse.Namespace) -> int:
    from campaigns.importer import LeadImportError, import_leads
    from models import init_db

    cfg = load_config(args.config)
    db = init_db(cfg.database.url)
    try:
        rep = import_leads(
            db,
            args.name,
            args.csv,
            script=args.script or cfg.callflow.script,
            timezone=cfg.campaign.timezone,
            skip_invalid=args.skip_invalid,
        )
    except LeadImportError as exc:
        print(f"import failed, nothing stored:\n{exc}", file=sys.stderr)
        return 1
    print(
        f"campaign {rep.campaign_id}: imported {rep.imported}, duplicates {rep.duplicates}, "
        f"on do-not-call list {rep.on_dnc}, invalid rows skipped {len(rep.skipped_invalid)}"
    )
    for err in rep.skipped_invalid:
        print(f"  skipped {err}", file=sys.stderr)
    return 0


def _report_daily(args: argparse.Namespace) -> int:
    import json

    from campaigns.reports import ReportError, daily_report, parse_day, to_csv, yesterday
    from models import init_db

    cfg = load_config(args.config)
    tz = args.tz or cfg.campaign.timezone
    url = cfg.database.url
    try:
        day = yesterday(tz) if args.date is None else parse_day(args.date)
        path = url.removeprefix("sqlite:///")
        if url.startswith("sqlite:///") and path != ":memory:" and not Path(path).exists():
            raise ReportError(f"no database at {path} (DATABASE_URL or database.url)")
        rep = daily_report(init_db(url), day, tz=tz, campaign=args.campaign, cfg=cfg.report)
    except ReportError as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 2
    if args.format == "csv":
        sys.stdout.write(to_csv(rep))
    else:
        print(json.dumps(rep, ensure_ascii=False, indent=2))
    return 0


def _run(args: argparse.Namespace) -> int:
    """The node until SIGTERM or Ctrl-C: then it claims nothing more, lets live calls finish
    (``campaign.shutdown_grace_s``), hangs up the rest, stores every outcome and exits 0."""
    from app.node import run_node

    cfg = load_config(args.config)

    async def node() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_node(cfg, stop=stop)

    asyncio.run(node())
    return 0


def _asr_transcribe(args: argparse.Namespace) -> int:
    from app.engines import make_asr
    from speech.asr.cli import transcribe_files

    asr = make_asr(load_config(args.config))
    try:
        return transcribe_files(asr, args.files, sys.stdout, prompt=args.prompt)
    finally:
        asyncio.run(asr.aclose())


def _asr_adapt(args: argparse.Namespace) -> int:
    from speech.adapt.cli import run_from_args

    return run_from_args(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="main.py", description="Outbound AI sales-call robot")
    p.add_argument(
        "--config", default="config.yaml", help="YAML config file (default: %(default)s)"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="cmd", required=True)

    d = sub.add_parser("demo", help="run the 3-lead demo campaign against the simulated callee")
    d.add_argument(
        "--keep-db",
        action="store_true",
        help="keep var/demo.db from earlier runs instead of starting fresh",
    )
    d.set_defaults(func=_demo)

    c = sub.add_parser("callee", help="run the simulated callee (SIP UA on loopback)")
    c.set_defaults(func=_callee)

    r = sub.add_parser("run", help="run this node: dial active campaigns, deliver the CRM outbox")
    r.set_defaults(func=_run)

    camp = sub.add_parser("campaign", help="campaign management")
    csub = camp.add_subparsers(dest="campaign_cmd", required=True)
    ci = csub.add_parser("import", help="import leads from a CSV file (UTF-8 or GBK)")
    ci.add_argument("name", help="campaign name (created if new)")
    ci.add_argument("csv", type=Path)
    ci.add_argument("--script", help="script YAML (default: callflow.script from the config)")
    ci.add_argument("--skip-invalid", action="store_true", help="import valid rows, list the rest")
    ci.set_defaults(func=_campaign_import)

    rep = sub.add_parser("report", help="reports for sales operations (aggregates, no PII)")
    rsub = rep.add_subparsers(dest="report_cmd", required=True)
    rd = rsub.add_parser(
        "daily", help="one day per campaign and in total: dials, connects, outcomes, CRM, ROI"
    )
    rd.add_argument("--date", help="YYYY-MM-DD, a calendar day in --tz (default: yesterday)")
    rd.add_argument("--campaign", help="one campaign by name (default: all with calls that day)")
    rd.add_argument("--format", choices=["json", "csv"], default="json")
    rd.add_argument("--tz", help="timezone of the day (default: campaign.timezone)")
    rd.set_defaults(func=_report_daily)

    a = sub.add_parser("asr", help="speech recognition: transcribe files, adapt a model")
    asub = a.add_subparsers(dest="asr_cmd", required=True)
    ad = asub.add_parser("adapt", help="fine-tune Whisper on (audio, text) pairs -> CT2 int8")
    from speech.adapt.cli import add_arguments as add_adapt_arguments

    add_adapt_arguments(ad)
    ad.set_defaults(func=_asr_adapt)
    tr = asub.add_parser("transcribe", help="WAV files -> one JSON line each (file, text, rtf)")
    tr.add_argument("files", nargs="+", type=Path)
    tr.add_argument("--prompt", help="vocabulary hint for the recognizer (product names, ...)")
    tr.set_defaults(func=_asr_transcribe)

    n = sub.add_parser("nlu", help="intent model: classify, train, eval")
    nsub = n.add_subparsers(dest="nlu_cmd", required=True)
    cl = nsub.add_parser("classify", help="stdin: one utterance per line; stdout: JSON lines")
    cl.add_argument("--timezone", help="for callback times (default: campaign.timezone)")
    t = nsub.add_parser("train", help="train the intent model")
    t.add_argument("--out", help="output folder (default: build/nlu/linear; distilled: see docs)")
    t.add_argument(
        "--distill",
        action="store_true",
        help="teacher -> student -> int8 pipeline (needs requirements-train.txt)",
    )
    t.add_argument("--stage", default="all", choices=["teacher", "student", "ensemble", "all"])
    t.add_argument("--work", help="working folder for checkpoints (default: build/nlu)")
    e = nsub.add_parser("eval", help="evaluate on a TSV file of intent<TAB>text")
    e.add_argument("file", type=Path, nargs="?")
    e.add_argument("--heldout", action="store_true", help="evaluate on the real held-out split")
    n.set_defaults(func=_nlu)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except (ConfigError, EngineConfigError, ScriptError) as exc:  # one line, no traceback
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except DatabaseInUseError as exc:  # a second node on one SQLite file
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

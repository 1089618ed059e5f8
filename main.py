"""callbot: the command line. Composition lives in ``app/`` (config, engine factories, the
``Runtime`` that starts and stops a node's engines, the node and the demo).

python main.py demo [--keep-db]        three real SIP calls to the local simulated callee
python main.py callee                  the simulated callee on its own (SIP on loopback)
python main.py run [--node-id ID]      a production node: dial active campaigns, deliver the CRM
python main.py nodes [--json]          live nodes and their calls in progress (MQTT presence)
python main.py campaign import N FILE  import a lead list into campaign N (--map, --json)
python main.py campaign list|start|pause|resume|complete|status NAME   the lifecycle
python main.py dnc import|add|remove|list [--campaign NAME]   do-not-call lists
python main.py serve [--host H] [--port P] [--node]   the web console and API
python main.py user add NAME --role R  a console user (password: CALLBOT_PASSWORD or stdin)
python main.py report daily            one day's dials, outcomes, CRM, cost and ROI (JSON, CSV or
                                       --format html: one page with charts)
python main.py crm dead|replay         CRM dead letters: list them, re-queue (--id N | --all)
python main.py nlu classify            stdin lines -> JSON lines with intent and confidence
python main.py nlu train [--distill]   train the intent model
python main.py nlu eval FILE.tsv       evaluate on a TSV of intent<TAB>text (or --heldout)
python main.py asr transcribe A.wav    one JSON line per file: text, rtf
python main.py asr adapt ...           fine-tune Whisper on (audio, text) pairs -> CT2 int8
python main.py script check FILE       every problem of a script, FILE:LINE: error|warning: ...
python main.py script versions NAME    the stored versions of a script (campaigns pin one)
python main.py chat --script FILE      type as the callee: intent, slots, state, the reply

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
        return cli.classify_main(make_nlu(cfg), sys.stdin, sys.stdout, context)
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
    """`campaign import NAME FILE`: the report as text (rejected rows as file:row:column:
    reason on stderr) or exactly the --json shape. Exit 0 when the campaign holds leads of the
    file afterwards; 1 when no row could be imported, when the file, --map or --script is
    refused (one line, nothing stored), or when the database fails (one line; the batches
    committed before it stay, and a rerun adds the rest)."""
    import json

    from sqlalchemy.exc import SQLAlchemyError

    from campaigns.importer import LeadImportError, import_leads
    from campaigns.leadfile import LeadFileError, parse_map
    from models import init_db

    cfg = load_config(args.config)
    try:
        column_map = parse_map(args.map) if args.map else None
        if args.script is not None and not Path(args.script).is_file():
            raise LeadFileError(f"--script {args.script}: no such file")
        rep = import_leads(
            init_db(cfg.database.url),
            args.name,
            args.csv,
            script=args.script or cfg.callflow.script,
            timezone=cfg.campaign.timezone,
            check_script=args.script is not None,
            column_map=column_map,
            region=args.region,
            progress=not args.json and sys.stderr.isatty(),
        )
    except (LeadImportError, LeadFileError) as exc:
        print(f"import failed, nothing stored: {'; '.join(str(exc).splitlines())}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:  # batches committed before it stay; a rerun adds the rest
        print(
            f"import stopped by a database error ({type(exc).__name__}): the batches before it "
            "are stored; run the import again to add the rest",
            file=sys.stderr,
        )
        return 1
    if args.json:
        print(json.dumps(rep.as_json(), ensure_ascii=False))
    else:
        for r in rep.rejected:
            print(f"{args.csv}:{r.row}:{r.reason}", file=sys.stderr)
        print(
            f"campaign {args.name}: accepted {rep.accepted}, duplicates {rep.duplicates}, "
            f"rejected {len(rep.rejected)}, also in other campaigns {rep.elsewhere} "
            f"({rep.encoding}, columns {rep.columns})"
        )
    return 0 if rep.accepted or rep.duplicates else 1


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
    elif args.format == "html":
        from campaigns.report_html import to_html

        sys.stdout.write(to_html(rep))
    else:
        print(json.dumps(rep, ensure_ascii=False, indent=2))
    return 0


def _crm(args: argparse.Namespace) -> int:
    """`crm dead` lists dead letters (ids, no PII); `crm replay --id N | --all` re-queues."""
    from crm_sync.deadletters import crm_main
    from models import init_db

    cfg = load_config(args.config)
    ids = None if getattr(args, "all", False) else getattr(args, "id", None)
    return crm_main(init_db(cfg.database.url), args.crm_cmd, ids=ids)


def _run(args: argparse.Namespace) -> int:
    """The node until SIGTERM or Ctrl-C: then it claims nothing more, lets live calls finish
    (``campaign.shutdown_grace_s``), hangs up the rest, stores every outcome and exits 0."""
    from app.node import run_node

    cfg = load_config(args.config)
    if args.node_id is not None and not _valid_node_id(args.node_id):
        print(
            f"run: --node-id {args.node_id!r}: 1 to 64 characters, none of '/', '+', '#'",
            file=sys.stderr,
        )
        return 2

    async def node() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_node(cfg, stop=stop, node_id=args.node_id)

    asyncio.run(node())
    return 0


def _valid_node_id(node_id: str) -> bool:
    """A node id fits the lease column (64) and is one MQTT topic level."""
    return 0 < len(node_id) <= 64 and not any(c in node_id for c in "/+#") and node_id.isprintable()


def _nodes(args: argparse.Namespace) -> int:
    """`nodes`: the live nodes and their calls in progress, from their presence on the broker."""
    from app.nodes import nodes_main

    return nodes_main(load_config(args.config), as_json=args.json, wait_s=args.wait)


def _asr_transcribe(args: argparse.Namespace) -> int:
    from app.engines import make_asr
    from speech.asr.cli import transcribe_files

    cfg = load_config(args.config)
    prompt = args.prompt
    if args.hints is not None:  # as a call on that script hears: its asr_hints as the prompt
        from callflow.script_parse import load_script
        from nlu.base import INTENTS

        script = load_script(args.hints or cfg.callflow.script, known_intents=INTENTS)
        prompt = script.asr_prompt
    asr = make_asr(cfg)
    try:
        return transcribe_files(asr, args.files, sys.stdout, prompt=prompt)
    finally:
        asyncio.run(asr.aclose())


def _asr_adapt(args: argparse.Namespace) -> int:
    from speech.adapt.cli import run_from_args

    return run_from_args(args)


def _campaign_lifecycle(args: argparse.Namespace) -> int:
    from campaigns.cli import campaign_main
    from models import init_db

    cfg = load_config(args.config)
    rc = campaign_main(
        init_db(cfg.database.url),
        args.campaign_cmd,
        getattr(args, "name", None),
        tz=cfg.campaign.timezone,
        max_attempts=cfg.campaign.max_attempts,
        hours=getattr(args, "hours", None),
        days=getattr(args, "days", None),
        as_json=getattr(args, "json", False),
    )
    if rc == 0 and cfg.bus.mqtt_url and args.campaign_cmd in ("start", "pause", "resume"):
        from app.nodes import tell_nodes  # every node re-reads its campaigns at once

        asyncio.run(tell_nodes(cfg, args.name, args.campaign_cmd))
    return rc


def _dnc(args: argparse.Namespace) -> int:
    from campaigns.cli import dnc_main
    from models import init_db

    cfg = load_config(args.config)
    return dnc_main(
        init_db(cfg.database.url),
        args.dnc_cmd,
        campaign=args.campaign,
        phone=getattr(args, "phone", None),
        file=getattr(args, "file", None),
        show_numbers=getattr(args, "show_numbers", False),
    )


def _serve(args: argparse.Namespace) -> int:
    """`serve`: the web console and API until Ctrl-C/SIGTERM (``web.serve``)."""
    from web.serve import serve

    cfg = load_config(args.config)
    host, port = args.host or cfg.web.host, args.port or cfg.web.port
    try:
        asyncio.run(serve(cfg, host=host, port=port, with_node=args.node))
    except (OSError, ValueError) as exc:  # port taken, unreadable secret: one line
        print(f"serve: {exc}", file=sys.stderr)
        return 1
    return 0


def _user(args: argparse.Namespace) -> int:
    from models import init_db
    from web.cli import user_main

    cfg = load_config(args.config)
    role, label = getattr(args, "role", ""), getattr(args, "label", None) or ""
    return user_main(init_db(cfg.database.url), args.user_cmd, args.name, role=role, label=label)


def _add_web_commands(sub: Any) -> None:
    """`serve` and `user add|token`."""
    sv = sub.add_parser("serve", help="the web console and JSON API (sign-in at /login)")
    sv.add_argument("--host", help="address to bind (default: web.host, 127.0.0.1)")
    sv.add_argument("--port", type=int, help="port (default: web.port, 8080)")
    sv.add_argument("--node", action="store_true", help="also run the node in this process")
    sv.set_defaults(func=_serve)
    us = sub.add_parser("user", help="console users (password from CALLBOT_PASSWORD or stdin)")
    usub = us.add_subparsers(dest="user_cmd", required=True)
    ua = usub.add_parser("add", help="add a user: admin, operator or viewer")
    ua.add_argument("name")
    ua.add_argument("--role", required=True, choices=["admin", "operator", "viewer"])
    ut = usub.add_parser("token", help="a new API token for a user (printed once)")
    ut.add_argument("name")
    ut.add_argument("--label", help="what the token is for (a note)")
    for parser in (ua, ut):
        parser.set_defaults(func=_user)


def _add_operator_commands(sub: Any, csub: Any) -> None:
    """`campaign list|start|pause|resume|complete|status` and `dnc import|add|remove|list`."""
    helps = {
        "start": "run a draft (or paused) campaign: the node dials it within a second",
        "pause": "stop new calls within a second (calls in progress finish)",
        "resume": "dial a paused campaign again",
        "complete": "end a campaign for good (a running one ends by itself when done)",
        "status": "lifecycle state, leads by status, attempts today (no PII)",
    }
    ls = csub.add_parser("list", help="every campaign: name, state, leads")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_campaign_lifecycle)
    for action, text in helps.items():
        cp = csub.add_parser(action, help=text)
        cp.add_argument("name", help="campaign name")
        if action in ("start", "resume"):
            cp.add_argument("--hours", help='its own calling hours, e.g. "09:00-12:00,14:00-18:00"')
            cp.add_argument("--days", help='its own calling days, e.g. "mon-fri"')
        if action == "status":
            cp.add_argument("--json", action="store_true", help="one JSON line")
        cp.set_defaults(func=_campaign_lifecycle)

    dn = sub.add_parser("dnc", help="do-not-call lists: global, or a campaign's (--campaign)")
    dsub = dn.add_subparsers(dest="dnc_cmd", required=True)
    di = dsub.add_parser("import", help="add a file's numbers (one a line, or a CSV phone column)")
    di.add_argument("file", type=Path, metavar="FILE")
    da = dsub.add_parser("add", help="add one number")
    da.add_argument("phone", metavar="PHONE")
    dr = dsub.add_parser("remove", help="remove one number")
    dr.add_argument("phone", metavar="PHONE")
    dl = dsub.add_parser("list", help="how many numbers, by source (numbers: --show-numbers)")
    dl.add_argument("--show-numbers", action="store_true", help="print the numbers (PII)")
    for parser in (di, da, dr, dl):
        parser.add_argument(
            "--campaign", metavar="NAME", help="a campaign's list (default: global)"
        )
        parser.set_defaults(func=_dnc)


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
    r.add_argument(
        "--node-id",
        help="this node's name on its leases, attempts and presence (default: "
        "<host>-<pid>-<random>, unique per process)",
    )
    r.set_defaults(func=_run)
    nd = sub.add_parser("nodes", help="live nodes and their calls in progress (needs MQTT)")
    nd.add_argument("--json", action="store_true", help="one JSON list")
    nd.add_argument(
        "--wait", type=float, default=1.0, help="seconds to collect presence (default: 1)"
    )
    nd.set_defaults(func=_nodes)

    camp = sub.add_parser("campaign", help="campaign management")
    csub = camp.add_subparsers(dest="campaign_cmd", required=True)
    ci = csub.add_parser(
        "import", help="import a lead list (CSV/TSV; UTF-8, UTF-16 or GBK); bad rows are listed"
    )
    ci.add_argument("name", help="campaign name (created if new)")
    ci.add_argument("csv", type=Path, metavar="FILE")
    ci.add_argument(
        "--script",
        help="script YAML of a new campaign (default: callflow.script from the config); for an "
        "existing campaign it must be the campaign's",
    )
    ci.add_argument(
        "--map",
        metavar="FIELD=COLUMN,...",
        help="columns of phone, name, timezone, source, consent: phone=联系电话,name=客户名称",
    )
    ci.add_argument(
        "--region", default="CN", help="country of numbers without a country code (default: CN)"
    )
    ci.add_argument(
        "--json",
        action="store_true",
        help='print only {"accepted": N, "duplicates": N, "rejected": [{"row": N, "reason": S}]}',
    )
    ci.add_argument("--skip-invalid", action="store_true", help=argparse.SUPPRESS)  # always now
    ci.set_defaults(func=_campaign_import)
    _add_operator_commands(sub, csub)

    _add_web_commands(sub)
    from app.authoring import add_commands as add_authoring_commands

    add_authoring_commands(sub)  # script check|versions, chat

    rep = sub.add_parser("report", help="reports for sales operations (aggregates, no PII)")
    rsub = rep.add_subparsers(dest="report_cmd", required=True)
    rd = rsub.add_parser(
        "daily", help="one day per campaign and in total: dials, connects, outcomes, CRM, ROI"
    )
    rd.add_argument("--date", help="YYYY-MM-DD, a calendar day in --tz (default: yesterday)")
    rd.add_argument("--campaign", help="one campaign by name (default: all with calls that day)")
    rd.add_argument(
        "--format", choices=["json", "csv", "html"], default="json", help="html: one page, charts"
    )
    rd.add_argument("--tz", help="timezone of the day (default: campaign.timezone)")
    rd.set_defaults(func=_report_daily)

    crm = sub.add_parser("crm", help="CRM delivery: dead letters and their replay")
    crmsub = crm.add_subparsers(dest="crm_cmd", required=True)
    crmsub.add_parser("dead", help="list dead letters: outbox id, lead id, tries, error")
    cr = crmsub.add_parser("replay", help="re-queue dead letters: delivered on the next pass")
    which = cr.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", type=int, action="append", metavar="N", help="an outbox id")
    which.add_argument("--all", action="store_true", help="every dead letter")
    crm.set_defaults(func=_crm)

    a = sub.add_parser("asr", help="speech recognition: transcribe files, adapt a model")
    asub = a.add_subparsers(dest="asr_cmd", required=True)
    ad = asub.add_parser("adapt", help="fine-tune Whisper on (audio, text) pairs -> CT2 int8")
    from speech.adapt.cli import add_arguments as add_adapt_arguments

    add_adapt_arguments(ad)
    ad.set_defaults(func=_asr_adapt)
    tr = asub.add_parser("transcribe", help="WAV files -> one JSON line each (file, text, rtf)")
    tr.add_argument("files", nargs="+", type=Path)
    hint = tr.add_mutually_exclusive_group()
    hint.add_argument("--prompt", help="vocabulary hint for the recognizer (product names, ...)")
    hint.add_argument(
        "--hints",
        nargs="?",
        const="",
        metavar="SCRIPT",
        help="decode as a call on SCRIPT does (default: callflow.script): its asr_hints as "
        "the prompt",
    )
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

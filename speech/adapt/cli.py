"""Command line of ``asr adapt`` (argparse only: importing this module is cheap).

Wire it into main.py with::

    a = asr_sub.add_parser("adapt", help="fine-tune Whisper on (audio, text) pairs -> CT2 int8")
    from speech.adapt.cli import add_arguments, run_from_args
    add_arguments(a)
    a.set_defaults(func=lambda args: run_from_args(args))

or run it directly: ``python -m speech.adapt --data DIR --base MODEL_DIR --out OUT_DIR``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        type=Path,
        required=True,
        help="clips: metadata.tsv (file<TAB>text[<TAB>dialect]) or NAME.wav + NAME.txt",
    )
    p.add_argument(
        "--base",
        type=Path,
        required=True,
        help="Hugging Face Whisper folder (config.json + weights [+ tokenizer])",
    )
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="output: CTranslate2 model here, fine-tuned checkpoint in OUT/hf",
    )
    p.add_argument(
        "--tokenizer",
        type=Path,
        help="Whisper tokenizer.json when --base has none "
        "(e.g. build/models/whisper-base/tokenizer.json)",
    )
    p.add_argument("--eval", type=Path, dest="eval_dir", help="held-out clips for the CER check")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--language", default="zh", help="Whisper language token (default: zh)")
    p.add_argument("--dialect", help="treat every clip as this dialect (text augmentation)")
    p.add_argument("--speeds", default="0.9,1.0,1.1", help="speed perturbation factors")
    p.add_argument("--noise", type=float, default=0.5, help="probability of added noise")
    p.add_argument(
        "--phone-band", type=float, default=0.5, help="probability of a G.711 telephone round trip"
    )
    p.add_argument(
        "--dialect-prob",
        type=float,
        default=0.5,
        help="per-word probability of dialect synonym replacement",
    )
    p.add_argument("--freeze-encoder", action="store_true")
    p.add_argument("--quantization", default="int8", help="CTranslate2 quantization")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)  # fmt: skip


def config_from_args(args: argparse.Namespace) -> object:
    from speech.adapt.augment import AugmentConfig
    from speech.adapt.pipeline import AdaptConfig
    from speech.adapt.train import TrainConfig

    train = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
        max_steps=args.max_steps, language=args.language, threads=args.threads, seed=args.seed,
        freeze_encoder=args.freeze_encoder,
    )  # fmt: skip
    augment = AugmentConfig(
        speeds=tuple(float(s) for s in args.speeds.split(",") if s.strip()),
        noise_probability=args.noise, phone_band_probability=args.phone_band,
        dialect_probability=args.dialect_prob, dialect=args.dialect,
    )  # fmt: skip
    return AdaptConfig(
        train=train, augment=augment, quantization=args.quantization,
        tokenizer_file=args.tokenizer, eval_dir=args.eval_dir,
    )  # fmt: skip


def run_from_args(args: argparse.Namespace) -> int:
    """Run the pipeline; print the report as one JSON object. 2 on a usage/data error."""
    from speech.adapt.data import DataError
    from speech.adapt.pipeline import AdaptConfig, MissingTrainingDeps, run_adapt

    config = config_from_args(args)
    assert isinstance(config, AdaptConfig)
    try:
        report = run_adapt(args.data, args.base, args.out, config)
    except (MissingTrainingDeps, DataError, FileNotFoundError, ValueError) as exc:
        print(f"asr adapt: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, ensure_ascii=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m speech.adapt", description=__doc__)
    add_arguments(p)
    return run_from_args(p.parse_args(argv))

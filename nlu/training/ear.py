"""Hear the training texts through the phone channel: ``python -m nlu.training.ear``.

Callers do not send text: their voice crosses an 8 kHz G.711 leg into Whisper base, which turns
价格 into 加格 and 转人工 into 债演工. To learn from what the ear hears, this renders a bounded,
stratified sample of the *training* texts (the train part of the split + the extra examples,
never the held-out part, never bench/) with the training voices (espeak-ng ``cmn-latn-pinyin``
variants f1 f3 f5 m2 m4 m5 m7 klatt2, speeds 120/135/165, pitches 30/50/70, word gaps 1/5,
mu-law or A-law, some line noise: disjoint from the benchmark's voices), decodes it with the
project's real recognizer and stores ``text, ear_text, intent, voice`` per line in
``nlu/data/ear_transcripts.jsonl``, committed, so training is reproducible without decoding.

Decoding runs in ``speech.asr.roundtrip`` subprocesses (nlu must not import speech), niced, two
at most, one thread each. The output is appended line by line and the job resumes: sentences
already in the file are skipped. A seeded ~15 % of sentences (by text, so every voice of one
sentence lands on the same side) is marked ``"split": "test"``: training leaves it out, so old
and new models can be compared on ear transcripts of sentences neither saw.

``python -m nlu.training.ear --train`` decodes nothing: it trains the phone-robust linear model
(``nlu.training.train.train_ear``) into ``nlu/models/student-int8/linear-ear``, points the
ensemble's manifest at it (the text-only ``linear/`` stays as the baseline:
``load_classifier(path, linear="linear")``), trains ``linear-heard`` (the same with the ear
transcripts weighted more: what the ensemble reads poorly heard transcripts with,
``heard_linear_dir``) and prints held-out and ear-test figures of all.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlu.prepare import raw_model_text
from nlu.training.dataset import DEFAULT_SEED, Example, build_split

_REPO = Path(__file__).resolve().parent.parent.parent
EAR_FILE = _REPO / "nlu" / "data" / "ear_transcripts.jsonl"
WHISPER_DIR = _REPO / "build" / "models" / "whisper-base"
STUDENT_DIR = _REPO / "nlu" / "models" / "student-int8"
EAR_LINEAR = "linear-ear"
HEARD_LINEAR = "linear-heard"
BASELINE_LINEAR = "linear"

VARIANTS = ("f1", "f3", "f5", "m2", "m4", "m5", "m7", "klatt2")
SPEEDS = (120, 135, 165)
PITCHES = (30, 50, 70)
GAPS = (1, 5)
CODECS = ("ulaw", "alaw")
NOISE_SHARE = 0.3  # this share of clips gets white line noise at -45..-35 dBFS
TEST_SHARE = 0.15  # sentences kept out of training (split by sentence, not by voice)
MAX_CHARS = 30  # longer sentences cost decode time and are rare on the phone


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    text: str
    intent: str
    voice: dict[str, Any]
    split: str


def sentence_id(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def is_test(text: str, seed: int = DEFAULT_SEED) -> bool:
    """Seeded by-sentence split: the same text is always on the same side."""
    digest = hashlib.sha1(f"{seed}:{raw_model_text(text)}".encode()).digest()
    return digest[0] / 256 < TEST_SHARE


def sample(examples: Sequence[Example], per_intent: int, seed: int) -> list[Example]:
    """Up to `per_intent` distinct short texts of each intent, seeded."""
    by_intent: dict[str, dict[str, Example]] = defaultdict(dict)
    for ex in examples:
        key = raw_model_text(ex.text)
        if key and len(ex.text) <= MAX_CHARS:
            by_intent[ex.intent].setdefault(key, ex)
    rng = random.Random(seed)
    out: list[Example] = []
    for intent in sorted(by_intent):
        pool = sorted(by_intent[intent].values(), key=lambda ex: ex.text)
        rng.shuffle(pool)
        out.extend(pool[:per_intent])
    return out


def voice_for(text: str, seed: int) -> dict[str, Any]:
    """A training voice drawn per sentence (seeded by the text: reruns give the same audio)."""
    rng = random.Random(f"{seed}:{text}")
    noisy = rng.random() < NOISE_SHARE
    return {
        "variant": rng.choice(VARIANTS),
        "speed": rng.choice(SPEEDS),
        "pitch": rng.choice(PITCHES),
        "gap": rng.choice(GAPS),
        "codec": rng.choice(CODECS),
        "noise_dbfs": float(rng.randint(-45, -35)) if noisy else None,
        "seed": rng.randrange(1 << 30),
    }


def plan(per_intent: int = 80, seed: int = DEFAULT_SEED) -> list[Job]:
    split = build_split()
    jobs = [
        Job(
            id=sentence_id(ex.text),
            text=ex.text,
            intent=ex.intent,
            voice=voice_for(ex.text, seed),
            split="test" if is_test(ex.text, seed) else "train",
        )
        for ex in sample(split.train, per_intent, seed)
    ]
    random.Random(seed).shuffle(jobs)  # a partial run still covers every intent
    return jobs


def done_ids(path: Path) -> set[str]:
    if not path.is_file():
        return set()
    return {json.loads(line)["id"] for line in path.read_text("utf-8").splitlines() if line}


def load_ear(path: Path = EAR_FILE, *, split: str | None = None) -> list[Example]:
    """The committed ear transcripts as examples (source "ear"); `split`: "train" / "test"."""
    out: list[Example] = []
    if not path.is_file():
        return out
    for line in path.read_text("utf-8").splitlines():
        if not line:
            continue
        row = json.loads(line)
        if split is None or row.get("split") == split:
            out.append(Example(row["ear_text"], row["intent"], "ear"))
    return out


def _worker(jobs: Sequence[Job], model_dir: Path, out: Path, lock: threading.Lock) -> None:
    """One niced recognizer process decoding `jobs`; rows appended to `out` as they come."""
    by_id = {job.id: job for job in jobs}
    with tempfile.TemporaryFile("w+", encoding="utf-8") as feed:
        for job in jobs:
            feed.write(json.dumps({"id": job.id, "text": job.text, **job.voice}) + "\n")
        feed.seek(0)
        proc = subprocess.Popen(
            [sys.executable, "-m", "speech.asr.roundtrip", "--model-dir", str(model_dir)],
            stdin=feed,
            stdout=subprocess.PIPE,
            text=True,
            cwd=_REPO,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
            preexec_fn=lambda: os.nice(10),
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            result = json.loads(line)
            heard = by_id.get(result["id"])
            if heard is None or "error" in result:
                print(f"skipped {result.get('id')}: {result.get('error')}", file=sys.stderr)
                continue
            row = {
                "id": heard.id,
                "text": heard.text,
                "ear_text": result["ear_text"],
                "intent": heard.intent,
                "split": heard.split,
                "voice": heard.voice,
                "confidence": result["confidence"],
            }
            with lock, out.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        proc.wait()


def run(
    jobs: Iterable[Job], *, out: Path = EAR_FILE, model_dir: Path = WHISPER_DIR, workers: int = 2
) -> int:
    """Decode the jobs not yet in `out` with up to 2 recognizer processes; the count decoded."""
    done = done_ids(out)
    todo = [job for job in jobs if job.id not in done]
    workers = max(1, min(workers, 2, len(todo)))
    if not todo:
        return 0
    lock = threading.Lock()
    threads = [
        threading.Thread(target=_worker, args=(todo[i::workers], model_dir, out, lock))
        for i in range(workers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(done_ids(out) - done)


def _report(gold: Sequence[str], pred: Sequence[str]) -> dict[str, Any]:
    from nlu.training.metrics import evaluate

    report = evaluate(list(gold), list(pred))
    return {"n": len(gold), "macro_f1": report["macro_f1"], "accuracy": report["accuracy"]}


def _classify_all(model: Any, texts: Sequence[str]) -> list[Any]:
    batch = getattr(model, "classify_batch", None)
    return list(batch(texts)) if batch is not None else [model.classify(t) for t in texts]


def attach_ear_linear(model_dir: Path = STUDENT_DIR) -> dict[str, Any]:
    """Train ``linear-ear`` into the student folder and make the ensemble use it.

    Records held-out (real text) and ear-test (transcripts of sentences training left out)
    figures of the student alone, the ensemble with the baseline linear and with ``linear-ear``.
    """
    from core.text import canonical
    from nlu.encoder import MANIFEST, EncoderIntentClassifier
    from nlu.ensemble import EnsembleIntentClassifier
    from nlu.linear import LinearIntentClassifier
    from nlu.training.train import HEARD_CONFIG, train_ear

    train_ear(model_dir / EAR_LINEAR)
    train_ear(model_dir / HEARD_LINEAR, config=HEARD_CONFIG)
    manifest_path = model_dir / MANIFEST
    manifest = json.loads(manifest_path.read_text("utf-8"))
    ensemble = dict(manifest["ensemble"])
    weight = float(ensemble["linear_weight"])
    student = EncoderIntentClassifier.load(model_dir)
    models: dict[str, Any] = {
        "student_int8": student,
        "ensemble_baseline": EnsembleIntentClassifier(
            student, LinearIntentClassifier.load(model_dir / BASELINE_LINEAR), linear_weight=weight
        ),
        "ensemble": EnsembleIntentClassifier(
            student, LinearIntentClassifier.load(model_dir / EAR_LINEAR), linear_weight=weight
        ),
        "linear_ear": LinearIntentClassifier.load(model_dir / EAR_LINEAR),
        "linear_heard": LinearIntentClassifier.load(model_dir / HEARD_LINEAR),
    }
    sets = {"heldout": build_split().heldout, "ear_test": load_ear(split="test")}
    figures: dict[str, dict[str, Any]] = {}
    for set_name, examples in sets.items():
        texts = [canonical(ex.text) for ex in examples]
        gold = [ex.intent for ex in examples]
        figures[set_name] = {
            name: _report(gold, [r.intent for r in _classify_all(model, texts)])
            for name, model in models.items()
        }
    ensemble.update(
        linear_dir=EAR_LINEAR,
        baseline_linear_dir=BASELINE_LINEAR,
        heard_linear_dir=HEARD_LINEAR,
        ear_figures=figures,
    )
    manifest["ensemble"] = ensemble
    sizes = manifest.setdefault("sizes", {})
    for sub in (EAR_LINEAR, HEARD_LINEAR):
        for path in sorted((model_dir / sub).iterdir()):
            sizes[f"{sub}/{path.name}"] = path.stat().st_size
    manifest_path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2), "utf-8")
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-intent", type=int, default=80)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=EAR_FILE)
    parser.add_argument("--model-dir", type=Path, default=WHISPER_DIR)
    parser.add_argument("--limit", type=int, default=0, help="decode at most this many (0: all)")
    parser.add_argument(
        "--train", action="store_true", help="no decoding: train linear-ear and attach it"
    )
    args = parser.parse_args(argv)
    if args.train:
        print(json.dumps(attach_ear_linear(), indent=2))
        return 0
    jobs = plan(args.per_intent)
    if args.limit:
        jobs = jobs[: args.limit]
    started = time.perf_counter()
    n = run(jobs, out=args.out, model_dir=args.model_dir, workers=args.workers)
    took = time.perf_counter() - started
    print(json.dumps({"planned": len(jobs), "decoded": n, "seconds": round(took, 1)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

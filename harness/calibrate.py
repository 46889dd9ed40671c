"""`harness judge calibrate --judge J`: how far a judge is from the micro world's ground truth.

The calibration set (version CALIBRATION_VERSION) is every micro-MMHal and micro-MM-Vet item, each with six
answers of known quality written from the item's scene with the world's text functions -- never by a policy, so
the result does not depend on one model:
  correct        the reference answer;
  terse          short answers: the reference without its full stop; descriptions: the first half of the objects;
  partly-wrong   descriptions: one attribute wrong; short answers: the right answer plus an object that is absent;
  hallucinated   descriptions: every attribute wrong plus an absent object; short answers: a wrong answer;
  uninformative  "it is hard to say ." (no claim);
  empty          "" (an empty answer).
The truth is the rule judge (harness.judges.rule: the MMHal rubric and MM-Vet correctness decided from the typed
scene). Against it, per task: exact-rating agreement, Spearman's ρ, Cohen's κ with quadratic weights, mean bias
(judge − truth), the hallucination-rate error (share rated < 3 by the judge − by the truth; MMHal only), the
failure rate, and the judge's HTTP calls and tokens (when it reports them). MM-Vet's 0-1 scores are compared on
a 0.1 grid (agreement and κ over 11 categories). The record lands in leaderboards/calibration/<judge>.json, which
the boards show beside the numbers each judge produced. No torch.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from harness.errors import HarnessError
from harness.io import stable_hash, write_json

CALIBRATION_VERSION = "1"
VARIANTS = ("correct", "terse", "partly-wrong", "hallucinated", "uninformative", "empty")
UNINFORMATIVE = "it is hard to say ."
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "leaderboards" / "calibration"
TASK_FILES = {"mmhal": "mmhal.jsonl", "mmvet": "mmvet.jsonl"}
CATEGORIES = {"mmhal": 7, "mmvet": 11}      # MMHal ratings 0-6; MM-Vet scores on a 0.1 grid


# ---------------------------------------------------------------- the answer set

def _swapped(tokens: list[str], first_only: bool) -> list[str]:
    """Each colour/size/number/digit/yes-no/side word replaced by the next one of its vocabulary (deterministic):
    a claim the scene contradicts."""
    from harness.world.scene import COLORS, SIZES
    from harness.world.texts import DIGITS, NUMBER_WORDS

    cycles = [COLORS, SIZES, NUMBER_WORDS, DIGITS, ("yes", "no"), ("left", "right"), ("top", "bottom")]
    out, done = [], False
    for t in tokens:
        vocab = next((v for v in cycles if t in v), None)
        if vocab is not None and not (first_only and done):
            t, done = vocab[(vocab.index(t) + 1) % len(vocab)], True
        out.append(t)
    return out


def answers(item: dict) -> dict[str, str]:
    """The six answers of known quality for one item (see the module docstring)."""
    from harness.world.scene import COLORS, Scene
    from harness.world.texts import describe_objects, tokenize

    scene = Scene.from_dict(item["scene"])
    kind = item["meta"].get("kind")
    target = item["target"]
    absent = scene.absent_classes()[0]
    terse = target.rstrip(" .")
    if kind == "describe":
        terse = describe_objects(scene.objects[:max(1, len(scene.objects) // 2)])
        partly = " ".join(_swapped(tokenize(target), first_only=True))
        wrong = " ".join(_swapped(tokenize(target), first_only=False))[:-1] + f"and a small {COLORS[0]} {absent} ."
    elif kind == "adversarial":         # a question about an absent object: any colour is an invented one
        partly = f"{target} there is a {absent} ." if absent != item["meta"].get("object") else target
        wrong = f"it is {COLORS[0]} ."
    else:
        partly = f"{target} there is a {absent} ."
        wrong = " ".join(_swapped(tokenize(target), first_only=True))
    return {"correct": target, "terse": terse, "partly-wrong": partly, "hallucinated": wrong, "uninformative": UNINFORMATIVE,
            "empty": ""}


def load_docs(task: str, limit: int | None = None) -> list[dict]:
    """The micro suite's own documents (benchmarks.micro_data builds them), first `limit` of them."""
    from benchmarks.micro_data import build_micro_tasks

    path = build_micro_tasks() / "data" / TASK_FILES[task]
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()[:limit]]


def calibration_rows(task: str, limit: int | None = None) -> list[dict]:
    """One samples row per (item, variant), made by the micro task's own row builder from the answer text."""
    from benchmarks.tasks.micro.utils import judged_results

    rows = []
    for doc in load_docs(task, limit):
        item = judged_results(doc, [doc["target"]])["harness_items"]
        for variant, text in answers(item).items():
            row = judged_results(doc, [text])["harness_items"]
            rows.append({**row, "id": f"{row['id']}:{variant}", "variant": variant})
    return rows


# ---------------------------------------------------------------- agreement statistics

def weighted_kappa(a: list[int], b: list[int], k: int) -> float:
    """Cohen's κ with quadratic weights over categories 0..k-1: 1 − Σ w·observed / Σ w·expected-by-chance."""
    obs = np.zeros((k, k))
    for x, y in zip(a, b):
        obs[x, y] += 1
    obs /= obs.sum()
    exp = np.outer(obs.sum(axis=1), obs.sum(axis=0))
    idx = np.arange(k)
    w = (idx[:, None] - idx[None, :]) ** 2 / (k - 1) ** 2
    denom = (w * exp).sum()
    return float(1 - (w * obs).sum() / denom) if denom > 0 else float("nan")


def agreement(task: str, truth: list[float], judged: list[float]) -> dict:
    """The agreement statistics of one task over the items both scored."""
    from scipy.stats import spearmanr

    t, j = np.asarray(truth, float), np.asarray(judged, float)
    scale = 1 if task == "mmhal" else 10
    ct, cj = np.rint(t * scale).astype(int), np.rint(j * scale).astype(int)
    rho = spearmanr(t, j).statistic if len(t) > 1 and t.std() > 0 and j.std() > 0 else float("nan")
    out = {"n": len(t), "exact_agreement": float(np.mean(ct == cj)) if len(t) else float("nan"),
           "spearman": float(rho), "weighted_kappa": weighted_kappa(list(ct), list(cj), CATEGORIES[task]),
           "mean_bias": float(np.mean(j - t)) if len(t) else float("nan"),
           "truth_mean": float(np.mean(t)) if len(t) else float("nan"),
           "judge_mean": float(np.mean(j)) if len(t) else float("nan")}
    if task == "mmhal":   # MMHal: a rating below 3 is "with hallucination"
        out["hallucination_rate_error"] = float(np.mean(j < 3) - np.mean(t < 3)) if len(t) else float("nan")
    return out


# ---------------------------------------------------------------- running a judge

def _counting(judge):
    """Count the judge's requests when it has an endpoint (OpenAI-compatible judges: `complete`)."""
    calls = {"n": 0}
    if hasattr(judge, "complete"):
        inner = judge.complete

        def complete(prompt):
            calls["n"] += 1
            return inner(prompt)
        judge.complete = complete
    return calls


def calibrate(judge, limit: int | None = None, progress=None) -> dict:
    """Score `judge` on the calibration set -> the calibration record (a dict)."""
    from harness.judges.rule import RuleJudge
    from harness.record import git_commit, now_iso

    calls = _counting(judge)
    usage_before = dict(getattr(judge, "usage", {}) or {})
    tasks, failures_total, rows_total, set_rows = {}, 0, 0, {}
    for task in ("mmhal", "mmvet"):
        rows = calibration_rows(task, limit)
        truth_rows = [dict(r) for r in rows]
        if RuleJudge().judge_rows(task, truth_rows):
            raise HarnessError(f"the rule judge could not score some {task} calibration items: the set is broken")
        failures = _judge_all(judge, task, rows, progress)
        ok = [(t["score"], r["score"]) for t, r in zip(truth_rows, rows) if r.get("score") is not None]
        stats = agreement(task, [a for a, _ in ok], [b for _, b in ok])
        stats["failures"], stats["failure_rate"] = failures, failures / len(rows)
        stats["per_variant"] = {v: _variant_means(v, truth_rows, rows) for v in VARIANTS}
        tasks[task] = stats
        failures_total, rows_total = failures_total + failures, rows_total + len(rows)
        set_rows[task] = [[r["id"], r["prediction"], t["score"]] for r, t in zip(rows, truth_rows)]
    usage = getattr(judge, "usage", None)
    tokens = {k: usage.get(k, 0) - usage_before.get(k, 0) for k in ("requests", "prompt_tokens", "completion_tokens")} \
        if isinstance(usage, dict) else None
    return {"kind": "judge-calibration", "calibration_version": CALIBRATION_VERSION,
            "set_hash": stable_hash(set_rows, length=16), "limit": limit, "judge": judge.describe(),
            "variants": list(VARIANTS), "tasks": tasks, "judgements": rows_total, "failures": failures_total,
            "failure_rate": failures_total / rows_total, "calls": calls["n"] if hasattr(judge, "complete") else 0,
            "tokens": tokens, "git_commit": git_commit(), "created": now_iso()}


def _judge_all(judge, task: str, rows: list[dict], progress) -> int:
    """Failed judgements counted (a judge down on every item is still an error: HarnessError)."""
    return judge.judge_rows(task, rows, progress=progress)


def _variant_means(variant: str, truth_rows: list[dict], rows: list[dict]) -> dict:
    pairs = [(t["score"], r["score"]) for t, r in zip(truth_rows, rows)
             if r["variant"] == variant and r.get("score") is not None]
    if not pairs:
        return {"n": 0, "truth_mean": None, "judge_mean": None}
    return {"n": len(pairs), "truth_mean": float(np.mean([a for a, _ in pairs])),
            "judge_mean": float(np.mean([b for _, b in pairs]))}


# ---------------------------------------------------------------- files and summaries

def calibration_path(judge_desc: dict, root: str | Path | None = None) -> Path:
    from harness.boards import safe_name

    model = str(judge_desc.get("model") or "")
    tag = judge_desc["name"] if not model or judge_desc["name"] == "rule" else f"{judge_desc['name']}-{model}"
    return Path(root or DEFAULT_DIR) / f"{safe_name(tag)}.json"


def load_calibrations(root: str | Path | None = None) -> list[dict]:
    root = Path(root or DEFAULT_DIR)
    out = []
    for p in sorted(root.glob("*.json")) if root.is_dir() else []:
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise HarnessError(f"malformed calibration record {p}: {e}") from None
        if d.get("kind") == "judge-calibration":
            out.append({**d, "_file": p.name})
    return out


def summary(cal: dict) -> str:
    """'MMHal κ 0.93, ρ 0.95, bias +0.40, hal-rate err −0.05; MM-Vet κ 0.90, bias −0.02; failures 0.0 %'."""
    def num(v, signed=False):
        return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else (f"{v:+.2f}" if signed else f"{v:.2f}")

    parts = []
    for task, label in (("mmhal", "MMHal"), ("mmvet", "MM-Vet")):
        s = cal["tasks"].get(task)
        if s:
            bit = f"{label} κ {num(s['weighted_kappa'])}, ρ {num(s['spearman'])}, bias {num(s['mean_bias'], True)}"
            if "hallucination_rate_error" in s:
                bit += f", hal-rate err {num(s['hallucination_rate_error'], True)}"
            parts.append(bit)
    parts.append(f"failures {100 * cal['failure_rate']:.1f} %")
    return "; ".join(parts)


def calibrate_cli(args) -> dict:
    from rich.console import Console

    from harness.judges import load_judge

    kwargs = {k: v for k, v in (("base_url", args.judge_url), ("model", args.judge_model)) if v}
    judge = load_judge(args.judge, **kwargs)
    cal = calibrate(judge, limit=args.limit)
    out = Path(args.out) if args.out else calibration_path(cal["judge"])
    write_json(out, cal)
    console = Console()
    console.print(f"[bold]{cal['judge']['name']}[/] ({cal['judge'].get('model', '')}) vs ground truth on "
                  f"{cal['judgements']} judgements (calibration set v{CALIBRATION_VERSION}, {cal['set_hash']}):")
    console.print("  " + summary(cal))
    for task, s in cal["tasks"].items():
        console.print(f"  {task}: exact agreement {s['exact_agreement']:.3f}, mean judge {s['judge_mean']:.3f} vs "
                      f"truth {s['truth_mean']:.3f}, failures {s['failures']}")
    console.print(f"  calls {cal['calls']}, tokens {cal['tokens'] if cal['tokens'] is not None else 'not reported'}")
    console.print(f"wrote {out}")
    return cal

"""Fabricated run records for the records/tables/leaderboard/gate tests: toy suites (pure Python, declared like
benchmarks.suites ones) and sample rows whose quality is a knob, so a test can make a run better, worse or
identical on purpose. Nothing here imports torch.
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path

from harness.compare import compare_suite
from harness.io import write_jsonl
from harness.record import MetricValue, RunRecord, SuiteResult
from harness.stats import bootstrap_ci
from harness.suite import Metric, Suite

N_BOOT = 100      # enough for tests; records in production use harness.stats.N_BOOT (1,000)


def _acc(rows):
    return sum(1 for r in rows if r.get("correct")) / len(rows)


def _yes_ratio(rows):
    return sum(1 for r in rows if r.get("parsed") == "yes") / len(rows)


def _f1(rows):
    tp = sum(1 for r in rows if r.get("parsed") == "yes" and r["label"] == "yes")
    fp = sum(1 for r in rows if r.get("parsed") == "yes" and r["label"] == "no")
    fn = sum(1 for r in rows if r.get("parsed") != "yes" and r["label"] == "yes")
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def _chair_i(rows):
    mentioned = sum(len(r["mentioned"]) for r in rows)
    return 100.0 * sum(len(set(r["mentioned"]) - set(r["truth"])) for r in rows) / mentioned if mentioned else 0.0


def _chair_s(rows):
    return 100.0 * sum(1 for r in rows if set(r["mentioned"]) - set(r["truth"])) / len(rows)


def _cover(rows):
    return 100.0 * sum(len(set(r["mentioned"]) & set(r["truth"])) / len(r["truth"]) for r in rows) / len(rows)


def make_suites(world: str = "micro", version: str = "1", prefix: str = "toy") -> dict[str, Suite]:
    pope = Suite(
        name=f"{prefix}-pope", world=world, tasks=(f"{prefix}_pope",), primary="accuracy", version=version,
        metrics=(Metric("accuracy", "higher", _acc, test="mcnemar", item_key="correct", gated=True),
                 Metric("f1", "higher", _f1),
                 Metric("yes_ratio", "target:0.5", _yes_ratio),
                 Metric("adversarial_accuracy", "higher", _acc, test="mcnemar", item_key="correct",
                        rows_filter=lambda r: r["split"] == "adversarial")))
    chair = Suite(
        name=f"{prefix}-chair", world=world, tasks=(f"{prefix}_chair",), primary="chair_i", version=version,
        metrics=(Metric("chair_i", "lower", _chair_i, gated=True),
                 Metric("chair_s", "lower", _chair_s, gated=True),
                 Metric("cover", "higher", _cover)))
    return {pope.name: pope, chair.name: chair}


# Module-level suites so tests can register them by "module:attr" in harness.registry.SUITES.
TOY_SUITES = make_suites()
TOY_POPE, TOY_CHAIR = TOY_SUITES["toy-pope"], TOY_SUITES["toy-chair"]
TOY_POPE_V2 = make_suites(version="2")["toy-pope"]
REAL_SUITES = make_suites(world="real", prefix="toyreal")
TOYREAL_POPE, TOYREAL_CHAIR = REAL_SUITES["toyreal-pope"], REAL_SUITES["toyreal-chair"]
REGISTRY = {"toy-pope": "records_fixtures:TOY_POPE", "toy-chair": "records_fixtures:TOY_CHAIR",
            "toyreal-pope": "records_fixtures:TOYREAL_POPE", "toyreal-chair": "records_fixtures:TOYREAL_CHAIR"}


def micro_suites() -> dict[str, Suite]:
    """Real suite definitions from benchmarks.suites (POPE and CHAIR: rows_for fabricates their row shape)."""
    from benchmarks.suites import MICRO_CHAIR, MICRO_POPE
    return {MICRO_POPE.name: MICRO_POPE, MICRO_CHAIR.name: MICRO_CHAIR}


CLASSES = ["cup", "fork", "plate", "tree", "car", "dog", "cat", "lamp"]


def rows_for(suite: Suite, quality: float, n: int = 240, seed: int = 0) -> list[dict]:
    """Sample rows for a suite; `quality` in [0, 1] is the chance an item is answered right / faithfully.
    The same seed gives the same per-item coin flips, so two qualities share their items' randomness (like two
    checkpoints answering the same questions)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        u = rng.random()
        good = u < quality
        if suite.name.endswith("pope"):
            label = "yes" if i % 2 == 0 else "no"
            parsed = label if good else ("no" if label == "yes" else "yes")
            if not good and i % 17 == 0:
                parsed = None          # an unparsable answer: wrong, counted as a parse failure
            rows.append({"id": f"q{i}", "split": ("random", "popular", "adversarial")[i % 3], "label": label,
                         "parsed": parsed, "prediction": parsed or "maybe?", "correct": parsed == label,
                         "question": f"Is there a {CLASSES[i % 8]} in the image?", "target": label})
        else:
            truth = [CLASSES[i % 8], CLASSES[(i + 3) % 8]]
            mentioned = list(truth) + ([] if good else [CLASSES[(i + 5) % 8]])
            prediction = "There is " + ", ".join(mentioned) + "."
            rows.append({"id": f"c{i}", "truth": truth, "mentioned": mentioned, "prediction": prediction,
                         "prompt": "Describe the image.", "truth_length": 5, "well_formed": True})
    return rows


def suite_result(suite: Suite, rows: list[dict], samples: str = "") -> SuiteResult:
    metrics = {m.name: MetricValue(m.compute(rows), bootstrap_ci(m.select(rows), m.fn, n_boot=N_BOOT),
                                   len(m.select(rows)), m.direction) for m in suite.metrics}
    parse = sum(1 for r in rows if "parsed" in r and r["parsed"] is None)
    return SuiteResult(suite.name, suite.version, metrics, {"parse": parse, "judge": 0}, samples, suite.primary)


_CACHE: dict = {}


def _cached(kind: str, suite: Suite, *args):
    """Fabricated results are pure functions of their inputs; tests build the same ones often (base at 0.6)."""
    key = (kind, id(suite), args)
    if key not in _CACHE:
        if kind == "result":
            q, n, seed, path = args
            _CACHE[key] = suite_result(suite, rows_for(suite, q, n, seed=seed), path)
        else:
            bq, aq, n, seed = args
            _CACHE[key] = compare_suite(suite, rows_for(suite, bq, n, seed=seed), rows_for(suite, aq, n, seed=seed),
                                        seed=seed, n_boot=N_BOOT)
    return copy.deepcopy(_CACHE[key])


def make_record(suites: dict[str, Suite] | None = None, base_q: float = 0.7, aligned_q: float = 0.8, *,
                method: str = "rm-dpo", size: int = 5000, seed: int = 0, world: str | None = None,
                run_dir: Path | None = None, n: int = 240, compare: bool = True,
                created: str = "2026-11-24T01:00:00+00:00",
                commit: str = "0123456789abcdef0123456789abcdef01234567") -> RunRecord:
    """A base-vs-aligned run record (written with its samples into run_dir when given)."""
    suites = suites or TOY_SUITES
    world = world or next(iter(suites.values())).world
    base, aligned, comps = {}, {}, {}
    for name, s in suites.items():
        b_path, a_path = f"samples/base/{name}.jsonl", f"samples/aligned/{name}.jsonl"
        if run_dir is not None:
            write_jsonl(run_dir / b_path, rows_for(s, base_q, n, seed=seed))
            write_jsonl(run_dir / a_path, rows_for(s, aligned_q, n, seed=seed))
        base[name] = _cached("result", s, base_q, n, seed, b_path)
        aligned[name] = _cached("result", s, aligned_q, n, seed, a_path)
        if compare:     # the gate reads values and CIs only; tables and boards need the comparisons
            comps[name] = _cached("compare", s, base_q, aligned_q, n, seed)
    rec = RunRecord(kind="run", method=method, size=size, world=world, seed=seed,
                    config={"method": method, "size": size, "world": world, "seed": seed,
                            "suites": sorted(suites)},
                    config_hash=f"{method}{size}{seed}{world}"[:16].ljust(16, "0"), git_commit=commit,
                    created=created, checkpoints={"base": base, "aligned": aligned}, comparisons=comps)
    if run_dir is not None:
        rec.save(run_dir / "record.json")
    return rec


def make_eval_record(suites: dict[str, Suite] | None = None, quality: float = 0.7, *, model: str = "micro-llava",
                     checkpoint: str = "base", n: int = 240, seed: int = 0) -> RunRecord:
    suites = suites or TOY_SUITES
    world = next(iter(suites.values())).world
    res = {name: _cached("result", s, quality, n, seed, "") for name, s in suites.items()}
    return RunRecord(kind="eval", world=world, seed=seed, config={"model": model, "suites": sorted(suites)},
                     config_hash="evalhash00000000", created="2026-11-24T01:00:00+00:00",
                     checkpoints={checkpoint: res})


def save(record: RunRecord, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    record.save(path)
    return path


def load_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())

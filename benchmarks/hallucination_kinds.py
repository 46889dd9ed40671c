"""Where do a run's description hallucinations come from? A diagnostic over saved samples, no model runs.

    python -m benchmarks.hallucination_kinds RUN_DIR [RUN_DIR ...] [--suite micro-amber] [--pairs | --degenerate]

For each checkpoint (base, aligned) of each run it reads `samples/<checkpoint>/<suite>.jsonl` (the per-item rows
every evaluation writes: `mentioned` objects, ground-truth `truth` objects) and splits the descriptions into:

- extra-slot: names more objects than the scene holds (the language prior inventing a co-occurring object: what
  the micro policy's noisy captions teach, docs/micro-world.md);
- substitution: names at most as many objects as the scene holds, at least one of them absent (a present object
  misread as another);
- short: names fewer objects than the scene holds (what an alignment that teaches omission produces).

It also counts `repeated` mentions: a class named again in the same description. A micro scene holds each class at
most once (harness.world.scene.sample_scene draws classes without replacement), so a repeat is a misreading too, one
that CHAIR cannot see because the repeated class is present. `misread` = absent mentions in non-extra-slot
descriptions + repeated mentions: how many objects the checkpoint read wrong, whichever way it wrote them down.

With `--pairs` it reads the run's first-round preference pairs instead (`stages/synth-parts/pairs-*/pairs.jsonl`;
micro items carry the scene they were drawn from) and splits the chosen and the rejected answers the same way.

With `--degenerate` it reads every suite's answers instead and counts the ways an answer breaks rather than errs
(docs/micro-world.md: a prototype degenerated on 26 % of its outputs), by harness.world.texts.degeneration, the definition
the suites' `degenerate` metric uses: empty; a loop (a token three times in a row); unterminated (no final "." or
"?"; generation ran out of tokens); truncated (the last word before the "." is a function word, as in "on the .",
an answer cut short where the content should be). It recomputes the kind from each answer's text, so it also
reads samples written before the rows carried the `degenerate` field.

Why it exists: object-level CHAIR (AMBER CHAIR = absent mentions / all mentions) only falls when the absent
mentions fall faster than the mentions do. An alignment that removes extra-slot objects but also drops true ones
and leaves substitutions alone lowers sentence-level CHAIRs and Hal and leaves AMBER CHAIR where it was.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.io import read_jsonl


def kinds(rows: list[dict]) -> dict:
    """rows: sample rows with `mentioned` and `truth` object lists (generative items only). The absent share is
    the suites' own object-level CHAIR (benchmarks.metrics.chair_i; x 100 = AMBER CHAIR)."""
    from benchmarks import metrics
    mentions = absent = extra = subst = short = repeated = misread = 0
    for r in rows:
        named, truth = r["mentioned"], set(r["truth"])
        n_absent = sum(m not in truth for m in named)
        n_repeated = len(named) - len(set(named))
        mentions += len(named)
        absent += n_absent
        repeated += n_repeated
        extra += len(named) > len(truth)
        subst += len(named) <= len(truth) and n_absent > 0
        short += len(named) < len(truth)
        misread += n_repeated + (n_absent if len(named) <= len(truth) else 0)
    return {"descriptions": len(rows), "mentions": mentions, "absent_mentions": absent,
            "absent_share": round(metrics.chair_i(rows), 4) if mentions else None,
            "extra_slot": extra, "substitution": subst, "short": short, "repeated": repeated, "misread": misread}


DEGENERATION_KINDS = ("empty", "loop", "unterminated", "truncated")


def degeneration(texts: list[str]) -> dict:
    """Counts of broken answers by harness.world.texts.degeneration's kinds; each answer counts once."""
    from harness.world.texts import degeneration as kind_of
    out = {"answers": len(texts), **dict.fromkeys(DEGENERATION_KINDS, 0)}
    for t in texts:
        kind = kind_of(t)
        if kind is not None:
            out[kind] += 1
    return out


def run_degeneration(run_dir: Path) -> dict:
    """{checkpoint: {suite: degeneration counts}} over every saved samples/<checkpoint>/<suite>.jsonl."""
    out = {}
    for side in ("base", "aligned"):
        files = sorted((run_dir / "samples" / side).glob("*.jsonl"))
        if files:
            out[side] = {f.stem: degeneration([r.get("prediction") or "" for r in read_jsonl(f)]) for f in files}
    return out


def run_kinds(run_dir: Path, suite: str) -> dict:
    from harness.evaluate import samples_path
    out = {}
    for side in ("base", "aligned"):
        path = samples_path(run_dir, side, suite)
        if path.is_file():
            out[side] = kinds([r for r in read_jsonl(path) if "mentioned" in r and "truth" in r])
    return out


def pair_kinds(run_dir: Path) -> dict:
    """Chosen vs rejected answers of the run's first-round pairs, against each pair's scene."""
    from harness.world.texts import mentioned_objects
    files = sorted((run_dir / "stages" / "synth-parts").glob("pairs-*/pairs.jsonl"))
    if not files:
        return {}
    rows = [r for r in read_jsonl(files[0]) if "scene" in r]
    return {side: kinds([{"mentioned": mentioned_objects(r[side]),
                          "truth": sorted({o["cls"] for o in r["scene"]["objects"]})} for r in rows])
            for side in ("chosen", "rejected")} if rows else {}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--suite", default="micro-amber", help="a suite whose samples name objects (micro-amber, micro-chair)")
    what = ap.add_mutually_exclusive_group()
    what.add_argument("--pairs", action="store_true", help="the run's preference pairs (chosen / rejected), not its samples")
    what.add_argument("--degenerate", action="store_true", help="broken answers (empty, loop, cut off) in every suite")
    args = ap.parse_args(argv)
    from tabulate import tabulate
    if args.degenerate:
        return _print_degeneration(args.runs, tabulate)
    table = []
    for run in args.runs:
        found = pair_kinds(run) if args.pairs else run_kinds(run, args.suite)
        if not found:
            what = "stages/synth-parts/pairs-*/pairs.jsonl with scenes" if args.pairs else \
                f"samples/<checkpoint>/{args.suite}.jsonl"
            raise SystemExit(f"error: no {what} under {run}")
        for side, k in found.items():
            table.append([run.name, side, k["descriptions"], k["mentions"], k["absent_mentions"],
                          f"{100 * (k['absent_share'] or 0):.1f}", k["extra_slot"], k["substitution"], k["short"],
                          k["repeated"], k["misread"]])
    print(tabulate(table, headers=["run", "answers" if args.pairs else "checkpoint", "descriptions", "mentions", "absent", "absent %",
                                   "extra-slot", "substitution", "short", "repeated", "misread"], tablefmt="github"))
    return 0


def _print_degeneration(runs: list[Path], tabulate) -> int:
    keys = ("answers", *DEGENERATION_KINDS)
    table = []
    for run in runs:
        found = run_degeneration(run)
        if not found:
            raise SystemExit(f"error: no samples/<checkpoint>/*.jsonl under {run}")
        for side, by_suite in found.items():
            for suite, d in by_suite.items():
                table.append([run.name, side, suite, *(d[k] for k in keys)])
    print(tabulate(table, headers=["run", "checkpoint", "suite", *keys], tablefmt="github"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

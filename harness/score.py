"""`harness score --suite SUITE --predictions FILE.jsonl --out DIR`: score saved answers, no model.

A paper's released outputs, another harness's samples or our own samples file: JSON lines (or one JSON list)
of objects with `id` and `prediction` (`response` or `answer` are read too: AMBER's and POPE's own field names).
The id is the harness's row id (as in a samples file: `amber-d-1005`, `random-17`) or the benchmark's own id
(`1005`) where that names one item only in the suite (not POPE's, numbered per split). Each answer
is turned into the suite's per-item row by the same code an evaluation uses (the task's process_results on the
suite's own document, or benchmarks.rows for the POPE tasks), judged when the suite is judged, and written as
`DIR/samples/<checkpoint>/<suite>.jsonl` + `DIR/record.json` (kind "score"), exactly as `harness eval` writes
them.

Nothing is dropped silently: a duplicate id, an id the suite does not have, or an item with no answer is an
error before any scoring, naming how many and which; `--partial` scores a subset instead and records the
missing and unknown counts in the suite's `failures`.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

from harness.errors import HarnessError
from harness.io import file_sha256, read_jsonl, stable_hash, write_jsonl

PREDICTION_FIELDS = ("prediction", "response", "answer")


def read_predictions(path: str | Path) -> tuple[dict[str, str], dict[str, int]]:
    """-> ({id: answer}, {id: times seen} for ids seen more than once)."""
    path = Path(path)
    if not path.is_file():
        raise HarnessError(f"predictions file not found: {path}")
    answers: dict[str, str] = {}
    seen: dict[str, int] = {}
    text = path.read_text(encoding="utf-8")
    try:    # a JSON list (AMBER's response files) or JSON lines
        rows = json.loads(text) if text.lstrip().startswith("[") else read_jsonl(path)
    except ValueError as e:
        raise HarnessError(f"{path}: not JSON lines nor a JSON list: {e}") from None
    for n, row in enumerate(rows, 1):
        field = next((f for f in PREDICTION_FIELDS if f in row), None) if isinstance(row, dict) else None
        if field is None or "id" not in row:
            raise HarnessError(f"{path} line {n}: expected an object with 'id' and one of "
                               f"{', '.join(PREDICTION_FIELDS)}")
        key = str(row["id"])
        seen[key] = seen.get(key, 0) + 1
        answers[key] = "" if row[field] is None else str(row[field])
    return answers, {k: v for k, v in seen.items() if v > 1}


class _TaskYaml:
    """One lmms-eval task YAML read without lmms-eval: `include:` merged as lmms-eval merges it (the including
    file's keys win), `!function module.name` resolved next to the file that names it."""

    def __init__(self, path: Path):
        import yaml

        class Loader(yaml.SafeLoader):
            pass
        Loader.add_constructor("!function", lambda loader, node: ("function", loader.construct_scalar(node)))
        self.path = path
        own = yaml.load(path.read_text(), Loader=Loader) or {}
        included = own.pop("include", None)
        self.config, self.origin = {}, {}
        if included:
            base = _TaskYaml(Path(included) if Path(included).is_absolute() else path.parent / included)
            self.config, self.origin = dict(base.config), dict(base.origin)
        self.config.update(own)
        self.origin.update({key: path for key in own})

    def function(self, key: str):
        value = self.config.get(key)
        if not (isinstance(value, tuple) and value[0] == "function"):
            return None
        module_name, name = value[1].rsplit(".", 1)
        file = self.origin[key].parent / f"{module_name}.py"
        spec = importlib.util.spec_from_file_location(f"harness_score_{self.path.parent.name}_{module_name}", file)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return getattr(module, name)

    def documents(self) -> list[dict]:
        if self.config.get("dataset_path") != "json":
            raise HarnessError(f"task {self.config.get('task')} reads {self.config.get('dataset_path')!r}, not local "
                               "files: prepare the benchmark's data first (harness data prepare)")
        files = (self.config.get("dataset_kwargs") or {}).get("data_files") or {}
        split = self.config.get("test_split", "test")
        name = files.get(split) if isinstance(files, dict) else files
        path = Path(name) if Path(str(name)).is_absolute() else self.origin["dataset_kwargs"].parent / str(name)
        if not path.is_file():
            raise HarnessError(f"task {self.config.get('task')}: document file {path} not found")
        return read_jsonl(path)


def _task_yaml(suite, task: str) -> _TaskYaml:
    folder = suite.include_path()
    if folder is None:
        raise HarnessError(f"suite {suite.name} runs lmms-eval's own task {task}: no local documents to score against")
    for path in sorted(Path(folder).glob("*.yaml")):
        y = _TaskYaml(path)
        if y.config.get("task") == task:
            return y
    raise HarnessError(f"task {task} not found under {folder}")


NATIVE_ID_FIELDS = ("id", "question_id", "image_id")     # the benchmarks' own id fields, in this order


def _items(suite, task: str) -> list[tuple[str, str | None, object]]:
    """[(row id, the document's own id, build(answer) -> row)] for every document of `task`."""
    from benchmarks.rows import rows_from_samples

    y = _task_yaml(suite, task)
    process = y.function("process_results")
    build = suite.rows or rows_from_samples

    def row(i: int, doc: dict, answer: str) -> dict:
        sample = {"doc_id": i, "doc": doc, "target": doc.get(y.config.get("doc_to_target") or "", ""),
                  "filtered_resps": [answer]}
        if process is not None:
            sample["harness_items"] = process(doc, [answer])["harness_items"]
        return build(task, [sample])[0]
    out = []
    for i, doc in enumerate(y.documents()):
        native = next((str(doc[f]) for f in NATIVE_ID_FIELDS if doc.get(f) is not None), None)
        out.append((row(i, doc, "")["id"], native, lambda answer, i=i, doc=doc: row(i, doc, answer)))
    return out


def _rows_for(suite, task: str, answers_of) -> list[tuple[str, dict | None]]:
    """[(row id, row built from the answer or None when there is no answer)] for every document of `task`."""
    return [(key, None if answers_of(key) is None else build(answers_of(key)))
            for key, _, build in _items(suite, task)]


def score_rows(suite, answers: dict[str, str], partial: bool = False) -> tuple[list[dict], dict[str, int]]:
    """The suite's rows for `answers` -> (rows, {"missing": n, "unknown": n}); HarnessError on a mismatch
    unless `partial`."""
    items = [item for task in suite.tasks for item in _items(suite, task)]
    answer_of = _matcher(items, answers)
    built = [(key, None if answer_of(key, native) is None else build(answer_of(key, native)))
             for key, native, build in items]
    known = {key for key, _, _ in items}
    used = {key if key in answers else native for key, native, _ in items if answer_of(key, native) is not None}
    missing = [key for key, row in built if row is None]
    unknown = [key for key in answers if key not in used]
    if (missing or unknown) and not partial:
        raise HarnessError(
            f"predictions do not match suite {suite.name} ({len(known)} items): {len(missing)} items have no "
            f"answer (e.g. {', '.join(missing[:3]) or '-'}), {len(unknown)} ids are not in the suite (e.g. "
            f"{', '.join(unknown[:3]) or '-'}); ids look like {', '.join(sorted(known)[:2])}; "
            "--partial scores the matching ones and records both counts")
    return [row for _, row in built if row is not None], {"missing": len(missing), "unknown": len(unknown)}


def _matcher(items, answers: dict[str, str]):
    """answer_of(row id, native id): by the harness's row id, else by the benchmark's own id (AMBER's 1005,
    MMHal's image id...) when that id names one item only in the whole suite."""
    counts: dict[str, int] = {}
    for _, native, _ in items:
        if native is not None:
            counts[native] = counts.get(native, 0) + 1

    def answer_of(key: str, native: str | None) -> str | None:
        if key in answers:
            return answers[key]
        return answers.get(native) if native is not None and counts[native] == 1 else None
    return answer_of


def score_cli(args) -> object:
    """`harness score --suite S --predictions F --out DIR [--judge J] [--checkpoint NAME] [--partial]`."""
    from harness.evaluate import (
        _make_judge,
        print_record,
        resolve_suites,
        samples_path,
        suite_result,
    )
    from harness.record import (
        RunRecord,
        git_commit,
        machine_description,
        now_iso,
        package_versions,
    )

    suite = resolve_suites(args.suite)[0]
    answers, duplicates = read_predictions(args.predictions)
    if duplicates:
        first = ", ".join(f"{k} ({n}x)" for k, n in list(duplicates.items())[:3])
        raise HarnessError(f"{args.predictions}: {len(duplicates)} ids appear more than once (e.g. {first}): "
                           "which answer counts is ambiguous")
    t0 = time.time()
    rows, mismatch = score_rows(suite, answers, partial=args.partial)
    from harness.api import DEFAULT_JUDGE
    judge = args.judge or DEFAULT_JUDGE[suite.world]
    judge_obj = _make_judge(judge, None) if suite.judged else None
    judge_failures = judge_obj.judge_rows(suite.rubric, rows) if judge_obj else 0
    out, checkpoint = Path(args.out), args.checkpoint or "scored"
    path = samples_path(out, checkpoint, suite.name)
    write_jsonl(path, rows)
    result = suite_result(suite, rows, str(path.relative_to(out)), judge_failures)
    result.failures.update(mismatch)
    config = {"suite": suite.name, "predictions": str(args.predictions),
              "predictions_sha256": file_sha256(Path(args.predictions)), "partial": bool(args.partial),
              "judge": judge_obj.describe() if judge_obj else None}
    record = RunRecord(kind="score", world=suite.world, config=config, config_hash=stable_hash(config),
                       command=f"harness score --suite {suite.name} --predictions {args.predictions}",
                       packages=package_versions(), git_commit=git_commit(), machine=machine_description(),
                       created=now_iso(), timings={"score": round(time.time() - t0, 2)},
                       checkpoints={checkpoint: {suite.name: result}},
                       checkpoint_paths={checkpoint: str(args.predictions)})
    record.save(out / "record.json")
    print_record(record)
    print(json.dumps({"items": len(rows), **mismatch, "judge_failures": judge_failures}))
    return record


def add_parser(sub) -> None:
    p = sub.add_parser("score", help="score saved answers (id + prediction per line) with a suite's own code")
    p.add_argument("--suite", required=True, help="suite name (see `harness ls`)")
    p.add_argument("--predictions", required=True, help="JSONL: one {id, prediction} per line (a samples file works)")
    p.add_argument("--out", required=True, help="output directory: record.json + samples/")
    p.add_argument("--judge", default=None, help="judge for judged suites (default: rule for micro, openai for real)")
    p.add_argument("--checkpoint", default=None, help="name under samples/ and in the record (default: scored)")
    p.add_argument("--partial", action="store_true",
                   help="score the answers that match, recording how many items had none and how many ids were unknown")

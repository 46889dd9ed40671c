"""Integrity (issue 13): caches keyed on every input that changes a number, comparisons that refuse mixed
inputs, a cache that verifies what it reuses, workers that die with their run.

Mutation style: each cache test changes one input (the ground truth, the item count, the judge model, the judge
endpoint, a micro builder constant, the evaluation code) between two otherwise identical calls and checks that
the second call computed with the new input instead of serving the cached result of the old one. Each corruption
test damages a cached file and checks that it is detected and redone (or refused with a message), never served
and never a traceback. Tiny random-weight models, fabricated benchmark files, fake judges on 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.errors import HarnessError

sys.path.insert(0, str(Path(__file__).parent))
from eval_fixtures import build_tiny_llava

REAL = Path(__file__).resolve().parent.parent / "benchmarks" / "tasks" / "real"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    import torch

    torch.set_num_threads(1)
    return build_tiny_llava(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture()
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HARNESS_QUIET", "1")
    for var in ("HARNESS_JUDGE_URL", "HARNESS_JUDGE_MODEL", "HARNESS_JUDGE_TIMEOUT", "HARNESS_JUDGE_RETRIES"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


_TASK_YAML = """task: {task}
dataset_path: json
dataset_kwargs:
  data_files:
    test: data/docs.jsonl
test_split: test
output_type: generate_until
doc_to_visual: !function utils.doc_to_visual
doc_to_text: !function utils.doc_to_text
doc_to_target: answer
generation_kwargs:
  max_new_tokens: 4
  temperature: 0
  do_sample: false
  until: []
process_results: !function utils.process_results
metric_list:
  - metric: harness_items
    aggregation: !function utils.count_items
    higher_is_better: true
score_key: harness_no_clt_score
metadata:
  version: 1.0
"""
_TASK_UTILS = """from pathlib import Path
from PIL import Image
HERE = Path(__file__).resolve().parent
def doc_to_visual(doc):
    with Image.open(HERE / "data" / doc["image"]) as im:
        return [im.convert("RGB")]
def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    return doc["question"]
def process_results(doc, results):
    return {"harness_items": {"id": str(doc["id"]), "question": doc["question"], "target": doc["answer"],
                              "prediction": (results[0] if results else "") or "", "truth": doc["truth"],
                              "image_content": doc["truth"], "score": None}}
def count_items(items):
    return len(items)
"""


def _doc(i: int, truth: list[str]) -> dict:
    return {"id": i, "image": f"img{i % 2}.jpg", "question": "what is in the image ?", "answer": truth[0],
            "truth": truth}


def _write_jsonl(path: Path, docs: list[dict]) -> None:
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))


def _named(rows) -> float:
    """Share of answers naming the first true object (what the ground truth decides)."""
    return sum(r["truth"][0] in r["prediction"] for r in rows) / len(rows)


def _mean_score(rows) -> float:
    return sum(r["score"] for r in rows) / len(rows)


@pytest.fixture()
def real_folder(tmp_path, monkeypatch) -> Path:
    """A local benchmark (task YAMLs + hooks + data/docs.jsonl + images) in the real world's shape, and two suites
    reading it: "itest" (scored against the ground truth) and "itest-judged" (MMHal rubric, by the run's judge).
    harness resolves suites with registry.load, so both are served from there."""
    from PIL import Image

    from harness import registry
    from harness.suite import Metric, Suite

    folder = tmp_path / "real"
    (folder / "data").mkdir(parents=True)
    (folder / "utils.py").write_text(_TASK_UTILS)
    for task in ("itest_desc", "itest_judged"):
        (folder / f"{task}.yaml").write_text(_TASK_YAML.format(task=task))
    for i, colour in enumerate([(200, 30, 30), (30, 30, 200)]):
        Image.new("RGB", (64, 64), colour).save(folder / "data" / f"img{i}.jpg")
    _write_jsonl(folder / "data" / "docs.jsonl", [_doc(i, ["cup", "person"]) for i in range(3)])
    local = {"itest": Suite(name="itest", world="real", tasks=("itest_desc",), primary="named", version="1",
                            metrics=(Metric("named", "higher", _named),), include=folder),
             "itest-judged": Suite(name="itest-judged", world="real", tasks=("itest_judged",), primary="score",
                                   version="1", metrics=(Metric("score", "higher", _mean_score),), judged=True,
                                   rubric="mmhal", include=folder)}
    real_load = registry.load
    monkeypatch.setattr(registry, "load", lambda kind, name: local[name] if kind == "suites" and name in local
                        else real_load(kind, name))
    return folder


class _Console:
    """What harness.api's stages print to, collected."""

    def __init__(self):
        self.lines: list[str] = []

    def print(self, *args, **_):
        self.lines.append(" ".join(str(a) for a in args))

    def rule(self, *args, **_):
        pass


def _eval_stage(tiny: Path, root: Path, suites: list[str], world: str = "real", judge: str = "rule",
                console: _Console | None = None):
    """harness run's base-model evaluation stage (harness.api._evaluate) under `root`, as `harness run` calls it."""
    from harness import api
    from harness.stages import Stages

    console = console or _Console()
    settings = api.RunSettings(world=world, base_model=str(tiny), suites=suites, judge=judge,
                               eval=api.EvalSettings(batch_size=4, limit=None if world == "real" else 6))
    st = api._evaluate(settings, Stages(root, log=console.print), "eval-base", "base", None, {}, console)
    return st, console


def _rows(st, suite: str) -> list[dict]:
    from harness.io import read_jsonl
    return read_jsonl(st.path / "samples" / "base" / f"{suite}.jsonl")


# ---------------------------------------------------------------- the five cache cases

def test_changed_ground_truth_is_a_new_base_evaluation(env, tiny, real_folder):
    """Case 1: same item count, new truth -> the cached base evaluation must not be served."""
    first, _ = _eval_stage(tiny, env / "base-eval", ["itest"])
    assert [r["truth"] for r in _rows(first, "itest")] == [["cup", "person"]] * 3
    _write_jsonl(real_folder / "data" / "docs.jsonl", [_doc(i, ["dog"]) for i in range(3)])
    second, _ = _eval_stage(tiny, env / "base-eval", ["itest"])
    assert not second.cached and second.key != first.key
    assert [r["truth"] for r in _rows(second, "itest")] == [["dog"]] * 3
    assert second.output["itest"]["data"] != first.output["itest"]["data"]


def test_grown_suite_is_a_new_base_evaluation(env, tiny, real_folder):
    """Case 2: 3 -> 5 items: evaluated again on all 5, not "n 3/5" from the cache."""
    first, _ = _eval_stage(tiny, env / "base-eval", ["itest"])
    assert first.output["itest"]["items"] == 3
    _write_jsonl(real_folder / "data" / "docs.jsonl", [_doc(i, ["cup", "person"]) for i in range(5)])
    second, _ = _eval_stage(tiny, env / "base-eval", ["itest"])
    assert not second.cached and len(_rows(second, "itest")) == 5
    assert second.output["itest"]["metrics"]["named"]["n"] == 5


@pytest.fixture()
def servers():
    """Two fake OpenAI-compatible judges on 127.0.0.1 (tests/test_judges.py's: the reply, a slow mode, the calls)."""
    from test_judges import _Server

    made = [_Server(), _Server()]
    yield made
    for s in made:
        s.close()


@pytest.fixture()
def recording_judges():
    """Two fake judges that record the models they were asked for (tests/real_fixtures.py's)."""
    from real_fixtures import FakeJudge

    made = [FakeJudge(), FakeJudge()]
    yield made
    for s in made:
        s.close()


def test_changed_judge_model_or_endpoint_is_a_new_base_evaluation(env, tiny, real_folder, recording_judges,
                                                                  monkeypatch):
    """Case 3 (HARNESS_JUDGE_MODEL changed) and the endpoint changed: the base is judged again, by the new one."""
    one, two = recording_judges
    monkeypatch.setenv("HARNESS_JUDGE_URL", one.url)
    monkeypatch.setenv("HARNESS_JUDGE_MODEL", "judge-a")
    first, _ = _eval_stage(tiny, env / "base-eval", ["itest-judged"], judge="openai")
    asked = len(one.models)          # one request per distinct prompt (identical answers share a reply)
    assert asked >= 1 and one.models == ["judge-a"] * asked and first.output["itest-judged"]["judge"]["model"] == "judge-a"
    monkeypatch.setenv("HARNESS_JUDGE_MODEL", "judge-b")
    second, _ = _eval_stage(tiny, env / "base-eval", ["itest-judged"], judge="openai")
    assert not second.cached and one.models == ["judge-a"] * asked + ["judge-b"] * asked
    assert second.output["itest-judged"]["judge"]["model"] == "judge-b"
    monkeypatch.setenv("HARNESS_JUDGE_URL", two.url)
    third, _ = _eval_stage(tiny, env / "base-eval", ["itest-judged"], judge="openai")
    assert not third.cached and two.models == ["judge-b"] * asked          # asked, not served another server's replies
    assert third.output["itest-judged"]["judge"]["base_url"] == two.url
    assert "key" not in json.dumps(third.output["itest-judged"]["judge"]).lower()


def test_judge_reply_cache_is_keyed_on_the_endpoint(env, servers):
    """Case 4: the reply cache keyed on (model, prompt) served server one's replies for server two."""
    from harness.judges.openai_judge import OpenAIJudge

    one, two = servers
    two.reply = "Rating: 2"
    row = {"id": "1", "question": "q ?", "target": "a dog", "prediction": "a cat", "image_content": ["Dog"]}
    for server, want in ((one, 5.0), (two, 2.0)):
        j = OpenAIJudge(base_url=server.url, model="same-model", cache_dir=env / "judge-cache", backoff=0.01)
        rows = [dict(row)]
        assert j.judge_rows("mmhal", rows) == 0 and rows[0]["score"] == want
    assert one.calls == 1 and two.calls == 1


def test_changed_micro_builder_constant_rebuilds_the_micro_data(env, monkeypatch):
    """Case 5: a builder constant (the number of CHAIR images) changed -> new data, not the stale folder."""
    from benchmarks import micro_data

    stale = micro_data.build_micro_tasks(env / "data")
    assert len((stale / "data" / "chair.jsonl").read_text().splitlines()) == micro_data.CHAIR_IMAGES
    monkeypatch.setattr(micro_data, "CHAIR_IMAGES", 7)
    fresh = micro_data.build_micro_tasks(env / "data")
    assert fresh != stale and len((fresh / "data" / "chair.jsonl").read_text().splitlines()) == 7


def test_micro_builder_source_is_part_of_the_data_key(env, monkeypatch, tmp_path):
    """Editing the code that builds micro data (here: a copy of a builder module) changes the data's key."""
    from benchmarks import micro_data
    from harness import stages

    pkg = tmp_path / "src" / "fake_builder"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("N = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    monkeypatch.setattr(micro_data, "BUILDER_MODULES", micro_data.BUILDER_MODULES + ("fake_builder",))
    monkeypatch.setattr(stages, "_CODE_CACHE", {})
    before = micro_data.builder_key()
    (pkg / "__init__.py").write_text("N = 2\n")
    stages._CODE_CACHE.clear()
    assert micro_data.builder_key() != before


def test_stage_keys_follow_the_evaluation_code(env, tiny, monkeypatch, tmp_path):
    """The code version is part of the evaluation stage key: editing evaluation code is a new evaluation (a
    code_version that ignored the source would serve the old evaluation)."""
    from harness import api, evaluate, stages

    pkg = tmp_path / "src" / "fake_eval_code"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("VERSION = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    monkeypatch.setattr(api, "EVAL_CODE", ("fake_eval_code",))
    monkeypatch.setattr(stages, "_CODE_CACHE", {})
    calls = []

    def fake_evaluate(model, *, out_dir, checkpoint, **kw):
        calls.append(out_dir)
        (Path(out_dir) / "samples" / checkpoint).mkdir(parents=True, exist_ok=True)
        return {}
    monkeypatch.setattr(evaluate, "evaluate_checkpoint", fake_evaluate)
    first, _ = _eval_stage(tiny, env / "stages", ["micro-chair"], world="micro")
    again, _ = _eval_stage(tiny, env / "stages", ["micro-chair"], world="micro")
    assert again.cached and len(calls) == 1
    (pkg / "__init__.py").write_text("VERSION = 2\n")
    stages._CODE_CACHE.clear()
    edited, _ = _eval_stage(tiny, env / "stages", ["micro-chair"], world="micro")
    assert not edited.cached and edited.key != first.key and len(calls) == 2


# ---------------------------------------------------------------- comparisons refuse mixed inputs

def _result(data="", judge=None, items=None):
    from harness.record import MetricValue, SuiteResult
    return SuiteResult("micro-mmhal", "2", {"score": MetricValue(4.0, [3.5, 4.5], 8, "higher")}, data=data,
                       judge=judge, items=items)


def test_comparison_refuses_different_data_judges_and_item_counts():
    from harness.compare import compare_suite, same_inputs
    from harness.registry import load

    with pytest.raises(HarnessError, match="different data.*aaa vs bbb"):
        same_inputs("micro-mmhal", _result("aaa"), _result("bbb"))
    with pytest.raises(HarnessError, match="different judges.*model 'judge-a' vs 'judge-b'"):
        same_inputs("micro-mmhal", _result(judge={"name": "openai", "model": "judge-a"}),
                    _result(judge={"name": "openai", "model": "judge-b"}))
    with pytest.raises(HarnessError, match="different number of items.*8 vs 12"):
        same_inputs("micro-mmhal", _result(items=8), _result(items=12))
    # a result made before these fields existed is "unknown": compared, not refused
    same_inputs("micro-mmhal", _result(), _result("bbb", {"name": "rule"}, 12))
    pope = load("suites", "micro-pope")
    rows = [{"id": f"q{i}", "parsed": "yes", "label": "yes", "correct": True, "split": "random",
             "prediction": "yes ."} for i in range(12)]
    with pytest.raises(HarnessError, match=r"different items \(8 vs 12"):
        compare_suite(pope, rows[:8], rows)


def test_gate_refuses_a_reference_on_other_data_or_judge(tmp_path):
    from records_fixtures import make_record, micro_suites

    from harness.gate import checks

    suites = micro_suites()
    ref = make_record(suites, base_q=0.6, aligned_q=0.85, n=240, compare=False)
    rec = make_record(suites, base_q=0.6, aligned_q=0.85, n=240, compare=False)
    checks(rec, ref)                                  # the old records carry no manifests: unknown, gated
    rec_ck, ref_ck = rec.checkpoints["aligned"], ref.checkpoints["aligned"]
    rec_ck["micro-pope"].data, ref_ck["micro-pope"].data = "1111", "2222"
    with pytest.raises(HarnessError, match="micro-pope: record and reference were evaluated on different data"):
        checks(rec, ref)
    rec_ck["micro-pope"].data = "2222"
    rec_ck["micro-chair"].judge, ref_ck["micro-chair"].judge = {"model": "x"}, {"model": "y"}
    with pytest.raises(HarnessError, match="different judges"):
        checks(rec, ref)
    smaller = make_record(suites, base_q=0.6, aligned_q=0.85, n=200, compare=False)
    with pytest.raises(HarnessError, match="240 items, the record on 200"):
        checks(smaller, make_record(suites, base_q=0.6, aligned_q=0.85, n=240, compare=False))


def test_ci_reference_still_gates_against_itself():
    """The committed CI reference predates the manifests: still a valid reference (missing = unknown)."""
    from harness.gate import checks
    from harness.record import RunRecord

    ref = RunRecord.load(Path(__file__).resolve().parent.parent / "leaderboards" / "references" /
                         "micro-rm-dpo-2k.json")
    found, _ = checks(ref, ref)
    assert found and not any(c.regressed for c in found)


# ---------------------------------------------------------------- a cache that verifies what it reuses

def _adapter_and_dataset(d: Path) -> dict:
    (d / "adapter").mkdir()
    (d / "adapter" / "adapter_model.safetensors").write_bytes(os.urandom(4096))
    (d / "dataset").mkdir()
    (d / "dataset" / "data-00000-of-00001.arrow").write_bytes(os.urandom(8192))
    return {"pairs": 6}


@pytest.mark.parametrize("damaged", ["adapter/adapter_model.safetensors", "dataset/data-00000-of-00001.arrow"])
def test_truncated_stage_file_is_detected_and_the_stage_redone(tmp_path, damaged):
    from harness.stages import Stages

    said: list[str] = []
    stages = Stages(tmp_path / "stages", log=said.append)
    calls = []

    def build(d):
        calls.append(d)
        return _adapter_and_dataset(d)
    first = stages.run("train", {"x": 1}, build)
    assert stages.run("train", {"x": 1}, build).cached and len(calls) == 1
    with open(first.path / damaged, "r+b") as f:
        f.truncate(100)
    again = stages.run("train", {"x": 1}, build)
    assert len(calls) == 2 and not again.cached
    assert (again.path / damaged).stat().st_size > 100
    assert any("damaged" in m and damaged in m and "truncated" in m for m in said), said
    # the same size but other bytes (a file overwritten in place) is damage too
    data = bytearray((again.path / damaged).read_bytes())
    data[0] ^= 0xFF
    (again.path / damaged).write_bytes(bytes(data))
    stages.run("train", {"x": 1}, build)
    assert len(calls) == 3 and any("sha256 differs" in m for m in said)


def test_damaged_done_marker_is_redone_not_a_traceback(tmp_path):
    from harness.stages import DONE, Stages

    said: list[str] = []
    stages = Stages(tmp_path / "stages", log=said.append)
    first = stages.run("eval-base", {"x": 1}, _adapter_and_dataset)
    (first.path / DONE).write_text('{"name": "eval-base", "ke')          # torn write
    again = stages.run("eval-base", {"x": 1}, _adapter_and_dataset)
    assert not again.cached and json.loads((again.path / DONE).read_text())["files"]
    assert any("unreadable DONE" in m for m in said)


def test_run_dir_outputs_share_no_damage_with_the_cache(tmp_path):
    from harness.api import _publish_dir
    from harness.stages import Stages

    st = Stages(tmp_path / "stages").run("train", {"x": 1}, _adapter_and_dataset)
    _publish_dir(st.path / "adapter", tmp_path / "run" / "adapter")
    published = tmp_path / "run" / "adapter" / "adapter_model.safetensors"
    assert published.stat().st_nlink == 1 and published.read_bytes() == (st.path / "adapter" /
                                                                         "adapter_model.safetensors").read_bytes()
    with open(published, "r+b") as f:
        f.truncate(10)                                  # damage in the run directory ...
    assert (st.path / "adapter" / "adapter_model.safetensors").stat().st_size == 4096   # ... stays there


def test_truncated_samples_in_the_shared_base_eval_cache_are_redone(env, tiny):
    cache = env / "cache" / "base-eval"
    console = _Console()
    first, _ = _eval_stage(tiny, cache, ["micro-pope"], world="micro", console=console)
    samples = first.path / "samples" / "base" / "micro-pope.jsonl"
    good = samples.read_text()
    samples.write_text(good[: len(good) // 2])                 # a torn copy: half a JSON line at the end
    second, _ = _eval_stage(tiny, cache, ["micro-pope"], world="micro", console=console)
    assert not second.cached and (second.path / "samples" / "base" / "micro-pope.jsonl").read_text() == good
    assert any("damaged" in m and "micro-pope.jsonl" in m for m in console.lines), console.lines


def test_truncated_samples_in_an_eval_directory_are_evaluated_again(env, tiny, capsys):
    from harness.evaluate import _finished_suite, evaluate_checkpoint, load_samples

    out = env / "ev"
    first = evaluate_checkpoint(str(tiny), suites=["micro-pope"], out_dir=out, limit=6, batch_size=8,
                                progress=False)["micro-pope"]
    path = out / "samples" / "base" / "micro-pope.jsonl"
    good = path.read_text()
    path.write_text(good[:-40])
    again = evaluate_checkpoint(str(tiny), suites=["micro-pope"], out_dir=out, limit=6, batch_size=8,
                                progress=False)["micro-pope"]
    assert path.read_text() == good
    assert json.dumps(dataclasses.asdict(again)) == json.dumps(dataclasses.asdict(first))   # NaN-safe equality
    assert "damaged" in capsys.readouterr().err
    edited = good.replace('"prediction": "', '"prediction": "X', 1)          # valid JSON, other content
    assert edited != good
    path.write_text(edited)
    key = json.loads(path.with_suffix(".meta.json").read_text())["key"]
    assert _finished_suite(out, "base", "micro-pope", key) is None            # not reused: evaluated again
    assert "sha256 differs" in capsys.readouterr().err
    path.write_text(good[:-40])
    with pytest.raises(HarnessError, match="damaged samples file"):      # read directly: a message, no traceback
        load_samples(out, "base", "micro-pope")


def test_failed_and_off_rubric_judge_replies_are_not_cached_and_are_retried(env, servers):
    from harness.judges.openai_judge import OpenAIJudge, parse_rating

    assert parse_rating("Rating: 6.5") is None and parse_rating("Rating: 7") is None
    assert parse_rating("Rating: 6") == 6 and parse_rating("Rating: 4.") == 4
    server = servers[0]
    rows = [{"id": str(i), "question": "q ?", "target": "a dog", "prediction": f"answer {i}",
             "image_content": ["Dog"]} for i in range(4)]
    server.reply = "Rating: 6.5"
    judge = OpenAIJudge(base_url=server.url, model="m", cache_dir=env / "judge-cache", backoff=0.01)
    with pytest.raises(HarnessError, match="failed on the first 3"):      # counted failures, never a 6
        judge.judge_rows("mmhal", [dict(r) for r in rows])
    cached = [p.read_text() for p in (env / "judge-cache").rglob("*.json")]
    assert not any("6.5" in c for c in cached)                             # a failed reply is no answer
    server.reply = "Good.\nRating: 4"                                       # the judge is healthy again
    again = [dict(r) for r in rows]
    assert judge.judge_rows("mmhal", again) == 0 and {r["score"] for r in again} == {4.0}
    assert server.calls == 3 + 4                                           # every item asked again
    judge.judge_rows("mmhal", [dict(r) for r in rows])
    assert server.calls == 7                                               # good replies are cached


def test_hanging_judge_is_declared_down_in_seconds(env, servers, monkeypatch):
    from harness.judges.openai_judge import OpenAIJudge

    server = servers[0]
    server.mode = "slow"                                                   # 1 s per reply
    monkeypatch.setenv("HARNESS_JUDGE_TIMEOUT", "0.2")
    monkeypatch.setenv("HARNESS_JUDGE_RETRIES", "0")
    judge = OpenAIJudge(base_url=server.url, model="m", cache_dir=env / "judge-cache")
    rows = [{"id": str(i), "question": "q", "target": "t", "prediction": "p"} for i in range(20)]
    t0 = time.perf_counter()
    with pytest.raises(HarnessError, match="is it down"):
        judge.judge_rows("mmvet", rows)
    assert time.perf_counter() - t0 < 3.0
    monkeypatch.setenv("HARNESS_JUDGE_RETRIES", "-1")
    with pytest.raises(HarnessError, match="HARNESS_JUDGE_RETRIES must be >= 0"):
        OpenAIJudge(base_url=server.url)
    monkeypatch.setenv("HARNESS_JUDGE_RETRIES", "0")
    monkeypatch.setenv("HARNESS_JUDGE_TIMEOUT", "soon")
    with pytest.raises(HarnessError, match="HARNESS_JUDGE_TIMEOUT: expected a number"):
        OpenAIJudge(base_url=server.url)


# ---------------------------------------------------------------- workers die with their run

_PARENT = """
import os, sys, time
sys.path.insert(0, {root!r})
from harness.procs import worker_pool
with worker_pool(2) as ex:
    pids = {{ex.submit(os.getpid).result() for _ in range(8)}}
    ex.submit(time.sleep, 60)
    print(" ".join(map(str, sorted(pids))), flush=True)
    time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_die_when_their_run_is_killed():
    root = str(Path(__file__).resolve().parent.parent)
    parent = subprocess.Popen([sys.executable, "-c", _PARENT.format(root=root)], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert pids and all(_alive(p) for p in pids)
    finally:
        parent.send_signal(signal.SIGKILL)                   # kill -9: no Python cleanup runs in the parent
        parent.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids)


def test_bad_judge_setting_is_refused_before_any_work(env, monkeypatch):
    from harness import api

    monkeypatch.setenv("HARNESS_JUDGE_RETRIES", "many")
    with pytest.raises(HarnessError, match="HARNESS_JUDGE_RETRIES: expected an integer"):
        api.prepare("rm-dpo", "2k", "micro", env / "run", None, ["judge=openai"], "micro-mmhal")
    assert not (env / "run").exists()


def test_data_manifest_follows_content_not_location(tmp_path):
    """The same benchmark files in two folders hash the same; an image or a document changed does not."""
    from PIL import Image

    from harness.manifest import manifest, suite_manifest
    from harness.suite import Metric, Suite

    def folder(name: str, colour=(200, 30, 30)) -> Path:
        d = tmp_path / name
        (d / "data").mkdir(parents=True)
        (d / "itest_desc.yaml").write_text(_TASK_YAML.format(task="itest_desc"))
        Image.new("RGB", (8, 8), colour).save(d / "data" / "img0.jpg")
        Image.new("RGB", (8, 8), colour).save(d / "data" / "img1.jpg")
        _write_jsonl(d / "data" / "docs.jsonl", [_doc(i, ["cup"]) for i in range(2)])
        return d

    def suite(d: Path) -> Suite:
        return Suite(name="itest", world="real", tasks=("itest_desc", "pope_adv"), primary="named", version="1",
                     metrics=(Metric("named", "higher", _named),), include=d)
    a, b = suite_manifest(suite(folder("a")), [tmp_path / "a"]), suite_manifest(suite(folder("b")), [tmp_path / "b"])
    assert a == b and {"data/docs.jsonl", "data/img0.jpg", "data/img1.jpg", "hub:pope_adv"} <= set(a["files"])
    other_image = suite_manifest(suite(folder("c", colour=(0, 0, 0))), [tmp_path / "c"])
    assert other_image["hash"] != a["hash"] and other_image["files"]["data/docs.jsonl"] == a["files"]["data/docs.jsonl"]
    plain = manifest([tmp_path / "a" / "data"])
    assert set(plain["files"]) == {"data/docs.jsonl", "data/img0.jpg", "data/img1.jpg"}

"""Plugins as first-class objects: the one registry (entry points, collisions, types), hooks keyed on their name,
config and code, suites that carry their task folder, rubric and rows builder, and a third-party package
(examples/thirdparty: a method = 1 file + 1 preset, a suite = its task folder + 1 declaration) installed through
entry points and run on a tiny configuration.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from test_run import TINY, zoo  # noqa: F401  (the shared reduced zoo fixture and rm-dpo's tiny overrides)

from harness import registry
from harness.errors import HarnessError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "thirdparty"


def install(package_dir: Path, name: str, tables: dict[str, dict[str, str]], target: Path) -> Path:
    """A throwaway installed distribution: the package copied to `target` with a dist-info whose
    entry_points.txt holds `tables` (what `pip install` writes); `target` goes on sys.path."""
    if package_dir is not None:
        shutil.copytree(package_dir, target / package_dir.name)
    info = target / f"{name.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) + "\n" for group, eps in tables.items()))
    return target


@pytest.fixture()
def example(tmp_path, monkeypatch):
    """examples/thirdparty installed into a temporary folder through its pyproject's entry points."""
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    install(EXAMPLE / "harness_example", project["name"], project["entry-points"], tmp_path / "site")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    yield tmp_path / "site"
    for mod in [m for m in sys.modules if m.startswith("harness_example")]:
        del sys.modules[mod]


# ---------------------------------------------------------------- the registry

def test_builtins_are_the_projects_own_entry_points():
    tables = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    for kind, (group, _) in registry.KINDS.items():
        assert tables[group], group
        assert {n: t for n, t in registry.names(kind).items() if n in tables[group]} == tables[group]
    assert "harness.methods" in tables and "rm-dpo" in tables["harness.methods"]


def test_every_registered_plugin_loads_with_its_declared_type():
    from harness.judges import Judge
    from harness.method import Method, Scorer, Selector
    from harness.suite import Suite
    expected = {"methods": Method, "suites": Suite, "judges": Judge, "scorers": Scorer, "selectors": Selector}
    for kind, cls in expected.items():
        for name in registry.names(kind):
            obj = registry.load(kind, name)
            assert isinstance(obj, cls) or issubclass(obj, cls), (kind, name)
            if kind in ("methods", "suites"):
                assert obj.name == name
            if kind in ("scorers", "selectors"):
                assert obj.name == name


def test_a_name_collision_is_an_error_naming_both_targets(tmp_path, monkeypatch):
    install(None, "collider", {"harness.methods": {"rm-dpo": "collider.mod:METHOD"}}, tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(HarnessError, match="'rm-dpo' is registered twice") as e:
        registry.names("methods")
    assert "pipelines.rm_dpo:METHOD (distribution harness)" in str(e.value)
    assert "collider.mod:METHOD (distribution collider)" in str(e.value)


def test_a_plugin_of_the_wrong_type_is_refused(monkeypatch):
    monkeypatch.setitem(registry.METHODS, "not-a-method", "benchmarks.suites:MICRO_POPE")
    monkeypatch.setitem(registry.SUITES, "not-a-suite", "pipelines.rm_dpo:METHOD")
    with pytest.raises(HarnessError, match="not an instance of harness.method.Method"):
        registry.load("methods", "not-a-method")
    with pytest.raises(HarnessError, match="not an instance of harness.suite.Suite"):
        registry.load("suites", "not-a-suite")
    monkeypatch.setitem(registry.JUDGES, "not-a-judge", "harness.judges.rule:assess")
    with pytest.raises(HarnessError, match="not a subclass of harness.judges.Judge"):
        registry.load("judges", "not-a-judge")


def test_a_method_without_a_micro_preset_is_refused_not_run_on_the_gpu_recipe(tmp_path, monkeypatch):
    pkg = tmp_path / "nopreset"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "m.py").write_text("from pipelines.preference import dpo_method\n"
                              "METHOD = dpo_method('no-preset', description='x')\n")
    install(None, "nopreset", {"harness.methods": {"no-preset": "nopreset.m:METHOD"}}, tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    from harness.api import prepare
    with pytest.raises(HarnessError, match=r"method 'no-preset' has no micro preset \(2k.yaml or _micro.yaml"):
        prepare("no-preset", "2k", out=tmp_path / "run")
    assert registry.load("methods", "no-preset").preset_dir() == pkg / "presets" / "no-preset"


# ---------------------------------------------------------------- hooks: keyed on name, config and code

def _hook_module(path: Path, sign: str) -> None:
    path.write_text(textwrap.dedent(f"""
        from dataclasses import dataclass
        from harness.method import Scorer

        @dataclass(frozen=True)
        class Length(Scorer):
            name = "length"
            scale: float = 1.0

            def __call__(self, images, questions, responses):
                return [[{sign}self.scale * len(r["text"]) for r in rs] for rs in responses]
        """))


def test_a_changed_hook_with_the_same_name_gets_another_stage_key(tmp_path, monkeypatch):
    for name, sign in (("hook_a", ""), ("hook_b", "-")):       # the same hook, the second one inverted
        _hook_module(tmp_path / f"{name}.py", sign)
    monkeypatch.syspath_prepend(str(tmp_path))
    from hook_a import Length as A
    from hook_b import Length as B
    assert A.name == B.name == "length"
    assert A().key()["name"] == B().key()["name"] and A().key()["config"] == B().key()["config"]
    assert A().key() != B().key()                               # the code differs
    assert A(scale=2.0).key() != A().key()                      # the config differs
    responses = [[{"text": "ab"}, {"text": "abcd"}]]
    assert A()([], ["q"], responses) == [[2.0, 4.0]] and B()([], ["q"], responses) == [[-2.0, -4.0]]
    # editing a hook's file in place changes its key too (the hash follows the file, not the module name)
    before = A().key()["code"]
    _hook_module(tmp_path / "hook_a.py", "0 * ")
    assert A().key()["code"] != before


def test_code_versions_follow_the_source():
    """The stage keys' code hashes: different code, different hash (a constant would reuse stale stages)."""
    from harness.method import code_version_of
    from harness.stages import code_version
    assert code_version("pipelines.random_pairs") != code_version("pipelines.oracle")
    assert code_version("pipelines.synth", "harness.world") != code_version("pipelines.synth")
    assert code_version_of("pipelines.random_pairs") != code_version_of("pipelines.oracle")
    m = {n: registry.load("methods", n) for n in ("rm-dpo", "random-pairs", "oracle")}
    assert len({x.code_version() for x in m.values()}) == 3


def test_synthesis_redoes_the_rewards_stage_for_a_changed_hook_with_the_same_name(
        tmp_path, monkeypatch, zoo):  # noqa: F811
    """Two runs through the real synthesis with a same-named scorer, the second inverted: the rewards stage is
    recomputed and the pairs flip (before hooks carried their code in the key, the old scores were reused)."""
    from types import SimpleNamespace

    from harness.config import build, deep_merge, load_yaml, parse_overrides
    from harness.stages import Stages
    from pipelines.preference import PreferenceConfig
    from pipelines.synth import synthesize
    from pipelines.synth.hooks import RulesSelector
    monkeypatch.setenv("HARNESS_ZOO_DIR", str(zoo))
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HARNESS_QUIET", "1")
    over = [o for o in TINY if o.startswith("synth.")] + ["synth.responders.workers=1"]
    data = deep_merge(load_yaml(ROOT / "pipelines" / "presets" / "rm-dpo" / "_micro.yaml"), parse_overrides(over))
    cfg = build(PreferenceConfig, {k: data[k] for k in ("synth", "train")})
    run = SimpleNamespace(world="micro", seed=0)
    stages = Stages(tmp_path / "stages")
    pairs = []
    for name, sign in (("first", ""), ("second", "-")):
        (tmp_path / "hooks").mkdir(exist_ok=True)
        _hook_module(tmp_path / "hooks" / f"{name}.py", sign)
        monkeypatch.syspath_prepend(str(tmp_path / "hooks"))
        scorer = __import__(name).Length()
        card = synthesize(cfg.synth, n_pairs=3, seed=0, world="micro", policy="micro-llava", stages=stages,
                          out_dir=None, scorer=scorer, selector=RulesSelector.configure(cfg, run))
        pairs.append(json.loads((Path(card["dataset_dir"]).parent / "pairs.jsonl").read_text().splitlines()[0]))
    assert len(list((tmp_path / "stages").glob("rewards-*"))) == 2
    assert len(list((tmp_path / "stages").glob("responses-*"))) == 1          # upstream stages are shared
    first, second = pairs
    assert len(first["chosen"]) > len(first["rejected"]) and len(second["chosen"]) < len(second["rejected"])


# ---------------------------------------------------------------- suites carry their rubric, folder and rows

def test_judged_suites_declare_their_rubric():
    from harness.evaluate import _judge_task
    from harness.judges import TASKS
    judged = {n: registry.load("suites", n) for n in registry.names("suites")}
    judged = {n: s for n, s in judged.items() if s.judged}
    assert {n: _judge_task(s) for n, s in judged.items()} == {
        "micro-mmhal": "mmhal", "micro-mmvet": "mmvet", "mmhal": "mmhal", "mmvet": "mmvet"}
    assert all(_judge_task(s) in TASKS for s in judged.values())
    from harness.suite import Suite
    with pytest.raises(ValueError, match="names no rubric"):
        Suite("x", "micro", ("t",), (), primary="p", version="1", judged=True)


def test_other_lmms_eval_tasks_get_generic_rows_not_a_key_error():
    from benchmarks.rows import rows_from_samples
    rows = rows_from_samples("mme", [{"doc_id": 3, "target": "Yes", "filtered_resps": ["Yes"], "mme_score": 1.0,
                                      "doc": {"question": "q"}}])
    assert rows == [{"id": "mme-3", "task": "mme", "prediction": "Yes", "target": "Yes", "degenerate": None,
                     "mme_score": 1.0}]


# ---------------------------------------------------------------- a third-party package, end to end

def test_third_party_method_and_suite_are_listed_without_torch(example):
    import subprocess
    probe = ("import sys\nfrom harness.cli import main\nrc = main(['ls'])\n"
             "print('TORCH', 'torch' in sys.modules)\nsys.exit(rc)\n")
    env = {**os.environ, "PYTHONPATH": str(example), "COLUMNS": "250"}
    p = subprocess.run([sys.executable, "-c", probe], check=False, capture_output=True, text=True, timeout=120,
                       cwd=ROOT, env=env)
    assert p.returncode == 0, p.stderr
    for word in ("concise-dpo", "example-color", "concise", "TORCH False"):
        assert word in p.stdout, word


def test_third_party_method_and_suite_run_on_a_tiny_configuration(example, tmp_path, monkeypatch, zoo):  # noqa: F811
    from harness import api
    from harness.evaluate import evaluate_checkpoint
    from harness.io import read_jsonl
    monkeypatch.setenv("HARNESS_ZOO_DIR", str(zoo))
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HARNESS_QUIET", "1")
    method = registry.load("methods", "concise-dpo")
    assert method.preset_for("2k", "micro") == example / "harness_example" / "presets" / "concise-dpo" / "_micro.yaml"
    ref, cfg = api.prepare("rm-dpo", "2k")[4], api.prepare("concise-dpo", "2k")[4]
    assert ref["method"] == cfg["method"]                        # its preset is rm-dpo's recipe
    over = TINY + ["rounds=2", "synth.select.require_well_formed=false"]
    rec = api.train("concise-dpo", 6, out=tmp_path / "run", overrides=over)
    assert rec.method == "concise-dpo" and (tmp_path / "run" / "adapter" / "adapter_model.safetensors").is_file()
    cards = [json.loads(p.read_text()) for p in (tmp_path / "run" / "stages").rglob("pairs-*/dataset/card.json")]
    assert len(cards) == 2 and all(c["components"]["response_reward"] == "concise" for c in cards)
    for f in (tmp_path / "run" / "stages").rglob("pairs-*/pairs.jsonl"):
        for p in read_jsonl(f):
            assert len(p["chosen"].split()) < len(p["rejected"].split())
    results = evaluate_checkpoint("micro-llava", suites=["example-color"], out_dir=tmp_path / "eval", batch_size=8,
                                  progress=False)
    assert results["example-color"].metrics["accuracy"].n == 6
    rows = read_jsonl(tmp_path / "eval" / "samples" / "base" / "example-color.jsonl")
    assert len(rows) == 6 and all(r["names_color"] in (0.0, 1.0) for r in rows)

"""The failure taxonomy (harness/errors.py, harness/failures.py): exit 2 = bad input refused before any work,
exit 3 = the run failed (error.log + record.json with status "error", stage and message; a re-run resumes),
offline mode effective before `datasets` is imported, and a full disk as one message.

Runs use the committed micro zoo and fake method callables (the failure paths, not the numbers, are under test),
so every test here takes seconds.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import HarnessError, RunFailed

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HARNESS_QUIET", "1")
    monkeypatch.delenv("HARNESS_ZOO_DIR", raising=False)      # the committed micro zoo
    monkeypatch.chdir(tmp_path)
    return tmp_path


class FakeMethod:
    """rm-dpo with its build_pairs / train replaced: counts calls, fails on demand."""

    def __init__(self, monkeypatch, synth_error=None, train_error=None):
        from harness import registry
        self.calls = {"synth": 0, "train": 0}
        self.synth_error, self.train_error = synth_error, train_error
        real_load = registry.load

        def load(kind, name):
            obj = real_load(kind, name)
            if kind == "methods" and name == "rm-dpo":
                obj = dataclasses.replace(obj, build_pairs=self.build_pairs, train=self.train)
            return obj
        monkeypatch.setattr(registry, "load", load)

    def build_pairs(self, cfg, run, out_dir, stages):
        self.calls["synth"] += 1
        if self.synth_error is not None:
            raise self.synth_error
        (out_dir / "dataset").mkdir()
        (out_dir / "dataset" / "pairs.json").write_text("[]")
        return {"pairs": 0}

    def train(self, cfg, run, dataset_dir, out_dir, stages):
        self.calls["train"] += 1
        if self.train_error is not None:
            raise self.train_error
        raise AssertionError("the tests never get past training")


def _run(*args: str) -> int:
    from harness.cli import main
    return main(["run", "--method", "rm-dpo", "--size", "500", "--suites", "micro-pope", *args])


def _error_record(run_dir: Path) -> dict:
    rec = json.loads((run_dir / "record.json").read_text())
    assert rec["status"] == "error"
    return rec


# ---------------------------------------------------------------- exit 3: the run failed

def test_failing_stage_exits_3_with_error_record_log_and_cause(env, monkeypatch, capsys):
    fake = FakeMethod(monkeypatch, synth_error=ZeroDivisionError("boom in synthesis"))
    assert _run("--out", str(env / "run")) == 3
    err = capsys.readouterr().err
    assert "run failed: stage synth: ZeroDivisionError: boom in synthesis" in err
    assert "Traceback" not in err and str(env / "run" / "error.log") in err
    rec = _error_record(env / "run")
    assert rec["error"] == {"stage": "synth", "message": "ZeroDivisionError: boom in synthesis", "log": "error.log"}
    assert rec["kind"] == "run" and rec["config_hash"] and rec["command"].startswith("harness run")
    log = (env / "run" / "error.log").read_text()
    assert "Traceback" in log and "ZeroDivisionError: boom in synthesis" in log and "build_pairs" in log
    assert "harness run --method rm-dpo" in (env / "run" / "run.log").read_text()
    assert fake.calls["synth"] == 1
    assert not list((env / "run" / "stages").glob("synth-*"))        # nothing half-finished looks finished

    from harness.record import RunRecord
    assert RunRecord.load(env / "run" / "record.json").status == "error"     # the schema loads it back


def test_a_failure_message_with_brackets_is_printed_not_read_as_markup(env, monkeypatch, capsys):
    monkeypatch.delenv("HARNESS_QUIET")
    FakeMethod(monkeypatch, synth_error=ValueError("shape [2, 3] vs [/] [red]"))
    assert _run("--out", str(env / "run")) == 3
    assert "ValueError: shape [2, 3] vs [/] [red]" in capsys.readouterr().err
    assert _error_record(env / "run")["error"]["message"] == "ValueError: shape [2, 3] vs [/] [red]"


@pytest.mark.parametrize("command", ["gate", "publish", "compare", "rejudge"])
def test_a_failed_runs_record_is_refused_by_the_readers_with_its_stage(env, monkeypatch, capsys, command):
    FakeMethod(monkeypatch, synth_error=ZeroDivisionError("boom in synthesis"))
    run = env / "run"
    assert _run("--out", str(run)) == 3
    capsys.readouterr()
    from harness.cli import main
    argv = {"gate": ["gate", "--record", str(run), "--reference", str(ROOT / "leaderboards" / "references"
                                                                       / "micro-rm-dpo-2k.json")],
            "publish": ["publish", str(run), "--dir", str(env / "boards")],
            "compare": ["compare", str(run), str(run)],
            "rejudge": ["rejudge", str(run), "--judge", "rule"]}[command]
    assert main(argv) == 2
    assert "failed run (stage synth: ZeroDivisionError: boom in synthesis)" in capsys.readouterr().err
    assert not (env / "boards").exists()


def test_rerun_after_failure_resumes_at_the_failed_stage(env, monkeypatch):
    fake = FakeMethod(monkeypatch, train_error=ValueError("first attempt"))
    assert _run("--out", str(env / "run")) == 3
    assert _error_record(env / "run")["error"]["stage"] == "train"
    fake.train_error = KeyError("second attempt")
    assert _run("--out", str(env / "run")) == 3         # an error record is not a finished run: it runs again
    assert fake.calls == {"synth": 1, "train": 2}      # synthesis was reused from the cache
    rec = _error_record(env / "run")
    assert rec["error"]["stage"] == "train" and "second attempt" in rec["error"]["message"]
    assert (env / "run" / "run.log").read_text().count("--- ") == 2


def test_synth_and_train_commands_share_the_taxonomy(env, monkeypatch):
    fake = FakeMethod(monkeypatch, train_error=OSError("adapter write failed"))
    args = ["--method", "rm-dpo", "--size", "500", "--out", str(env / "run")]
    assert _cli(["synth", *args]) == 0 and fake.calls == {"synth": 1, "train": 0}
    assert _cli(["train", *args]) == 3 and fake.calls == {"synth": 1, "train": 1}
    rec = _error_record(env / "run")
    assert rec["kind"] == "train" and rec["error"]["stage"] == "train"
    assert rec["error"]["message"] == "OSError: adapter write failed"


def test_eval_failure_exits_3_with_error_record(env, monkeypatch, capsys):
    import harness.evaluate

    def broken(*args, **kwargs):
        raise RuntimeError("generation crashed")
    monkeypatch.setattr(harness.evaluate, "evaluate_checkpoint", broken)
    assert _cli(["eval", "--model", "micro-llava", "--suites", "micro-pope", "--out", str(env / "ev")]) == 3
    assert "run failed: stage eval: RuntimeError: generation crashed" in capsys.readouterr().err
    rec = _error_record(env / "ev")
    assert rec["kind"] == "eval" and rec["error"]["stage"] == "eval"
    assert "generation crashed" in (env / "ev" / "error.log").read_text()


def test_api_raises_run_failed_chained_to_the_cause(env, monkeypatch):
    from harness import api
    cause = RuntimeError("inner")
    FakeMethod(monkeypatch, train_error=cause)
    with pytest.raises(RunFailed) as info:
        api.run("rm-dpo", 500, out=env / "run", suites="micro-pope")
    assert info.value.stage == "train" and info.value.__cause__ is cause
    assert info.value.exit_code == 3 and not isinstance(info.value, HarnessError)


def test_lmms_eval_error_is_a_run_failure_with_its_cause_chain(monkeypatch, tmp_path):
    import lmms_eval.evaluator
    import lmms_eval.tasks

    from harness import lmms_adapter

    class Tasks:
        def __init__(self, **kwargs):
            self.all_tasks = ["harness_fake"]

    root = KeyError("doc_to_target")

    def failing_evaluate(**kwargs):
        try:
            raise root
        except KeyError as e:
            raise ValueError("task processing failed") from e
    monkeypatch.setattr(lmms_eval.tasks, "TaskManager", Tasks)
    monkeypatch.setattr(lmms_eval.evaluator, "simple_evaluate", failing_evaluate)
    lm = lmms_adapter.HarnessVLM(model=object(), processor=object(), batch_size=1)
    with pytest.raises(RunFailed, match="lmms-eval failed on harness_fake: KeyError") as info:
        lmms_adapter.run_tasks(lm, ["harness_fake"], include_path=str(tmp_path))
    assert isinstance(info.value.__cause__, ValueError) and info.value.__cause__.__cause__ is root


@pytest.mark.parametrize("last_step", [{"loss": math.nan, "grad_norm": 1.0, "step": 2},
                                       {"loss": 11.9, "grad_norm": math.nan, "step": 2}])   # what lr=1e3 logs
def test_non_finite_training_raises_run_failed(tmp_path, monkeypatch, last_step):
    """pipelines/dpo.py checks TRL's log after training: a NaN loss or gradient is a run failure at the train stage."""
    import datasets
    import trl
    from PIL import Image

    from pipelines import dpo

    class Adapter:
        def save_pretrained(self, path, **kwargs):
            Path(path).mkdir(parents=True)

        def parameters(self):
            return []

    class DivergedTrainer:        # stands in for TRL's DPOTrainer
        def __init__(self, **kwargs):
            self.model = Adapter()
            self.state = type("State", (), {"log_history": [{"loss": 0.69, "grad_norm": 1.2, "step": 1}, last_step]})

        def train(self):
            return type("Result", (), {"global_step": 2, "metrics": {}})

        def add_callback(self, callback):
            pass

        def remove_callback(self, callback):
            pass
    monkeypatch.setattr(trl, "DPOTrainer", DivergedTrainer)
    monkeypatch.delenv("HARNESS_ZOO_DIR", raising=False)     # the committed micro-llava
    datasets.Dataset.from_dict({"prompt": ["q"], "chosen": ["a"], "rejected": ["b"],
                                "images": [[Image.new("RGB", (8, 8))]]}).save_to_disk(str(tmp_path / "ds"))
    cfg = dpo.DPOTrainConfig(lr=1e3, lora_r=2, lora_alpha=4, batch_size=1, max_steps=2)
    with pytest.raises(RunFailed, match="DPO training diverged at step 2") as info:
        dpo.train_dpo(cfg, base="micro-llava", dataset_dir=tmp_path / "ds", out_dir=tmp_path / "out", seed=0)
    assert info.value.stage == "train" and info.value.exit_code == 3


TINY = ["synth.responders.max_new_tokens=12", "synth.responders.batch_size=32", "synth.select.require_well_formed=false",
        "train.max_steps=3", "train.batch_size=4", "train.warmup_ratio=0.0", "eval.limit=8", "eval.batch_size=16",
        "round_size=1.0", "synth.responders.workers=1", "synth.response_reward.workers=1"]


@pytest.mark.slow
def test_lr_1e3_is_a_run_failure_at_train(env, capsys):
    """The issue's case end to end on a 6-pair run (about 25 s): lr=1e3 diverges in round 1 -> exit 3 at train."""
    assert _cli(["run", "--method", "rm-dpo", "--size", "6", "--suites", "micro-pope", "--out", str(env / "run"),
                 *TINY, "train.lr=1e3"]) == 3
    assert "stage train: DPO training diverged at step" in capsys.readouterr().err
    rec = _error_record(env / "run")
    assert rec["error"]["stage"] == "train" and "lower train.lr" in rec["error"]["message"]


# ---------------------------------------------------------------- exit 2: bad input, before any work

def _no_work(monkeypatch):
    from harness import stages
    monkeypatch.setattr(stages.Stages, "run", lambda *a, **k: pytest.fail("a stage ran on bad input"))


def _bad_inputs(tmp: Path) -> list[tuple[list[str], str]]:
    (tmp / "bad-prompts.jsonl").write_bytes(b'{"prompt": "a cat"}\n{"prompt": "caf\xe9"}\n')
    (tmp / "a-file").write_text("x")
    (tmp / "tab.yaml").write_text("train:\n\tlr: 0.001\n")
    return [
        (["synth.prompts.source=" + str(tmp / "bad-prompts.jsonl")], "bad-prompts.jsonl:2: not UTF-8 text"),
        (["--out", str(tmp / "a-file")], "a-file is a file, not a directory"),
        (["--out", "/dev/null"], "/dev/null is a device or other special file"),
        (["--out", str(tmp / "a-file" / "run")], "a-file is a file, not a directory"),
        (["--out", "/proc/harness-run"], "is not writable"),
        (["train.lr=.nan"], "'train.lr' must be a finite number, got nan"),
        (["train.lr=.inf"], "'train.lr' must be a finite number, got inf"),
        (["train.lr=-0.001"], "train.lr must be positive"),
        (["--suites", ","], "--suites ',' names no suite"),
        (["--suites", "micro-pope,pope"], "suite 'pope' is a real-world suite and this is a micro-world run"),
        (["eval.limit=-1"], "eval.limit must be a positive number"),
        (["eval.batch_size=0"], "eval.batch_size must be at least 1"),
        (["--preset", str(tmp / "tab.yaml")], "tab.yaml, line 2, column 1: found character '\\t'"),
        (["seed=-1"], "seed must be >= 0, got -1"),
        (["threads=0"], "threads must be at least 1, got 0"),
        (["train.batch_size=0"], "train.batch_size must be at least 1, got 0"),
        (["train.beta=-1"], "train.beta must be > 0, got -1.0"),
        (["train.loss_weights=[1]"], "train.loss_weights has 1 entries for 2 loss types"),
        (["judge=nope"], "unknown judge 'nope'"),
        (["seed=true"], "config key 'seed' must be int, got True"),
        (["train.loss_type=", "train.loss_weights=null"], "train.loss_type must name at least one loss"),
        (["base_model=no-such-model"], "unknown model 'no-such-model'"),
        (["train.scheduler=foo"], "train.scheduler 'foo' is not a transformers scheduler"),
        (["train.loss_type=[foo,sft]"], "train.loss_type ['foo'] unknown to TRL's DPO"),
        (["synth.responders.models=[nope]"], "unknown model 'nope'"),
        (["round_size=0"], "round_size must be > 0"),
    ]


def test_bad_run_input_exits_2_before_any_work(env, monkeypatch, capsys):
    _no_work(monkeypatch)
    for args, message in _bad_inputs(env):
        if "--out" not in args:
            args = [*args, "--out", str(env / "run")]
        if "--suites" in args:
            rc = _cli(["run", "--method", "rm-dpo", "--size", "500", *args])
        else:
            rc = _run(*args)
        err = capsys.readouterr().err
        assert rc == 2, (args, err)
        assert message in err and err.count("\n") == 1 and "Traceback" not in err, (args, err)
        assert not (env / "run").exists() and not (env / "cache").exists(), args


def test_read_only_out_is_refused(env, monkeypatch, capsys):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only directories; /proc covers the case for root")
    ro = env / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    _no_work(monkeypatch)
    assert _run("--out", str(ro / "run")) == 2
    assert "is not writable" in capsys.readouterr().err


def test_bad_eval_input_exits_2_before_any_work(env, monkeypatch, capsys):
    import harness.evaluate
    monkeypatch.setattr(harness.evaluate, "evaluate_checkpoint", lambda *a, **k: pytest.fail("evaluated"))
    cases = [(["--limit", "-1"], "--limit must be a positive number, got -1"),
             (["--batch-size", "0"], "--batch-size must be a positive number, got 0"),
             (["--suites", ","], "no suites given"),
             (["--out", "/dev/null"], "/dev/null is a device"),
             (["--model", "no-such-model"], "unknown model 'no-such-model'")]
    for extra, message in cases:
        rc = _cli(["eval", "--model", "micro-llava", "--suites", "micro-pope", "--out", str(env / "ev"), *extra])
        err = capsys.readouterr().err
        assert rc == 2 and message in err and "Traceback" not in err, (extra, err)
        assert not (env / "ev").exists()


def _cli(argv: list[str]) -> int:
    from harness.cli import main
    return main(argv)


def test_yaml_problem_names_file_line_and_column(tmp_path):
    from harness.config import load_yaml
    bad = tmp_path / "p.yaml"
    bad.write_text("seed: 1\ntrain:\n  lr: 0.1\n\tbeta: 0.2\n")
    with pytest.raises(HarnessError) as info:
        load_yaml(bad)
    assert str(info.value) == (f"malformed preset {bad}, line 4, column 1: found character '\\t' that cannot "
                               "start any token (while scanning for the next token)")


def test_float_keys_accept_yaml11_exponents_and_refuse_non_finite():
    from harness.config import build, parse_overrides
    from pipelines.dpo import DPOTrainConfig
    train = parse_overrides(["train.lr=1e3"])["train"]
    assert train == {"lr": "1e3"}                          # YAML 1.1 reads an exponent without a dot as text
    assert build(DPOTrainConfig, train, "train.").lr == 1000.0
    for key, value in (("lr", "nan"), ("lr", float("-inf")), ("beta", float("nan"))):
        with pytest.raises(HarnessError, match=f"'train.{key}' must be a finite number"):
            build(DPOTrainConfig, {key: value}, "train.")


def test_records_without_status_still_load():
    from harness.record import RunRecord
    ref = json.loads((ROOT / "leaderboards" / "references" / "micro-rm-dpo-2k.json").read_text())
    ref.pop("status", None)
    ref.pop("error", None)
    assert RunRecord.from_dict(ref).status == "ok"


# ---------------------------------------------------------------- disk full

def test_disk_full_in_an_atomic_write_is_one_run_failure(tmp_path, monkeypatch):
    from harness import io

    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))
    monkeypatch.setattr(io.os, "replace", full)
    with pytest.raises(RunFailed, match="disk full: no space left on the device while writing") as info:
        io.write_json(tmp_path / "x.json", {"a": 1})
    assert isinstance(info.value.__cause__, OSError) and not list(tmp_path.iterdir())


def _wrapped_enospc(path: Path) -> Exception:
    try:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))
    except OSError as e:
        wrapped = RuntimeError("datasets could not save")      # a library re-wrapping the OSError
        wrapped.__cause__ = e
    return wrapped


def _copytree_enospc(path: Path) -> Exception:
    # what shutil.copytree raised when a real 256 KiB tmpfs filled up under --out: text only, no errno
    why = f"[Errno 28] No space left on device: '{path}.src' -> '{path}'"
    return shutil.Error([(f"{path}.src", str(path), why)])


@pytest.mark.parametrize("make_error", [_wrapped_enospc, _copytree_enospc])
def test_disk_full_inside_a_stage_exits_3_with_one_message(env, monkeypatch, capsys, make_error):
    FakeMethod(monkeypatch, synth_error=make_error(env / "x.arrow"))
    assert _run("--out", str(env / "run")) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"stage synth: disk full: no space left on the device while writing {env / 'x.arrow'}" in err
    assert "disk full" in _error_record(env / "run")["error"]["message"]


# ---------------------------------------------------------------- offline

# datasets.config._offline is the HF_DATASETS_OFFLINE value datasets read when it was imported (whenever the CLI
# imported it): "1" only when the variable was set before that import
OFFLINE_PROBE = ("import sys\n"
                 "from harness.cli import main\n"
                 "rc = main(sys.argv[1:])\n"
                 "import datasets.config, huggingface_hub.constants\n"
                 "print('OFFLINE', rc, datasets.config._offline, datasets.config.HF_DATASETS_OFFLINE,\n"
                 "      huggingface_hub.constants.HF_HUB_OFFLINE)\n")


def _probe(args: list[str], extra_env: dict) -> str:
    env = {k: v for k, v in os.environ.items() if "OFFLINE" not in k}
    env.update(extra_env, HARNESS_QUIET="1")
    p = subprocess.run([sys.executable, "-c", OFFLINE_PROBE, *args], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120, check=False)
    return next((ln for ln in p.stdout.splitlines() if ln.startswith("OFFLINE")), p.stdout + p.stderr)


def test_offline_flag_takes_effect_before_datasets_is_imported(tmp_path):
    bad_run = ["run", "--method", "rm-dpo", "--size", "500", "--suites", ",", "--out", str(tmp_path / "r")]
    assert _probe(bad_run, {}) == "OFFLINE 2 None False False"                # control: online by default
    assert _probe([*bad_run, "--offline"], {}) == "OFFLINE 2 1 True True"
    assert _probe(["ls"], {"HARNESS_OFFLINE": "1"}) == "OFFLINE 0 1 True True"

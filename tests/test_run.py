"""End to end: `harness run` on a tiny configuration, kill-and-resume, finished-run re-print, bad input."""

from __future__ import annotations

import json
import os

import pytest

from harness.errors import HarnessError

# A tiny but complete rm-dpo run: 6 pairs, both rounds (the on-policy round included), one DPO step each,
# two suites on 8 items each. Exercises every stage; the numbers mean nothing.
TINY = ["synth.responders.max_new_tokens=12", "synth.responders.batch_size=32", "synth.select.require_well_formed=false",
        "train.max_steps=1", "train.batch_size=4", "train.warmup_ratio=0.0", "eval.limit=8", "eval.batch_size=16",
        "round_size=1.0", "synth.responders.workers=1", "synth.response_reward.workers=1"]
SUITES = "micro-chair,micro-pope"


@pytest.fixture(scope="session")
def zoo(request, tmp_path_factory):
    """The shared reduced zoo (tests/conftest.py); a random-weight stand-in while harness.zoo.build is absent."""
    try:
        import harness.zoo.build  # noqa: F401
    except ImportError:
        return _random_zoo(tmp_path_factory.mktemp("random-zoo"))
    return request.getfixturevalue("reduced_zoo")


def _random_zoo(out):
    import torch

    from harness.io import write_json
    from harness.zoo import architectures as A
    from harness.zoo.store import ZOO_NAMES, update_manifest
    torch.set_num_threads(1)
    s = A.REDUCED
    for i, name in enumerate(["micro-llava", "micro-responder-a", "micro-responder-b"]):
        A.build_llava(s, seed=i).save_pretrained(out / name)
        A.build_processor(s).save_pretrained(out / name)
    A.build_clip(s).save_pretrained(out / "micro-clip")
    A.build_clip_processor(s).save_pretrained(out / "micro-clip")
    A.build_llava_reward_model(s).save_pretrained(out / "micro-rm")
    A.build_processor(s).save_pretrained(out / "micro-rm")
    A.build_text_reward_model(s).save_pretrained(out / "micro-rm-blind")
    A.build_tokenizer().save_pretrained(out / "micro-rm-blind")
    for n in ZOO_NAMES:
        write_json(out / n / "card.json", {"kind": "random"})
        update_manifest(out, n, {"seed": 0, "reduced": True})
    os.environ["HARNESS_ZOO_DIR"] = str(out)
    return out


@pytest.fixture()
def env(zoo, tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_ZOO_DIR", str(zoo))
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HARNESS_QUIET", "1")
    return tmp_path


def _comparable(rec) -> str:
    """The record minus timings and provenance, as sorted JSON (NaN metrics compare equal as text)."""
    d = rec.to_dict()
    for k in ("timings", "created", "git_commit", "machine", "packages"):
        d.pop(k)
    return json.dumps(d, sort_keys=True)


def test_run_kill_resume_matches_uninterrupted(env, monkeypatch):
    from harness import api
    import pipelines.dpo as dpo   # the trainer every method's rounds call

    ref = api.run("rm-dpo", 6, out=env / "ref", overrides=TINY, suites=SUITES)
    assert (env / "ref" / "record.json").is_file() and (env / "ref" / "table.md").is_file()
    assert (env / "ref" / "adapter" / "adapter_model.safetensors").is_file()
    assert (env / "ref" / "dataset" / "README.md").is_file()
    for ck in ("base", "aligned"):
        for s in SUITES.split(","):
            assert (env / "ref" / "samples" / ck / f"{s}.jsonl").is_file()
    log = json.loads((env / "ref" / "train_log.json").read_text())
    assert len(log["rounds"]) == 2 and all("rewards/margins" in log["rounds"][0]["steps"][0] for _ in [0])
    assert set(ref.comparisons) == set(SUITES.split(","))
    assert ref.timings["synth"] > 0 and ref.timings["train"] > 0 and "eval-aligned" in ref.timings

    # kill the second run inside the on-policy round's training
    real_train = dpo.train_dpo
    calls = {"n": 0}

    def dying(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed")
        return real_train(*a, **kw)
    monkeypatch.setattr(dpo, "train_dpo", dying)
    with pytest.raises(KeyboardInterrupt):
        api.run("rm-dpo", 6, out=env / "run", overrides=TINY, suites=SUITES)
    stages = env / "run" / "stages"
    assert not (env / "run" / "record.json").exists()
    assert not list(stages.glob(".*.tmp")) and not list(stages.rglob(".*.tmp"))   # nothing half-written
    synth_done = {p: p.stat().st_mtime_ns for p in stages.glob("synth-parts/*/DONE")}
    round1 = list(stages.glob("train-parts/*/round1-*/DONE"))
    assert len(synth_done) == 6 and len(round1) == 1

    # resume: finished stages are reused (untouched), the run ends with the same record
    calls["n"] = -100
    resumed = api.run("rm-dpo", 6, out=env / "run", overrides=TINY, suites=SUITES)
    assert {p: p.stat().st_mtime_ns for p in stages.glob("synth-parts/*/DONE")} == synth_done
    assert calls["n"] == -99                       # only round 2 trained again
    assert _comparable(resumed) == _comparable(ref)

    # a finished run only re-prints its table
    monkeypatch.setattr(dpo, "train_dpo", lambda *a, **kw: pytest.fail("re-ran training"))
    again = api.run("rm-dpo", 6, out=env / "run", overrides=TINY, suites=SUITES)
    assert _comparable(again) == _comparable(resumed)


def test_bad_input_is_refused_before_any_work(env, monkeypatch):
    from harness import api
    from harness.cli import main
    monkeypatch.chdir(env)
    with pytest.raises(HarnessError, match="unknown method 'nope'"):
        api.run("nope", "5k")
    with pytest.raises(HarnessError, match="malformed size '5kk'"):
        api.run("rm-dpo", "5kk")
    with pytest.raises(HarnessError, match="micro world gives at most"):
        api.run("rm-dpo", "60k")
    with pytest.raises(HarnessError, match="unknown config key 'train.lrr'"):
        api.run("rm-dpo", "2k", overrides=["train.lrr=1"])
    with pytest.raises(HarnessError, match="unknown suite"):
        api.run("rm-dpo", "2k", suites="micro-nope")
    assert main(["run", "--method", "rm-dpo", "--size", "2k,5kk"]) == 2
    assert not (env / "runs").exists()

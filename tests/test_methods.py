"""Baselines and ablations (pipelines/{sft,random_pairs,clip_rank,hallucination_injection,oracle,rm_dpo_blind}.py):
presets compare like for like with rm-dpo, each method synthesizes and trains one step through `harness.api.train`
on a tiny configuration, and each method's pairs are what it claims (checked against an independent scorer).

All methods run in ONE run directory, so the stage cache shares prompts, images, questions and responses between
them (responses are generated once); each method's own reward/selection/training stages are its own.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
from test_run import TINY, zoo  # noqa: F401  (the shared reduced zoo fixture and rm-dpo's tiny overrides)

from harness import registry
from harness.errors import HarnessError

METHODS = sorted(registry.names("methods"))          # every registered method, built-in or third-party
N = 6
# rm-dpo's tiny run (tests/test_run.py) with one round (except where a test asks for the on-policy round) and
# single-process synthesis (spawning workers costs more than it saves on 6 pairs); 3 prompts per pair so that
# the oracle's strict ground-truth preferences (ties are dropped) fill 6 pairs with a trained zoo too.
FAST = TINY + ["rounds=1", "synth.responders.workers=1", "synth.response_reward.workers=1",
               "synth.prompts.oversample=3"]
DEFAULT_HOOKS = ("reward-model", "rules")


def own_hooks(method: str) -> bool:
    """Whether a method names a scorer or selector of its own: it runs the on-policy round in the tests, which
    must apply its hooks again."""
    m = registry.load("methods", method)
    return (m.scorer, m.selector) != DEFAULT_HOOKS


# ---------------------------------------------------------------- presets: like for like

def _stated_keys(path: Path) -> set[str]:
    """The keys a preset file sets itself (its own file, not what it extends)."""
    import yaml
    data = yaml.safe_load(path.read_text()) or {}
    data.pop("extends", None)
    return set(_flat(data))


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


@pytest.mark.parametrize("method", [m for m in METHODS if m != "rm-dpo"])
def test_micro_presets_differ_from_rm_dpo_only_where_the_method_says(method):
    """A method's micro preset that extends rm-dpo's differs from it only in the keys its own preset sets."""
    from harness.api import prepare
    base = registry.load("methods", method).preset_dir() / "_micro.yaml"
    if "rm-dpo/_micro.yaml" not in base.read_text():
        pytest.skip(f"{method}'s micro preset does not extend rm-dpo's")
    for size in ("2k", "5k"):
        ref = _flat(prepare("rm-dpo", size)[4]["method"])
        cfg = _flat(prepare(method, size)[4]["method"])
        differ = {k for k in set(ref) | set(cfg) if ref.get(k, "<absent>") != cfg.get(k, "<absent>")}
        assert differ <= _stated_keys(base), (method, differ)


def test_real_presets_and_world_limits(tmp_path):
    from harness.api import prepare
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"a photo {i}"}) + "\n" for i in range(6000)))
    src = [f"synth.prompts.source={prompts}"]
    for m in ("sft", "random-pairs", "clip-rank"):
        cfg = prepare(m, "5k", "real", overrides=src)[2]
        assert cfg.train.lora_r == 128 and cfg.train.lr == 1e-5       # the paper's recipe (rm-dpo's real preset)
    assert prepare("clip-rank", "5k", "real", overrides=src)[2].scorer.model == "openai/clip-vit-large-patch14"
    for m in ("oracle", "hallucination-injection", "rm-dpo-blind"):
        with pytest.raises(HarnessError, match="does not support world 'real'"):
            prepare(m, "5k", "real", overrides=src)
    with pytest.raises(HarnessError, match="loss_type=\\[sft\\] only"):
        prepare("sft", "2k", overrides=["train.loss_type=[sigmoid,sft]", "train.loss_weights=[1,1]"])
    with pytest.raises(HarnessError, match="image-blind micro-rm-blind only"):
        prepare("rm-dpo-blind", "2k", overrides=["synth.response_reward.reward=image-aware"])
    with pytest.raises(HarnessError, match="samples no responses"):
        prepare("hallucination-injection", "2k", overrides=["synth.responders.models=[micro-responder-a]"])


# ---------------------------------------------------------------- ground truth (pure)

def test_ground_truth_score_and_injection():
    from harness.world.scene import Obj, make_scene
    from harness.world.texts import describe, mentioned_objects
    from pipelines.ground_truth import all_qas, gt_score, inject, qa_for
    scene = make_scene("kitchen", [Obj("cup", "red", "small", (0, 0)), Obj("fork", "blue", "big", (1, 1))])
    d = qa_for(scene, "describe this image .")
    truth = describe(scene)
    assert gt_score(scene, d, truth) == 2.0
    assert gt_score(scene, d, "there is a red cup on the top left and a green plate on the top right .") == -1.0
    assert gt_score(scene, d, "there is a small green cup on the top left .") == 0.0      # wrong colour
    assert gt_score(scene, d, "there is a small red cup on the top right .") == 0.0      # wrong slot
    assert gt_score(scene, d, "there is a red cup cup cup") < gt_score(scene, d, "there is a cup .")   # malformed
    assert gt_score(scene, d, "") < gt_score(scene, d, "there is nothing in the image .")
    color = qa_for(scene, "what color is the cup ?")
    assert gt_score(scene, color, "red .") == 1.0 and gt_score(scene, color, "green .") == -2.0
    absent = qa_for(scene, "is there a plate in the image ?")
    assert gt_score(scene, absent, "no .") > gt_score(scene, absent, "yes .")
    with pytest.raises(HarnessError, match="not one the micro world asks"):
        qa_for(scene, "what is the meaning of this ?")
    kinds = set()
    for i, qa in enumerate(all_qas(scene) * 3):
        rejected, what = inject(scene, qa, random.Random(i), object_share=0.5)
        kinds.add((qa.kind, what["type"]))
        assert rejected != qa.answer and gt_score(scene, qa, rejected) < gt_score(scene, qa, qa.answer), (qa, rejected)
        if qa.kind == "describe" and what["type"] == "object":
            assert what["object"] in scene.cooccurring_absent()
            assert set(mentioned_objects(rejected)) == scene.classes | {what["object"]}
    assert ("describe", "object") in kinds and ("describe", "attribute") in kinds


def test_every_synthesized_question_has_a_ground_truth_answer_and_an_injection():
    """The questions the synthesis asks (pipelines.synth.questions) are all known to pipelines.ground_truth."""
    from harness.world.scene import sample_scenes
    from pipelines.ground_truth import gt_score, inject, qa_for
    from pipelines.synth.questions import QuestionsConfig, make_question
    kinds = set()
    for i, scene in enumerate(sample_scenes(300, "train", 1)):
        q = make_question(QuestionsConfig(describe_share=0.3), {"id": i, "scene": scene.to_dict()}, 0)
        qa = qa_for(scene, q["question"])
        assert qa.kind == q["kind"]
        rejected, _ = inject(scene, qa, random.Random(i))
        assert gt_score(scene, qa, rejected) < gt_score(scene, qa, qa.answer) and gt_score(scene, qa, qa.answer) >= 1
        kinds.add(qa.kind)
    assert {"describe", "existence", "count", "spatial"} <= kinds


# ---------------------------------------------------------------- every method, end to end (synth + 1 step)

def _synth_dir(run_dir: Path, method: str) -> Path:
    """The inner pairs stage of `method`'s synthesis (stage metadata: harness.stages DONE files)."""
    for done in (run_dir / "stages").glob("synth-*/DONE"):
        meta = json.loads(done.read_text())
        if meta["inputs"]["method"] == method:
            return Path(meta["output"]["dataset_dir"]).parent
    raise AssertionError(f"no synthesis stage for {method}")


@pytest.fixture(scope="module")
def runs(zoo, tmp_path_factory):  # noqa: F811
    """api.train for every method in one run directory -> {method: {"record", "pairs", "rows", "dir"}}."""
    from datasets import load_from_disk

    from harness import api
    from harness.io import read_jsonl
    out = tmp_path_factory.mktemp("methods")
    shared = out / "run"
    done = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_ZOO_DIR", str(zoo))
        mp.setenv("HARNESS_CACHE_DIR", str(out / "cache"))
        mp.setenv("HARNESS_QUIET", "1")
        for m in METHODS:
            over = FAST + (["rounds=2"] if own_hooks(m) else [])
            rec = api.train(m, N, out=shared, overrides=over)
            keep = out / m
            shutil.copytree(shared / "adapter", keep / "adapter")
            shutil.copyfile(shared / "train_log.json", keep / "train_log.json")
            pairs_dir = _synth_dir(shared, m)
            done[m] = {"record": rec, "pairs": read_jsonl(pairs_dir / "pairs.jsonl"),
                       "rows": list(load_from_disk(str(pairs_dir / "dataset"))), "dir": keep,
                       "card": json.loads((pairs_dir / "dataset" / "card.json").read_text())}
        yield {"methods": done, "shared": shared}


def _responses(shared: Path) -> dict[int, set[str]]:
    """Candidate responses by prompt id, from the (one, shared) responses stage of round 1."""
    from harness.io import read_jsonl
    files = [f for f in (shared / "stages" / "synth-parts").glob("responses-*/responses.jsonl")
             if any(r["responses"] for r in read_jsonl(f))]
    assert len(files) == 1, "the methods should share one responses stage"
    return {r["id"]: {x["text"] for x in r["responses"]} for r in read_jsonl(files[0])}


def _round2_pairs(shared: Path, select_name: str) -> list[list[dict]]:
    """Pairs of the on-policy rounds whose dataset card names the selection `select_name`."""
    from harness.io import read_jsonl
    out = []
    for f in (shared / "stages" / "train-parts").glob("*/round2-synth/pairs-*/pairs.jsonl"):
        card = json.loads((f.parent / "dataset" / "card.json").read_text())
        if str(card["components"]["select"]).startswith(select_name):
            out.append(read_jsonl(f))
    return out


def test_every_method_trains_one_step_on_its_own_pairs(runs):
    for m, r in runs["methods"].items():
        rec, log = r["record"], json.loads((r["dir"] / "train_log.json").read_text())
        assert rec.method == m and rec.kind == "train" and rec.config["method"]
        assert (r["dir"] / "adapter" / "adapter_model.safetensors").is_file(), m
        rounds = log["rounds"]
        assert len(rounds) == (2 if own_hooks(m) else 1) and rounds[0]["summary"]["steps"] == 1, m
        assert len(r["pairs"]) == N == len(r["rows"]) and r["card"]["pairs"] == N, m
    cards = {m: r["card"]["components"]["response_reward"] for m, r in runs["methods"].items()}
    assert cards["rm-dpo"] == "micro-rm" and cards["rm-dpo-blind"] == "micro-rm-blind"
    assert cards["random-pairs"].startswith("random") and cards["clip-rank"].startswith("CLIP score")


def test_rm_methods_share_responses_and_blind_differs_in_config_only(runs):
    cands = _responses(runs["shared"])
    for m in ("rm-dpo", "rm-dpo-blind", "sft", "random-pairs", "clip-rank", "oracle"):
        for p in runs["methods"][m]["pairs"]:
            assert {p["chosen"], p["rejected"]} <= cands[p["id"]], m
    a, b = (runs["methods"][m]["record"].config["method"] for m in ("rm-dpo", "rm-dpo-blind"))
    assert a["synth"]["response_reward"]["reward"] == "image-aware"
    assert b["synth"]["response_reward"]["reward"] == "image-blind"


def test_sft_pairs_are_rm_dpo_pairs_and_loss_is_sft(runs):
    rm, sft = runs["methods"]["rm-dpo"], runs["methods"]["sft"]
    assert [(p["chosen"], p["rejected"]) for p in sft["pairs"]] == [(p["chosen"], p["rejected"]) for p in rm["pairs"]]
    assert sft["record"].config["method"]["train"]["loss_type"] == ["sft"]
    step = json.loads((sft["dir"] / "train_log.json").read_text())["rounds"][0]["steps"][0]
    assert "loss" in step


def test_sft_trains_on_the_chosen_answer_only(runs, tmp_path):
    """Same data with every rejected answer replaced: the SFT adapter is identical (and not a no-op)."""
    import torch
    from datasets import load_from_disk
    from safetensors.torch import load_file

    from pipelines.dpo import DPOTrainConfig, train_dpo
    data = _synth_dir(runs["shared"], "sft") / "dataset"
    ds = load_from_disk(str(data))
    other = ds.map(lambda row: {"rejected": [{"role": "assistant",
                                              "content": [{"type": "text", "text": "yes . yes . yes ."}]}]})
    other.save_to_disk(str(tmp_path / "other"))
    cfg = DPOTrainConfig(lr=1e-2, lora_r=4, lora_alpha=8, lora_dropout=0.0, loss_type=["sft"], batch_size=N,
                         max_steps=1, warmup_ratio=0.0)
    w = {}
    for name, d in (("same", data), ("other", tmp_path / "other")):
        train_dpo(cfg, base="micro-llava", dataset_dir=d, out_dir=tmp_path / name, seed=0)
        w[name] = load_file(str(tmp_path / name / "adapter" / "adapter_model.safetensors"))
    assert w["same"].keys() == w["other"].keys()
    assert all(torch.equal(w["same"][k], w["other"][k]) for k in w["same"])
    assert any(k.endswith("lora_B.weight") and w["same"][k].abs().sum() > 0 for k in w["same"])   # it trained


def test_random_pairs_are_not_sorted_by_the_reward_model(runs):
    from harness.models.reward import load_reward_model
    rows = runs["methods"]["random-pairs"]["rows"]
    rm = load_reward_model("micro-rm")
    imgs = [r["images"][0] for r in rows]
    qs = [r["prompt"][0]["content"][1]["text"] for r in rows]
    chosen = rm.score(imgs, qs, [r["chosen"][0]["content"][0]["text"] for r in rows])
    rejected = rm.score(imgs, qs, [r["rejected"][0]["content"][0]["text"] for r in rows])
    assert any(c < r for c, r in zip(chosen, rejected))           # the RM disagrees with some random order
    ref = runs["methods"]["rm-dpo"]["pairs"]
    assert all(p["chosen_score"] > p["rejected_score"] for p in ref)   # while rm-dpo's pairs are RM-sorted
    assert [(p["chosen"], p["rejected"]) for p in runs["methods"]["random-pairs"]["pairs"]] != \
        [(p["chosen"], p["rejected"]) for p in ref]


def test_clip_rank_chosen_has_the_higher_clip_score(runs):
    """Re-scored one response at a time, in another order: same scores (no batch effect), chosen > rejected."""
    from pipelines.clip_rank import ClipScorer
    from pipelines.synth.image_reward import ImageRewardConfig
    score = ClipScorer(ImageRewardConfig(model="micro-clip"))
    pairs = runs["methods"]["clip-rank"]["pairs"]
    for p, row in reversed(list(zip(pairs, runs["methods"]["clip-rank"]["rows"]))):
        assert row["chosen"][0]["content"][0]["text"] == p["chosen"]
        img = row["images"][0]
        [[c]] = score([img], [p["question"]], [[{"text": p["chosen"]}]])
        [[r]] = score([img], [p["question"]], [[{"text": p["rejected"]}]])
        assert c > r and abs(c - p["chosen_score"]) < 1e-4 and abs(r - p["rejected_score"]) < 1e-4
    # the whole text counts, not its first token (CLIP pools at the end-of-text token)
    [[a, b]] = score([img], ["q"], [[{"text": "there is a red cup ."}, {"text": "there is a big blue bus ."}]])
    assert abs(a - b) > 1e-6


def test_oracle_chosen_beats_rejected_under_ground_truth_in_both_rounds(runs):
    from harness.world.scene import Scene
    from pipelines.ground_truth import gt_score, qa_for
    r = runs["methods"]["oracle"]
    sets = [r["pairs"]] + _round2_pairs(runs["shared"], "ground-truth judge")
    assert len(sets) == 2, "the on-policy round must pick its pairs with the oracle too"
    for pairs in sets:
        for p in pairs:
            scene = Scene.from_dict(p["scene"])
            qa = qa_for(scene, p["question"])
            assert gt_score(scene, qa, p["chosen"]) > gt_score(scene, qa, p["rejected"])
            assert p["chosen_score"] == gt_score(scene, qa, p["chosen"])
    assert "rm_agreement" in r["card"]["selection"]


def test_hallucination_injection_rejected_adds_an_absent_object_or_a_wrong_attribute(runs):
    from harness.world.scene import Scene
    from harness.world.texts import mentioned_objects
    from pipelines.ground_truth import qa_for
    r = runs["methods"]["hallucination-injection"]
    assert r["card"]["components"]["response_reward"].startswith("none")
    assert r["card"]["components"]["responders"].startswith("[]")          # no responses were sampled
    round2 = _round2_pairs(runs["shared"], "ground truth vs injected")
    assert len(round2) == 1, "the second round must inject too"
    seen = set()
    for p in r["pairs"] + round2[0]:
        scene = Scene.from_dict(p["scene"])
        assert p["chosen"] == qa_for(scene, p["question"]).answer and p["rejected"] != p["chosen"]
        seen.add(p["injected"]["type"])
        if p["kind"] == "describe":
            chosen, rejected = set(mentioned_objects(p["chosen"])), set(mentioned_objects(p["rejected"]))
            assert chosen == scene.classes                          # the chosen answer hallucinates nothing
            if p["injected"]["type"] == "object":
                assert rejected - chosen == {p["injected"]["object"]}
                # a co-occurring absent object when the theme has one left, else any absent object
                assert p["injected"]["object"] in (scene.cooccurring_absent() or scene.absent_classes())
            else:
                assert rejected == chosen
    assert seen


def test_every_on_policy_round_scores_and_pairs_with_the_methods_own_hooks(runs):
    """Round 2 builds its scorer and selector from the method again: its card names round 1's hooks."""
    cards = [json.loads(f.read_text())["components"] for f in
             (runs["shared"] / "stages" / "train-parts").glob("*/round2-synth/pairs-*/dataset/card.json")]
    for m, r in runs["methods"].items():
        if own_hooks(m):
            first = r["card"]["components"]
            assert any(c["response_reward"] == first["response_reward"] and c["select"] == first["select"]
                       for c in cards), m

"""Synthesis components, pair selection, dataset card, stage caching, adapter concatenation, real-world
components on tiny random-weight models (SD3 built from configs, CLIP, a text-only reward model)."""

from __future__ import annotations

import json
import math

import pytest

from harness.errors import HarnessError


# ---------------------------------------------------------------- pair selection (pure)

def _resp(*texts):
    return [{"model": f"m{i}", "sample": 0, "text": t} for i, t in enumerate(texts)]


def test_paper_rule_chosen_max_rejected_min():
    from pipelines.synth.select import SelectConfig, select_pair
    good = ["there is a red cup on the top left .", "there is a blue cup on the top left .", "there is a cup ."]
    pair, why = select_pair(SelectConfig(), _resp(*good), [0.2, 0.9, -0.5], "micro")
    assert why == "kept" and pair["chosen"] == good[1] and pair["rejected"] == good[2]
    assert pair["chosen_score"] == 0.9 and pair["rejected_score"] == -0.5


def test_chosen_must_be_well_formed_and_options_apply():
    from pipelines.synth.select import SelectConfig, select_pair
    degenerate = "there is a red red red red cup"
    ok = "there is a red cup on the top left ."
    pair, _ = select_pair(SelectConfig(), _resp(degenerate, ok, "there is a cup ."), [5.0, 1.0, 0.0], "micro")
    assert pair["chosen"] == ok and pair["rejected"] == "there is a cup ."      # best-scored is malformed
    pair, _ = select_pair(SelectConfig(), _resp(degenerate, ok, ""), [5.0, 1.0, 0.0], "micro")
    assert pair["rejected"] == ""                                               # an empty answer can be rejected
    assert select_pair(SelectConfig(), _resp(degenerate, degenerate + " ."), [1.0, 0.0], "micro") == \
        (None, "no well-formed response")
    assert select_pair(SelectConfig(), _resp(ok, ok), [1.0, 1.0], "micro")[1] == "tie"
    assert select_pair(SelectConfig(min_margin=0.5), _resp(ok, "there is a cup ."), [1.0, 0.8], "micro")[1] == \
        "margin below min_margin"
    # length control: the 3-token answer is too short to be the rejected one of an 10-token chosen answer
    short, similar = "a cup .", "there is a big blue cup on the top right ."
    pair, _ = select_pair(SelectConfig(length_control=0.3), _resp(ok, short, similar), [1.0, -2.0, 0.0], "micro")
    assert pair["rejected"] == similar
    pair, _ = select_pair(SelectConfig(), _resp(ok, short, similar), [1.0, -2.0, 0.0], "micro")
    assert pair["rejected"] == short


def test_reject_malformed_first_prefers_the_degenerate_answer_as_rejected():
    from pipelines.synth.select import SelectConfig, select_pair
    ok = "there is a red cup on the top left ."
    wrong = "there is a red fork on the top left ."                  # well-formed, scored lowest
    repeat = "there is a red cup on the top left and a cup on the top right ."  # a class named twice
    scores = [2.0, -1.0, 0.5]
    pair, _ = select_pair(SelectConfig(), _resp(ok, wrong, repeat), scores, "micro")
    assert pair["rejected"] == wrong                                 # the paper rule: the minimum
    pair, _ = select_pair(SelectConfig(reject_malformed_first=True), _resp(ok, wrong, repeat), scores, "micro")
    assert pair["rejected"] == repeat and pair["rejected_score"] == 0.5
    # with no malformed answer the rule is the paper's
    pair, _ = select_pair(SelectConfig(reject_malformed_first=True), _resp(ok, wrong), [2.0, -1.0], "micro")
    assert pair["rejected"] == wrong
    # a malformed answer scored above the chosen one is a non-positive gap: dropped as a tie, not kept inverted
    assert select_pair(SelectConfig(reject_malformed_first=True), _resp(ok, wrong, repeat), [2.0, -1.0, 3.0],
                       "micro")[1] == "tie"


def test_select_pairs_counts_and_clear_failures():
    from pipelines.synth.select import SelectConfig, select_pairs
    ok = "there is a red cup on the top left ."
    items = [{"id": i, "question": "describe this image .", "responses": _resp(ok, "there is a cup ."),
              "scores": [1.0, 0.0] if i % 2 else [0.0, 0.0]} for i in range(6)]
    pairs, stats = select_pairs(SelectConfig(), items, "micro", 3)
    assert len(pairs) == 3 and stats["reasons"] == {"kept": 3, "tie": 3}
    with pytest.raises(HarnessError, match="only 3 of the requested 4 pairs survived"):
        select_pairs(SelectConfig(), items, "micro", 4)
    empty = [{"id": 0, "question": "q", "responses": _resp("", ""), "scores": [0.0, 0.0]}]
    with pytest.raises(HarnessError, match="every one of the 2 responses is empty"):
        select_pairs(SelectConfig(), empty, "micro", 1)


def test_keep_largest_margin_keeps_the_widest_gaps_in_prompt_order():
    from pipelines.synth.select import SelectConfig, select_pairs
    ok = "there is a red cup on the top left ."
    gaps = [0.5, 3.0, 1.0, 3.0, 2.0]
    items = [{"id": i, "question": "describe this image .", "responses": _resp(ok, "there is a cup ."),
              "scores": [g, 0.0]} for i, g in enumerate(gaps)]
    first, _ = select_pairs(SelectConfig(), items, "micro", 3)
    assert [p["id"] for p in first] == [0, 1, 2]
    widest, stats = select_pairs(SelectConfig(keep_largest_margin=True), items, "micro", 3)
    assert [p["id"] for p in widest] == [1, 3, 4]          # gaps 3, 3, 2; prompt order kept
    assert stats["reasons"] == {"kept": 5, "smaller margin than the kept pairs": 2}
    # fewer pairs than asked still fails clearly, whatever the rule
    with pytest.raises(HarnessError, match="only 5 of the requested 6"):
        select_pairs(SelectConfig(keep_largest_margin=True), items, "micro", 6)


def test_real_world_well_formed_check():
    from pipelines.synth.select import well_formed
    assert well_formed("A red cup sits on a table.", "real")
    assert not well_formed("", "real") and not well_formed("the the the cup", "real")


# ---------------------------------------------------------------- dataset + card

def test_dataset_is_trl_conversational_with_card(tmp_path):
    from datasets import load_from_disk
    from PIL import Image

    from pipelines.synth.dataset import write_dataset
    pairs = [{"id": i, "question": "describe this image .", "chosen": "there is a red cup on the top left .",
              "rejected": "there is a cup .", "chosen_score": 1.0 + i, "rejected_score": -1.0, "chosen_model": "a",
              "rejected_model": "b", "kind": "describe"} for i in range(3)]
    imgs = {i: Image.new("RGB", (8, 8), (i, 0, 0)) for i in range(3)}
    summary = write_dataset(pairs, imgs, tmp_path, {"reasons": {"kept": 3}}, {"images": "micro"}, "t")
    ds = load_from_disk(str(tmp_path / "dataset"))
    row = ds[0]
    assert row["prompt"][0]["role"] == "user" and row["prompt"][0]["content"][0]["type"] == "image"
    assert row["prompt"][0]["content"][1]["text"] == "describe this image ."
    assert row["chosen"][0]["role"] == "assistant" and row["rejected"][0]["content"][0]["text"] == "there is a cup ."
    assert len(row["images"]) == 1 and row["images"][0].size == (8, 8)
    assert summary["reward"]["chosen"]["mean"] == 2.0 and summary["reward"]["margin"]["min"] == 2.0
    assert summary["length_tokens"]["chosen"]["mean"] == 10 and summary["length_tokens"]["chosen_longer_share"] == 1.0
    card = (tmp_path / "dataset" / "README.md").read_text()
    assert "| reward mean (sd) | 2.0" in card and "**images**: micro" in card
    assert json.loads((tmp_path / "dataset" / "card.json").read_text())["pairs"] == 3


# ---------------------------------------------------------------- stage caching

def test_stage_is_atomic_and_cached(tmp_path):
    from harness.stages import DONE, Stages
    st = Stages(tmp_path)
    calls = []

    def boom(d):
        (d / "half.txt").write_text("half")
        raise RuntimeError("killed")
    with pytest.raises(RuntimeError):
        st.run("s", {"a": 1}, boom)
    assert list(tmp_path.iterdir()) == []                 # nothing half-written survives

    def ok(d):
        calls.append(1)
        (d / "out.txt").write_text("x")
        return {"n": 1}
    r1 = st.run("s", {"a": 1}, ok)
    r2 = st.run("s", {"a": 1}, ok)
    assert calls == [1] and r2.cached and r2.output == {"n": 1} and (r1.path / DONE).is_file()
    assert st.run("s", {"a": 2}, ok).path != r1.path and calls == [1, 1]   # other inputs, other stage


def test_concurrent_runs_of_one_stage_share_the_first_result(tmp_path):
    """Two runs sharing a cache computing the same stage at once (measured: two `harness run`s evaluating the same
    base model crashed with 'Directory not empty'): the second to finish keeps the first's result."""
    from harness.stages import Stages
    a, b = Stages(tmp_path), Stages(tmp_path)

    def inner(d):
        (d / "out.txt").write_text("first")
        return {"who": "first"}

    def outer(d):
        (d / "out.txt").write_text("second")
        b.run("s", {"a": 1}, inner)             # the other process finishes while this one still computes
        return {"who": "second"}
    r = a.run("s", {"a": 1}, outer)
    assert r.output == {"who": "first"} and (r.path / "out.txt").read_text() == "first"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_stale_scratch_of_a_dead_process_is_removed(tmp_path):
    from harness.stages import Stages
    st = Stages(tmp_path)
    key = st.key("s", {"a": 1})
    stale = tmp_path / f".s-{key}.999999999.tmp"         # no such pid
    stale.mkdir(parents=True)
    (stale / "half.txt").write_text("half")
    st.run("s", {"a": 1}, lambda d: {"n": 1})
    assert not stale.exists()


# ---------------------------------------------------------------- adapters of two rounds -> one adapter

def test_concatenated_adapter_equals_sequential_merge(tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model

    from harness.zoo import architectures as A
    from pipelines.dpo import LM_LINEAR, combine_adapters, merge_adapter
    torch.manual_seed(0)
    A.build_llava(A.REDUCED).save_pretrained(tmp_path / "base")
    A.build_processor(A.REDUCED).save_pretrained(tmp_path / "base")

    def random_adapter(base_dir, out):
        from transformers import LlavaForConditionalGeneration
        m = LlavaForConditionalGeneration.from_pretrained(base_dir)
        p = get_peft_model(m, LoraConfig(r=4, lora_alpha=8, target_modules=LM_LINEAR, init_lora_weights=False))
        p.save_pretrained(out)
    random_adapter(tmp_path / "base", tmp_path / "a1")
    merge_adapter(str(tmp_path / "base"), tmp_path / "a1", tmp_path / "m1")
    random_adapter(tmp_path / "m1", tmp_path / "a2")
    merge_adapter(str(tmp_path / "m1"), tmp_path / "a2", tmp_path / "m2")
    combine_adapters(str(tmp_path / "base"), [tmp_path / "a1", tmp_path / "a2"], tmp_path / "both")

    from PIL import Image

    from harness.models.vlm import chat_prompt, load_vlm
    seq, proc = load_vlm(str(tmp_path / "m2"))
    cat, _ = load_vlm(str(tmp_path / "base"), adapter=str(tmp_path / "both"))
    base, _ = load_vlm(str(tmp_path / "base"))
    enc = proc(images=[Image.new("RGB", (64, 64), (200, 30, 30))], text=[chat_prompt(proc, "describe this image .")],
               return_tensors="pt")
    with torch.no_grad():
        a, b, c = (m(**enc).logits for m in (seq, cat, base))
    assert torch.allclose(a, b, atol=1e-5)
    assert not torch.allclose(a, c, atol=1e-3)              # the adapters do change the model


# ---------------------------------------------------------------- real-world components, tiny random weights

def test_sd3_generator_from_a_tiny_random_pipeline(tmp_path):
    pytest.importorskip("diffusers")
    from real_fixtures import build_tiny_sd3

    from pipelines.synth.images import ImagesConfig, make_generator
    build_tiny_sd3(tmp_path / "sd3", seed=0)           # SD3 runs without its T5 encoder
    gen = make_generator(ImagesConfig(backend="sd3", model=str(tmp_path / "sd3"), steps=2, height=16, width=16))
    cands = gen.candidates({"id": 3, "prompt": "a photo of a red cup"})
    assert [(c["guidance"], c["seed"]) for c in cands] == [(5.0, 3000), (7.0, 3001), (9.0, 3002), (11.0, 3003)]
    assert all(c["image"].size == (16, 16) for c in cands)
    again = gen.candidates({"id": 3, "prompt": "a photo of a red cup"})
    assert again[1]["image"].tobytes() == cands[1]["image"].tobytes()      # seeded
    with pytest.raises(HarnessError, match="not a local diffusers directory"):
        make_generator(ImagesConfig(backend="sd3", model=str(tmp_path / "missing")))


def test_prompt_file_and_template_questions(tmp_path):
    from pipelines.synth.prompts import PromptsConfig, check_capacity, make_prompts
    from pipelines.synth.questions import QuestionsConfig, make_question
    f = tmp_path / "p.jsonl"
    f.write_text('{"category": "animal", "prompt": "a cat on a sofa"}\n{"category": "urban", "prompt": "a street"}\n')
    cfg = PromptsConfig(source=str(f), oversample=1.0)
    assert [p["prompt"] for p in make_prompts(cfg, 2, 0)] == ["a cat on a sofa", "a street"]
    with pytest.raises(HarnessError, match="holds only 2"):
        check_capacity(cfg, 3)
    q = make_question(QuestionsConfig(backend="template"), {"id": 0}, 0)
    assert q["kind"] == "instruction" and q["question"]


# ---------------------------------------------------------------- with the (reduced) zoo

@pytest.fixture(scope="session")
def zoo_env(request, tmp_path_factory):
    """The shared reduced zoo (tests/conftest.py); a random-weight stand-in while harness.zoo.build is absent."""
    try:
        import harness.zoo.build  # noqa: F401
    except ImportError:
        from test_run import _random_zoo
        return _random_zoo(tmp_path_factory.mktemp("random-zoo"))
    return request.getfixturevalue("reduced_zoo")


@pytest.fixture()
def synth_env(zoo_env, tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_ZOO_DIR", str(zoo_env))
    monkeypatch.setenv("HARNESS_QUIET", "1")
    return tmp_path


def _synth(tmp_path, **over):
    from harness.stages import Stages
    from pipelines.synth import SynthConfig, synthesize
    from pipelines.synth.responders import RespondersConfig
    from pipelines.synth.select import SelectConfig
    cfg = SynthConfig(responders=RespondersConfig(max_new_tokens=6, batch_size=16),
                      select=SelectConfig(require_well_formed=False), **over)
    return synthesize(cfg, n_pairs=4, seed=0, world="micro", policy="micro-llava", stages=Stages(tmp_path / "st"),
                      out_dir=tmp_path)


def test_real_style_components_on_zoo_models(synth_env):
    """CLIP image reward keeps the argmax; an image-blind text RM (AutoModelForSequenceClassification) scores."""
    from harness.world.generator import generate_candidates
    from harness.world.scene import sample_scenes
    from pipelines.synth.image_reward import ClipScorer, ImageRewardConfig, keep_best
    from pipelines.synth.response_reward import ResponseRewardConfig, score_responses
    scene = sample_scenes(1, "train", 0)[0]
    cands = generate_candidates(scene, 4, 0)
    scores = ClipScorer(ImageRewardConfig(model="micro-clip")).score([c.image for c in cands], ["a photo"] * 4)
    assert len(scores) == 4 and all(math.isfinite(s) for s in scores)
    assert keep_best([{"n": i} for i in range(4)], scores)[1] == max(range(4), key=lambda i: (scores[i], -i))
    s = score_responses(ResponseRewardConfig(model="micro-rm-blind"), [None, None], ["q", "q"],
                        [_resp("a", "b"), _resp("c")])
    assert [len(x) for x in s] == [2, 1]


def test_nan_reward_and_empty_responses_stop_with_a_clear_message(synth_env, monkeypatch):
    from harness.models import reward
    real = reward.RewardModel.score
    monkeypatch.setattr(reward.RewardModel, "score",
                        lambda self, *a, **kw: [float("nan")] + real(self, *a, **kw)[1:])
    with pytest.raises(HarnessError, match="non-finite score"):
        _synth(synth_env)
    st = synth_env / "st"
    assert not list(st.glob("rewards-*")) and not list(st.glob(".*"))     # the failed stage left nothing
    assert len(list(st.glob("*/DONE"))) == 4                            # upstream stages are kept for resume
    monkeypatch.setattr(reward.RewardModel, "score", real)

    import harness.models.vlm as vlm
    monkeypatch.setattr(vlm, "generate", lambda model, processor, images, prompts, **kw: [""] * len(prompts))
    with pytest.raises(HarnessError, match="responses is empty"):
        _synth(synth_env / "empty")


def test_parallel_responders_match_serial(synth_env):
    """Worker processes change nothing: same (model, sample) streams, same answers, same order."""
    from harness.world.render import render
    from harness.world.scene import sample_scenes
    from pipelines.synth.responders import RespondersConfig, respond
    paths = []
    for i, s in enumerate(sample_scenes(3, "train", 1)):
        render(s).save(synth_env / f"{i}.png")
        paths.append(str(synth_env / f"{i}.png"))
    qs = ["describe this image .", "is there a cup in the image ?", "describe this image ."]
    cfg = RespondersConfig(models=["micro-responder-a", "policy"], samples_per_model=1, max_new_tokens=5)
    serial = respond(cfg, paths, qs, "micro-llava", seed=0)
    cfg.workers = 2
    assert respond(cfg, paths, qs, "micro-llava", seed=0) == serial
    assert [[r["model"] for r in item] for item in serial] == [["micro-responder-a", "policy"]] * 3

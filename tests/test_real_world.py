"""The real world's components on tiny random-weight stand-ins (issue: the real world, end to end).

Each numbered failure of the issue has a test here: (1) hub ids resolve through the HF cache, offline flags
respected; (2) LLaVA-NeXT checkpoints load through their own class; (3) ArmoRM needs an explicit opt-in and scores
with its preference score, a head that would be random is an error; (4) real suites read a prepared data root;
(5) the real world's judge is the OpenAI-compatible one; (7) no preset hard-codes a device; (8) eval --world real.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from real_fixtures import (  # noqa: E402
    build_armo_rm,
    build_seqcls_rm,
    build_tiny_llava_next,
    FakeJudge,
    build_tiny_clip,
    build_tiny_sd3,
    fake_nlp_resources,
    put_in_hub_cache,
    write_official_releases,
)

from harness.errors import HarnessError  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def llava_next(tmp_path_factory) -> Path:
    return build_tiny_llava_next(tmp_path_factory.mktemp("next") / "m")


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    import huggingface_hub.constants as hc
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


# ---------------------------------------------------------------- (1) hub ids


def test_hub_id_resolves_from_the_hf_cache_offline(hub_cache, llava_next):
    from harness.models.hub import resolve
    from pipelines.synth.models import fingerprint

    snap = put_in_hub_cache(hub_cache, "llava-hf/llava-v1.6-tiny-hf", llava_next)
    assert resolve("llava-hf/llava-v1.6-tiny-hf") == snap
    assert len(fingerprint("llava-hf/llava-v1.6-tiny-hf")) > 8       # cache keys work on hub ids too


def test_unknown_hub_id_offline_is_one_clear_error(hub_cache):
    from harness.models.vlm import load_vlm

    with pytest.raises(HarnessError, match="not in the local HF cache and offline"):
        load_vlm("llava-hf/llava-1.5-7b-hf")
    with pytest.raises(HarnessError, match="unknown model"):
        load_vlm("not a model id")


# ---------------------------------------------------------------- (2) LLaVA-NeXT through its own class


def test_llava_next_loads_through_its_own_class_and_generates(llava_next):
    from PIL import Image

    from harness.models.vlm import generate, load_vlm

    model, proc = load_vlm(str(llava_next))
    assert type(model).__name__ == "LlavaNextForConditionalGeneration"
    assert model.dtype.is_floating_point and str(model.device) == "cpu"     # auto: cpu + float32 here
    imgs = [Image.new("RGB", (40, 60), (200, 0, 0)), Image.new("RGB", (64, 48))]   # anyres: two sizes
    out = generate(model, proc, imgs, ["what is it ?", "is there a red circle ?"], max_new_tokens=3,
                   temperature=0.7, seed=1)
    assert len(out) == 2 and all(isinstance(t, str) for t in out)


def test_llava_next_as_responder(llava_next, tmp_path):
    from PIL import Image

    from pipelines.synth.responders import RespondersConfig, respond

    paths = []
    for i in range(2):
        Image.new("RGB", (48, 32), (i * 100, 50, 50)).save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
    cfg = RespondersConfig(models=[str(llava_next)], samples_per_model=1, max_new_tokens=3, batch_size=2)
    out = respond(cfg, paths, ["what is it ?", "what colour is it ?"], policy=str(llava_next), seed=0)
    assert [len(r) for r in out] == [1, 1] and out[0][0]["model"] == str(llava_next)


def test_checkpoint_with_missing_weights_is_refused(llava_next, tmp_path):
    """A checkpoint whose weights do not cover its class: loading would initialise them at random."""
    import shutil

    from safetensors.torch import load_file, save_file

    from harness.models.vlm import load_vlm

    broken = tmp_path / "broken"
    shutil.copytree(llava_next, broken)
    weights = load_file(broken / "model.safetensors")
    dropped = sorted(k for k in weights if "multi_modal_projector" in k)
    save_file({k: v for k, v in weights.items() if k not in dropped}, broken / "model.safetensors",
              metadata={"format": "pt"})
    with pytest.raises(HarnessError, match="newly initialised") as e:
        load_vlm(str(broken))
    assert "multi_modal_projector" in str(e.value)


# ---------------------------------------------------------------- (3) reward models


def test_armo_rm_needs_the_explicit_opt_in(tmp_path):
    from harness.models.reward import load_reward_model

    path = build_armo_rm(tmp_path / "armo")
    with pytest.raises(HarnessError, match="trust_remote_code=true"):
        load_reward_model(str(path))


def test_armo_rm_scores_with_its_preference_score(tmp_path, capsys):
    import torch

    from harness.models.reward import load_reward_model

    path = build_armo_rm(tmp_path / "armo")
    rm = load_reward_model(str(path), trust_remote_code=True)
    assert "trust_remote_code" in capsys.readouterr().err          # printed when used
    assert type(rm.model).__name__ == "LlamaForRewardModelWithGating"
    qs, rs = ["what is in the image ?"] * 2, ["a red circle .", "a blue square and a dog ."]
    got = rm.score(None, qs, rs, batch_size=8)
    tok = rm.processor
    for q, r, g in zip(qs, rs, got):           # the card's call, one conversation at a time
        ids = tok.apply_chat_template([{"role": "user", "content": q}, {"role": "assistant", "content": r}],
                                      tokenize=True, return_dict=True, return_tensors="pt")
        with torch.no_grad():
            want = rm.model(**ids).score.item()
        assert g == pytest.approx(want, rel=1e-5)


def test_armo_opt_in_is_a_preset_key_and_reaches_the_loader(tmp_path):
    import yaml

    from pipelines.synth.response_reward import ResponseRewardConfig, score_responses

    preset = yaml.safe_load((ROOT / "pipelines/presets/rm-dpo/_real.yaml").read_text())
    rr = preset["synth"]["response_reward"]
    assert ResponseRewardConfig(**rr).trust_remote_code is True   # the real preset opts in for ArmoRM
    path = build_armo_rm(tmp_path / "armo")
    scores = score_responses(ResponseRewardConfig(model=str(path), trust_remote_code=True, batch_size=4),
                             [None], ["what is it ?"], [[{"text": "a dog ."}, {"text": "a cat ."}]])
    assert len(scores[0]) == 2 and scores[0][0] != scores[0][1]
    with pytest.raises(HarnessError, match="trust_remote_code"):
        score_responses(ResponseRewardConfig(model=str(path), batch_size=4), [None], ["q"], [[{"text": "a"}]])


def test_sequence_classification_rm_works_and_a_random_head_is_refused(tmp_path):
    from harness.models.reward import load_reward_model

    rm = load_reward_model(str(build_seqcls_rm(tmp_path / "rm")))
    assert len(rm.score(None, ["q ?", "q ?"], ["a dog .", "a cat ."])) == 2
    with pytest.raises(HarnessError, match="newly initialised.*score.weight"):
        load_reward_model(str(build_seqcls_rm(tmp_path / "lm", head=False)))


# ---------------------------------------------------------------- (5), (7) per-world defaults


def test_real_world_defaults_to_the_openai_judge_and_micro_to_the_rule():
    from harness.api import RunSettings

    assert RunSettings(world="real").judge == "openai"
    assert RunSettings(world="micro").judge == "rule"
    assert RunSettings(world="real", judge="rule").judge == "rule"


def test_no_real_preset_hard_codes_a_device():
    import yaml

    for p in sorted((ROOT / "pipelines" / "presets").glob("*/*real*.yaml")):
        data = yaml.safe_load(p.read_text()) or {}
        devices = [v for part in (data.get("synth") or {}).values() if isinstance(part, dict)
                   for k, v in part.items() if k == "device"]
        assert all(d in ("auto", "") for d in devices), p


# ---------------------------------------------------------------- (4) official files -> the data root


def _prepare_all(releases: dict, monkeypatch, root: Path) -> None:
    from harness.cli import main

    monkeypatch.setenv("HARNESS_DATA_DIR", str(root))
    for suite, src in releases.items():
        args = ["data", "prepare", suite, "--subset"]
        for p in (src if isinstance(src, list) else [src]):
            args += ["--from", str(p)]
        assert main(args) == 0, suite


@pytest.fixture
def prepared(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "data"
    _prepare_all(write_official_releases(tmp_path / "releases"), monkeypatch, root)
    return root


def test_prepare_converts_each_official_release(prepared):
    import json

    from harness import data

    manifests = data.check(list(data.SUITE_DOCS), prepared, hashes=True)
    assert manifests["pope"]["counts"] == {"random.jsonl": 4, "popular.jsonl": 4, "adversarial.jsonl": 4}
    pope = [json.loads(x) for x in (prepared / "pope/docs/random.jsonl").read_text().splitlines()]
    assert pope[0] == {"question_id": 1, "question": "Is there a dog in the image?", "answer": "yes",
                       "image_source": "COCO_val2014_000000000042", "category": "random",
                       "image": "pope/images/COCO_val2014_000000000042.jpg"}
    amber_d = [json.loads(x) for x in (prepared / "amber/docs/amber_d.jsonl").read_text().splitlines()]
    assert [d["type"] for d in amber_d][:2] == ["discriminative-hallucination", "discriminative-attribute-action"]
    amber_g = json.loads((prepared / "amber/docs/amber_g.jsonl").read_text().splitlines()[0])
    assert amber_g["truth"] == ["tree", "sky"] and amber_g["hallu"] == ["bird", "car"]
    ohb = json.loads((prepared / "object-halbench/docs/object_halbench.jsonl").read_text().splitlines()[0])
    assert ohb["truth"] == ["person", "chair"] and (prepared / ohb["image"]).is_file()
    assert ohb["captions"] == ["A man sitting on a chair near a dog."]
    mmvet = json.loads((prepared / "mmvet/docs/mmvet.jsonl").read_text().splitlines()[1])
    assert mmvet["capability"] == "rec,ocr" and mmvet["question_id"] == "v1_1"
    mmhal = json.loads((prepared / "mmhal/docs/mmhal.jsonl").read_text().splitlines()[0])
    assert mmhal["image"] == "mmhal/images/520_abc_o.jpg" and mmhal["question_type"] == "attribute"
    assert manifests["mmhal"]["source"]["subset"] is True
    assert (prepared / "amber" / "relation.json").is_file() and "relation.json" in manifests["amber"]["files"]


def test_bad_data_is_one_clear_error(tmp_path, monkeypatch, capsys):
    from harness import data
    from harness.cli import main

    releases = write_official_releases(tmp_path / "releases")
    monkeypatch.setenv("HARNESS_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(HarnessError, match="no prepared data for suite 'pope'"):
        data.check(["pope"])                                            # missing data root
    assert main(["data", "prepare", "pope", "--from", str(releases["amber"])]) == 2   # the wrong files
    assert "coco_pope_random.json not found" in capsys.readouterr().err
    assert main(["data", "prepare", "mmhal", "--from", str(releases["mmhal"])]) == 2  # 2 of 96 items
    assert "--subset" in capsys.readouterr().err
    assert main(["data", "prepare", "mmhal", "--from", str(releases["mmhal"]), "--subset"]) == 0
    (tmp_path / "data" / "mmhal" / "docs" / "mmhal.jsonl").write_text("{}\n")
    with pytest.raises(HarnessError, match="changed since it was prepared"):
        data.check(["mmhal"], hashes=True)
    next((tmp_path / "data" / "mmhal" / "images").iterdir()).unlink()
    with pytest.raises(HarnessError, match="incomplete"):
        data.check(["mmhal"])


def test_every_real_task_reads_the_data_root_offline(prepared, tmp_path):
    """Each real suite's lmms-eval tasks, generated into the data root, run on a tiny LLaVA with no hub.
    AMBER's generative half and Object HalBench are only loaded, not generated: their official scorers need
    NLTK data and spaCy's en_core_web_lg (not in the CPU lock) and refuse to build a prompt without them."""
    import torch

    from benchmarks.rows import rows_from_samples
    from benchmarks.suites import AMBER, MMHAL, MMVET, OBJECT_HALBENCH, POPE
    from harness import data
    from harness.lmms_adapter import HarnessVLM, run_tasks
    from harness.models.vlm import load_vlm
    from eval_fixtures import build_tiny_llava

    torch.set_num_threads(1)
    model, proc = load_vlm(str(build_tiny_llava(tmp_path / "m")))
    lm = HarnessVLM(model=model, processor=proc, batch_size=8)
    tasks = [t for s in (POPE, AMBER, MMHAL, MMVET, OBJECT_HALBENCH) for t in s.tasks]
    assert set(tasks) == {t for docs in data.SUITE_DOCS.values() for t in docs}
    needs_nlp = ["harness_amber_g", "harness_object_halbench"]
    tasks = [t for t in tasks if t not in needs_nlp]
    out = run_tasks(lm, tasks, include_path=str(data.task_dir()), limit=2)
    rows = {t: rows_from_samples(t, out[t]) for t in tasks}
    assert [r["split"] for r in rows["harness_pope_adv"]] == ["adversarial", "adversarial"]
    assert rows["harness_pope_random"][0]["label"] == "yes"
    assert rows["harness_amber_d"][0]["type"] == "discriminative-hallucination"
    assert rows["harness_mmvet"][0]["capabilities"] == ["math"]
    import yaml
    from datasets import load_dataset
    docs = {}
    for name in needs_nlp:      # their generated YAML: a json dataset on the prepared documents
        spec = yaml.safe_load((data.task_dir() / f"{name}.yaml").read_text())
        assert spec["dataset_path"] == "json" and spec["include"].endswith(f"benchmarks/tasks/real/{name}.yaml")
        docs[name] = list(load_dataset("json", data_files=spec["dataset_kwargs"]["data_files"], split="test"))
    assert docs["harness_object_halbench"][0]["truth"] == ["person", "chair"]
    assert docs["harness_amber_g"][1]["truth"] == ["dog"]


# ---------------------------------------------------------------- (5), (6) judge defaults, --dry-run, eval --world


@pytest.fixture
def judge(monkeypatch):
    j = FakeJudge()
    monkeypatch.setenv("HARNESS_JUDGE_URL", j.url)
    monkeypatch.setenv("HARNESS_JUDGE_MODEL", "judge-under-test")
    monkeypatch.setenv("HARNESS_JUDGE_RETRIES", "0")
    yield j
    j.close()


def _stand_in_dirs(tmp: Path) -> dict[str, str]:
    """Model folders a dry run resolves (configs only: a dry run loads nothing)."""
    import json

    from eval_fixtures import build_tiny_llava

    out = {"base": build_tiny_llava(tmp / "base"), "next": build_tiny_llava_next(tmp / "next"),
           "armo": build_armo_rm(tmp / "armo")}
    (tmp / "sd3").mkdir()
    (tmp / "sd3" / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusion3Pipeline"}))
    (tmp / "clip").mkdir()
    (tmp / "clip" / "config.json").write_text(json.dumps({"architectures": ["CLIPModel"]}))
    out.update(sd3=tmp / "sd3", clip=tmp / "clip")
    rows = "".join(json.dumps({"category": "animals", "prompt": f"a dog number {i}"}) + "\n" for i in range(30))
    (tmp / "prompts.jsonl").write_text(rows)
    out["prompts"] = tmp / "prompts.jsonl"
    return {k: str(v) for k, v in out.items()}


def _real_overrides(m: dict) -> list[str]:
    return [f"base_model={m['base']}", f"synth.prompts.source={m['prompts']}", f"synth.images.model={m['sd3']}",
            f"synth.image_reward.model={m['clip']}", f"synth.responders.models=[{m['next']}, policy]",
            f"synth.response_reward.model={m['armo']}"]


def test_dry_run_resolves_everything_prints_the_plan_and_loads_nothing(prepared, judge, tmp_path, monkeypatch,
                                                                       capsys):
    from harness.cli import main

    def refuse(*a, **kw):
        raise AssertionError("a dry run loaded a model")
    monkeypatch.setattr("harness.models.vlm.load_vlm", refuse)
    monkeypatch.setattr("harness.models.reward.load_reward_model", refuse)
    models = _stand_in_dirs(tmp_path / "models")
    out = tmp_path / "run"
    rc = main(["run", "--method", "rm-dpo", "--size", "20", "--world", "real", "--out", str(out), "--dry-run",
               *_real_overrides(models)])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "LlavaNextForConditionalGeneration" in err and "LlavaForConditionalGeneration" in err
    assert "LlamaForRewardModelWithGating" in err and "trust_remote_code" in err
    assert f"judge: judge-under-test at {judge.url}" in err
    assert judge.paths == ["/v1/chat/completions"] and judge.models == ["judge-under-test"]   # one test call
    assert "22 prompts x 4 = 88 images" in err and "44 generations" in err
    assert "22 question requests to judge-under-test" in err        # the preset's LLM-written questions
    for stage in ("images", "responses", "rewards", "train", "evaluate"):
        assert f"  {stage}" in err
    assert "GPU-h" in err and not out.exists()


def test_real_run_refuses_bad_input_before_any_work(prepared, tmp_path, monkeypatch, capsys):
    from harness.cli import main

    models = _stand_in_dirs(tmp_path / "models")
    monkeypatch.setenv("HARNESS_JUDGE_URL", "http://127.0.0.1:9/v1")      # nothing listens on port 9
    monkeypatch.setenv("HARNESS_JUDGE_RETRIES", "0")
    args = ["run", "--method", "rm-dpo", "--size", "20", "--world", "real", "--out", str(tmp_path / "run"),
            *_real_overrides(models)]
    assert main(args) == 2
    assert "the judge does not answer" in capsys.readouterr().err
    monkeypatch.setenv("HARNESS_DATA_DIR", str(tmp_path / "empty"))
    assert main(args) == 2
    assert "no prepared data for suite 'pope'" in capsys.readouterr().err
    monkeypatch.setenv("HARNESS_DATA_DIR", str(prepared))
    lm = build_seqcls_rm(tmp_path / "lm", head=False)                     # a reward head that would be random
    assert main(args + [f"synth.response_reward.model={lm}", "synth.response_reward.trust_remote_code=false"]) == 2
    assert "newly initialised (random): score.weight" in capsys.readouterr().err
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")                               # an unknown hub id, offline
    assert main(args + ["base_model=llava-hf/no-such-model-hf"]) == 2
    assert "'llava-hf/no-such-model-hf' is not in the local HF cache and offline" in capsys.readouterr().err
    assert not (tmp_path / "run" / "stages").exists()


def test_eval_accepts_world_real(tmp_path, monkeypatch, capsys):
    from harness.api import eval_suites
    from harness.cli import main

    monkeypatch.setenv("HARNESS_DATA_DIR", str(tmp_path / "none"))
    assert main(["eval", "--world", "real", "--model", "micro-llava", "--out", str(tmp_path / "e")]) == 2
    assert "no prepared data for suite 'pope'" in capsys.readouterr().err     # before the model loads

    assert eval_suites("real", None) == "pope,amber,mmhal,mmvet,object-halbench"
    assert eval_suites(None, "pope") == "pope"
    with pytest.raises(HarnessError, match="not a real-world suite"):
        eval_suites("real", "micro-pope")
    with pytest.raises(HarnessError, match="--suites or --world"):
        eval_suites(None, None)


# ---------------------------------------------------------------- LLM-written prompts and questions


def _llm_replies(prompt: str) -> str:
    """Numbered prompts with one duplicate per batch; the first 'school' batch is a bad reply (a refusal)."""
    import re
    cat, batch = re.search(r'category "(\w+)" \(batch ([\w-]+)\)', prompt).groups() if "category" in prompt \
        else (None, None)
    if cat is None:
        return "What is on the table?" if "attempt 1" in prompt else "Sure! Here is a question:\nWhat?"
    if cat == "school" and batch.endswith("-0"):
        return "I cannot help with that."
    if cat == "dup":                      # the same prompts whatever the batch
        batch = "same"
    k = int(re.search(r"Write (\d+) different", prompt).group(1))
    lines = [f"{i + 1}. A photo of {cat} scene {batch} number {i} with two red cups" for i in range(k - 1)]
    return "\n".join(lines + [lines[0]])


def test_llm_prompts_by_category_deduplicated_retried_cached(tmp_path, monkeypatch, capsys):
    from pipelines.synth.prompts import PromptsConfig, check_capacity, make_prompts

    llm = FakeJudge(_llm_replies)
    monkeypatch.setenv("HARNESS_JUDGE_URL", llm.url)
    monkeypatch.setenv("HARNESS_JUDGE_RETRIES", "0")
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    try:
        cfg = PromptsConfig(source="llm", categories=["art", "school"], per_request=4, llm_model="writer")
        assert cfg.llm_url == llm.url                       # the judge's endpoint, named in the config
        check_capacity(cfg, 5)
        rows = make_prompts(cfg, 7, seed=0)
        assert [r["category"] for r in rows] == ["art"] * 4 + ["school"] * 3 and len(rows) == 7
        assert len({r["prompt"] for r in rows}) == 7 and [r["id"] for r in rows] == list(range(7))
        err = capsys.readouterr().err
        assert "1 bad replies retried" in err and "duplicates dropped" in err
        assert set(llm.models) == {"writer"}
        asked = len(llm.paths)
        # again: every good reply from the cache; only the bad one (never cached) is asked again
        assert make_prompts(cfg, 7, seed=0) == rows and len(llm.paths) == asked + 1
        with pytest.raises(HarnessError, match="gave 3 of 10 prompts for category 'dup' after 12 requests"):
            make_prompts(PromptsConfig(source="llm", categories=["dup"], per_request=4), 10, seed=5)
    finally:
        llm.close()


def test_llm_questions_retry_a_bad_reply(tmp_path, monkeypatch):
    from pipelines.synth.questions import QuestionsConfig, make_question

    llm = FakeJudge(_llm_replies)
    monkeypatch.setenv("HARNESS_JUDGE_URL", llm.url)
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    try:
        q = make_question(QuestionsConfig(backend="llm"), {"id": 3, "prompt": "a red cup on a table"}, seed=0)
        assert q == {"question": "What is on the table?", "kind": "instruction"}
        assert len(llm.paths) == 2 and "a red cup on a table" in llm.prompts[0]   # attempt 0 was bad
    finally:
        llm.close()


# ---------------------------------------------------------------- (7) the whole real path on CPU

# the preset's own hub ids, each filled in the HF cache with a tiny random stand-in of the same architecture
HUB_STAND_INS = {"llava-hf/llava-1.5-7b-hf": "base", "llava-hf/llava-v1.6-mistral-7b-hf": "next",
                 "stabilityai/stable-diffusion-3-medium-diffusers": "sd3", "openai/clip-vit-large-patch14": "clip",
                 "RLHFlow/ArmoRM-Llama3-8B-v0.1": "armo"}
CPU_OVERRIDES = [  # documented config keys only: tiny image and answer sizes, fp32 training, one responder
    "synth.images.steps=2", "synth.images.height=16", "synth.images.width=16",
    "synth.responders.models=[llava-hf/llava-v1.6-mistral-7b-hf, policy]", "synth.responders.max_new_tokens=8",
    "synth.select.require_well_formed=false",          # random weights never write a well-formed answer
    "train.bf16=false", "train.gradient_checkpointing=false", "train.epochs=1", "eval.batch_size=8"]


@pytest.mark.slow
def test_cpu_dry_run_of_the_whole_real_path(tmp_path, monkeypatch, hub_cache, judge, capsys):
    """harness data prepare (all five suites, official formats) + harness run --world real on the preset's hub
    ids, served offline from an HF cache of tiny random stand-ins, with a fake OpenAI-compatible server as judge
    and as the LLM writing prompts and questions. Slow tier (minutes on 2
    cores: SD3, two responders, ArmoRM, DPO, two checkpoints x five suites)."""
    import json

    from datasets import load_from_disk
    from peft import PeftModel
    from transformers import LlavaForConditionalGeneration

    from eval_fixtures import LLAVA15_TEMPLATE, build_tiny_llava
    from harness.cli import main

    models = tmp_path / "models"
    built = {"base": build_tiny_llava(models / "base", chat_template=LLAVA15_TEMPLATE),
             "next": build_tiny_llava_next(models / "next"), "sd3": build_tiny_sd3(models / "sd3"),
             "clip": build_tiny_clip(models / "clip"), "armo": build_armo_rm(models / "armo")}
    for repo, key in HUB_STAND_INS.items():
        put_in_hub_cache(hub_cache, repo, built[key])
    _prepare_all(write_official_releases(tmp_path / "releases"), monkeypatch, tmp_path / "data")
    fake_nlp_resources(monkeypatch)
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    judge.reply_fn = _llm_replies        # the same endpoint writes the prompts and questions (the preset's llm)
    out = tmp_path / "run"
    rc = main(["run", "--method", "rm-dpo", "--size", "4", "--world", "real", "--out", str(out), *CPU_OVERRIDES])
    err = capsys.readouterr().err
    assert rc == 0, err[-3000:]
    assert "trust_remote_code" in err and f"judge: judge-under-test at {judge.url}" in err
    assert "prompts: 4 written by judge-under-test" in err

    rec = json.loads((out / "record.json").read_text())
    assert set(rec["checkpoints"]["base"]) == set(rec["checkpoints"]["aligned"]) == \
        {"pope", "amber", "mmhal", "mmvet", "object-halbench"}
    assert rec["config"]["method"]["synth"]["response_reward"]["trust_remote_code"] is True
    assert rec["config"]["run"]["judge"] == "openai"
    assert rec["checkpoints"]["aligned"]["mmhal"]["judge"]["base_url"] == judge.url
    assert set(judge.paths) == {"/v1/chat/completions"} and set(judge.models) == {"judge-under-test"}
    assert len(judge.paths) > 1 + 2 * 2          # the test call, then MMHal and MM-Vet items of two checkpoints

    ds = load_from_disk(str(out / "dataset"))
    assert {"images", "prompt", "chosen", "rejected"} <= set(ds.column_names) and len(ds) == 4
    base = LlavaForConditionalGeneration.from_pretrained(built["base"])
    assert isinstance(PeftModel.from_pretrained(base, out / "adapter"), PeftModel)

    # a plain sequence-classification RM in ArmoRM's place: only the rewards and pairs stages run again
    rm = build_seqcls_rm(models / "seqcls")
    assert main(["synth", "--method", "rm-dpo", "--size", "4", "--world", "real", "--out", str(out),
                 *CPU_OVERRIDES, f"synth.response_reward.model={rm}",
                 "synth.response_reward.trust_remote_code=false"]) == 0
    err = capsys.readouterr().err
    assert "trust_remote_code" not in err and len(load_from_disk(str(out / "dataset"))) == 4


def test_readme_names_only_the_judge_variables_the_code_reads():
    """(6) the README's judge variables are the ones harness/judges/openai_judge.py reads (no OPENAI_API_URL)."""
    import re

    readme = (ROOT / "README.md").read_text()
    code = (ROOT / "harness" / "judges" / "openai_judge.py").read_text()
    named = set(re.findall(r"\b(?:HARNESS_JUDGE_\w+|OPENAI_\w+)\b", readme))
    assert {"HARNESS_JUDGE_URL", "HARNESS_JUDGE_MODEL", "OPENAI_API_KEY"} <= named
    assert all(v in code for v in named), sorted(v for v in named if v not in code)


@pytest.mark.slow
def test_llava_next_as_the_base_trains_merges_and_reloads(llava_next, tmp_path):
    """(2) as the base of DPO + LoRA and as the merged on-policy sampler (slow tier: ~20 s, mostly TRL's import)."""
    from datasets import Dataset
    from PIL import Image

    from harness.models.vlm import generate, load_vlm
    from pipelines.dpo import DPOTrainConfig, merge_adapter, train_dpo

    def turn(role, text, image=False):
        return [{"role": role, "content": ([{"type": "image"}] if image else []) + [{"type": "text", "text": text}]}]
    Dataset.from_dict({"prompt": [turn("user", "describe this image .", True)] * 4,
                       "chosen": [turn("assistant", "there is a small red cup on the top left .")] * 4,
                       "rejected": [turn("assistant", "there is a big blue dog .")] * 4,
                       "images": [[Image.new("RGB", (48, 32), (200, 30, 30))]] * 4}).save_to_disk(str(tmp_path / "ds"))
    cfg = DPOTrainConfig(lr=1e-2, lora_r=2, lora_alpha=4, lora_dropout=0.0, batch_size=2, max_steps=2,
                         warmup_ratio=0.0, bf16=False, gradient_checkpointing=False)
    summary = train_dpo(cfg, base=str(llava_next), dataset_dir=tmp_path / "ds", out_dir=tmp_path / "out", seed=0)
    assert summary["steps"] == 2
    merged = merge_adapter(str(llava_next), tmp_path / "out" / "adapter", tmp_path / "merged")
    model, proc = load_vlm(str(merged))
    assert type(model).__name__ == "LlavaNextForConditionalGeneration"
    assert len(generate(model, proc, [Image.new("RGB", (40, 40))], ["what is it ?"], max_new_tokens=3)) == 1

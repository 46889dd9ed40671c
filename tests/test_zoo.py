"""Zoo: architectures build and agree with the processor, a reduced zoo builds/verifies/loads, corruption is caught."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch

from harness.errors import HarnessError
from harness.world.render import render
from harness.world.scene import sample_scenes
from harness.zoo import architectures as A
from harness.zoo import store


def test_processor_and_encoder_agree_and_cached_path_matches_real_path():
    from harness.zoo.data import Encoder, pixel_tensor
    from harness.zoo.train import llava_logits, tower_features
    torch.manual_seed(0)
    proc = A.build_processor(A.REDUCED)
    model = A.build_llava(A.REDUCED, seed=0).eval()
    scene = sample_scenes(1, "train", 0)[0]
    turns = [("is there a cup in the image ?", "yes .")]
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": turns[0][0]}]},
            {"role": "assistant", "content": [{"type": "text", "text": turns[0][1]}]}]
    text = proc.apply_chat_template(msgs, tokenize=False)
    assert text == "user : <image> is there a cup in the image ? assistant : yes . </s>"
    enc = proc(images=[render(scene)], text=[text], return_tensors="pt")
    encoder = Encoder(proc.tokenizer, (64 // A.REDUCED.patch_size) ** 2)
    ids, labels = encoder.encode(turns)
    assert enc["input_ids"][0].tolist() == ids
    assert torch.equal(enc["pixel_values"], pixel_tensor([scene]))
    with torch.no_grad():
        real = model(**enc).logits
        feats = tower_features(model.model.vision_tower, enc["pixel_values"])
        cached = llava_logits(model, enc["input_ids"], enc["attention_mask"], feats, encoder.image_id)
    assert torch.allclose(real, cached, atol=1e-5)


def test_tiny_models_build_and_generate():
    proc = A.build_processor(A.REDUCED)
    model = A.build_llava(A.REDUCED, seed=0).eval()
    scenes = sample_scenes(2, "train", 1)
    prompt = proc.apply_chat_template([{"role": "user", "content": [{"type": "image"},
                                        {"type": "text", "text": "describe this image ."}]}],
                                      add_generation_prompt=True, tokenize=False)
    enc = proc(images=[render(s) for s in scenes], text=[prompt] * 2, return_tensors="pt", padding=True)
    out = model.generate(**enc, max_new_tokens=4, do_sample=False)
    assert out.shape[1] <= enc["input_ids"].shape[1] + 4
    assert A.n_params(A.build_clip(A.REDUCED)) > 0
    assert A.build_text_reward_model(A.REDUCED).config.num_labels == 1
    rm = A.build_llava_reward_model(A.REDUCED)
    assert rm(**enc).shape == (2,)


def test_reduced_zoo_builds_verifies_and_loads(reduced_zoo):
    from transformers import AutoProcessor, CLIPModel, LlavaForConditionalGeneration

    from harness.models.reward import load_reward_model
    info = store.verify(reduced_zoo)
    assert sorted(info["models"]) == sorted(store.ZOO_NAMES)
    manifest = json.loads((reduced_zoo / "MANIFEST.json").read_text())
    assert manifest["seed"] == 0 and manifest["reduced"] is True
    for name in store.ZOO_NAMES:
        card = json.loads((reduced_zoo / name / "card.json").read_text())
        assert card["params"] > 0 and card["seed"] == 0 and "checks" in card and "train_size" in card
        assert not list((reduced_zoo / name).glob("*.bin")) and list((reduced_zoo / name).glob("*.safetensors"))
    assert store.resolve_model("micro-llava") == reduced_zoo / "micro-llava"
    llava = LlavaForConditionalGeneration.from_pretrained(store.resolve_model("micro-llava"), use_safetensors=True)
    assert llava.config.vision_config.patch_size == A.REDUCED.patch_size
    AutoProcessor.from_pretrained(store.resolve_model("micro-responder-a"))
    CLIPModel.from_pretrained(store.resolve_model("micro-clip"), use_safetensors=True)
    scenes = sample_scenes(2, "eval", 0)
    imgs = [render(s) for s in scenes]
    aware = load_reward_model("micro-rm")
    blind = load_reward_model("micro-rm-blind")
    assert aware.image_aware and not blind.image_aware
    q, r = ["describe this image ."] * 2, ["there is a cup .", "there is a dog ."]
    assert len(aware.score(imgs, q, r)) == 2 and len(blind.score(None, q, r)) == 2
    with pytest.raises(HarnessError):
        aware.score(None, q, r)
    rows = store.list_models(reduced_zoo)
    assert {row["name"] for row in rows} == set(store.ZOO_NAMES)


def test_verify_catches_corruption_and_missing_files(reduced_zoo, tmp_path):
    copy = tmp_path / "zoo"
    shutil.copytree(reduced_zoo, copy)
    store.verify(copy)
    weights = copy / "micro-rm" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(HarnessError, match="micro-rm/model.safetensors"):
        store.verify(copy)
    (copy / "micro-clip" / "config.json").unlink()
    with pytest.raises(HarnessError, match="missing"):
        store.verify(copy, ["micro-clip"])
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "zoo", "verify", "--dir", str(copy)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "micro-" in proc.stderr + proc.stdout


def test_resolve_model_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_ZOO_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(HarnessError):
        store.resolve_model("micro-llava")
    with pytest.raises(HarnessError):
        store.resolve_model(str(tmp_path / "missing-dir"))
    assert store.resolve_model(str(tmp_path)) == tmp_path
    assert store.list_models() == []


def test_committed_zoo_verifies(monkeypatch):
    monkeypatch.delenv("HARNESS_ZOO_DIR", raising=False)
    if not (store.DEFAULT_DIR / "MANIFEST.json").exists():
        pytest.skip("no committed zoo yet (harness zoo build)")
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "zoo", "verify"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    info = store.verify()
    assert sorted(info["models"]) == sorted(store.ZOO_NAMES) and info["bytes"] < 60e6


def test_build_is_deterministic_given_the_seed(tmp_path):
    from harness.zoo.build import build_zoo
    a = build_zoo(seed=3, out=str(tmp_path / "a"), reduced=True, only=["micro-clip"])
    b = build_zoo(seed=3, out=str(tmp_path / "b"), reduced=True, only=["micro-clip"])
    files_a = json.loads((a / "MANIFEST.json").read_text())["models"]["micro-clip"]["files"]
    files_b = json.loads((b / "MANIFEST.json").read_text())["models"]["micro-clip"]["files"]
    assert files_a["micro-clip/model.safetensors"] == files_b["micro-clip/model.safetensors"]
    with pytest.raises(HarnessError):
        build_zoo(seed=0, out=str(tmp_path / "c"), reduced=True, only=["micro-nothing"])


def test_rebuilding_only_the_reward_model_reproduces_it(reduced_zoo, tmp_path, monkeypatch):
    """`harness zoo build --only micro-rm` into a built zoo: the same bytes as the full build, the blind twin left
    alone, and no vision tower trained (the RM starts from the saved policy)."""
    import shutil

    from harness.zoo import build as B
    copy = tmp_path / "zoo"
    shutil.copytree(reduced_zoo, copy)
    blind = (copy / "micro-rm-blind" / "model.safetensors").stat().st_mtime_ns
    monkeypatch.setattr(B.Builder, "vision", lambda self: pytest.fail("vision tower trained for an RM-only rebuild"))
    B.build_zoo(seed=0, out=str(copy), reduced=True, only=["micro-rm"])
    rm = "micro-rm/model.safetensors"
    assert (copy / rm).read_bytes() == (reduced_zoo / rm).read_bytes()
    assert (copy / "micro-rm-blind" / "model.safetensors").stat().st_mtime_ns == blind


def test_pooled_reward_models_round_trip_and_do_not_depend_on_the_batch(reduced_zoo, tmp_path):
    """The per-token soft-min RM: scores survive save/load (no head left randomly initialised) and a
    response's score is the same alone as in a padded batch with a longer one."""
    from harness.models.reward import RewardModel, load_reward_model

    scenes = sample_scenes(2, "eval", 1)
    imgs = [render(s) for s in scenes]
    q = ["describe this image ."] * 2
    r = ["there is a cup .", "there is a big red dog on the top left and a small blue car on the top right ."]
    for name, images in (("micro-rm", imgs), ("micro-rm-blind", None)):
        rm = load_reward_model(name)
        batched = rm.score(images, q, r)
        alone = [rm.score(images[i:i + 1] if images else None, q[i:i + 1], r[i:i + 1])[0] for i in range(2)]
        assert batched == pytest.approx(alone, abs=1e-4), name
        rm.model.save_pretrained(tmp_path / name)
        rm.processor.save_pretrained(tmp_path / name)
        again = load_reward_model(str(tmp_path / name))
        assert isinstance(again, RewardModel)
        assert again.score(images, q, r) == pytest.approx(batched, abs=1e-5), name

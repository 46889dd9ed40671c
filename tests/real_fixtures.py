"""Tiny random-weight stand-ins of the real world's components, built from configs (no hub access):
a LLaVA-NeXT (1.6) responder, an ArmoRM-architecture reward model whose model code is written into its folder,
a plain sequence-classification RM, and an HF hub cache holding a checkpoint under a hub id."""

from __future__ import annotations

import shutil
from pathlib import Path

from eval_fixtures import CHAT_TEMPLATE, word_tokenizer

# ArmoRM's layout (its card: AutoModelForSequenceClassification + trust_remote_code, the output's `score` is the
# preference score): a Llama backbone, a multi-objective regression head and a gating network mixing the
# objectives. Our own small version of that architecture, written by the test into the model folder.
ARMO_CODE = '''
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn
from transformers import LlamaModel, LlamaPreTrainedModel
from transformers.utils import ModelOutput


@dataclass
class RewardOutput(ModelOutput):
    rewards: Optional[torch.FloatTensor] = None
    gating_output: Optional[torch.FloatTensor] = None
    score: Optional[torch.FloatTensor] = None


class LlamaForRewardModelWithGating(LlamaPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.model = LlamaModel(config)
        self.regression_layer = nn.Linear(config.hidden_size, config.num_objectives, bias=False)
        self.gating = nn.Linear(config.hidden_size, config.num_objectives)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        last = hidden[:, -1]
        rewards = self.regression_layer(last)
        gates = torch.softmax(self.gating(last), dim=-1)
        return RewardOutput(rewards=rewards, gating_output=gates, score=(rewards * gates).sum(-1, keepdim=True))
'''
ARMO_ARCH = "LlamaForRewardModelWithGating"


def text_config(vocab_size: int, **extra):
    from transformers import LlamaConfig
    return LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                       num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=2048, pad_token_id=0,
                       bos_token_id=2, eos_token_id=3, **extra)


def build_tiny_llava_next(out: Path, seed: int = 0) -> Path:
    """LlavaNextForConditionalGeneration (anyres tiling, image_sizes) + LlavaNextProcessor, saved to `out`."""
    import torch
    from transformers import (
        CLIPVisionConfig,
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextImageProcessor,
        LlavaNextProcessor,
    )

    torch.manual_seed(seed)
    tok, vocab = word_tokenizer()
    grid = [[32, 32], [32, 64], [64, 32]]
    cfg = LlavaNextConfig(
        vision_config=CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                       num_attention_heads=2, image_size=32, patch_size=8),
        text_config=text_config(len(vocab)), image_token_index=vocab["<image>"], image_grid_pinpoints=grid,
        vision_feature_select_strategy="default", vision_feature_layer=-1)
    model = LlavaNextForConditionalGeneration(cfg)
    model.generation_config.pad_token_id = 0
    model.generation_config.eos_token_id = 3
    ip = LlavaNextImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32},
                                 image_grid_pinpoints=grid)
    proc = LlavaNextProcessor(image_processor=ip, tokenizer=tok, patch_size=8, num_additional_image_tokens=1,
                              vision_feature_select_strategy="default", chat_template=CHAT_TEMPLATE)
    out = Path(out)
    model.save_pretrained(out, safe_serialization=True)
    proc.save_pretrained(out)
    return out


def build_armo_rm(out: Path, seed: int = 0) -> Path:
    """An ArmoRM-architecture reward model: config auto_map -> modeling_armo.py (written here) + weights."""
    import importlib.util

    import torch

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "modeling_armo.py").write_text(ARMO_CODE)
    spec = importlib.util.spec_from_file_location(f"modeling_armo_{seed}", out / "modeling_armo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(seed)
    tok, vocab = word_tokenizer()
    cfg = text_config(len(vocab), num_objectives=5)
    cfg.architectures = [ARMO_ARCH]
    cfg.auto_map = {"AutoModelForSequenceClassification": f"modeling_armo.{ARMO_ARCH}"}
    model = module.LlamaForRewardModelWithGating(cfg)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out


def build_seqcls_rm(out: Path, seed: int = 0, head: bool = True) -> Path:
    """A one-label LlamaForSequenceClassification RM; head=False saves a bare LM (its head would be random)."""
    import torch
    from transformers import LlamaForCausalLM, LlamaForSequenceClassification

    torch.manual_seed(seed)
    tok, vocab = word_tokenizer()
    cfg = text_config(len(vocab), num_labels=1)
    model = LlamaForSequenceClassification(cfg) if head else LlamaForCausalLM(cfg)
    out = Path(out)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out


def put_in_hub_cache(cache: Path, repo_id: str, model_dir: Path, commit: str = "0" * 40) -> Path:
    """Lay `model_dir` out as huggingface_hub's cache does (models--owner--name/snapshots/<commit>, refs/main)."""
    repo = Path(cache) / f"models--{repo_id.replace('/', '--')}"
    snap = repo / "snapshots" / commit
    shutil.copytree(model_dir, snap)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snap


# ---------------------------------------------------------------- official-format benchmark releases


def _jpeg(path: Path, colour, size=(48, 40)) -> bytes:
    from PIL import Image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, format="JPEG")
    return path.read_bytes()


def write_official_releases(root: Path) -> dict[str, Path]:
    """Tiny releases in each benchmark's own published layout and format -> {suite: folder to pass to --from}.

    POPE: output/coco/coco_pope_<split>.json, one JSON object per line + COCO val2014 file names; AMBER:
    data/query/query_{generative,discriminative}.json, data/annotations.json (official type names), image/;
    MMHal-Bench: response_template.json + images/ named after image_src; MM-Vet: mm-vet.json + images/;
    Object HalBench: RLAIF-V's eval/data/obj_halbench_300_with_image.jsonl (base64 images) + COCO
    annotations/instances_val2014.json and captions_val2014.json."""
    import base64
    import json

    root = Path(root)
    colours = [(200, 30, 30), (30, 30, 200), (30, 200, 30)]
    coco = ["COCO_val2014_000000000042.jpg", "COCO_val2014_000000000073.jpg", "COCO_val2014_000000000139.jpg"]
    pope = root / "POPE"
    for name, c in zip(coco, colours):
        _jpeg(pope / "val2014" / name, c)
    for k, split in enumerate(("random", "popular", "adversarial")):
        lines = [{"question_id": i + 1, "image": coco[(i + k) % 3], "text": f"Is there a {obj} in the image?",
                  "label": label} for i, (obj, label) in enumerate([("dog", "yes"), ("cat", "no"), ("car", "no"),
                                                                     ("person", "yes")])]
        f = pope / "output" / "coco" / f"coco_pope_{split}.json"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("".join(json.dumps(x) + "\n" for x in lines))

    amber = root / "AMBER"
    for i, c in enumerate(colours, start=1):
        _jpeg(amber / "image" / f"AMBER_{i}.jpg", c)
    gen = [{"id": i, "image": f"AMBER_{i}.jpg", "query": "Describe this image."} for i in (1, 2, 3)]
    disc = [{"id": 1005, "image": "AMBER_1.jpg", "query": "Is there a forest in this image?"},
            {"id": 1006, "image": "AMBER_2.jpg", "query": "Is the dog running in this image?"},
            {"id": 1007, "image": "AMBER_3.jpg", "query": "Is the cup on the table in this image?"},
            {"id": 1008, "image": "AMBER_3.jpg", "query": "Are there two dogs in this image?"},
            {"id": 1009, "image": "AMBER_1.jpg", "query": "Is the tree green in this image?"}]
    ann = [{"id": 1, "type": "generative", "truth": ["tree", "sky"], "hallu": ["bird", "car"]},
           {"id": 2, "type": "generative", "truth": ["dog"], "hallu": ["cat"]},
           {"id": 3, "type": "generative", "truth": ["car"], "hallu": ["dog"]},
           {"id": 1005, "type": "discriminative-hallucination", "truth": "no"},
           {"id": 1006, "type": "discriminative-attribute-action", "truth": "yes"},
           {"id": 1007, "type": "discriminative-relation", "truth": "no"},
           {"id": 1008, "type": "discriminative-attribute-number", "truth": "yes"},
           {"id": 1009, "type": "discriminative-attribute-state", "truth": "yes"}]
    (amber / "data" / "query").mkdir(parents=True)
    (amber / "data" / "query" / "query_generative.json").write_text(json.dumps(gen, indent=4))
    (amber / "data" / "query" / "query_discriminative.json").write_text(json.dumps(disc, indent=4))
    (amber / "data" / "annotations.json").write_text(json.dumps(ann, indent=4))
    (amber / "data" / "relation.json").write_text(json.dumps({"dog": ["leash", "bone"], "tree": ["leaf"], "sky": ["cloud"], "bird": ["feather"], "car": ["wheel"],
                                                    "cat": ["kitten"]}))
    (amber / "data" / "safe_words.txt").write_text("thing\nobject\n")

    mmhal = root / "MMHal-Bench"
    template = []
    for i, (qt, c) in enumerate(zip(["attribute", "counting", "relation"], colours)):
        src = f"https://c{i}.staticflickr.com/{i}/52{i}_abc_o.jpg"
        _jpeg(mmhal / "images" / src.split("/")[-1], c)
        template.append({"question_type": qt, "question_topic": "Nature", "image_id": f"id{i}", "image_src": src,
                         "image_content": ["Tree", "Dog"], "question": "What is in the image?",
                         "gt_answer": "A dog.", "model_answer": ""})
    (mmhal / "response_template.json").write_text(json.dumps(template, indent=4))

    mmvet = root / "mm-vet"
    items = {}
    for i, c in enumerate(colours):
        _jpeg(mmvet / "images" / f"v1_{i}.png", c)
        items[f"v1_{i}"] = {"imagename": f"v1_{i}.png", "capability": [["math"], ["rec", "ocr"], ["spat"]][i],
                            "question": "What colour is the box?", "answer": "red<OR>Red"}
    (mmvet / "mm-vet.json").write_text(json.dumps(items, indent=4))

    ohb = root / "RLAIF-V"
    rows, anns = [], []
    for iid, c in zip((139, 285, 632), colours):
        data = _jpeg(root / "tmp" / f"{iid}.jpg", c)
        rows.append({"image_id": iid, "question": "Please describe this image in detail.",
                     "image": base64.b64encode(data).decode()})
        anns += [{"id": iid * 10, "image_id": iid, "category_id": 1},
                 {"id": iid * 10 + 1, "image_id": iid, "category_id": 62}]
    f = ohb / "eval" / "data" / "obj_halbench_300_with_image.jsonl"
    f.parent.mkdir(parents=True)
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    instances = {"images": [{"id": 139}, {"id": 285}, {"id": 632}], "annotations": anns,
                 "categories": [{"id": 1, "name": "person"}, {"id": 62, "name": "chair"}]}
    (root / "coco" / "annotations").mkdir(parents=True)
    (root / "coco" / "annotations" / "instances_val2014.json").write_text(json.dumps(instances))
    captions = {"annotations": [{"id": iid + 1, "image_id": iid, "caption": "A man sitting on a chair near a dog."}
                                for iid in (139, 285, 632)]}
    (root / "coco" / "annotations" / "captions_val2014.json").write_text(json.dumps(captions))
    return {"pope": pope, "amber": amber, "mmhal": mmhal, "mmvet": mmvet, "object-halbench": [ohb, root / "coco"]}


# ---------------------------------------------------------------- a fake OpenAI-compatible judge


class FakeJudge:
    """/v1/chat/completions on 127.0.0.1: "Rating: 4" to MMHal's rubric, "0.5" to MM-Vet's, "OK" otherwise.
    Records the request paths, the models asked for and whether a key was sent."""

    def __init__(self, reply_fn=None):
        from fake_openai import FakeOpenAI, chat_reply

        self.reply_fn = reply_fn          # prompt -> reply text, replacing the judge's replies
        self.prompts: list[str] = []
        self.paths: list[str] = []
        self.models: list[str] = []
        self.auth: list[str | None] = []

        def answer(path, headers, body):
            self.paths.append(path)
            self.models.append(body.get("model"))
            self.auth.append(headers.get("Authorization"))
            prompt = body["messages"][0]["content"]
            self.prompts.append(prompt)
            return chat_reply("Fine.\nRating: 4" if "Rating:" in prompt else "0.5" if "correctness score" in prompt
                              else self.reply_fn(prompt) if self.reply_fn else "OK")
        self.server = FakeOpenAI(answer)
        self.url = self.server.url

    def close(self):
        self.server.close()


# ---------------------------------------------------------------- SD3 and CLIP stand-ins


def build_tiny_sd3(out: Path, seed: int = 0) -> Path:
    """A StableDiffusion3Pipeline of tiny random parts (no T5 encoder, as SD3 allows), saved with diffusers."""
    import torch
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        SD3Transformer2DModel,
        StableDiffusion3Pipeline,
    )
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    from harness.zoo.architectures import build_tokenizer

    torch.manual_seed(seed)
    tok = build_tokenizer()
    tok.model_max_length = 16

    def text_encoder():
        return CLIPTextModelWithProjection(CLIPTextConfig(
            vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
            max_position_embeddings=16, projection_dim=16, bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id))
    pipe = StableDiffusion3Pipeline(
        transformer=SD3Transformer2DModel(sample_size=8, patch_size=2, in_channels=4, num_layers=1,
                                          attention_head_dim=8, num_attention_heads=2, caption_projection_dim=16,
                                          joint_attention_dim=32, pooled_projection_dim=32, out_channels=4),
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=(8,),
                          down_block_types=("DownEncoderBlock2D",), up_block_types=("UpDecoderBlock2D",),
                          latent_channels=4, norm_num_groups=8, shift_factor=0.0609, scaling_factor=1.5035),
        text_encoder=text_encoder(), tokenizer=tok, text_encoder_2=text_encoder(), tokenizer_2=tok,
        text_encoder_3=None, tokenizer_3=None)
    pipe.save_pretrained(out, safe_serialization=True)
    return Path(out)


def build_tiny_clip(out: Path, seed: int = 0) -> Path:
    """A CLIPModel + processor of the zoo's tiny sizes, random weights (the image reward's stand-in)."""
    from harness.zoo import architectures as arch

    arch.build_clip(arch.REDUCED, seed=seed).save_pretrained(out, safe_serialization=True)
    arch.build_clip_processor(arch.REDUCED).save_pretrained(out)
    return Path(out)


def fake_nlp_resources(monkeypatch) -> None:
    """Stand-ins for NLTK's tokenizer/tagger data and spaCy's en_core_web_lg, which the official AMBER and CHAIR
    scorers need and the CPU lock does not install: whitespace words, every word a noun, identity similarity."""
    import re

    from benchmarks.official import nlp
    monkeypatch.setattr(nlp, "require_tokenizer", lambda: None)
    monkeypatch.setattr(nlp, "require_amber_nltk", lambda: None)
    monkeypatch.setattr(nlp, "word_tokenize", lambda text: re.findall(r"\w+|[^\w\s]", text))
    monkeypatch.setattr(nlp, "amber_nouns", lambda text: re.findall(r"[a-z]+", text.lower()))
    monkeypatch.setattr(nlp, "similarity_test", lambda model=None, threshold=None: (lambda a, b: a == b))
    monkeypatch.setattr(nlp, "describe", lambda *a, **kw: {"stand_in": "tests/real_fixtures.fake_nlp_resources"})

"""Tiny random-weight stand-ins of the real world's components, built from configs (no hub access):
a LLaVA-NeXT (1.6) responder, an ArmoRM-architecture reward model whose model code is written into its folder,
a plain sequence-classification RM, and an HF hub cache holding a checkpoint under a hub id."""

from __future__ import annotations

import shutil
from pathlib import Path

from eval_fixtures import CHAT_TEMPLATE

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


def word_tokenizer(chat_template: str = CHAT_TEMPLATE):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from harness.world.texts import VOCAB

    specials = ["<pad>", "<unk>", "<s>", "</s>", "<image>"]
    vocab = {w: i for i, w in enumerate(specials + [w for w in VOCAB if w not in specials])}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", unk_token="<unk>", bos_token="<s>",
                                  eos_token="</s>", extra_special_tokens={"image_token": "<image>"})
    tok.chat_template = chat_template
    return tok, vocab


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

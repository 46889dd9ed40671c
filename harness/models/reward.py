"""Response reward models: `load_reward_model(name_or_path).score(images, questions, responses) -> list[float]`.

Two kinds behind one interface:
- image-aware: `LlavaRewardModel` (LLaVA backbone + scalar head on the last token), the zoo's `micro-rm`;
- image-blind: any text-only `AutoModelForSequenceClassification` with one label, the zoo's `micro-rm-blind` and
  real ArmoRM-style RMs (the paper's ArmoRM never sees the image); images are ignored.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn
from transformers.models.llava.modeling_llava import LlavaModel, LlavaPreTrainedModel

from harness.errors import HarnessError

AWARE_ARCH = "LlavaRewardModel"


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of the last attended token per row (works for left and right padding)."""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return (attention_mask.long() * positions).argmax(dim=1)


class LlavaRewardModel(LlavaPreTrainedModel):
    """LLaVA backbone (vision tower + projector + LM) and a linear head reading the last token: one scalar."""

    def __init__(self, config):
        super().__init__(config)
        self.model = LlavaModel(config)
        self.score = nn.Linear(config.text_config.hidden_size, 1, bias=False)
        self.post_init()

    def forward(self, input_ids=None, pixel_values=None, attention_mask=None, **kwargs) -> torch.Tensor:
        out = self.model(input_ids=input_ids, pixel_values=pixel_values, attention_mask=attention_mask,
                         vision_feature_layer=self.config.vision_feature_layer,
                         vision_feature_select_strategy=self.config.vision_feature_select_strategy)
        hidden = out.last_hidden_state
        if attention_mask is None:
            attention_mask = torch.ones(hidden.shape[:2], dtype=torch.long, device=hidden.device)
        idx = last_token_index(attention_mask)
        return self.score(hidden[torch.arange(hidden.shape[0], device=hidden.device), idx]).squeeze(-1)


def chat_messages(question: str, response: str, with_image: bool) -> list[dict]:
    user = [{"type": "image"}, {"type": "text", "text": question}] if with_image else question
    assistant = [{"type": "text", "text": response}] if with_image else response
    return [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]


class RewardModel:
    """Batch scorer over (image, question, response) triples."""

    def __init__(self, model, processor, image_aware: bool, name: str = ""):
        self.model = model.eval()
        self.processor = processor        # LlavaProcessor (aware) or tokenizer (blind)
        self.image_aware = image_aware
        self.name = name

    def _encode(self, images, questions, responses):
        if self.image_aware:
            texts = [self.processor.apply_chat_template(chat_messages(q, r, True), tokenize=False)
                     for q, r in zip(questions, responses)]
            return self.processor(images=list(images), text=texts, return_tensors="pt", padding=True)
        tok = self.processor
        if getattr(tok, "chat_template", None):
            texts = [tok.apply_chat_template(chat_messages(q, r, False), tokenize=False)
                     for q, r in zip(questions, responses)]
        else:
            texts = [f"{q}\n{r}" for q, r in zip(questions, responses)]
        return tok(texts, return_tensors="pt", padding=True, truncation=True)

    @torch.no_grad()
    def score(self, images, questions: list[str], responses: list[str], batch_size: int = 32) -> list[float]:
        if len(questions) != len(responses):
            raise HarnessError(f"score: {len(questions)} questions but {len(responses)} responses")
        if self.image_aware and (images is None or len(images) != len(questions)):
            raise HarnessError(f"reward model {self.name!r} is image-aware: pass one image per question")
        out: list[float] = []
        for i in range(0, len(questions), batch_size):
            imgs = images[i:i + batch_size] if self.image_aware else None
            enc = self._encode(imgs, questions[i:i + batch_size], responses[i:i + batch_size])
            if self.image_aware:
                r = self.model(**enc)
            else:
                logits = self.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
                r = logits[:, 0] if logits.dim() == 2 else logits
            out.extend(float(x) for x in r.float().tolist())
        return out


def load_reward_model(name_or_path: str, trust_remote_code: bool = False) -> RewardModel:
    """Zoo name (micro-rm, micro-rm-blind) or local HF directory -> RewardModel (safetensors only)."""
    from harness.zoo.store import resolve_model

    path = Path(resolve_model(name_or_path))
    cfg_file = path / "config.json"
    if not cfg_file.exists():
        raise HarnessError(f"reward model {name_or_path!r}: no config.json in {path}")
    archs = json.loads(cfg_file.read_text()).get("architectures") or []
    if AWARE_ARCH in archs:
        from transformers import AutoProcessor
        model = LlavaRewardModel.from_pretrained(path, use_safetensors=True)
        processor = AutoProcessor.from_pretrained(path)
        return RewardModel(model, processor, True, str(name_or_path))
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    try:
        model = AutoModelForSequenceClassification.from_pretrained(path, use_safetensors=True,
                                                                   trust_remote_code=trust_remote_code)
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        raise HarnessError(f"cannot load reward model {name_or_path!r} from {path}: {e}") from e
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model.config.pad_token_id = tok.pad_token_id
    return RewardModel(model, tok, False, str(name_or_path))

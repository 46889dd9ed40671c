"""Response reward models: `load_reward_model(name_or_path).score(images, questions, responses) -> list[float]`.

Two kinds behind one interface:
- image-aware: `LlavaRewardModel` (LLaVA backbone + last-token head + soft-min-pooled per-token scores), the zoo's
  `micro-rm`;
- image-blind: `TextRewardModel` (the same LM, heads and pooling without the image), the zoo's `micro-rm-blind`, or
  any text-only `AutoModelForSequenceClassification` with one label: real ArmoRM-style RMs (the paper's ArmoRM
  never sees the image); images are ignored.
"""

from __future__ import annotations

import json

import torch
from torch import nn
from transformers.models.llama.modeling_llama import LlamaModel, LlamaPreTrainedModel
from transformers.models.llava.modeling_llava import LlavaModel, LlavaPreTrainedModel

from harness.errors import HarnessError

AWARE_ARCH = "LlavaRewardModel"
BLIND_ARCH = "TextRewardModel"      # the zoo's pooled image-blind twin


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of the last attended token per row (works for left and right padding)."""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return (attention_mask.long() * positions).argmax(dim=1)


def response_mask(input_ids: torch.Tensor, attention_mask: torch.Tensor, marker_id: int | None) -> torch.Tensor:
    """1 on the attended tokens after the last `marker_id` token + 1 (the chat template's "assistant :"), i.e.
    the response and its end token; rows without the marker fall back to every attended token."""
    att = attention_mask.bool()
    if marker_id is None or input_ids is None:
        return att
    positions = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
    hit = (input_ids == marker_id) & att
    start = torch.where(hit, positions, torch.full_like(positions, -1)).max(dim=1).values + 2   # skip "assistant :"
    mask = att & (positions >= start[:, None])
    return torch.where(hit.any(dim=1, keepdim=True) & mask.any(dim=1, keepdim=True), mask, att)


def pooled_reward(hidden: torch.Tensor, input_ids: torch.Tensor | None, attention_mask: torch.Tensor, heads,
                  marker_id: int | None, tau: float) -> torch.Tensor:
    """last-token score (global quality: complete, well formed) + a soft minimum of per-token scores over the
    response tokens.

    Why: a hallucinated object is one bad token anywhere in the answer, which a last-token summary of a 2-layer LM
    barely registers. Per-token score s_t = logp_scale * log p(token_t | prefix, image) (the LM head, initialised
    from the SFT policy, whose likelihood alone ranks the true description over a swapped-object one ~98% of the
    time) + token_score(h_t). The soft-min is -tau * log(mean(exp(-s / tau))) (log-MEAN-exp, not log-sum-exp), so
    one unlikely token pulls the reward down while the pool does not fall with response length and does not teach
    "shorter is better"."""
    idx = last_token_index(attention_mask)
    rows = torch.arange(hidden.shape[0], device=hidden.device)
    r = heads.score(hidden[rows, idx]).squeeze(-1)
    if heads.token_score is None:
        return r
    resp = response_mask(input_ids, attention_mask, marker_id)
    resp[:, 0] = False                                               # position 0 has no prefix to predict it
    logp = torch.zeros(hidden.shape[:2], dtype=torch.float32, device=hidden.device)
    logits = heads.lm_head(hidden[:, :-1]).float().log_softmax(-1)
    logp[:, 1:] = logits.gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    s = heads.logp_scale * logp + heads.token_score(hidden).squeeze(-1).float()
    neg = torch.where(resp, -s / tau, torch.full_like(s, float("-inf")))
    n = resp.sum(dim=1).clamp(min=1).float()
    softmin = -tau * (torch.logsumexp(neg, dim=1) - torch.log(n))
    return r + softmin.to(r.dtype)


class PooledHeads(nn.Module):
    """Reward heads shared by the image-aware and the image-blind RM (same architecture minus the image)."""

    def __init__(self, config, pooled: bool):
        super().__init__()
        hidden = config.hidden_size
        self.score = nn.Linear(hidden, 1, bias=False)
        self.token_score = nn.Linear(hidden, 1, bias=False) if pooled else None
        self.lm_head = nn.Linear(hidden, config.vocab_size, bias=False) if pooled else None
        self.logp_scale = nn.Parameter(torch.ones(())) if pooled else None


class LlavaRewardModel(LlavaPreTrainedModel):
    """LLaVA backbone (vision tower + projector + LM) and scalar heads: last-token head, plus (config
    `reward_pooling="last+softmin"`) per-token scores soft-min-pooled over the response (see pooled_reward)."""

    def __init__(self, config):
        super().__init__(config)
        self.model = LlavaModel(config)
        pooled = getattr(config, "reward_pooling", "last") == "last+softmin"
        self.heads = PooledHeads(config.text_config, pooled)
        self.post_init()

    def forward(self, input_ids=None, pixel_values=None, attention_mask=None, **kwargs) -> torch.Tensor:
        out = self.model(input_ids=input_ids, pixel_values=pixel_values, attention_mask=attention_mask,
                         vision_feature_layer=self.config.vision_feature_layer,
                         vision_feature_select_strategy=self.config.vision_feature_select_strategy)
        hidden = out.last_hidden_state
        if attention_mask is None:
            attention_mask = torch.ones(hidden.shape[:2], dtype=torch.long, device=hidden.device)
        return pooled_reward(hidden, input_ids, attention_mask, self.heads,
                             getattr(self.config, "response_marker_id", None),
                             float(getattr(self.config, "reward_softmin_tau", 1.0)))


class TextRewardModel(LlamaPreTrainedModel):
    """The image-blind twin of LlavaRewardModel: the same LM, heads and pooling, no image."""

    def __init__(self, config):
        super().__init__(config)
        self.model = LlamaModel(config)
        pooled = getattr(config, "reward_pooling", "last") == "last+softmin"
        self.heads = PooledHeads(config, pooled)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, **kwargs) -> torch.Tensor:
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if attention_mask is None:
            attention_mask = torch.ones(hidden.shape[:2], dtype=torch.long, device=hidden.device)
        return pooled_reward(hidden, input_ids, attention_mask, self.heads,
                             getattr(self.config, "response_marker_id", None),
                             float(getattr(self.config, "reward_softmin_tau", 1.0)))


def chat_messages(question: str, response: str, with_image: bool) -> list[dict]:
    user = [{"type": "image"}, {"type": "text", "text": question}] if with_image else question
    assistant = [{"type": "text", "text": response}] if with_image else response
    return [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]


def preference_score(output) -> torch.Tensor:
    """One scalar per row: a tensor (the zoo's heads), `output.score` (ArmoRM's card: the gated preference
    score, not its 19 objective rewards) or a one-label sequence classifier's logits."""
    if isinstance(output, torch.Tensor):
        return output
    score = getattr(output, "score", None)
    if isinstance(score, torch.Tensor):
        return score.reshape(score.shape[0], -1)[:, 0]
    logits = output.logits
    if logits.dim() == 2 and logits.shape[1] != 1:
        raise HarnessError(f"reward model has {logits.shape[1]} output labels and no preference score: "
                           "expected one label (a scalar reward) or an ArmoRM-style output.score")
    return logits.reshape(logits.shape[0], -1)[:, 0]


class RewardModel:
    """Batch scorer over (image, question, response) triples."""

    def __init__(self, model, processor, image_aware: bool, name: str = "", one_by_one: bool = False):
        self.model = model.eval()
        self.processor = processor        # LlavaProcessor (aware) or tokenizer (blind)
        self.image_aware = image_aware
        self.name = name
        # a model with its own code (ArmoRM) is scored as its card does it, one unpadded conversation at a time:
        # its code finds the last token through pad_token_id, which padding with the end-of-turn token breaks
        self.one_by_one = one_by_one

    def _encode(self, images, questions, responses):
        if self.image_aware:
            texts = [self.processor.apply_chat_template(chat_messages(q, r, True), tokenize=False)
                     for q, r in zip(questions, responses)]
            return self.processor(images=list(images), text=texts, return_tensors="pt", padding=True)
        tok = self.processor
        if self.one_by_one and getattr(tok, "chat_template", None):   # the card's call: template -> ids directly
            (q,), (r,) = questions, responses
            return tok.apply_chat_template(chat_messages(q, r, False), tokenize=True, return_dict=True,
                                           return_tensors="pt")
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
        batch_size = 1 if self.one_by_one else batch_size
        device = next(self.model.parameters()).device
        for i in range(0, len(questions), batch_size):
            imgs = images[i:i + batch_size] if self.image_aware else None
            enc = self._encode(imgs, questions[i:i + batch_size], responses[i:i + batch_size]).to(device)
            if self.image_aware:
                r = self.model(**enc)
            else:
                r = preference_score(self.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]))
            out.extend(float(x) for x in r.float().reshape(-1).tolist())
        return out


def load_reward_model(name_or_path: str, trust_remote_code: bool = False, device: str | None = None) -> RewardModel:
    """Zoo name (micro-rm, micro-rm-blind), local HF directory or hub id -> RewardModel (safetensors only).

    A checkpoint with its own model code (config `auto_map`, e.g. ArmoRM's LlamaForRewardModelWithGating) loads
    only with `trust_remote_code=True`, the preset's explicit per-model opt-in, and says so on stderr. Any load
    that leaves a weight newly initialised (a head the checkpoint lacks) is a HarnessError naming it."""
    import sys

    from harness.models.hub import auto_device, check_loading_info, resolve

    path = resolve(name_or_path, remote_code=trust_remote_code)
    cfg_file = path / "config.json"
    if not cfg_file.exists():
        raise HarnessError(f"reward model {name_or_path!r}: no config.json in {path}")
    config = json.loads(cfg_file.read_text())
    archs = config.get("architectures") or []
    if config.get("auto_map") and not trust_remote_code:
        raise HarnessError(f"reward model {name_or_path!r} ({', '.join(archs) or 'custom'}) needs its own model "
                           "code: allow it explicitly with synth.response_reward.trust_remote_code=true (transformers "
                           "would otherwise load a stock class with a randomly initialised head)")
    device = auto_device(device)
    what = f"reward model {name_or_path!r}"
    try:
        if AWARE_ARCH in archs:
            from transformers import AutoProcessor
            model, info = LlavaRewardModel.from_pretrained(path, use_safetensors=True, output_loading_info=True)
            check_loading_info(info, what)
            return RewardModel(model.to(device), AutoProcessor.from_pretrained(path), True, str(name_or_path))
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        if BLIND_ARCH in archs:
            model, info = TextRewardModel.from_pretrained(path, use_safetensors=True, output_loading_info=True)
        else:
            if trust_remote_code:
                print(f"harness: {what}: running the model code shipped in {path} (trust_remote_code: true, "
                      "allowed in the preset)", file=sys.stderr)
            model, info = AutoModelForSequenceClassification.from_pretrained(
                path, use_safetensors=True, trust_remote_code=trust_remote_code, output_loading_info=True,
                dtype=torch.bfloat16 if device.startswith("cuda") else torch.float32)
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        raise HarnessError(f"cannot load {what} from {path}: {e}") from e
    check_loading_info(info, what)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model.config.pad_token_id = tok.pad_token_id
    return RewardModel(model.to(device), tok, False, str(name_or_path), one_by_one=bool(config.get("auto_map")))


def check_heads(name_or_path: str, trust_remote_code: bool = False) -> None:
    """Before any weights load: HarnessError unless the checkpoint's safetensors hold every weight of the class
    it would load as (a reward head the checkpoint lacks would be random). Builds the class on the meta device
    (no memory, no weights) and compares parameter names with the safetensors headers."""
    from safetensors import safe_open
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from harness.models.hub import resolve

    path = resolve(name_or_path, remote_code=trust_remote_code)
    config = json.loads((path / "config.json").read_text())
    if config.get("auto_map") and not trust_remote_code:
        raise HarnessError(f"reward model {name_or_path!r} ({', '.join(config.get('architectures') or [])}) needs "
                           "its own model code: allow it with synth.response_reward.trust_remote_code=true")
    archs = config.get("architectures") or []
    if AWARE_ARCH in archs or BLIND_ARCH in archs:
        return                                  # the zoo's own classes, checked when they load
    present: set[str] = set()
    for f in sorted(path.glob("*.safetensors")):
        with safe_open(str(f), framework="pt") as st:
            present.update(st.keys())
    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(
            AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code), trust_remote_code=trust_remote_code)
    tied = getattr(model, "_tied_weights_keys", None) or {}
    missing = sorted(k for k in model.state_dict() if k not in present and k not in tied)
    if missing:
        from harness.models.hub import check_loading_info
        check_loading_info({"missing_keys": missing}, f"reward model {name_or_path!r}")

"""clip-rank — CLIP-DPO style: rm-dpo's candidate responses ranked by an image–text scorer instead of a reward model.

Everything is rm-dpo's (prompts, images, questions, responders, selection rules, DPO + SFT loss, LoRA, the
on-policy round) except the response reward: each response is scored by the CLIP similarity between the kept image
and the response text (the same scorer the image reward uses: `micro-clip` in the micro world, an OpenAI CLIP in
the real one; cosine x logit scale). CLIP reads a response as a caption, so it sees which objects and colours are
named, not whether a yes/no or count answer is right, and its text encoder reads at most 77 tokens (micro-clip 64):
longer responses are cut, which is the known weakness of CLIP-ranked preference data on long answers. Each text is
encoded alone (no padding) and ends in the end-of-text token CLIP pools at, so a score never depends on the batch.

Run it: `harness run --method clip-rank --size 5k` (micro) or `--world real` (presets/clip-rank/).
"""

from dataclasses import dataclass, field
from pathlib import Path

from harness.method import Scorer
from pipelines.preference import PreferenceConfig, dpo_method
from pipelines.synth.image_reward import ImageRewardConfig


@dataclass
class ClipRankConfig(PreferenceConfig):
    scorer: ImageRewardConfig = field(default_factory=ImageRewardConfig)   # the response scorer (a CLIPModel dir)


@dataclass(frozen=True)
class ClipScorer(Scorer):
    """CLIP(image, response text) for every response; images are PIL images or file paths."""
    name = "clip"
    clip: ImageRewardConfig

    @classmethod
    def configure(cls, cfg: ClipRankConfig, run) -> "ClipScorer":
        return cls(cfg.scorer)

    def identity(self) -> dict:
        from pipelines.synth.models import fingerprint
        return {**super().identity(), "weights": fingerprint(self.clip.model)}

    def describe(self) -> str:
        return f"CLIP score ({self.clip.model})"

    def __call__(self, images, questions, responses):
        from PIL import Image

        from pipelines.synth.image_reward import ClipScorer as ClipModel
        clip = ClipModel(self.clip)      # loads the CLIPModel + processor; the scoring below is per text
        pil = []
        for im in images:
            if isinstance(im, (str, Path)):
                with Image.open(im) as f:
                    im = f.convert("RGB")
            pil.append(im)
        img = _image_features(clip, pil)
        text = _text_features(clip, [r["text"] for rs in responses for r in rs])
        logit_scale = float(clip.model.logit_scale.exp())
        return [[float(img[i] @ text[r["text"]]) * logit_scale for r in rs] for i, rs in enumerate(responses)]


def _image_features(clip, images):
    """L2-normalised image embeddings, batched (images need no padding)."""
    import torch
    out = []
    with torch.inference_mode():
        for i in range(0, len(images), clip.cfg.batch_size):
            px = clip.processor(images=images[i:i + clip.cfg.batch_size], return_tensors="pt")["pixel_values"]
            f = clip.model.get_image_features(pixel_values=px)
            f = getattr(f, "pooler_output", f)
            out.append(f / f.norm(dim=-1, keepdim=True))
    return torch.cat(out) if out else torch.zeros(0)


def _text_features(clip, texts: list[str]) -> dict:
    """text -> L2-normalised text embedding, one unpadded sequence per distinct text ending in the end-of-text
    token. CLIP's text tower pools at that token; padding would move the pooled position (left padding) and a
    sequence without it pools at position 0, i.e. reads only the first word. Too long: cut, keeping the end token."""
    import torch
    tok = clip.processor.tokenizer
    max_len = clip.model.config.text_config.max_position_embeddings
    feats = {}
    with torch.inference_mode():
        for t in dict.fromkeys(texts):
            ids = tok(t)["input_ids"]
            if not ids or ids[-1] != tok.eos_token_id:
                ids = ids + [tok.eos_token_id]
            if len(ids) > max_len:
                ids = ids[:max_len - 1] + [ids[-1]]
            f = clip.model.get_text_features(input_ids=torch.tensor([ids]))
            f = getattr(f, "pooler_output", f)[0]
            feats[t] = f / f.norm()
    return feats


METHOD = dpo_method(
    "clip-rank", scorer="clip", config_cls=ClipRankConfig,
    description="CLIP-DPO style: rm-dpo's responses ranked by CLIP(image, response) instead of a reward model "
                "-> DPO+LoRA")

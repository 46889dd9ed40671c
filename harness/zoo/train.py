"""Training loops of the zoo (CPU, one thread, fixed step counts so a seed reproduces the zoo).

Plain torch loops rather than HF Trainer / TRL: every image feature is cached (the vision tower is frozen after its
pre-training) and the models are tiny, so per-step overhead dominates (docs/micro-world.md); a bare loop over cached
tensors runs several times faster, and the zoo is a fixture of the harness, not one of its methods.
"""

from __future__ import annotations

import math
import random
import time

import torch
import torch.nn.functional as F
from torch import nn

from harness.world.scene import CLASSES, COLORS, SIZES
from harness.zoo.data import IGNORE, Encoder, pad_batch



def _log(msg: str) -> None:
    print(f"[zoo] {msg}", flush=True)


def cosine_lr(step: int, total: int, base: float, warmup: int = 20) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    return base * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for g in opt.param_groups:
        g["lr"] = lr


# ---------------------------------------------------------------- (a) vision tower pre-training

class VisionProbe(nn.Module):
    """Heads on the tower's patch tokens: per quadrant class/colour/size/digit (+ empty), global presence."""

    def __init__(self, tower, hidden: int):
        super().__init__()
        self.tower = tower
        # Patch tokens form a grid x grid square (64 px / patch); a quadrant is a (grid/2)^2 block of it.
        self.grid = tower.config.image_size // tower.config.patch_size
        self.quadrant = nn.Linear(hidden, (len(CLASSES) + 1) + (len(COLORS) + 1) + (len(SIZES) + 1) + 11)
        self.presence = nn.Linear(hidden, len(CLASSES))
        self.patch = nn.Linear(hidden, len(CLASSES) + 1)

    def forward(self, pixels: torch.Tensor):
        h = self.tower(pixel_values=pixels).last_hidden_state[:, 1:]            # [B, 64, H]
        b, _, d = h.shape
        grid = h.reshape(b, 2, self.grid // 2, 2, self.grid // 2, d)                       # rows, sub-rows, cols, sub-cols
        quads = grid.mean(dim=(2, 4)).reshape(b, 4, d)                           # quadrant order (r0c0, r0c1, ..)
        # Presence is predicted from EVERY patch token: the tower must spread "what is in the image" to all tokens,
        # so the LM can answer existence questions by reading any image token (a bilinear question-word x feature
        # readout) instead of having to learn a content search over patches.
        return self.quadrant(quads), self.presence(h), self.patch(h)


def _split_heads(logits: torch.Tensor):
    sizes = [len(CLASSES) + 1, len(COLORS) + 1, len(SIZES) + 1, 11]
    return torch.split(logits, sizes, dim=-1)


def probe_loss(probe: VisionProbe, pixels, targets, idx) -> torch.Tensor:
    q, pres, patch = probe(pixels[idx])
    cls, col, size, digit = _split_heads(q)
    loss = 2.0 * F.binary_cross_entropy_with_logits(pres, targets["presence"][idx][:, None].expand_as(pres))
    loss = loss + F.cross_entropy(patch.reshape(-1, patch.shape[-1]), targets["patch"][idx].reshape(-1))
    for logits, key in ((cls, "cls"), (col, "color"), (size, "size"), (digit, "digit")):
        loss = loss + F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets[key][idx].reshape(-1))
    return loss


def pretrain_vision(tower, pixels, targets, steps: int, batch: int, lr: float, seed: int):
    """Train the tower on the probe objectives; returns the probe (tower inside)."""
    torch.manual_seed(seed)
    probe = VisionProbe(tower, tower.config.hidden_size)
    opt = torch.optim.AdamW(probe.parameters(), lr=lr, weight_decay=0.01)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.time()
    probe.train()
    for step in range(steps):
        set_lr(opt, cosine_lr(step, steps, lr))
        idx = torch.randint(0, pixels.shape[0], (batch,), generator=gen)
        loss = probe_loss(probe, pixels, targets, idx)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % max(1, steps // 5) == 0 or step == steps - 1:
            _log(f"vision step {step}/{steps} loss {loss.item():.3f} ({time.time() - t0:.0f}s)")
    return probe.eval()


@torch.no_grad()
def probe_accuracy(probe: VisionProbe, pixels, targets) -> dict[str, float]:
    q, pres, patch = probe(pixels)
    cls, col, _, _ = _split_heads(q)
    occupied = targets["cls"] != len(CLASSES)
    on_object = targets["patch"] != len(CLASSES)
    return {
        "patch_class_acc": float((patch.argmax(-1) == targets["patch"])[on_object].float().mean()),
        "quadrant_class_acc": float((cls.argmax(-1) == targets["cls"])[occupied].float().mean()),
        "quadrant_color_acc": float((col.argmax(-1) == targets["color"])[occupied].float().mean()),
        "presence_acc": float(((pres > 0).float() == targets["presence"][:, None]).float().mean()),
    }


@torch.no_grad()
def tower_features(tower, pixels: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """Last hidden state of the frozen tower (what LLaVA reads with vision_feature_layer=-1): [N, 65, H]."""
    tower.eval()
    return torch.cat([tower(pixel_values=pixels[i:i + batch]).last_hidden_state
                      for i in range(0, pixels.shape[0], batch)])


# ---------------------------------------------------------------- LLaVA forward on cached features

def llava_logits(model, ids, mask, feats, image_id: int) -> torch.Tensor:
    """Same computation as LlavaForConditionalGeneration(pixel_values=...) with the tower replaced by its cached
    last hidden state (strategy "default" drops CLS; checked against the real path in tests/test_zoo.py)."""
    emb = model.get_input_embeddings()(ids)
    img = model.model.multi_modal_projector(feats[:, 1:])                       # [B, 64, D]
    slots = (ids == image_id)
    emb = emb.masked_scatter(slots.unsqueeze(-1), img[slots.any(dim=1)].to(emb.dtype))
    return model(inputs_embeds=emb, attention_mask=mask).logits


def lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                           ignore_index=IGNORE)


def sft_llava(model, encoder: Encoder, feats: torch.Tensor, conversations: list[tuple[int, list]],
              steps: int, batch: int, lr: float, seed: int, label: str = "sft") -> list[float]:
    """Supervised fine-tuning of projector + LM (the tower is frozen: its features are cached).

    conversations: (image index, [(question, answer), ...]); sampled with replacement, deterministic in `seed`."""
    for p in model.model.vision_tower.parameters():
        p.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    encoded = [(i, *encoder.encode(turns)) for i, turns in conversations]
    pad = encoder.tok.pad_token_id
    rng = random.Random(f"{label}:{seed}")
    torch.manual_seed(seed)
    model.train()
    losses, t0 = [], time.time()
    for step in range(steps):
        set_lr(opt, cosine_lr(step, steps, lr))
        rows = [encoded[rng.randrange(len(encoded))] for _ in range(batch)]
        ids, mask = pad_batch([r[1] for r in rows], pad)
        labels, _ = pad_batch([r[2] for r in rows], IGNORE)
        f = feats[torch.tensor([r[0] for r in rows])]
        loss = lm_loss(llava_logits(model, ids, mask, f, encoder.image_id), labels)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(loss.item())
        if step % max(1, steps // 8) == 0 or step == steps - 1:
            _log(f"{label} step {step}/{steps} loss {sum(losses[-20:]) / len(losses[-20:]):.3f} "
                 f"({time.time() - t0:.0f}s)")
    model.eval()
    return losses

"""Load an HF LLaVA-architecture checkpoint (+ optional PEFT adapter) and generate from it in batches.

One code path for the micro zoo's tiny LLaVA and for llava-hf checkpoints (LLaVA-1.5, LLaVA-NeXT/1.6 and
other `AutoModelForImageTextToText` models), each with its own class, processor and chat template. Base and
aligned checkpoints are loaded from disk the same way and put in eval mode (docs/design.md: evaluating an adapter inside the trainer instead of
reloaded from disk shifted POPE's yes-ratio by up to 0.09).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from harness.errors import HarnessError


def resolve_checkpoint(name_or_path: str) -> Path:
    """A zoo name ("micro-llava"), a local checkpoint directory or a hub id -> its directory (harness.models.hub)."""
    from harness.models.hub import resolve

    p = resolve(name_or_path)
    if not (p / "config.json").is_file():
        raise HarnessError(f"{p} is not an HF checkpoint directory (no config.json)")
    return p


def load_vlm(name_or_path: str, adapter: str | None = None, trust_remote_code: bool = False,
             device: str | None = None, dtype: str | None = None):
    """-> (model, processor), the model in eval mode; `adapter` is a PEFT adapter directory (safetensors).

    The class comes from the checkpoint's config through AutoModelForImageTextToText (LLaVA-1.5 ->
    LlavaForConditionalGeneration, LLaVA-NeXT/1.6 -> LlavaNextForConditionalGeneration, ...), the processor and
    chat template from AutoProcessor. Device and dtype default to auto (harness.models.hub: cuda + bf16 when
    a GPU is visible, else cpu + float32)."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from harness.models.hub import auto_device, auto_dtype, check_loading_info

    path = resolve_checkpoint(name_or_path)
    device = auto_device(device)
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise HarnessError(f"unreadable config.json in {path}: {e}") from None
    archs = config.get("architectures") or []
    if archs and not any(a.endswith("ForConditionalGeneration") or "ImageTextToText" in a for a in archs):
        raise HarnessError(f"{path} holds a {archs[0]}, not an image-text-to-text model")
    try:
        processor = AutoProcessor.from_pretrained(path, trust_remote_code=trust_remote_code)
        model, info = AutoModelForImageTextToText.from_pretrained(
            path, use_safetensors=True, trust_remote_code=trust_remote_code, dtype=auto_dtype(device, dtype),
            output_loading_info=True)
    except (OSError, ValueError, KeyError) as e:
        raise HarnessError(f"cannot load checkpoint {path}: {e}") from None
    check_loading_info(info, f"checkpoint {name_or_path!r}")
    if adapter:
        from peft import PeftModel

        apath = Path(adapter)
        if not (apath / "adapter_config.json").is_file():
            raise HarnessError(f"not a PEFT adapter directory (no adapter_config.json): {adapter}")
        try:
            model = PeftModel.from_pretrained(model, apath, is_trainable=False)
        except (OSError, ValueError, RuntimeError) as e:
            raise HarnessError(f"cannot load adapter {apath}: {e}") from None
    model = model.to(device)
    model.eval()
    if processor.tokenizer.pad_token_id is None:
        processor.tokenizer.pad_token = processor.tokenizer.eos_token
    return model, processor


def chat_prompt(processor, question: str) -> str:
    """The user turn with one image and the question, plus the assistant prefix (the checkpoint's template)."""
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    if getattr(processor, "chat_template", None):
        return processor.apply_chat_template(messages, add_generation_prompt=True)
    image_token = getattr(processor, "image_token", "<image>")
    return f"USER: {image_token}\n{question} ASSISTANT:"


def generate(model, processor, images: Sequence, prompts: Sequence[str], max_new_tokens: int = 32,
             batch_size: int = 64, temperature: float = 0.0, seed: int = 0, progress=None) -> list[str]:
    """Answers to (image, question) pairs, in order. Greedy when temperature == 0, else sampling seeded per
    batch (seed + batch index), so sampled responses are reproducible whatever the batch boundaries upstream.

    Left padding keeps every sequence's last prompt token at the end, where generation continues.
    `progress` is an optional callable(n_done) for progress bars.
    """
    import torch

    if len(images) != len(prompts):
        raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
    tok = processor.tokenizer
    tok.padding_side = "left"
    texts = [chat_prompt(processor, p) for p in prompts]
    out: list[str] = []
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    for b, start in enumerate(range(0, len(texts), max(1, batch_size))):
        batch_imgs = [im.convert("RGB") for im in images[start:start + batch_size]]
        enc = processor(images=batch_imgs, text=texts[start:start + batch_size], return_tensors="pt",
                        padding=True)
        # floating inputs (pixel values) in the model's dtype (bf16 on a GPU); ids, masks, image_sizes unchanged
        enc = {k: v.to(device, dtype=dtype) if v.is_floating_point() else v.to(device) for k, v in enc.items()}
        kwargs = {"max_new_tokens": max_new_tokens, "pad_token_id": tok.pad_token_id}
        if temperature and temperature > 0:
            torch.manual_seed(seed + b)
            kwargs.update(do_sample=True, temperature=float(temperature), top_k=0, top_p=1.0)
        else:
            kwargs.update(do_sample=False, num_beams=1, temperature=None, top_p=None, top_k=None)
        with torch.inference_mode():
            seqs = model.generate(**enc, **kwargs)
        new = seqs[:, enc["input_ids"].shape[1]:]
        out.extend(s.strip() for s in tok.batch_decode(new, skip_special_tokens=True))
        if progress is not None:
            progress(len(out))
    return out

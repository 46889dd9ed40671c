"""A tiny random-weight LLaVA checkpoint for evaluation tests, built from configs (no hub).

Uses harness.zoo.architectures when H1's builder is importable; otherwise builds an equivalent one here
(word-level tokenizer over the micro-world vocabulary, LlavaProcessor with a chat template, docs/design.md).
"""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }} : "
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image> {% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    " </s> {% endfor %}{% if add_generation_prompt %}assistant : {% endif %}")
# llava-hf/llava-1.5-7b-hf's layout ("USER: <image>\n{question} ASSISTANT:"), in the word-level vocabulary's words
LLAVA15_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'user' %}user : "
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}<image> {% else %}{{ c['text'] }}{% endif %}{% endfor %}"
    "{% else %}assistant : {{ m['content'][0]['text'] }} </s> {% endif %}{% endfor %}"
    "{% if add_generation_prompt %} assistant :{% endif %}")


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


def build_tiny_llava(out: Path, seed: int = 0, image_size: int = 64, patch: int = 8,
                     chat_template: str | None = None, vision_feature_layer: int = -1, vision_layers: int = 1,
                     sizes=None) -> Path:
    """The zoo's own architecture (harness.zoo.architectures, REDUCED sizes unless `sizes`) saved to `out`;
    with a custom chat template / feature layer (the llava-1.5 layout), a hand-built equivalent."""
    if chat_template is None:
        try:
            from harness.zoo import architectures as arch
        except ImportError:
            arch = None
        if arch is not None:
            model = arch.build_llava(sizes or arch.REDUCED, seed=seed)
            out = Path(out)
            model.save_pretrained(out, safe_serialization=True)
            arch.build_processor(sizes or arch.REDUCED).save_pretrained(out)
            return out
        chat_template = CHAT_TEMPLATE
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )


    torch.manual_seed(seed)
    tok, vocab = word_tokenizer(chat_template)
    cfg = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=vision_layers,
                                       num_attention_heads=2, image_size=image_size, patch_size=patch),
        text_config=LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                                pad_token_id=0, bos_token_id=2, eos_token_id=3),
        image_token_index=vocab["<image>"], vision_feature_select_strategy="default", vision_feature_layer=vision_feature_layer)
    model = LlavaForConditionalGeneration(cfg)
    model.generation_config.pad_token_id = 0
    model.generation_config.eos_token_id = 3
    ip = CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size},
                            do_center_crop=True)
    proc = LlavaProcessor(image_processor=ip, tokenizer=tok, patch_size=patch, num_additional_image_tokens=1,
                          vision_feature_select_strategy="default", chat_template=chat_template)
    out = Path(out)
    model.save_pretrained(out, safe_serialization=True)
    proc.save_pretrained(out)
    return out


def build_tiny_lora(model_dir: Path, out: Path, seed: int = 1) -> Path:
    """A random LoRA adapter on the language model's attention projections (B != 0 so it changes outputs)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlavaForConditionalGeneration

    torch.manual_seed(seed)
    base = LlavaForConditionalGeneration.from_pretrained(model_dir, use_safetensors=True)
    peft = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                           init_lora_weights=False))
    peft.save_pretrained(out)
    return Path(out)

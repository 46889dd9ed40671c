"""Tiny model architectures of the micro zoo, built from configs with random init.

Everyone's tests build their tiny models here: a word-level tokenizer over the micro world's VOCAB, a LlavaProcessor
with a chat template, and configs/models for LLaVA, CLIP, a text-only sequence-classification reward model and the
image-aware LLaVA reward model (harness.models.reward).

A trap (docs/design.md): LlavaProcessor needs `num_additional_image_tokens=1` with the "default" feature strategy (which
drops the CLS token), otherwise it emits one image token too few.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.world.render import IMAGE_SIZE
from harness.world.texts import VOCAB

SPECIAL_TOKENS = ("<pad>", "<unk>", "<s>", "</s>", "<image>")
PAD, UNK, BOS, EOS, IMAGE_TOKEN = SPECIAL_TOKENS
# CLIP normalisation constants (the processor standardises pixels with these).
IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)
IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)

# Turns read "user : <image> is there a cup in the image ? assistant : yes . </s>". Every piece starts with a
# space so prompt + answer keeps the prompt as a prefix (TRL checks this); the role words are in VOCAB.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if not loop.first %} {% endif %}{{ message['role'] }} :"
    "{% if message['content'] is string %} {{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %} <image>{% elif item['type'] == 'text' %} {{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{% if message['role'] == 'assistant' %} </s>{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %} assistant :{% endif %}"
)


@dataclass(frozen=True)
class Sizes:
    """Widths and depths of one tiny LLaVA (vision tower + LM) and of the CLIP text tower."""
    vision_hidden: int = 64
    vision_layers: int = 2
    vision_heads: int = 4
    patch_size: int = 16     # 16 image tokens: patch 8 (64 tokens) learnt identity far worse in 1 minute
    text_hidden: int = 128
    text_layers: int = 2
    text_heads: int = 4
    text_intermediate: int = 256
    clip_text_hidden: int = 64
    clip_text_layers: int = 2
    projection_dim: int = 64


TINY = Sizes()
REDUCED = Sizes(vision_hidden=32, vision_layers=1, vision_heads=2, text_hidden=32, text_layers=1, text_heads=2,
                text_intermediate=64, clip_text_hidden=32, clip_text_layers=1, projection_dim=32)


def build_tokenizer(append_eos: bool = False):
    """Word-level fast tokenizer over VOCAB (+ specials), lower-casing, punctuation split off.

    append_eos=True (the CLIP text tower's tokenizer) ends every text with </s>: CLIP pools the text at its
    end-of-text token, and pads on the right."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(list(SPECIAL_TOKENS) + [w for w in VOCAB if w not in SPECIAL_TOKENS])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)   # joins words with single spaces
    if append_eos:
        tok.post_processor = processors.TemplateProcessing(single=f"$A {EOS}", special_tokens=[(EOS, vocab[EOS])])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD,
                                   unk_token=UNK, model_max_length=512,
                                   padding_side="right" if append_eos else "left")
    fast.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_image_processor():
    from transformers import CLIPImageProcessorPil
    return CLIPImageProcessorPil(size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
                                 image_mean=list(IMAGE_MEAN), image_std=list(IMAGE_STD), do_convert_rgb=True)


def build_processor(sizes: Sizes = TINY):
    from transformers import LlavaProcessor
    return LlavaProcessor(image_processor=build_image_processor(), tokenizer=build_tokenizer(),
                          patch_size=sizes.patch_size, vision_feature_select_strategy="default",
                          num_additional_image_tokens=1, chat_template=CHAT_TEMPLATE, image_token=IMAGE_TOKEN)


def vision_config(sizes: Sizes = TINY):
    from transformers import CLIPVisionConfig
    return CLIPVisionConfig(hidden_size=sizes.vision_hidden, intermediate_size=2 * sizes.vision_hidden,
                            num_hidden_layers=sizes.vision_layers, num_attention_heads=sizes.vision_heads,
                            image_size=IMAGE_SIZE, patch_size=sizes.patch_size, projection_dim=sizes.projection_dim)


def text_config(sizes: Sizes = TINY, tokenizer=None):
    from transformers import LlamaConfig
    tokenizer = tokenizer or build_tokenizer()
    return LlamaConfig(vocab_size=len(tokenizer), hidden_size=sizes.text_hidden,
                       intermediate_size=sizes.text_intermediate, num_hidden_layers=sizes.text_layers,
                       num_attention_heads=sizes.text_heads, num_key_value_heads=sizes.text_heads,
                       max_position_embeddings=256, pad_token_id=tokenizer.pad_token_id,
                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                       tie_word_embeddings=False,
                       # A wider init than the default 0.02: with 0.02 the tiny LM sat on the "always 50/50" plateau
                       # of existence questions (answer = question word x image content, a multiplicative
                       # interaction) for 1000+ steps; at 0.1 the same task is learnt in ~200 steps.
                       initializer_range=0.1)


def llava_config(sizes: Sizes = TINY, tokenizer=None):
    from transformers import LlavaConfig
    tokenizer = tokenizer or build_tokenizer()
    cfg = LlavaConfig(vision_config=vision_config(sizes), text_config=text_config(sizes, tokenizer),
                      image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
                      vision_feature_select_strategy="default", vision_feature_layer=-1,
                      projector_hidden_act="gelu", image_seq_length=(IMAGE_SIZE // sizes.patch_size) ** 2)
    cfg.pad_token_id = tokenizer.pad_token_id
    return cfg


def _seed(seed: int | None) -> None:
    if seed is not None:
        import torch
        torch.manual_seed(seed)


def build_llava(sizes: Sizes = TINY, seed: int | None = 0):
    """Random-init tiny LlavaForConditionalGeneration (about 0.45 M parameters at TINY)."""
    from transformers import LlavaForConditionalGeneration
    _seed(seed)
    model = LlavaForConditionalGeneration(llava_config(sizes))
    model.generation_config.pad_token_id = model.config.pad_token_id
    model.generation_config.eos_token_id = model.config.text_config.eos_token_id
    return model


def clip_config(sizes: Sizes = TINY, tokenizer=None):
    from transformers import CLIPConfig, CLIPTextConfig
    tokenizer = tokenizer or build_tokenizer()
    text = CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=sizes.clip_text_hidden,
                          intermediate_size=2 * sizes.clip_text_hidden, num_hidden_layers=sizes.clip_text_layers,
                          num_attention_heads=max(1, sizes.clip_text_hidden // 16), max_position_embeddings=64,
                          pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                          eos_token_id=tokenizer.eos_token_id, projection_dim=sizes.projection_dim)
    return CLIPConfig(text_config=text.to_dict(), vision_config=vision_config(sizes).to_dict(),
                      projection_dim=sizes.projection_dim)


def build_clip(sizes: Sizes = TINY, seed: int | None = 0):
    from transformers import CLIPModel
    _seed(seed)
    return CLIPModel(clip_config(sizes))


def build_clip_processor(sizes: Sizes = TINY):
    from transformers import CLIPProcessor
    return CLIPProcessor(image_processor=build_image_processor(), tokenizer=build_tokenizer(append_eos=True))


def build_text_reward_model(sizes: Sizes = TINY, seed: int | None = 0, pooling: str | None = None,
                            response_marker_id: int | None = None, tau: float = 1.0):
    """Image-blind reward model. pooling None: LlamaForSequenceClassification with one label (ArmoRM-style
    scalar); else harness.models.reward.TextRewardModel, the image-blind twin of build_llava_reward_model."""
    _seed(seed)
    cfg = text_config(sizes)
    if pooling is None:
        from transformers import LlamaForSequenceClassification
        cfg.num_labels = 1
        return LlamaForSequenceClassification(cfg)
    from harness.models.reward import TextRewardModel
    cfg.reward_pooling, cfg.response_marker_id, cfg.reward_softmin_tau = pooling, response_marker_id, tau
    return TextRewardModel(cfg)


def build_llava_reward_model(sizes: Sizes = TINY, seed: int | None = 0, pooling: str = "last",
                             response_marker_id: int | None = None, tau: float = 1.0):
    """Image-aware reward model: LLaVA backbone + scalar head(s) (harness.models.reward.LlavaRewardModel);
    pooling "last+softmin" adds a per-token head soft-min-pooled over the tokens after `response_marker_id`."""
    from harness.models.reward import LlavaRewardModel
    _seed(seed)
    cfg = llava_config(sizes)
    cfg.reward_pooling, cfg.response_marker_id, cfg.reward_softmin_tau = pooling, response_marker_id, tau
    return LlavaRewardModel(cfg)


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())

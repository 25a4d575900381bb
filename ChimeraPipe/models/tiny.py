"""Offline `tiny` models: each kind built from a config with random weights and saved in the layout of the
real model, so it loads through the same `from_pretrained(dir)` code. Tests and the demo use them."""
from __future__ import annotations

import json
from pathlib import Path

from ..core.io import atomic_dir
from .specs import MODEL_KINDS, ModelSpecError, built_model_name
from .tokenizer import build_clip_tokenizer

SD21_SCHEDULER = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
                      set_alpha_to_one=False, skip_prk_steps=True, steps_offset=1, prediction_type="epsilon")


def build_tiny_diffusion(out_dir: Path, seed: int = 0, resolution: int = 64) -> None:
    """An SD-2-style pipeline (UNet, VAE x8, CLIP text encoder, real-id tokenizer, SD2.1-base PNDM scheduler)."""
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    tokenizer = build_clip_tokenizer(out_dir / "tokenizer")
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=77, projection_dim=32, hidden_act="gelu", bos_token_id=49406, eos_token_id=49407,
        pad_token_id=0))
    unet = UNet2DConditionModel(
        sample_size=resolution // 8, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
        attention_head_dim=(2, 4), use_linear_projection=True, norm_num_groups=8)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, norm_num_groups=8,
        block_out_channels=(8, 16, 16, 16), sample_size=resolution,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=PNDMScheduler(**SD21_SCHEDULER), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(out_dir, safe_serialization=True)


def build_tiny_clip(out_dir: Path, seed: int = 0) -> None:
    """A small open_clip CLIP in open_clip's own `local-dir:` layout (config JSON + safetensors)."""
    import torch
    from open_clip import CLIP
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
    from safetensors.torch import save_model

    torch.manual_seed(seed)
    model_cfg = {"embed_dim": 32,
                 "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
                 "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}}
    model = CLIP(**model_cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = {"model_cfg": model_cfg,
              "preprocess_cfg": {"mean": list(OPENAI_DATASET_MEAN), "std": list(OPENAI_DATASET_STD),
                                 "interpolation": "bicubic", "resize_mode": "shortest"}}
    (out_dir / "open_clip_config.json").write_text(json.dumps(config, indent=2))
    save_model(model, str(out_dir / "open_clip_model.safetensors"))


def _write_wordpiece_vocab(path: Path, words: list[str]) -> None:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    pieces = list(".,!?'-") + list("abcdefghijklmnopqrstuvwxyz0123456789")
    pieces += ["##" + c for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
    seen, vocab = set(), []
    for token in specials + pieces + sorted(set(words)):
        if token not in seen:
            seen.add(token)
            vocab.append(token)
    path.write_text("\n".join(vocab) + "\n")


TINY_DINO_WORDS = ["a", "an", "the", "photo", "of", "object", "thing", "animal", "circle", "square", "triangle",
                   "star", "shape", "car", "aircraft", "plane", "flower", "pet", "dog", "cat", "food", "texture",
                   "satellite", "scene"]


def build_tiny_grounding_dino(out_dir: Path, seed: int = 0) -> None:
    """Grounding-DINO (transformers) with a 1-stage Swin, 1-layer BERT and a small wordpiece vocab."""
    import torch
    from transformers import (
        BertConfig,
        BertTokenizer,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
        SwinConfig,
    )

    torch.manual_seed(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_wordpiece_vocab(out_dir / "vocab.txt", list(TINY_DINO_WORDS))
    tokenizer = BertTokenizer(str(out_dir / "vocab.txt"), do_lower_case=True)
    backbone = SwinConfig(embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2], window_size=7,
                          out_features=["stage2", "stage3", "stage4"])
    text = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=256)
    config = GroundingDinoConfig(backbone_config=backbone, text_config=text, d_model=32, num_queries=30,
                                 encoder_layers=1, decoder_layers=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
                                 encoder_attention_heads=2, decoder_attention_heads=2, encoder_n_points=2,
                                 decoder_n_points=2, num_feature_levels=4)
    model = GroundingDinoForObjectDetection(config)
    processor = GroundingDinoProcessor(
        image_processor=GroundingDinoImageProcessor(size={"shortest_edge": 160, "longest_edge": 256}),
        tokenizer=tokenizer)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)


def build_tiny_sam(out_dir: Path, seed: int = 0) -> None:
    """SAM (transformers) at 256 px input with 32-wide encoder and decoder."""
    import torch
    from transformers import (
        SamConfig,
        SamImageProcessor,
        SamMaskDecoderConfig,
        SamModel,
        SamProcessor,
        SamPromptEncoderConfig,
        SamVisionConfig,
    )

    torch.manual_seed(seed)
    hidden, image_size = 32, 256
    config = SamConfig(
        vision_config=SamVisionConfig(hidden_size=hidden, output_channels=hidden, num_hidden_layers=2,
                                      num_attention_heads=2, image_size=image_size, window_size=4,
                                      global_attn_indexes=[1], num_pos_feats=hidden // 2, mlp_dim=64),
        prompt_encoder_config=SamPromptEncoderConfig(hidden_size=hidden, image_size=image_size),
        mask_decoder_config=SamMaskDecoderConfig(hidden_size=hidden, mlp_dim=64, num_attention_heads=2,
                                                 iou_head_hidden_dim=hidden))
    model = SamModel(config)
    processor = SamProcessor(image_processor=SamImageProcessor(
        size={"longest_edge": image_size}, pad_size={"height": image_size, "width": image_size}))
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)


TINY_BUILDERS = {"diffusion": build_tiny_diffusion, "clip": build_tiny_clip,
                 "grounding_dino": build_tiny_grounding_dino, "sam": build_tiny_sam}


def build_tiny_model(kind: str, models_dir: str | Path, seed: int = 0) -> Path:
    """Build the tiny model of `kind` under models_dir (atomically: a half-built folder never looks done)."""
    if kind not in TINY_BUILDERS:
        raise ModelSpecError(f"unknown model kind {kind!r}; expected one of {MODEL_KINDS}")
    target = Path(models_dir) / built_model_name(kind, "tiny")
    with atomic_dir(target) as tmp:
        TINY_BUILDERS[kind](tmp, seed=seed)
        (tmp / "BUILT").write_text(json.dumps({"kind": kind, "seed": seed}) + "\n")
    return target

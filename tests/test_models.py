"""Tiny models load through the real from_pretrained paths; the tokenizer matches real CLIP ids."""
import open_clip
import pytest
import torch

from ChimeraPipe.models.specs import ModelSpecError, resolve_model


def test_tokenizer_ids_equal_real_clip(models_dir):
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(models_dir / "tiny-diffusion", subfolder="tokenizer")
    assert tokenizer.model_max_length == 77
    # Known ids of the released CLIP vocabulary.
    assert tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    # SD 2.x pads with "!" (id 0), so a literal "!" is the pad id there; every other id is CLIP's.
    assert tokenizer.pad_token_id == 0
    for text in ["a satellite photo of a Forest.", "a aircraft photo of a 737-800", "naïve café"]:
        ours = tokenizer(text, padding="max_length", max_length=77).input_ids
        theirs = open_clip.tokenize([text])[0]
        assert ours[: int((theirs > 0).sum())] == theirs[theirs > 0].tolist()


def test_tiny_diffusion_loads_like_a_real_pipeline(models_dir):
    from diffusers import PNDMScheduler, StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(resolve_model("diffusion", "tiny", models_dir),
                                                   safety_checker=None, requires_safety_checker=False)
    assert isinstance(pipe.scheduler, PNDMScheduler)
    assert pipe.scheduler.config.prediction_type == "epsilon"
    assert pipe.vae_scale_factor == 8
    image = pipe("a photo of a cat", num_inference_steps=2, height=32, width=32, guidance_scale=2.0,
                 generator=torch.Generator().manual_seed(0)).images[0]
    assert image.size == (32, 32)


def test_tiny_clip_loads_through_open_clip(models_dir):
    from ChimeraPipe.models.clip import load_clip

    model, preprocess, tokenizer = load_clip(resolve_model("clip", "tiny", models_dir))
    features = model.encode_text(tokenizer(["a photo of a dog"]))
    assert features.shape == (1, 32)


def test_model_specs(models_dir, tmp_path):
    assert resolve_model("diffusion", str(tmp_path), models_dir) == str(tmp_path)
    assert resolve_model("sam", "facebook/sam-vit-base", models_dir) == "facebook/sam-vit-base"
    assert resolve_model("clip", "ViT-B-16:openai", models_dir) == "ViT-B-16:openai"
    with pytest.raises(ModelSpecError, match="models.diffusion"):
        resolve_model("diffusion", "tiny-ish", models_dir)
    with pytest.raises(ModelSpecError, match="not built"):
        resolve_model("diffusion", "tiny", tmp_path)

"""LoRA training (resume after SIGKILL is bit-identical), generation with per-image head weights, export."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from ChimeraPipe.adapter import export_mixed_lora, load_adapter, read_adapter_meta
from ChimeraPipe.data import choose_shots
from ChimeraPipe.detect import full_boxes
from ChimeraPipe.generate import generate_class, mixing_weights
from ChimeraPipe.io import load_tensors
from ChimeraPipe.lora import head_weights
from ChimeraPipe.models import resolve_model
from ChimeraPipe.train import LoraTrainConfig, train_lora
from ChimeraPipe.views import build_view_cache, load_view_cache


@pytest.fixture(scope="module")
def diffusion(models_dir):
    return resolve_model("diffusion", "tiny", models_dir)


@pytest.fixture(scope="module")
def views(tmp_path_factory, shapes_root, diffusion):
    from diffusers import AutoencoderKL

    shots = choose_shots(shapes_root, ["circle"], 4, 0)
    out = tmp_path_factory.mktemp("views")
    vae = AutoencoderKL.from_pretrained(diffusion, subfolder="vae")
    build_view_cache(shots, full_boxes(list(shots.path)), vae, out / "views.safetensors", out / "preview.png",
                     views_per_image=6, resolution=32, seed=0)
    return out / "views.safetensors"


def test_view_cache_shapes(views):
    cache = load_view_cache(views)
    assert cache["latents_mean"].shape == (4, 6, 4, 4, 4)
    assert cache["boxes_in_view"].shape == (4, 6, 4)
    assert Image.open(views.parent / "preview.png").size[1] > 0


@pytest.mark.parametrize("share", ["A", "B", "none", "both"])
def test_training_writes_adapter_for_every_mode(tmp_path, views, diffusion, share):
    cfg = LoraTrainConfig(share=share, rank=4, steps=4, checkpoint_every=2, text_encoder_lora=share == "both")
    meta = train_lora(diffusion, views, "a photo of a circle", tmp_path / "adapter.safetensors", cfg)
    tensors = load_tensors(tmp_path / "adapter.safetensors")
    heads = 1 if share == "both" else 4
    n_a = 1 if share in ("A", "both") else heads
    n_b = 1 if share in ("B", "both") else heads
    a_keys = [k for k in tensors if k.startswith("unet.") and k.endswith(".lora_A")]
    assert len(a_keys) == 4 * 2 * 4  # q,k,v,out x (self, cross) x 4 transformer blocks (down 1, mid 1, up 2)
    assert all(tensors[k].shape[:2] == (n_a, 4) for k in a_keys)
    assert all(tensors[k[:-1] + "B"].shape[0] == n_b for k in a_keys)
    assert any(k.startswith("text_encoder.") for k in tensors) == (share == "both")
    assert meta["heads"] == heads and read_adapter_meta(tmp_path / "adapter.safetensors")["share"] == share
    assert not (tmp_path / "checkpoint.safetensors").exists()  # removed once the adapter is written
    assert any(v.abs().sum() > 0 for k, v in tensors.items() if k.endswith("lora_B"))  # B moved off zero


TRAIN_SCRIPT = """
import sys
from ChimeraPipe.train import LoraTrainConfig, train_lora
cfg = LoraTrainConfig(rank=4, steps=int(sys.argv[4]), checkpoint_every=5)
train_lora(sys.argv[1], sys.argv[2], "a photo of a circle", sys.argv[3], cfg)
"""


def test_resume_after_sigkill_is_bit_identical(tmp_path, views, diffusion):
    steps = 80
    reference = tmp_path / "ref" / "adapter.safetensors"
    train_lora(diffusion, views, "a photo of a circle", reference, LoraTrainConfig(rank=4, steps=steps,
                                                                                     checkpoint_every=5))
    resumed = tmp_path / "killed" / "adapter.safetensors"
    checkpoint = resumed.parent / "checkpoint.safetensors"
    proc = subprocess.Popen([sys.executable, "-c", TRAIN_SCRIPT, diffusion, str(views), str(resumed), str(steps)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(0.3)  # let it get a few steps past the checkpoint, so work is really lost
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert checkpoint.exists() and not resumed.exists(), "the run was not killed mid-way"
    train_lora(diffusion, views, "a photo of a circle", resumed, LoraTrainConfig(rank=4, steps=steps,
                                                                                   checkpoint_every=5))
    ref, got = load_tensors(reference), load_tensors(resumed)
    assert ref.keys() == got.keys()
    for key in ref:
        assert torch.equal(ref[key], got[key]), key


def test_checkpoint_of_other_settings_is_ignored(tmp_path, views, diffusion):
    out = tmp_path / "adapter.safetensors"
    from ChimeraPipe.train import Checkpoint

    Checkpoint(tmp_path / "checkpoint.safetensors", "someone-else").save(
        3, {}, torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))]), torch.Generator())
    meta = train_lora(diffusion, views, "a photo of a circle", out, LoraTrainConfig(rank=2, steps=3))
    assert meta["final_loss"] is not None and out.exists()


def test_mixing_weights():
    for mixing in ("dirichlet", "pairs", "uniform"):
        w = mixing_weights(mixing, 4, 50, 1.0, seed=0)
        assert w.shape == (50, 4) and np.allclose(w.sum(axis=1), 1)
    sparse = mixing_weights("dirichlet", 4, 400, 0.1, seed=0).max(1).mean()
    flat = mixing_weights("dirichlet", 4, 400, 100.0, seed=0).max(1).mean()
    assert sparse > 0.8 and flat < 0.35  # alpha dials between image-wise and class-wise
    pairs = mixing_weights("pairs", 4, 12, 1.0, seed=0)
    assert ((pairs == 0.5).sum(1) == 2).all()
    first = {tuple(np.flatnonzero(r)) for r in pairs[:6]}
    assert len(first) == 6  # every pair once before any repeats
    np.testing.assert_array_equal(mixing_weights("dirichlet", 4, 5, 1.0, 3), mixing_weights("dirichlet", 4, 5, 1.0, 3))


@pytest.fixture(scope="module")
def adapter(tmp_path_factory, views, diffusion):
    out = tmp_path_factory.mktemp("adapter") / "adapter.safetensors"
    train_lora(diffusion, views, "a photo of a circle", out, LoraTrainConfig(rank=4, steps=6, lr_b=5e-2))
    return out


def test_generation_manifest_and_resume(tmp_path, adapter, diffusion):
    args = dict(count=5, alpha=1.0, mixing="dirichlet", seed=7, steps=3, batch_size=2, resolution=32,
                class_name="circle")
    manifest = generate_class(diffusion, adapter, "a photo of a circle", tmp_path / "img", tmp_path / "m.csv", **args)
    assert list(manifest.columns) == ["class", "file", "seed", "w0", "w1", "w2", "w3"]
    assert np.allclose(manifest[["w0", "w1", "w2", "w3"]].sum(axis=1), 1)
    first = {f: np.asarray(Image.open(f)) for f in manifest.file}
    assert all(a.shape == (32, 32, 3) for a in first.values())
    # Lose two images (a crash), re-run: only those are made again, and they are the same images.
    for f in list(first)[1:3]:
        Path(f).unlink()
    again = generate_class(diffusion, adapter, "a photo of a circle", tmp_path / "img", tmp_path / "m.csv", **args)
    pd.testing.assert_frame_equal(manifest, again)
    for f, pixels in first.items():
        assert np.abs(np.asarray(Image.open(f)).astype(int) - pixels).max() <= 1


def test_batched_mixing_matches_one_image_at_a_time(adapter, diffusion):
    """Per-sample head weights in one batch equal generating each image alone with its weights."""
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(diffusion, subfolder="unet")
    load_adapter(adapter, unet)
    torch.manual_seed(0)
    x, t, ctx = torch.randn(3, 4, 4, 4), torch.tensor([10, 500, 900]), torch.randn(3, 77, 32)
    w = torch.tensor(mixing_weights("dirichlet", 4, 3, 1.0, 0), dtype=torch.float32)
    with torch.no_grad(), head_weights(unet, w):
        batched = unet(x, t, encoder_hidden_states=ctx).sample
    for n in range(3):
        with torch.no_grad(), head_weights(unet, w[n:n + 1]):
            alone = unet(x[n:n + 1], t[n:n + 1], encoder_hidden_states=ctx[n:n + 1]).sample
        torch.testing.assert_close(batched[n:n + 1], alone, atol=1e-5, rtol=1e-4)


def test_diffusers_export_reproduces_engine(tmp_path, adapter, diffusion):
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel

    w = [0.1, 0.2, 0.3, 0.4]
    export_mixed_lora(adapter, w, tmp_path / "mixed.safetensors")
    pipe = StableDiffusionPipeline.from_pretrained(diffusion, safety_checker=None, requires_safety_checker=False)
    pipe.load_lora_weights(str(tmp_path), weight_name="mixed.safetensors")
    engine = UNet2DConditionModel.from_pretrained(diffusion, subfolder="unet")
    load_adapter(adapter, engine)
    torch.manual_seed(1)
    x, t, ctx = torch.randn(2, 4, 4, 4), torch.tensor([20, 700]), torch.randn(2, 77, 32)
    with torch.no_grad(), head_weights(engine, torch.tensor([w])):
        expected = engine(x, t, encoder_hidden_states=ctx).sample
        got = pipe.unet(x, t, encoder_hidden_states=ctx).sample
        plain = UNet2DConditionModel.from_pretrained(diffusion, subfolder="unet")(x, t, encoder_hidden_states=ctx).sample
    assert (expected - plain).abs().max() > 1e-4  # the adapter changes the output, so the check has teeth
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)

"""LoRA training (resume after SIGKILL is bit-identical), generation with per-image head weights, export."""
import dataclasses
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

from ChimeraPipe.boxes.detect import full_boxes
from ChimeraPipe.boxes.views import build_view_cache, load_view_cache
from ChimeraPipe.core.io import load_tensors
from ChimeraPipe.diffusion.generate import generate_class, mixing_weights, pixel_fingerprint
from ChimeraPipe.diffusion.train import train_lora
from ChimeraPipe.lora import head_weights
from ChimeraPipe.lora.adapter import export_mixed_lora, load_adapter, read_adapter_meta
from ChimeraPipe.models.specs import resolve_model
from ChimeraPipe.pipeline.settings import GenerationSettings, LoraTrainConfig

from helpers import shots_of


@pytest.fixture(scope="module")
def diffusion(models_dir):
    return resolve_model("diffusion", "tiny", models_dir)


@pytest.fixture(scope="module")
def views(tmp_path_factory, shapes_root, diffusion):
    from diffusers import AutoencoderKL

    shots = shots_of(shapes_root, ["circle"], 4, 0)
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
from ChimeraPipe.diffusion.train import train_lora
from ChimeraPipe.pipeline.settings import LoraTrainConfig
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
    from safetensors import safe_open

    with safe_open(str(checkpoint), "pt") as handle:
        saved_step = int(handle.metadata()["step"])
    assert 0 < saved_step < steps
    meta = train_lora(diffusion, views, "a photo of a circle", resumed, LoraTrainConfig(rank=4, steps=steps,
                                                                                          checkpoint_every=5))
    # It really resumed: it started at the checkpoint's step and ran only the steps left.
    assert meta["resumed_from_step"] == saved_step and meta["steps_run"] == steps - saved_step
    ref, got = load_tensors(reference), load_tensors(resumed)
    assert ref.keys() == got.keys()
    for key in ref:
        assert torch.equal(ref[key], got[key]), key


def test_checkpoint_of_other_settings_is_ignored(tmp_path, views, diffusion):
    out = tmp_path / "adapter.safetensors"
    from ChimeraPipe.core.checkpoint import Checkpoint

    Checkpoint(tmp_path / "checkpoint.safetensors", "someone-else").save(
        3, {}, torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))]), {"batches": torch.Generator()})
    meta = train_lora(diffusion, views, "a photo of a circle", out, LoraTrainConfig(rank=2, steps=3))
    assert meta["final_loss"] is not None and out.exists()
    assert meta["resumed_from_step"] == 0 and meta["steps_run"] == 3  # a fresh start, not step 3


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
    args = dict(count=5, alpha=1.0, mixing="dirichlet", seed=7, class_name="circle",
                settings=GenerationSettings(steps=3, batch_size=2, resolution=32))
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
        plain_unet = UNet2DConditionModel.from_pretrained(diffusion, subfolder="unet")
        plain = plain_unet(x, t, encoder_hidden_states=ctx).sample
    assert (expected - plain).abs().max() > 1e-4  # the adapter changes the output, so the check has teeth
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


GENERATE_SCRIPT = """
import sys
from ChimeraPipe.diffusion.generate import generate_class
from ChimeraPipe.pipeline.settings import GenerationSettings
generate_class(sys.argv[1], sys.argv[2], "a photo of a circle", sys.argv[3], sys.argv[4], count=12, alpha=1.0,
               mixing="dirichlet", seed=7, settings=GenerationSettings(steps=25, batch_size=3, resolution=32))
"""


def file_state(path: Path) -> tuple:
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns, path.read_bytes()


def test_generation_killed_mid_batch_keeps_finished_images(tmp_path, adapter, diffusion):
    out, manifest = tmp_path / "img", tmp_path / "m.csv"
    proc = subprocess.Popen([sys.executable, "-c", GENERATE_SCRIPT, diffusion, str(adapter), str(out), str(manifest)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list(out.glob("[0-9]*.png")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    time.sleep(0.05)  # inside the next batch's denoising loop
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = sorted(out.glob("[0-9]*.png"))
    assert 0 < len(done) < 12 and not manifest.exists(), "the run was not killed mid-way"
    before = {p.name: file_state(p) for p in done}
    # What a SIGKILL during a PNG write leaves (the kill above usually lands in the denoising loop instead).
    (out / ".00011.png.x1y2.tmp.png").write_bytes(b"half a png")
    again = generate_class(diffusion, adapter, "a photo of a circle", out, manifest, count=12, alpha=1.0,
                           mixing="dirichlet", seed=7, settings=GenerationSettings(steps=25, batch_size=3,
                                                                                   resolution=32))
    assert len(again) == 12 and all(Path(f).is_file() for f in again.file)
    assert {name: file_state(out / name) for name in before} == before  # untouched: same inode, mtime, bytes
    assert not [p.name for p in out.iterdir() if ".tmp" in p.name]     # no temp file of the killed run left


BASE_GENERATION = dict(prompt="a photo of a circle", alpha=1.0, mixing="dirichlet", seed=7,
                       settings=GenerationSettings(steps=2, batch_size=2, resolution=32))
PIXEL_CHANGES = [("prompt", "a photo of a square"), ("alpha", 0.2), ("mixing", "uniform"), ("seed", 8),
                 ("settings", GenerationSettings(steps=2, batch_size=2, resolution=32, guidance_scale=5.0)),
                 ("settings", GenerationSettings(steps=3, batch_size=2, resolution=32)),
                 ("settings", GenerationSettings(steps=2, batch_size=2, resolution=40)),
                 ("adapter", None)]


@pytest.mark.parametrize("key, value", PIXEL_CHANGES, ids=[f"{k}-{i}" for i, (k, _) in enumerate(PIXEL_CHANGES)])
def test_any_pixel_setting_change_regenerates_the_images(tmp_path, adapter, diffusion, key, value):
    def run(changes):
        args = {**BASE_GENERATION, "adapter_path": adapter, **changes}
        return generate_class(diffusion, args.pop("adapter_path"), args.pop("prompt"), tmp_path / "img",
                              tmp_path / "m.csv", count=2, class_name="circle", **args)

    run({})
    before = {p.name: file_state(p) for p in (tmp_path / "img").glob("*.png")}
    run({"adapter_path" if key == "adapter" else key: value})
    after = {p.name: file_state(p) for p in (tmp_path / "img").glob("*.png")}
    assert before.keys() == after.keys() and all(before[n][:2] != after[n][:2] for n in before), key
    # And settings that do not change pixels keep them: the batch size, the image count.
    run({"adapter_path" if key == "adapter" else key: value,
         "settings": dataclasses.replace(value if key == "settings" else BASE_GENERATION["settings"], batch_size=1)})
    assert {p.name: file_state(p) for p in (tmp_path / "img").glob("*.png")} == after


def test_pixel_fingerprint_holds_precision_and_device(adapter, diffusion):
    def fingerprint(device, precision):
        return pixel_fingerprint(diffusion, adapter, "p", 1.0, "dirichlet", 0, GenerationSettings(precision=precision),
                                 device)

    assert fingerprint("cuda", "fp16") != fingerprint("cuda", "bf16") != fingerprint("cuda", "fp32")
    assert fingerprint("cpu", "fp16") == fingerprint("cpu", "fp32")  # CPU runs fp32 whatever is asked
    assert fingerprint("cuda:0", "fp16") == fingerprint("cuda:1", "fp16") != fingerprint("cpu", "fp16")
    # alpha only matters to Dirichlet mixing
    assert pixel_fingerprint(diffusion, None, "p", 0.5, "pairs", 0, GenerationSettings(), "cpu") == \
        pixel_fingerprint(diffusion, None, "p", 2.0, "pairs", 0, GenerationSettings(), "cpu")


@pytest.mark.parametrize("alpha", [0, -1.0, None])
def test_dirichlet_alpha_must_be_positive(alpha):
    with pytest.raises(ValueError, match="alpha must be a positive number"):
        mixing_weights("dirichlet", 4, 3, alpha, 0)
    assert mixing_weights("pairs", 4, 3, alpha, 0).shape == (3, 4)  # alpha is not read there


@pytest.mark.parametrize("share, text_lora", [("A", False), ("B", False), ("none", False), ("both", True)])
def test_diffusers_export_for_every_tying_mode(tmp_path, views, diffusion, share, text_lora):
    """Each mode's mixed export, loaded by diffusers, gives the in-project mixing's UNet and text encoder."""
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    adapter_path = tmp_path / "adapter.safetensors"
    cfg = LoraTrainConfig(share=share, rank=2, steps=3, lr_a=5e-2, lr_b=5e-2, text_encoder_lora=text_lora)
    meta = train_lora(diffusion, views, "a photo of a circle", adapter_path, cfg)
    w = [0.1, 0.2, 0.3, 0.4][:meta["heads"]]
    w = [x / sum(w) for x in w]
    with pytest.raises(ValueError, match=f"adapter has {meta['heads']} heads, got 5 weights"):
        export_mixed_lora(adapter_path, [0.2] * 5, tmp_path / "bad.safetensors")
    export_mixed_lora(adapter_path, w, tmp_path / "mixed.safetensors")
    exported = load_tensors(tmp_path / "mixed.safetensors")
    expected_rank = 2 * meta["heads"] if share == "none" else 2
    assert {v.shape[0] for k, v in exported.items() if k.endswith("lora_A.weight")} == {expected_rank}
    assert any(k.startswith("text_encoder.") for k in exported) == text_lora

    pipe = StableDiffusionPipeline.from_pretrained(diffusion, safety_checker=None, requires_safety_checker=False)
    pipe.load_lora_weights(str(tmp_path), weight_name="mixed.safetensors")
    unet = UNet2DConditionModel.from_pretrained(diffusion, subfolder="unet")
    text_encoder = CLIPTextModel.from_pretrained(diffusion, subfolder="text_encoder")
    load_adapter(adapter_path, unet, text_encoder)
    torch.manual_seed(1)
    x, t, ctx = torch.randn(2, 4, 4, 4), torch.tensor([20, 700]), torch.randn(2, 77, 32)
    tokens = pipe.tokenizer(["a photo of a circle"], padding="max_length", return_tensors="pt").input_ids
    with torch.no_grad(), head_weights(unet, torch.tensor([w])):
        engine = unet(x, t, encoder_hidden_states=ctx).sample
        torch.testing.assert_close(pipe.unet(x, t, encoder_hidden_states=ctx).sample, engine, atol=1e-5, rtol=1e-4)
        plain = UNet2DConditionModel.from_pretrained(diffusion, subfolder="unet")(x, t, encoder_hidden_states=ctx)
        assert (engine - plain.sample).abs().max() > 1e-4  # the adapter changes the output: the check has teeth
        engine_text = text_encoder(tokens)[0]
        torch.testing.assert_close(pipe.text_encoder(tokens)[0], engine_text, atol=1e-5, rtol=1e-4)
        plain_text = CLIPTextModel.from_pretrained(diffusion, subfolder="text_encoder")(tokens)[0]
    assert ((engine_text - plain_text).abs().max() > 1e-4) == text_lora  # the text LoRA is really in the check

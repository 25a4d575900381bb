"""Fidelity to the paper and the baselines' code: v-prediction targets, pipeline dtype, real guidance,
CLIP filtering, synthetic-only classifiers, the classifier recipe."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from ChimeraPipe.classify.data import mix_batch
from ChimeraPipe.core.images import load_rgb
from ChimeraPipe.diffusion.clip_filter import ClipFilter
from ChimeraPipe.diffusion.generate import RealGuidance, generate_class, load_pipeline
from ChimeraPipe.diffusion.train import train_lora, training_target
from ChimeraPipe.lora import MultiHeadLoRALinear
from ChimeraPipe.models.specs import resolve_model
from ChimeraPipe.pipeline import stages
from ChimeraPipe.pipeline.settings import ClassifierConfig, GenerationSettings, LoraTrainConfig

from helpers import images_of, shots_of, train


def member_index(reference: str) -> int:
    """The image index of a shard reference '<shard>.tar::000005.jpg'."""
    return int(reference.split("::")[1].split(".")[0])


SMALL = GenerationSettings(steps=4, batch_size=2, resolution=32)


@pytest.fixture(scope="module")
def diffusion(models_dir):
    return resolve_model("diffusion", "tiny", models_dir)


@pytest.fixture(scope="module")
def v_diffusion(tmp_path_factory, diffusion):
    """The tiny model as a v-prediction model (as SD 2.1 at 768 px)."""
    root = tmp_path_factory.mktemp("v") / "tiny-diffusion-v"
    shutil.copytree(diffusion, root)
    config_path = root / "scheduler" / "scheduler_config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "prediction_type": "v_prediction"}))
    return str(root)


@pytest.mark.parametrize("kind", ["epsilon", "v_prediction"])
def test_training_target_follows_the_prediction_type(diffusion, kind):
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler.from_pretrained(diffusion, subfolder="scheduler", prediction_type=kind)
    torch.manual_seed(0)
    latents, noise, t = torch.randn(3, 4, 4, 4), torch.randn(3, 4, 4, 4), torch.tensor([5, 400, 990])
    abar = scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
    expected = noise if kind == "epsilon" else abar.sqrt() * noise - (1 - abar).sqrt() * latents
    torch.testing.assert_close(training_target(scheduler, latents, noise, t), expected)


def test_v_prediction_model_trains_on_velocity(tmp_path, v_diffusion, shapes_root, monkeypatch):
    from diffusers import AutoencoderKL

    from ChimeraPipe.boxes.detect import full_boxes
    from ChimeraPipe.boxes.views import build_view_cache
    from ChimeraPipe.diffusion import train as train_module

    shots = shots_of(shapes_root, ["circle"], 4, 0)
    vae = AutoencoderKL.from_pretrained(v_diffusion, subfolder="vae")
    build_view_cache(shots, full_boxes(list(shots.path)), vae, tmp_path / "v.safetensors", tmp_path / "v.png", 2, 32, 0)
    seen = []
    real_target = train_module.training_target
    monkeypatch.setattr(train_module, "training_target",
                        lambda s, *a: seen.append(s.config.prediction_type) or real_target(s, *a))
    meta = train_lora(v_diffusion, tmp_path / "v.safetensors", "a photo of a circle", tmp_path / "a.safetensors",
                      LoraTrainConfig(rank=2, steps=2))
    assert seen == ["v_prediction", "v_prediction"] and meta["prediction_type"] == "v_prediction"


def test_datadream_preset_feeds_each_shot_once_per_step(tmp_path, diffusion, shapes_root):
    """DataDream at 4 shots: batch 8 with the partial batch kept, i.e. 4 images per optimizer step."""
    from diffusers import AutoencoderKL

    from ChimeraPipe.boxes.detect import full_boxes
    from ChimeraPipe.boxes.views import build_view_cache
    from ChimeraPipe.pipeline.presets import method_settings
    from ChimeraPipe.pipeline.settings import settings_dataclass

    shots = shots_of(shapes_root, ["circle"], 4, 0)
    vae = AutoencoderKL.from_pretrained(diffusion, subfolder="vae")
    build_view_cache(shots, full_boxes(list(shots.path)), vae, tmp_path / "v.safetensors", tmp_path / "v.png", 2, 32, 0,
                     mode="random")
    cfg = settings_dataclass(LoraTrainConfig, {**method_settings("datadream")["train"], "steps": 1}, "train")
    meta = train_lora(diffusion, tmp_path / "v.safetensors", "a photo of a circle", tmp_path / "a.safetensors", cfg)
    assert meta["images_per_step"] == 4 and meta["heads"] == 1


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_pipeline_loads_in_the_dtype_asked_for(diffusion, dtype):
    pipe = load_pipeline(diffusion, "cpu", dtype=dtype)
    assert pipe.unet.dtype == pipe.vae.dtype == pipe.text_encoder.dtype == dtype
    assert load_pipeline(diffusion, "cpu", "bf16").unet.dtype == torch.float32  # CPU runs fp32 whatever is asked


def test_real_guidance_starts_every_image_from_a_shot(tmp_path, diffusion, shapes_root, monkeypatch):
    from diffusers import StableDiffusionImg2ImgPipeline

    shots = tuple(shots_of(shapes_root, ["circle"], 4, 0).path)
    calls = []
    original = StableDiffusionImg2ImgPipeline.__call__

    def spy(self, *args, **kwargs):
        calls.append(kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(StableDiffusionImg2ImgPipeline, "__call__", spy)
    guidance = RealGuidance(shots, strength=0.5)
    manifest = generate_class(diffusion, None, "a photo of a circle", tmp_path / "img", tmp_path / "m.csv", count=6,
                              alpha=None, mixing="single", seed=0, settings=SMALL, real_guidance=guidance)
    starts = guidance.init_images(32)
    given = [np.asarray(im) for call in calls for im in call["image"]]
    assert len(given) == 6 and all(call["strength"] == 0.5 for call in calls)
    for j, image in enumerate(given):  # image j starts from shot j mod K: spread evenly over the shots
        np.testing.assert_array_equal(image, np.asarray(starts[j % 4]))
    text_only = generate_class(diffusion, None, "a photo of a circle", tmp_path / "t", tmp_path / "t.csv", count=6,
                               alpha=None, mixing="single", seed=0, settings=SMALL)
    assert any(not np.array_equal(np.asarray(load_rgb(a)), np.asarray(load_rgb(b)))
               for a, b in zip(manifest.file, text_only.file, strict=True))
    with pytest.raises(ValueError, match="strength"):
        RealGuidance(shots, strength=0.0)


class EvenOnly:
    """A CLIP filter stand-in that passes even candidates only."""

    def __init__(self, passes=lambda j: j % 2 == 0):
        self.passes, self.calls = passes, 0

    def fingerprint(self):
        return {"fake": True}

    def max_candidates(self, count):
        return 4 * count

    def judge(self, images, class_index):
        labels, scores = [], []
        for _ in images:
            j, self.calls = self.calls, self.calls + 1
            labels.append(class_index if self.passes(j) else class_index + 1)
            scores.append(1.0 / (1 + j))
        return labels, scores


def test_clip_filter_keeps_the_first_n_that_pass(tmp_path, diffusion):
    args = dict(count=3, alpha=None, mixing="single", seed=0, settings=SMALL)
    manifest = generate_class(diffusion, None, "a photo of a circle", tmp_path / "img", tmp_path / "m.csv",
                              clip_filter=EvenOnly(), class_index=0, **args)
    assert [member_index(f) for f in manifest.file] == [0, 2, 4] and manifest.clip_pass.all()
    decisions = pd.read_csv(tmp_path / "img" / "clip_filter.csv")
    assert list(decisions.candidate) == list(range(6)) and list(decisions.passed) == [True, False] * 3
    again = EvenOnly()
    generate_class(diffusion, None, "a photo of a circle", tmp_path / "img", tmp_path / "m.csv", clip_filter=again,
                   class_index=0, **args)
    assert again.calls == 0  # a re-run judges nothing again


def test_clip_filter_fills_up_with_the_best_rejected_and_says_so(tmp_path, diffusion, caplog):
    manifest = generate_class(diffusion, None, "a photo of a circle", tmp_path / "img", tmp_path / "m.csv", count=2,
                              alpha=None, mixing="single", seed=0, settings=SMALL,
                              clip_filter=EvenOnly(lambda j: j == 5), class_index=0)
    # 8 candidates; only #5 passes; the best-scoring rejected one (#0: score 1) fills the set.
    assert [member_index(f) for f in manifest.file] == [0, 5] and list(manifest.clip_pass) == [False, True]
    assert "passed the CLIP filter" in caplog.text


def test_real_clip_filter_judges_with_every_class_prompt(models_dir, shapes_root):
    prompts = ["a photo of a circle", "a photo of a square", "a photo of a triangle"]
    clip_filter = ClipFilter(resolve_model("clip", "tiny", models_dir), prompts, max_factor=2)
    images = [load_rgb(p) for p in shots_of(shapes_root, ["square"], 4, 0).path]
    labels, scores = clip_filter.judge(images, 1)
    assert all(label in (0, 1, 2) for label in labels) and all(0 <= s <= 1 for s in scores)
    assert clip_filter.max_candidates(5) == 10 and clip_filter.fingerprint()["prompts"] == prompts


def test_classifier_trains_on_synthetic_images_only_by_default(tmp_path, shapes_root):
    classes = ["circle", "square"]
    split_csv = tmp_path / "split.csv"
    stages.dataset_table("imagefolder", str(shapes_root), str(tmp_path / "table.csv"))
    stages.split(str(tmp_path / "table.csv"), classes, 4, 0, split_csv)
    generated = [str(p) for p in images_of(shapes_root, "test", ["circle"]).path]  # stand-ins for synthetic images
    synth = pd.DataFrame({"class": "circle", "file": generated})
    synth.to_csv(tmp_path / "manifest.csv", index=False)
    assert ClassifierConfig().with_real is False
    table = stages.classifier_table(str(split_csv), [str(tmp_path / "manifest.csv")], classes,
                                    ClassifierConfig().with_real)
    assert not table["real"].any() and len(table) == len(synth)
    mixed = stages.classifier_table(str(split_csv), [str(tmp_path / "manifest.csv")], classes, True)
    assert mixed["real"].sum() == 8


def test_classifier_lora_starts_as_loralib():
    torch.manual_seed(0)
    layer = MultiHeadLoRALinear(torch.nn.Linear(512, 64), rank=16, heads=1, share="both", init="kaiming")
    bound = 1 / np.sqrt(512)  # kaiming-uniform with a = sqrt(5): U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert layer.lora_A.abs().max() <= bound and layer.lora_A.abs().max() > 0.9 * bound
    assert (layer.lora_B == 0).all()
    with pytest.raises(ValueError, match="init"):
        MultiHeadLoRALinear(torch.nn.Linear(4, 4), rank=2, heads=1, init="xavier")


def test_cutmix_mixup_on_a_share_of_batches():
    generator = torch.Generator().manual_seed(0)
    images, labels = torch.rand(8, 3, 16, 16), torch.arange(8) % 4
    mixed = 0
    for _ in range(200):
        out, targets = mix_batch(images, labels, 4, 0.2, generator)
        assert targets.shape == (8, 4) and torch.allclose(targets.sum(1), torch.ones(8))
        mixed += int(not torch.equal(out, images))
    assert 25 <= mixed <= 55  # about 20 % of 200 batches
    out, targets = mix_batch(images, labels, 4, 0.0, generator)
    assert torch.equal(out, images) and torch.equal(targets, torch.nn.functional.one_hot(labels, 4).float())


def test_validation_selects_the_best_epoch_never_test(tmp_path, models_dir, shapes_root):
    classes = ["circle", "square", "triangle"]
    table = shots_of(shapes_root, classes, 4, 0).assign(real=False)
    val = images_of(shapes_root, "test", classes)  # stands in for the dataset's val split here
    cfg = ClassifierConfig(epochs=3, warmup_epochs=1, batch_size=8, lr=1e-3, augment="simple", select="val")
    clip = resolve_model("clip", "tiny", models_dir)
    meta = train(cfg, table, classes, tmp_path / "c.safetensors", clip, val=val)
    accuracy = meta["val_accuracy_per_epoch"]
    assert len(accuracy) == 3 and meta["selected_epoch"] == 1 + int(np.argmax(accuracy))
    with pytest.raises(ValueError, match="val"):
        train(cfg, table, classes, tmp_path / "d.safetensors", clip)


def test_select_val_without_a_val_split_names_the_folder(tmp_path, models_dir, shapes_root):
    split_csv = tmp_path / "split.csv"
    table_csv = str(tmp_path / "table.csv")
    stages.dataset_table("imagefolder", str(shapes_root), table_csv)
    stages.split(table_csv, ["circle", "square"], 4, 0, split_csv)
    with pytest.raises(Exception, match="table.csv: the dataset has no val split"):
        stages.classify(str(split_csv), [], ["circle", "square"], str(tmp_path / "c.safetensors"),
                        models={"clip": str(models_dir / "tiny-clip")}, settings={"select": "val", "epochs": 1},
                        table_csv=table_csv)

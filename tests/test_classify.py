"""The CLIP classifier: LoRA attention equals the original at init; training and evaluation write results; a job
killed mid-run resumes to the same result."""
import dataclasses
import json
import os
import shutil
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
from torch import nn

from ChimeraPipe.classify.clip_lora import LoRAAttention, inject_clip_lora
from ChimeraPipe.classify.data import classifier_loss
from ChimeraPipe.classify.evaluate import evaluate_classifier
from ChimeraPipe.classify.loop import CHECKPOINT
from ChimeraPipe.core.io import load_tensors
from ChimeraPipe.models.clip import load_clip
from ChimeraPipe.models.specs import resolve_model
from ChimeraPipe.pipeline.settings import ClassifierConfig

from helpers import images_of, shots_of, train

REPO = Path(__file__).resolve().parents[1]


def test_lora_attention_starts_as_the_original(models_dir):
    model, _, tokenizer = load_clip(resolve_model("clip", "tiny", models_dir))
    model.eval()
    images, text = torch.randn(2, 3, 64, 64), tokenizer(["a photo of a circle", "a photo of a square"])
    before = model.encode_image(images), model.encode_text(text)
    count = inject_clip_lora(model, rank=16, lora_alpha=32, dropout=0.1)
    model.eval()
    assert count == 4  # 2 vision + 2 text blocks
    torch.testing.assert_close(model.encode_image(images), before[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model.encode_text(text), before[1], atol=1e-5, rtol=1e-5)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert any(n.startswith("visual.") for n in trainable) and any(n.startswith("transformer.") for n in trainable)


def test_train_and_evaluate(tmp_path, models_dir, shapes_root):
    classes = ["circle", "square", "triangle"]
    real = shots_of(shapes_root, classes, 4, 0).assign(real=True)
    synth = real.assign(real=False)  # stands in for generated images: checks the weighted real+synth path
    table = pd.concat([real, synth], ignore_index=True)
    cfg = ClassifierConfig(epochs=2, warmup_epochs=1, batch_size=8, augment="anchor")
    meta = train(cfg, table, classes, tmp_path / "clf.safetensors", resolve_model("clip", "tiny", models_dir))
    assert len(meta["loss_per_epoch"]) == 2
    test = images_of(shapes_root, "test", classes)
    metrics = evaluate_classifier(tmp_path / "clf.safetensors", test, classes, tmp_path / "m.json",
                                  tmp_path / "p.csv", tags={"method": "x"})
    assert set(metrics["per_class"]) == set(classes)
    assert 0 <= metrics["accuracy"] <= 1 and metrics["n_test"] == 18
    assert json.loads((tmp_path / "m.json").read_text())["tags"] == {"method": "x"}
    assert len(pd.read_csv(tmp_path / "p.csv")) == 18


def colour_images(root, count, seed):
    """Noisy red images (class 0) and noisy blue ones (class 1): a task any working classifier solves."""
    rng, rows = np.random.default_rng(seed), []
    for label in (0, 1):
        for i in range(count):
            pixels = rng.integers(0, 60, (64, 64, 3)).astype(np.uint8)
            pixels[..., 0 if label == 0 else 2] += 180
            path = root / f"{label}_{i}.png"
            Image.fromarray(pixels).save(path)
            rows.append({"path": str(path), "label": label, "class": ["red", "blue"][label], "real": False})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("prompts", [["a photo of a red thing", "a photo of a blue thing"],
                                     ["a photo of a blue thing", "a photo of a red thing"]])
def test_classifier_learns_two_distinct_classes(tmp_path, models_dir, prompts):
    """Random-weight CLIP labels one of these two prompt orders all wrong before training (it is a
    coin flip which): whichever it is, training must reach near-perfect accuracy on held-out images."""
    (tmp_path / "train").mkdir()
    (tmp_path / "test").mkdir()
    images, test = colour_images(tmp_path / "train", 12, 0), colour_images(tmp_path / "test", 10, 1)
    cfg = ClassifierConfig(epochs=4, warmup_epochs=1, batch_size=8, lr=1e-3, augment="simple", with_real=False)
    meta = train(cfg, images, ["red", "blue"], tmp_path / "c.safetensors", resolve_model("clip", "tiny", models_dir),
                 prompts=prompts)
    metrics = evaluate_classifier(tmp_path / "c.safetensors", test, ["red", "blue"], tmp_path / "m.json",
                                  tmp_path / "p.csv")
    assert metrics["accuracy"] >= 0.9, metrics
    assert meta["loss_per_epoch"][-1] < 0.8 * meta["loss_per_epoch"][0]


def test_real_and_synthetic_loss_weighting_by_hand():
    per_sample = torch.tensor([1.0, 2.0, 3.0, 5.0])
    is_real = torch.tensor([True, False, False, True])
    # real mean (1 + 5) / 2 = 3, synthetic mean (2 + 3) / 2 = 2.5: 0.8 * 3 + 0.2 * 2.5 = 2.9
    assert torch.isclose(classifier_loss(per_sample, is_real, 0.8), torch.tensor(2.9))
    assert torch.isclose(classifier_loss(per_sample, is_real, None), torch.tensor(2.75))  # synthetic only: mean
    # A batch without real samples counts only the synthetic term: 0.2 * 2.5.
    assert torch.isclose(classifier_loss(per_sample[1:3], is_real[1:3], 0.8), torch.tensor(0.5))


def test_lora_attention_honours_both_masks():
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(16, 4, batch_first=True).eval()
    lora = LoRAAttention(mha, rank=4, lora_alpha=8, dropout=0.0).eval()
    x = torch.randn(3, 5, 16)
    padding = torch.tensor([[False] * 5, [False, False, False, True, True], [False] * 4 + [True]])
    causal = torch.triu(torch.ones(5, 5, dtype=torch.bool), diagonal=1)
    with torch.no_grad():
        for kwargs in ({"key_padding_mask": padding}, {"attn_mask": causal},
                       {"key_padding_mask": padding, "attn_mask": causal},
                       {"attn_mask": torch.randn(5, 5)}):
            expected = mha(x, x, x, need_weights=False, **kwargs)[0]
            got = lora(x, x, x, need_weights=False, **kwargs)[0]
            torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(NotImplementedError):
        lora(x, x, x, need_weights=True)


class Recording(torch.utils.data.Dataset):
    """Items whose 'augmentation' draws from the global RNG, as torchvision's transforms do; every fetch is
    recorded (index, the draw)."""

    def __init__(self, n: int):
        self.n, self.seen = n, []

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        draw = float(torch.rand(()))
        self.seen.append((i, draw))
        return torch.full((3, 8, 8), float(i)) + draw, i % 2, True


class TinyBackend:
    name, num_classes = "tiny", 2

    def __init__(self):
        self.model = nn.Linear(3 * 8 * 8, 2)

    def parameters(self):
        return list(self.model.parameters())

    def state(self):
        return dict(self.model.named_parameters())

    def train(self):
        self.model.train()

    def eval(self):
        self.model.eval()

    def logits(self, pixels):
        return self.model(pixels.flatten(1))

    @staticmethod
    def inputs(pixels):
        return pixels


@pytest.mark.parametrize("backend", ["clip", "cnn"])
def test_mixing_never_moves_the_data_order_or_the_augmentation_stream(backend):
    """Both backends go through one loop: CutMix/MixUp on every batch or on none, the images come in the same
    order with the same augmentation draws."""
    from ChimeraPipe.classify.loop import fit
    from ChimeraPipe.pipeline.settings import ClassifierConfig

    runs = []
    for mix_prob in (0.0, 1.0):
        torch.manual_seed(0)
        data = Recording(12)
        cfg = ClassifierConfig(backend=backend, epochs=2, warmup_epochs=0, batch_size=4, mix_prob=mix_prob,
                               augment="anchor" if backend == "clip" else "none")
        fit(TinyBackend(), data, cfg)
        runs.append(data.seen)
    assert runs[0] == runs[1] and len(runs[0]) == 24


class Drawn(torch.utils.data.Dataset):
    """Items that are their index plus a draw from the global RNG (as an augmentation's), made in whichever
    process the DataLoader puts them."""

    def __len__(self):
        return 10

    def __getitem__(self, i):
        return torch.full((3, 8, 8), float(i)) + torch.rand(3, 8, 8), i % 2, True


def test_the_classifier_does_not_depend_on_the_number_of_workers():
    """Each item's order and augmentation seed are drawn in the main process: 0, 1 or 2 DataLoader workers train
    the same weights (so the workers are the job's threads, not a setting that re-runs anything)."""
    from ChimeraPipe.classify.loop import fit
    from ChimeraPipe.pipeline.settings import ClassifierConfig

    weights = []
    for workers in (0, 1, 2):
        torch.manual_seed(0)
        backend = TinyBackend()
        cfg = ClassifierConfig(backend="cnn", epochs=2, warmup_epochs=0, batch_size=4, mix_prob=0.5,
                               num_workers=workers)
        fit(backend, Drawn(), cfg)
        weights.append([p.detach().clone() for p in backend.parameters()])
    assert all(torch.equal(a, b) for other in weights[1:] for a, b in zip(weights[0], other, strict=True))


def test_real_shots_are_repeated_to_the_synthetic_count_whatever_the_backend():
    from ChimeraPipe.classify.data import is_mixed, training_table

    table = pd.DataFrame({"path": [f"s{i}" for i in range(10)] + ["r0", "r1"], "label": 0,
                          "real": [False] * 10 + [True, True]})
    rows = training_table(table)
    assert is_mixed(table) and rows["real"].sum() == 10 and (~rows["real"]).sum() == 10  # ceil(10 / 2) = 5 x 2
    assert len(training_table(table[table["real"]])) == 2   # real only: as given


# A classifier job in its own process (tests/helpers.train, as the classify stage trains), on one thread: argv =
# settings (JSON), training table (CSV), output, CLIP location ('' for none), and the epoch after which to stop and
# wait to be killed. The pause comes one batch into the next epoch, after that epoch's checkpoint, so a SIGKILL
# lands mid-epoch with the in-memory state already moved past what is on disk.
CLASSIFIER_JOB = """
import json, sys, time
from pathlib import Path
import pandas as pd
import torch
torch.set_num_threads(1)
import ChimeraPipe.classify.loop as loop
from ChimeraPipe.pipeline.settings import ClassifierConfig
from helpers import train
settings, table, out, clip, pause_after = sys.argv[1:6]
cfg, rows = ClassifierConfig(**json.loads(settings)), pd.read_csv(table)
batches = -(-len(rows) // cfg.batch_size)
seen, mix = [0], loop.mix_batch
def pausing_mix(*args, **kwargs):
    seen[0] += 1
    if seen[0] == int(pause_after) * batches + 2:
        Path(out + ".paused").write_text("paused")
        time.sleep(600)
    return mix(*args, **kwargs)
loop.mix_batch = pausing_mix
val = rows[["path", "label"]] if cfg.select == "val" else None   # the training images stand in for a val split
train(cfg, rows, ["red", "blue"], out, clip or None, val=val, device="cpu")
"""


def classifier_job(cfg, table_csv, out, clip, pause_after: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests"),
                                                        os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-c", CLASSIFIER_JOB, json.dumps(dataclasses.asdict(cfg)),
                             str(table_csv), str(out), clip or "", str(pause_after)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # tqdm: a few lines


def checkpoint_step(folder) -> int | None:
    """The epoch the classifier checkpoint in `folder` continues from (None without one)."""
    from safetensors import safe_open

    path = folder / CHECKPOINT
    if not path.is_file():
        return None
    with safe_open(str(path), "pt") as handle:
        return int(handle.metadata()["step"])


RESUME_CASES = {
    # the CNN from scratch: affine augmentation (global RNG), CutMix/MixUp (their own stream), two DataLoader workers
    # (seeded from the data stream), model selection on val: epoch 2 is the best (val accuracy 0.5, 1, 1, 1), so the
    # result is the best-epoch file written before the kill
    "cnn": ClassifierConfig(backend="cnn", image_size=16, epochs=4, warmup_epochs=1, batch_size=6, lr=1e-3,
                            augment="affine", mix_prob=0.5, select="val", num_workers=2, seed=3),
    # LoRA on the tiny CLIP, last epoch: the anchors' augmentation list, LoRA dropout, CutMix/MixUp
    "clip": ClassifierConfig(backend="clip", epochs=4, warmup_epochs=1, batch_size=6, lr=1e-3, augment="anchor",
                             mix_prob=0.5, seed=3),
}


@pytest.mark.parametrize("backend", list(RESUME_CASES))
def test_classifier_killed_after_epoch_2_resumes_bit_identical(tmp_path, models_dir, backend):
    """A classifier job SIGKILLed mid-epoch 3 of 4, then run again: it continues from the epoch-2 checkpoint and
    ends with exactly the uninterrupted run's tensors and history (one thread in both: CPU reductions are then
    deterministic). A checkpoint of other settings is ignored."""
    cfg = RESUME_CASES[backend]
    clip = resolve_model("clip", "tiny", models_dir) if backend == "clip" else None
    (tmp_path / "images").mkdir()
    table_csv = tmp_path / "train.csv"
    rows = colour_images(tmp_path / "images", 9, 0)   # 18 images: 3 batches an epoch
    rows.to_csv(table_csv, index=False)
    val = rows[["path", "label"]] if cfg.select == "val" else None
    reference, killed = tmp_path / "reference" / "c.safetensors", tmp_path / "killed" / "c.safetensors"
    job = classifier_job(cfg, table_csv, killed, clip, pause_after=2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        whole = train(cfg, rows, ["red", "blue"], reference, clip, val=val)
        deadline = time.monotonic() + 120
        while not Path(f"{killed}.paused").is_file():
            assert job.poll() is None and time.monotonic() < deadline, job.communicate()[1][-3000:]
            time.sleep(0.05)
        assert checkpoint_step(killed.parent) == 2     # epochs 1 and 2 are on disk, epoch 3 half done in memory
        job.send_signal(signal.SIGKILL)
        job.wait(timeout=30)
        assert job.returncode == -signal.SIGKILL and not killed.is_file()
        stale = tmp_path / "stale"
        stale.mkdir()
        shutil.copy(killed.parent / CHECKPOINT, stale / CHECKPOINT)

        resumed = train(cfg, rows, ["red", "blue"], killed, clip, val=val)
        expected, got = load_tensors(reference), load_tensors(killed)
        assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected)
        assert (whole["resumed_from_epoch"], resumed["resumed_from_epoch"]) == (0, 2)
        runs = [json.loads(p.with_suffix(".json").read_text()) for p in (reference, killed)]
        history = ("loss_per_epoch", "val_accuracy_per_epoch", "selected_epoch", "iterations", "config",
                   "train_images")
        assert [{k: r[k] for k in history} for r in runs] == [{k: runs[0][k] for k in history}] * 2
        assert len(whole["loss_per_epoch"]) == 4 and checkpoint_step(killed.parent) is None   # removed when done
        assert whole["selected_epoch"] == (2 if cfg.select == "val" else 4)

        # the stale checkpoint's fingerprint no longer matches: other settings start from scratch
        other = dataclasses.replace(cfg, lr=cfg.lr / 2, epochs=1, warmup_epochs=0, select="last", num_workers=0)
        meta = train(other, rows, ["red", "blue"], stale / "c.safetensors", clip)
        fresh = train(other, rows, ["red", "blue"], tmp_path / "fresh" / "c.safetensors", clip)
        assert meta["resumed_from_epoch"] == 0 and meta["loss_per_epoch"] == fresh["loss_per_epoch"]
        assert not (stale / CHECKPOINT).is_file()
    finally:
        torch.set_num_threads(threads)
        if job.poll() is None:
            job.kill()
            job.wait()


def test_uint8_eval_views_normalised_in_the_step_equal_open_clips_preprocess(models_dir, shapes_root):
    """Evaluation hands uint8 views to the model's device and normalises the batch there: the values are open_clip's
    own preprocess's within two 8-bit levels (torch's bicubic on uint8 against PIL's), for colour and grey images,
    shrunk and enlarged."""
    from ChimeraPipe.classify.augment import Normalise
    from ChimeraPipe.models.clip import preprocess_stats, uint8_preprocess

    _, preprocess, _ = load_clip(resolve_model("clip", "tiny", models_dir))
    views, normalise = uint8_preprocess(preprocess), Normalise(*preprocess_stats(preprocess))
    image = Image.open(sorted(shapes_root.rglob("*.png"))[0]).convert("RGB")
    level = 1 / 255 / torch.tensor(preprocess_stats(preprocess)[1]).view(3, 1, 1)
    for picture in (image.resize((90, 70)), image.resize((90, 70)).convert("L"), image.resize((9, 7))):
        view = views(picture)
        assert view.dtype == torch.uint8
        diff = (normalise(view[None])[0] - preprocess(picture)).abs() / level
        assert diff.max() <= 2.01 and diff.mean() < 0.2

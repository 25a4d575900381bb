"""Per-part stage functions: per-class results do not depend on how classes are grouped into jobs."""
import json

import pandas as pd
import pytest
import torch

from ChimeraPipe.core.io import load_tensors
from ChimeraPipe.pipeline import stages
from ChimeraPipe.pipeline.parts import PartIndexError, class_files
from ChimeraPipe.pipeline.settings import CropSettings, DetectSettings, GenerationSettings, LoraTrainConfig, canonical

CLASSES = ["circle", "square"]
# As the rules pass them: each section in full (canonical), plus the rule's own keys.
DETECT = {**canonical(DetectSettings, {}, "detect"), "noun": ""}
CROPS = {**canonical(CropSettings, {"views_per_image": 3, "resolution": 32}, "crops"), "mode": "box"}
# One class per step: a part of one class and a part of two then run the very same computation, bit for bit
# (batching classes is equal to float round-off only: tests/test_train_generate.py).
TRAIN = canonical(LoraTrainConfig, {"share": "A", "rank": 4, "steps": 3, "checkpoint_every": 2,
                                    "classes_per_step": 1}, "train")
GENERATE = canonical(GenerationSettings, {"steps": 2, "batch_size": 2, "resolution": 32}, "generate")


def run_chain(root, split_csv, data_root, models, groups):
    """detect (full boxes) -> crops -> train -> generate, one part per entry of `groups`."""
    for i, classes in enumerate(groups):
        part = f"p{i:03d}"
        boxes = root / "boxes" / f"{part}.csv"
        stages.detect_part(split_csv, classes, "full", boxes, root / "boxes" / f"{part}.png", root=data_root,
                           models=models, settings=DETECT, device="cpu")
        stages.crops_part(split_csv, boxes, classes, root / "crops" / "parts" / f"{part}.json", models=models,
                          settings=CROPS, seed=0, device="cpu")
        stages.train_part(root / "crops" / "parts" / f"{part}.json", classes, root / "lora" / "parts" / f"{part}.json",
                          models=models, train_settings=TRAIN, device="cpu")
        stages.generate_part(root / "lora" / "parts" / f"{part}.json", classes,
                             root / "synth" / "parts" / f"{part}.json", models=models,
                             method={"mixing": "dirichlet"}, alpha=1.0, num_images=2, settings=GENERATE, seed=0,
                             device="cpu")
    return sorted(str(p) for p in (root / "synth" / "parts").glob("*.json"))


@pytest.fixture(scope="module")
def setup(tmp_path_factory, shapes_root, models_dir):
    root = tmp_path_factory.mktemp("stages")
    split_csv = root / "split.csv"
    stages.dataset_table("imagefolder", str(shapes_root), str(root / "table.csv"))
    stages.split(str(root / "table.csv"), CLASSES, 4, 0, split_csv)
    models = {"diffusion": str(models_dir / "tiny-diffusion")}
    return root, split_csv, shapes_root, models


@pytest.mark.slow
def test_grouping_classes_does_not_change_their_results(setup):
    root, split_csv, data_root, models = setup
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # float sums depend on the thread count
    try:
        together = run_chain(root / "together", split_csv, data_root, models, [CLASSES])
        apart = run_chain(root / "apart", split_csv, data_root, models, [[c] for c in CLASSES])
        assert len(apart) == len(CLASSES) and list(class_files(apart, "manifest")) == CLASSES
    finally:
        torch.set_num_threads(threads)
    boxes = pd.read_csv(root / "together" / "boxes" / "p000.csv")
    assert list(boxes.columns[:2]) == ["class", "path"] and boxes.groupby("class").size().to_dict() == {
        "circle": 4, "square": 4}
    for cls in CLASSES:
        for rel in (f"crops/{cls}/views.safetensors", f"lora/{cls}/adapter.safetensors"):
            a, b = load_tensors(root / "together" / rel), load_tensors(root / "apart" / rel)
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), rel
        manifest_a = pd.read_csv(root / "together" / "synth" / cls / "manifest.csv")
        manifest_b = pd.read_csv(root / "apart" / "synth" / cls / "manifest.csv")
        assert manifest_a.drop(columns="file").equals(manifest_b.drop(columns="file"))
        shards = [sorted((root / run / "synth" / cls / "images").glob("shard-*.tar")) for run in ("together", "apart")]
        assert [p.name for p in shards[0]] == [p.name for p in shards[1]] and shards[0]
        assert all(a.read_bytes() == b.read_bytes() for a, b in zip(*shards, strict=True))
    assert list(class_files(together, "manifest")) == CLASSES


@pytest.mark.slow
def test_rerun_keeps_finished_classes_and_redoes_changed_ones(setup, caplog):
    root, split_csv, data_root, models = setup
    run_chain(root / "rerun", split_csv, data_root, models, [CLASSES])
    adapter = root / "rerun" / "lora" / "circle" / "adapter.safetensors"
    before = adapter.stat().st_mtime_ns
    caplog.set_level("INFO", logger="ChimeraPipe.pipeline.parts")
    stages.train_part(root / "rerun" / "crops" / "parts" / "p000.json", CLASSES,
                      root / "rerun" / "lora" / "parts" / "p000.json", models=models, train_settings=TRAIN,
                      device="cpu")
    assert adapter.stat().st_mtime_ns == before
    assert caplog.text.count("kept") == 2
    stages.train_part(root / "rerun" / "crops" / "parts" / "p000.json", CLASSES,
                      root / "rerun" / "lora" / "parts" / "p000.json", models=models,
                      train_settings={**TRAIN, "steps": 4}, device="cpu")
    assert adapter.stat().st_mtime_ns != before
    assert json.loads(adapter.with_suffix(".json").read_text())["training"]["steps"] == 4


def test_a_class_missing_from_the_upstream_index_is_named(setup, tmp_path):
    _, _, _, models = setup
    index = tmp_path / "crops" / "parts" / "p000.json"
    index.parent.mkdir(parents=True)
    index.write_text(json.dumps({"classes": {}}))
    with pytest.raises(PartIndexError, match="circle"):
        stages.train_part(index, ["circle"], tmp_path / "lora" / "parts" / "p000.json", models=models,
                          train_settings=TRAIN, device="cpu")


def test_a_class_without_shots_is_named_with_the_split_file(setup, tmp_path):
    _, split_csv, data_root, models = setup
    with pytest.raises(ValueError, match=r"split.csv: no shots for classes \['triangle'\]"):
        stages.detect_part(split_csv, ["circle", "triangle"], "full", tmp_path / "b.csv", tmp_path / "b.png",
                           root=data_root, models=models, settings=DETECT, device="cpu")

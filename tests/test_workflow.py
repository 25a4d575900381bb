"""The Snakemake workflow: lint, config errors, the end-to-end demo, and re-running only what a change touches."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from PIL import Image

from ChimeraPipe.io import load_tensors

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snakemake(*args, configfile=None, timeout=1500):
    cmd = SNAKEMAKE + ["--cores", "2", "--directory", str(REPO), "--snakefile", str(REPO / "Snakefile")]
    if configfile:
        cmd += ["--configfile", str(configfile)]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout)


def write_config(path: Path, **changes) -> Path:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    results = path.parent / "results"
    config.update(results=str(results))
    config["datasets"]["shapes"]["root"] = str(results / "data" / "shapes")
    for key, value in changes.items():
        config[key] = value
    path.write_text(yaml.safe_dump(config))
    return path


def planned_jobs(result) -> dict[str, int]:
    """Job counts from a dry run's 'Job stats' table."""
    if "Nothing to be done" in result.stdout:
        return {}
    table = result.stdout.split("Job stats:")[1].split("total")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def test_paper_config_is_valid():
    import jsonschema

    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    config = yaml.safe_load((REPO / "config" / "paper_fewshot.yaml").read_text())
    jsonschema.validate(config, schema)
    assert len(config["datasets"]) == 9 and config["num_images"] == 500


def test_lint_is_clean():
    result = subprocess.run(SNAKEMAKE + ["--lint", "--directory", str(REPO)], capture_output=True, text=True,
                            cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("change, message", [
    ({"shots": 0}, "shots"),
    ({"nonsense_key": 1}, "nonsense_key"),
    ({"models": {"diffusion": "not a model"}}, "models.diffusion"),
    ({"methods": ["chimera", "magic"]}, "magic"),
    ({"datasets": {"mine": {"root": "/no/such/root"}}}, "/no/such/root"),
    ({"train": {"stepz": 3}}, "stepz"),
    ({"classify": {"epochz": 3}}, "epochz"),
    ({"method_overrides": {"chimera": {"train": {"rnak": 2}}}}, "rnak"),
    ({"alpha": 0}, "alpha"),
])
def test_bad_config_stops_with_a_clear_message(tmp_path, change, message):
    config = write_config(tmp_path / "c.yaml", **change)
    result = snakemake("-n", configfile=config)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr


E2E_METHODS = ["real", "issynth", "chimera", "loft", "datadream"]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """The demo config (all baselines added) run end to end into a temporary results folder."""
    root = tmp_path_factory.mktemp("e2e")
    config = write_config(root / "config.yaml", methods=E2E_METHODS, num_images=4,
                          train={"steps": 12, "checkpoint_every": 5})
    result = snakemake(configfile=config)
    assert result.returncode == 0, result.stderr[-4000:]
    return root / "results", config


@pytest.mark.slow
def test_demo_produces_every_artifact(demo_run):
    results, _ = demo_run
    run = results / "shapes" / "shots4_seed0"
    classes = ["circle", "square", "triangle"]
    split = pd.read_csv(results / "shapes" / "split" / "shots4_seed0.csv")
    assert split.groupby("class").size().to_dict() == {c: 4 for c in classes}
    for part, cls in zip(("p000", "p001", "p002"), classes, strict=True):  # classes_per_job: 1 in the demo
        for backend in ("grounded_sam", "full"):  # detect for chimera; full boxes (sizes) for loft / datadream
            boxes = pd.read_csv(run / "boxes" / backend / f"{part}.csv")
            assert list(boxes.columns) == ["class", "path", "width", "height", "x0", "y0", "x1", "y1", "score",
                                           "source"]
            assert len(boxes) == 4 and (boxes["class"] == cls).all() and (boxes.x1 <= boxes.width).all()
        # chimera: box-constrained views; loft: its one centre crop; datadream: random squares
        for views_tag, per_image in (("box-grounded_sam", 16), ("center", 1), ("random", 16)):
            index = json.loads((run / "crops" / views_tag / "parts" / f"{part}.json").read_text())
            cache = run / "crops" / views_tag / cls / "views.safetensors"
            assert index["classes"][cls]["files"]["views"] == str(cache)
            assert load_tensors(cache)["latents_mean"].shape == (4, per_image, 4, 8, 8)
            assert Image.open(run / "crops" / views_tag / cls / "preview.png").mode == "RGB"
        for method, heads, share in (("chimera", 4, "A"), ("loft", 4, "none"), ("datadream", 1, "both")):
            meta = json.loads((run / "lora" / method / cls / "adapter.json").read_text())
            assert (meta["heads"], meta["share"]) == (heads, share)
            tensors = load_tensors(run / "lora" / method / cls / "adapter.safetensors")
            assert all(k.endswith((".lora_A", ".lora_B")) for k in tensors)
        for method, tag in (("chimera", "alpha1_n4"), ("loft", "n4"), ("datadream", "n4"), ("issynth", "n4")):
            manifest = pd.read_csv(run / "synth" / method / tag / cls / "manifest.csv")
            assert len(manifest) == 4
            assert all(Image.open(f).size == (64, 64) for f in manifest.file)
        assert Image.open(results / "report" / "grids" / "shapes" / "shots4_seed0" / f"{cls}.png").size[0] > 100
    issynth = pd.read_csv(run / "synth" / "issynth" / "n4" / "circle" / "manifest.csv")
    assert "clip_pass" in issynth.columns  # IsSynth as published: real guidance + CLIP filter
    assert (run / "synth" / "issynth" / "n4" / "circle" / "images" / "clip_filter.csv").is_file()
    chimera = pd.read_csv(run / "synth" / "chimera" / "alpha1_n4" / "circle" / "manifest.csv")
    assert chimera[["w0", "w1", "w2", "w3"]].nunique().min() == 4  # fresh weights for every image
    table = pd.read_csv(results / "report" / "accuracy.csv")
    assert list(table.columns) == ["method", "synthetic", "shapes", "AVG"]
    assert sorted(table.method) == sorted(E2E_METHODS)
    assert table.shapes.between(0, 100).all()
    assert "| method" in (results / "report" / "accuracy.md").read_text()
    quality = pd.read_csv(results / "report" / "box_quality" / "shapes_shots4_seed0.csv").set_index("backend")
    assert set(quality.index) == {"grounded_sam", "annotations", "full"}
    assert quality.loc["annotations", "mean_iou"] == 1.0
    assert quality.loc["annotations", "crops_with_whole_gt_box"] == 1.0
    metrics = json.loads((run / "eval" / "chimera" / "alpha1_n4.json").read_text())
    assert set(metrics["per_class"]) == set(classes)


@pytest.mark.slow
def test_changing_alpha_reruns_only_generation_and_after(demo_run, tmp_path):
    results, config = demo_run
    assert planned_jobs(snakemake("-n", configfile=config)) == {}
    data = yaml.safe_load(config.read_text())
    data["alpha"] = 0.3
    changed = tmp_path / "alpha.yaml"
    changed.write_text(yaml.safe_dump(data))
    jobs = planned_jobs(snakemake("-n", configfile=changed))
    # Only Dirichlet-mixing ChimeraLoRA depends on alpha: 3 classes generated, one classifier, and the report.
    assert jobs == {"generate": 3, "classify": 1, "evaluate": 1, "report": 1, "sample_grid": 1, "all": 1}
    data["alpha"], data["num_images"] = 1.0, 6
    changed.write_text(yaml.safe_dump(data))
    jobs = planned_jobs(snakemake("-n", configfile=changed))
    assert jobs["generate"] == 4 * 3 and "train" not in jobs and "crops" not in jobs and "detect" not in jobs


@pytest.mark.slow
def test_equivalent_configs_rerun_nothing(demo_run, tmp_path):
    """Key order, 1 vs 1.0 and spelt-out defaults leave every rule's params as they were."""
    _, config = demo_run
    data = yaml.safe_load(config.read_text())
    data["classify"] = dict(reversed(list(data["classify"].items())), rank=16, with_real=False, lora_alpha=32)
    data["generate"] = {**data["generate"], "guidance_scale": 2, "precision": "auto"}
    data["train"] = {"checkpoint_every": 5, "steps": 12, "weight_decay": 0.01, "grad_clip": 1}
    data["alpha"] = 1
    same = tmp_path / "same.yaml"
    same.write_text(yaml.safe_dump(dict(reversed(list(data.items()))), sort_keys=False))
    assert planned_jobs(snakemake("-n", configfile=same)) == {}


def test_classes_per_job_sets_the_job_count(tmp_path):
    config = write_config(tmp_path / "c.yaml", classes_per_job=2)
    jobs = planned_jobs(snakemake("-n", configfile=config))
    # 3 classes -> parts of 2 + 1; boxes of 3 backends (grounded_sam for chimera, all 3 for box_quality).
    assert jobs["detect"] == jobs["crops"] == 3 * 2
    assert jobs["train"] == 2 and jobs["generate"] == 2 * 2  # chimera; issynth and chimera
    assert jobs["sample_grid"] == 1 and jobs["classify"] == 3


def test_paper_config_plans_from_dataset_metadata(tmp_path):
    """The shipped paper config, its data_root pointed at metadata-only replicas (no image anywhere)."""
    sys.path.insert(0, str(REPO / "bench"))
    try:
        from bench_dag import CLASS_COUNTS, paper_config, write_replicas
    finally:
        sys.path.pop(0)
    config = paper_config(1, str(tmp_path / "results"), str(tmp_path / "data"), 16)
    write_replicas(config, tmp_path / "data")
    (tmp_path / "paper.yaml").write_text(yaml.safe_dump(config))
    result = snakemake("-n", configfile=tmp_path / "paper.yaml")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    jobs = planned_jobs(result)
    assert jobs["dataset_table"] == 9 and jobs["split"] == 9
    parts = sum(-(-count // 16) for count in CLASS_COUNTS.values())
    assert jobs["train"] == 6 * parts  # the 6 LoRA methods, one job per part of 16 classes


@pytest.mark.slow
def test_class_names_with_slashes_run_end_to_end(tmp_path):
    """FGVC-Aircraft in its official layout, with 'F/A-18' and '.Falcon 2000' among the variants."""
    from ChimeraPipe.datasets.replicas import write_replica

    write_replica("fgvc_aircraft", tmp_path / "data" / "fgvc", counts={"train": 4, "val": 1, "test": 2})
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config.update(results=str(tmp_path / "results"), data_root=str(tmp_path / "data"), methods=["real", "chimera"],
                  num_images=2, datasets={"aircraft": {"kind": "fgvc_aircraft", "root": "fgvc",
                                                       "detect_backend": "full"}},
                  train={"steps": 4, "checkpoint_every": 2}, generate={"steps": 3, "batch_size": 2},
                  classify={"epochs": 1, "warmup_epochs": 0, "batch_size": 8, "lr": 0.001},
                  crops={"views_per_image": 2, "resolution": 32})
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(configfile=tmp_path / "c.yaml")
    assert result.returncode == 0, result.stderr[-4000:]
    run = tmp_path / "results" / "aircraft" / "shots4_seed0"
    adapter = json.loads((run / "lora" / "chimera" / "F_A-18" / "adapter.json").read_text())
    assert adapter["prompt"] == "a aircraft photo of a F/A-18"          # display name in the prompt
    assert (run / "lora" / "chimera" / "Falcon_2000" / "adapter.safetensors").is_file()  # no hidden folder
    assert len(pd.read_csv(run / "synth" / "chimera" / "alpha1_n2" / "F_A-18" / "manifest.csv")) == 2
    metrics = json.loads((run / "eval" / "chimera" / "alpha1_n2.json").read_text())
    assert set(metrics["per_class"]) == {"707-320", "F_A-18", "Falcon_2000"} and metrics["n_test"] == 6
    assert metrics["tags"]["eval_split"] == "test"
    classifier = json.loads((run / "classifier" / "chimera" / "alpha1_n2" / "classifier.json").read_text())
    assert "a aircraft photo of a F/A-18" in classifier["prompts"]
    split = pd.read_csv(tmp_path / "results" / "aircraft" / "split" / "shots4_seed0.csv")
    assert set(split["class_name"]) == {"707-320", "F/A-18", ".Falcon 2000"}

"""The Snakemake workflow: lint, config errors, the end-to-end demo, and re-running only what a change touches."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from PIL import Image

from ChimeraPipe.core.images import load_rgb
from ChimeraPipe.core.io import load_tensors

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snakemake(*args, configfile=None, workdir=None, nice=0, env=None, timeout=1500, warm=False):
    """Snakemake on a config, in the config's folder unless `workdir` says otherwise: the working directory
    holds `.snakemake` (locks, and the metadata that says whose params changed), and make test runs test
    files side by side (pytest-xdist), so runs never share one unless a test means them to. `warm`: its jobs
    start warm, as make demo and make mini start theirs (core.warm)."""
    workdir = workdir or (Path(configfile).parent if configfile else REPO)
    cmd = ([sys.executable, "-m", "ChimeraPipe.core.warm", "--"] if warm else []) + SNAKEMAKE
    cmd += ["--cores", "2", "--directory", str(workdir), "--snakefile", str(REPO / "Snakefile")]
    if configfile:
        cmd += ["--configfile", str(configfile)]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout, env=env,
                          preexec_fn=(lambda: os.nice(nice)) if nice else None)


def write_config(path: Path, longtail: bool = False, **changes) -> Path:
    """The demo config with its results under path's folder; without its long-tail dataset unless asked."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    results = path.parent / "results"
    config.update(results=str(results))
    if not longtail:
        del config["datasets"]["shapes_longtail"]
    for dataset in config["datasets"].values():
        dataset["root"] = str(results / "data" / "shapes")
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


@pytest.mark.parametrize("name, datasets", [("paper_fewshot", 9), ("paper_longtail", 3), ("paper_sweeps", 2)])
def test_paper_configs_are_valid(name, datasets):
    import jsonschema

    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    config = yaml.safe_load((REPO / "config" / f"{name}.yaml").read_text())
    jsonschema.validate(config, schema)
    assert len(config["datasets"]) == datasets and 500 in (config["num_images"] if name == "paper_sweeps"
                                                           else [config["num_images"]])


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


# FGVC-Aircraft in its official layout beside the demo datasets, with 'F/A-18' and '.Falcon 2000' among the
# variants (as variants.txt spells them: `class_names: coop`): class names unsafe in paths, end to end.
AIRCRAFT = {"kind": "fgvc_aircraft", "root": "fgvc", "detect_backend": "full", "class_names": "coop",
            "methods": ["real", "chimera"], "num_images": 2, "alpha": 1.0, "box_quality": False}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """The demo config (all baselines added) and the aircraft replica, run end to end into one temporary
    results folder: one workflow run proves what only a run can (paths, wildcards, every stage's files)."""
    from replicas import write_replica

    root = tmp_path_factory.mktemp("e2e")
    write_replica("fgvc_aircraft", root / "data" / "fgvc", counts={"train": 4, "val": 1, "test": 2})
    config = write_config(root / "config.yaml", longtail=True, methods=E2E_METHODS, num_images=[2, 4],
                          train={"steps": 12, "checkpoint_every": 5}, data_root=str(root / "data"))
    data = yaml.safe_load(config.read_text())
    data["datasets"]["aircraft"] = AIRCRAFT
    config.write_text(yaml.safe_dump(data))
    # As `make demo`: tiny jobs, one thread each, started warm. At nice 10: the laptop-scale run beside it (its own test
    # file, on the other pytest-xdist worker) is make test's longest chain and keeps the cores it needs, so
    # the demo takes ~24 min in CI instead of ~6 alone (the timeout, a guard against hangs, allows for that).
    result = snakemake("--max-threads", "1", configfile=config, nice=10, timeout=2700, warm=True)
    assert result.returncode == 0, result.stderr[-4000:]
    return root / "results", config


@pytest.mark.slow
def test_demo_produces_every_artifact(demo_run):
    results, _ = demo_run
    run = results / "shapes" / "shots4_seed0"
    classes = ["circle", "square", "triangle"]
    split = pd.read_csv(results / "shapes" / "split" / "shots4_seed0.csv")
    assert split.groupby("class").size().to_dict() == {c: 4 for c in classes}
    part = "p000"  # classes_per_job: 3 in the demo
    for backend in ("grounded_sam", "full"):  # detect for chimera; full boxes (sizes) for loft / datadream
        boxes = pd.read_csv(run / "boxes" / backend / f"{part}.csv")
        assert list(boxes.columns) == ["class", "path", "width", "height", "x0", "y0", "x1", "y1", "score", "source"]
        assert len(boxes) == 12 and set(boxes["class"]) == set(classes) and (boxes.x1 <= boxes.width).all()
    for cls in classes:
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
        # one synthetic set per alpha for chimera, one for the others: generated once at the largest volume
        for method, tag in (("chimera", "alpha0.5"), ("chimera", "alpha1"), ("loft", "fixed"),
                            ("datadream", "fixed"), ("issynth", "fixed")):
            manifest = pd.read_csv(run / "synth" / method / tag / cls / "manifest.csv")
            assert len(manifest) == 4
            assert all(load_rgb(f).size == (64, 64) for f in manifest.file)
            shards = list((run / "synth" / method / tag / cls / "images").glob("shard-*.tar"))
            assert len(shards) == 1 and not list((run / "synth" / method / tag / cls / "images").glob("*.jpg"))
        assert Image.open(results / "report" / "grids" / "shapes" / "shots4_seed0" / f"{cls}.png").size[0] > 100
    issynth = pd.read_csv(run / "synth" / "issynth" / "fixed" / "circle" / "manifest.csv")
    assert "clip_pass" in issynth.columns  # IsSynth as published: real guidance + CLIP filter
    assert (run / "synth" / "issynth" / "fixed" / "circle" / "images" / "clip_filter.csv").is_file()
    chimera = pd.read_csv(run / "synth" / "chimera" / "alpha1" / "circle" / "manifest.csv")
    assert chimera[["w0", "w1", "w2", "w3"]].nunique().min() == 4  # fresh weights for every image
    # classifiers on the first 2 and on all 4 images per class: the smaller set is the larger one's prefix
    for volume in (2, 4):
        meta = json.loads((run / "classifier" / "chimera" / f"alpha1_n{volume}" / "classifier.json").read_text())
        assert meta["train_images"] == 3 * volume
    metrics = json.loads((run / "eval" / "chimera" / "alpha0.5_n4.json").read_text())
    assert set(metrics["per_class"]) == set(classes) and metrics["group_accuracy"] == {}
    quality = pd.read_csv(results / "report" / "box_quality" / "shapes_shots4_seed0.csv").set_index("backend")
    assert set(quality.index) == {"grounded_sam", "annotations", "full"}
    assert quality.loc["annotations", "mean_iou"] == 1.0
    assert quality.loc["annotations", "crops_with_whole_gt_box"] == 1.0
    # gap metrics of every synthetic set, from embeddings cached per image set
    for method, tag in (("chimera", "alpha0.5"), ("chimera", "alpha1"), ("loft", "fixed"), ("issynth", "fixed")):
        gap = json.loads((run / "metrics" / method / f"{tag}.json").read_text())
        assert gap["features"] == "clip" and 0 <= gap["summary"]["coverage"] <= 1
        assert gap["summary"]["fd"] >= 0 and -100 <= gap["summary"]["clip_score"] <= 100
        assert (run / "embeddings" / "clip" / "synth" / method / f"{tag}.safetensors").is_file()
    assert (results / "shapes" / "embeddings" / "clip" / "test.safetensors").is_file()


@pytest.mark.slow
def test_demo_long_tail_dataset(demo_run):
    results, _ = demo_run
    run = results / "shapes_longtail" / "shots4_seed0"
    train = pd.read_csv(results / "shapes_longtail" / "split" / "shots4_seed0_longtail.csv")
    # tail 0.5 of 3 classes: floor(3 * 0.5) = 1 head class with all its 8 train images, 2 tail classes of 4 shots
    assert train.groupby("class").size().to_dict() == {"circle": 8, "square": 4, "triangle": 4}
    adapters = sorted(p.name for p in (run / "lora" / "chimera").iterdir() if p.is_dir() and p.name != "parts")
    assert adapters == ["square", "triangle"]   # and no checkpoint folder left behind
    metrics = json.loads((run / "eval" / "chimera" / "alpha1_n8.json").read_text())
    assert set(metrics["group_accuracy"]) == {"head", "tail"}
    assert metrics["tags"]["with_real"] is True  # the head has no synthetic images: real ones always mixed in
    meta = json.loads((run / "classifier" / "chimera" / "alpha1_n8" / "classifier.json").read_text())
    assert meta["train_images"] == 16 + 2 * 8


@pytest.mark.slow
def test_demo_report_holds_every_table_and_figure(demo_run):
    results, _ = demo_run
    report = results / "report"
    page = (report / "report.html").read_text()
    for title in ("Few-shot classification", "Component ablation", "Long-tail", "Synthetic-to-real gap",
                  "Regime", "Alpha sweep", "Synthetic volume", "Sample grids", "Boxes against ground truth"):
        assert f">{title}</h2>" in page, title
    assert page.count("<table") >= 9 and page.count("data:image/png;base64,") >= 8
    assert "http://" not in page and "https://" not in page  # nothing to fetch: opens offline
    for name in ("fewshot", "mean_per_class", "ablation", "longtail", "gap", "accuracy_vs_alpha",
                 "accuracy_vs_volume"):
        assert (report / "tables" / f"{name}.csv").is_file() and (report / "tables" / f"{name}.md").is_file()
    for name in ("accuracy_vs_alpha", "accuracy_vs_volume", "alpha_dial"):
        assert Image.open(report / "figures" / f"{name}.png").size[0] > 300
    fewshot = pd.read_csv(report / "accuracy.csv")
    assert set(fewshot["row"]) == {"real", "issynth", "loft", "datadream", "chimera (α=0.5)", "chimera (α=1)"}
    ran = fewshot[fewshot["n_seeds"] > 0]
    assert ran["mean"].between(0, 100).all() and (ran["n_seeds"] == 1).all()
    # aircraft runs only real and chimera (α=1): every other cell of its column, and their AVG, say 'not run'
    assert set(ran.loc[ran["dataset"] == "aircraft", "row"]) == {"real", "chimera (α=1)"}
    assert set(ran.loc[ran["dataset"] == "shapes", "row"]) == set(fewshot["row"])
    assert fewshot.loc[fewshot["n_seeds"] == 0, "mean"].isna().all()
    ablation = (report / "tables" / "ablation.md").read_text()
    assert "+ multi-head " in ablation and "not run" in ablation  # the components the demo skips say so
    markdown = (report / "report.md").read_text()
    for figure in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown):
        assert (report / figure).is_file(), figure
    # what produced it comes first, and the demo's random-weight models are called out above everything
    assert page.index("class='warning'") < page.index(">Provenance</h2>") < page.index(">Few-shot classification</h2>")
    assert "random-weight models" in page and "> **Warning: random-weight models" in markdown
    provenance = json.loads((report / "provenance.json").read_text())
    assert [m["kind"] for m in provenance["models"]] == ["diffusion", "clip", "grounding_dino", "sam"]
    assert all(m["spec"] == "tiny" and m["weights"].startswith("random") for m in provenance["models"])
    assert len(provenance["config_digest"]) == 32 and provenance["seeds"] == [0] and provenance["code"]["commit"]
    assert {(r["stage"], r["device"]) for r in provenance["hardware"]} == {("classify", "cpu"), ("generate", "cpu")}
    assert {"train", "generate", "classify"} <= {row["rule"] for row in provenance["stage_times"]}


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.slow
def test_demo_report_opens_offline_in_a_headless_browser(demo_run):
    """Chromium (Debian's package) loads the page with every host unresolvable: every image decodes and every
    table is in the DOM. `make test-report` and CI install Chromium and require this test to run."""
    browser = chromium()
    if browser is None:
        if os.environ.get("CHIMERAPIPE_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium is required (CHIMERAPIPE_REQUIRE_BROWSER=1) but not installed")
        pytest.skip("no Chromium: `make test-report` installs it")
    results, _ = demo_run
    page = (results / "report" / "report.html").resolve()
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                          "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=10000", "--dump-dom",
                          page.as_uri()],
                         capture_output=True, text=True, timeout=180).stdout
    body = re.search(r"<body[^>]*>", dom).group(0)
    images = int(re.search(r'data-images="(\d+)"', body).group(1))
    assert images >= 8 and 'data-broken-images="0"' in body, body
    assert dom.count("<table") >= 9 and dom.count("<h2>") == 10   # the 9 sections and the provenance


@pytest.mark.slow
def test_changing_alpha_reruns_only_generation_and_after(demo_run, tmp_path):
    results, config = demo_run
    assert planned_jobs(snakemake("-n", configfile=config)) == {}
    data = yaml.safe_load(config.read_text())
    data["alpha"] = [0.5, 1, 2]
    changed = tmp_path / "alpha.yaml"
    changed.write_text(yaml.safe_dump(data))
    jobs = planned_jobs(snakemake("-n", configfile=changed, workdir=config.parent))   # the demo's metadata
    # A new alpha: only ChimeraLoRA's new synthetic set (one part of 3 classes), its two classifiers (one per
    # volume), its embeddings and metrics, the plots that show every set, and the report.
    assert jobs == {"generate": 1, "classify": 2, "evaluate": 2, "embed_synth": 1, "gap_metrics": 1, "tsne": 1,
                    "sample_grid": 1, "report": 1, "all": 1}
    data["alpha"], data["num_images"] = [0.5, 1.0], [2, 4, 6]
    changed.write_text(yaml.safe_dump(data))
    jobs = planned_jobs(snakemake("-n", configfile=changed, workdir=config.parent))
    # A larger volume generates more images (the old ones are kept); nothing upstream of generation re-runs.
    assert jobs["generate"] == 5 and not {"train", "crops", "detect", "split"} & set(jobs)


@pytest.mark.slow
def test_equivalent_configs_rerun_nothing(demo_run, tmp_path):
    """Key order, 1 vs 1.0 and spelt-out defaults leave every rule's params as they were."""
    _, config = demo_run
    data = yaml.safe_load(config.read_text())
    data["classify"] = dict(reversed(list(data["classify"].items())), rank=16, with_real=False, lora_alpha=32)
    data["generate"] = {**data["generate"], "guidance_scale": 2, "precision": "auto"}
    data["train"] = {"checkpoint_every": 5, "steps": 12, "weight_decay": 0.01, "grad_clip": 1}
    data["alpha"] = [1, 0.5, 1.0]
    data["num_images"] = [4, 2]
    data["crops"] = {"resolution": 64, "views_per_image": 16, "flip_prob": 0, "scale_range": [0.8, 1]}
    data["detect"] = {**dict(reversed(list(data["detect"].items()))), "max_side": 1333}
    data["metrics"] = {"k": 3, "features": "clip"}
    data["datasets"]["shapes_longtail"]["longtail"] = {"head_max": 8, "tail": 0.5}
    same = tmp_path / "same.yaml"
    same.write_text(yaml.safe_dump(dict(reversed(list(data.items()))), sort_keys=False))
    assert planned_jobs(snakemake("-n", configfile=same, workdir=config.parent)) == {}


def test_the_demo_config_in_another_key_order_plans_the_same_params():
    """The issue's case: the demo config as written vs. yaml.safe_dump of it (keys sorted): every rule's
    settings params are canonical, so both give the same params, in the same order."""
    from ChimeraPipe.pipeline.config import WorkflowConfig

    written = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    dumped = yaml.safe_load(yaml.safe_dump(written))
    assert list(written["crops"]) != list(dumped["crops"])  # the dump reorders keys
    a, b = WorkflowConfig(written), WorkflowConfig(dumped)
    for name in ("crops_settings", "detect_settings", "generate_settings", "classify_settings", "metrics_settings"):
        assert list(getattr(a, name)().items()) == list(getattr(b, name)().items()), name
    assert a.method("chimera") == b.method("chimera") and a.alphas("shapes") == b.alphas("shapes")
    assert a.longtail("shapes_longtail") == b.longtail("shapes_longtail")


def test_classes_per_job_sets_the_job_count(tmp_path):
    config = write_config(tmp_path / "c.yaml", classes_per_job=2)
    jobs = planned_jobs(snakemake("-n", configfile=config))
    # 3 classes -> parts of 2 + 1; boxes of 3 backends (grounded_sam for chimera, all 3 for box_quality).
    assert jobs["detect"] == 3 * 2 and jobs["crops"] == 4 * 2  # + loft's centre crops (no boxes needed)
    assert jobs["train"] == 2 * 2 and jobs["generate"] == 4 * 2  # loft, chimera; issynth, loft, chimera x 2 alphas
    # real 1 + (issynth, loft: 1 set, chimera: 2 sets) x 2 volumes; per-dataset stages are not split
    assert jobs["sample_grid"] == 1 and jobs["classify"] == 1 + 4 * 2 and jobs["gap_metrics"] == 4


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
def test_class_names_with_slashes_run_end_to_end(demo_run):
    results, _ = demo_run
    run = results / "aircraft" / "shots4_seed0"
    adapter = json.loads((run / "lora" / "chimera" / "F_A-18" / "adapter.json").read_text())
    assert adapter["prompt"] == "a aircraft photo of a F/A-18"          # display name in the prompt
    assert (run / "lora" / "chimera" / "Falcon_2000" / "adapter.safetensors").is_file()  # no hidden folder
    assert len(pd.read_csv(run / "synth" / "chimera" / "alpha1" / "F_A-18" / "manifest.csv")) == 2
    metrics = json.loads((run / "eval" / "chimera" / "alpha1_n2.json").read_text())
    assert set(metrics["per_class"]) == {"707-320", "F_A-18", "Falcon_2000"} and metrics["n_test"] == 6
    assert metrics["tags"]["eval_split"] == "test"
    classifier = json.loads((run / "classifier" / "chimera" / "alpha1_n2" / "classifier.json").read_text())
    assert "a aircraft photo of a F/A-18" in classifier["prompts"]
    split = pd.read_csv(results / "aircraft" / "split" / "shots4_seed0.csv")
    assert set(split["class_name"]) == {"707-320", "F/A-18", ".Falcon 2000"}

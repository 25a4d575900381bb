"""The preflight: every missing dataset at once, staged models verified, tiny models flagged, the run's work
(jobs equal to a real dry run's), bytes against the free space, the GPU, GPU-hours from a GPU suite."""
import hashlib
import io
import json
import shutil
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import pytest
import yaml

from ChimeraPipe.core.images import BYTES_PER_PIXEL, image_bytes
from ChimeraPipe.diffusion.generate import TAR_BYTES_PER_IMAGE
from ChimeraPipe.models.specs import hub_spec, staged_folder
from ChimeraPipe.models.staging import LOCK, MANIFEST
from ChimeraPipe.pipeline import preflight
from ChimeraPipe.pipeline.config import WorkflowConfig

from replicas import write_replica
from test_workflow import SNAKEMAKE, planned_jobs, snakemake, write_config

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from bench_dag import CLASS_COUNTS, paper_config, write_replicas  # noqa: E402

sys.path.pop(0)
SYNTHETIC_METHODS = 7   # the paper config's methods but `real`
LORA_METHODS = 6        # ... that train a LoRA (not issynth)
REMOVED, BROKEN = ("stanford_cars", "isic"), "dtd"


def paper(tmp_path: Path, seeds: int = 3, images: bool = False, **changes) -> dict:
    """The paper config (3 seeds) on replicas of its datasets at the real class counts: metadata only (the bench
    DAG's), or with their images (4 train, 1 val, 1 test per class)."""
    config = paper_config(seeds, str(tmp_path / "results"), str(tmp_path / "data"))
    if images:
        for name, count in CLASS_COUNTS.items():
            settings = config["datasets"][name]
            write_replica(settings["kind"], tmp_path / "data" / settings["root"], n_classes=count,
                          counts={"train": 4, "val": 1, "test": 1})
    else:
        write_replicas(config, tmp_path / "data")
    config.update(changes)
    return config


def stage(models_dir: Path, kind: str, spec: str, files: dict[str, bytes], revision: str = "0123abc") -> Path:
    """A staged hub model as fetch_models leaves it: files, manifest.json and the lock's entry."""
    name = hub_spec(kind, spec)[0]
    folder = staged_folder(name, models_dir)
    entries = {}
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
        entries[rel] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    repo_id = name
    (folder / MANIFEST).write_text(json.dumps({"id": repo_id, "revision": revision, "files": entries}))
    lock_path = models_dir / LOCK
    lock = json.loads(lock_path.read_text()) if lock_path.is_file() else {}
    lock[kind] = {"spec": spec, "id": repo_id, "revision": revision, "files": entries}
    lock_path.write_text(json.dumps(lock))
    return folder


def stage_all(config: dict) -> Path:
    models_dir = Path(config["results"]) / "models"
    for kind, spec in config["models"].items():
        stage(models_dir, kind, spec, {"config.json": b"{}", f"{kind}/model.safetensors": kind.encode() * 100})
    return models_dir


def snakemake_preflight(configfile: Path) -> subprocess.CompletedProcess:
    """`snakemake preflight --configfile X` (the target before --configfile, which takes several files)."""
    return subprocess.run(SNAKEMAKE + ["preflight", "--cores", "1", "--directory", str(configfile.parent),
                                       "--snakefile", str(REPO / "Snakefile"), "--configfile", str(configfile)],
                          capture_output=True, text=True, timeout=300)


def roomy(monkeypatch, free: int = 10 * 2**50):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda _: usage(free, 0, free))


@pytest.fixture(scope="module")
def broken(tmp_path_factory) -> Path:
    """The paper config on metadata-only replicas (no image anywhere), two datasets' folders removed and one
    split file broken."""
    root = tmp_path_factory.mktemp("broken")
    config = paper(root)
    for name in REMOVED:
        shutil.rmtree(root / "data" / config["datasets"][name]["root"])
    (root / "data" / "dtd" / "split_zhou_DescribableTextures.json").write_text("{not json")
    (root / "paper.yaml").write_text(yaml.safe_dump(config))
    return root / "paper.yaml"


def test_every_missing_dataset_is_listed_at_once_with_the_run_size(broken):
    config = yaml.safe_load(broken.read_text())
    result = preflight.run_preflight(config, gpu=None, gpu_suite=None)
    blockers = {f.subject: f for f in result.blockers if f.topic == "datasets"}
    assert set(blockers) == set(CLASS_COUNTS)   # all nine: no image exists in a metadata-only replica
    for name in REMOVED:
        root = Path(config["data_root"]) / config["datasets"][name]["root"]
        assert f"dataset root {root} does not exist" in blockers[name].message
        assert "expected layout" in blockers[name].message
    assert "split_zhou_DescribableTextures.json is not a readable JSON file" in blockers[BROKEN].message
    aircraft = blockers["fgvc_aircraft"]
    assert aircraft.message.startswith("600 of 600 images of the split are missing") and \
        "images/, variants.txt" in aircraft.message and aircraft.details[0].startswith("images/: 600 of 600")
    cars_like = blockers["caltech101"].details[0]
    assert cars_like == "101_ObjectCategories/: 600 of 600 listed images missing; none of the 100 folders they " \
                        "lie in exists"

    work = result.work
    assert sorted(work.not_counted) == sorted([*REMOVED, BROKEN])
    classes = sum(n for d, n in CLASS_COUNTS.items() if d in work.counted)
    assert classes == 700 - 196 - 7 - 47
    assert sum(work.images.values()) == 3 * classes * SYNTHETIC_METHODS * 500
    assert work.made["issynth"] == 4 * work.images["issynth"]   # the CLIP filter makes up to 4 candidates each
    # JPEG q95 in tar shards: the image bytes plus each member's tar overhead
    assert work.bytes["synthetic images"] == sum(work.made.values()) * (image_bytes(512, "jpeg") + TAR_BYTES_PER_IMAGE)
    # a class set of 500 images is two shards of 256 (IsSynth's 2,000 candidates eight), plus its manifest, settings
    # stamp and done stamp (and the filter's log)
    per_set = {"issynth": 8 + 4}
    assert work.files["synthetic images"] == 3 * classes * sum(per_set.get(m, 2 + 3) for m in work.images)
    parts = sum(-(-CLASS_COUNTS[d] // 16) for d in work.counted)
    assert work.jobs["train"] == 3 * LORA_METHODS * parts and work.jobs["generate"] == 3 * SYNTHETIC_METHODS * parts
    assert sum(work.adapters.values()) == 3 * classes * LORA_METHODS
    assert sum(work.steps.values()) == 3 * classes * (5 * 600 + 200)   # the ablation family's 600, DataDream's 200
    assert sum(work.classifiers.values()) == 3 * len(work.counted) * 8
    assert preflight.exit_code(result) == 1

    text = preflight.format_report(result)
    assert all(name in text for name in CLASS_COUNTS)
    assert f"synthetic images kept: {sum(work.images.values()):,}" in text and "jobs: " in text
    assert f"the estimates leave out {', '.join(work.not_counted)}" in text


def test_snakemake_preflight_plans_without_the_datasets_and_fails(broken):
    """The rule must plan although datasets are missing (the preflight, not the planner, reports them)."""
    result = snakemake_preflight(broken)
    assert result.returncode != 0
    report = result.stdout
    assert "ChimeraPipe preflight of" in report and "fix the blockers before submitting" in report
    for name in CLASS_COUNTS:
        assert f"[BLOCKER]  {name}:" in report, name
    assert "synthetic images kept:" in report and "Storage" in report and "GPU-hours" in report
    log = Path(yaml.safe_load(broken.read_text())["results"]) / "logs" / "preflight.log"
    assert "[BLOCKER]  dtd:" in log.read_text()


def test_a_complete_config_passes(tmp_path, monkeypatch):
    """Every dataset with its images, every hub model staged and verified, room on disk: exit 0."""
    config = paper(tmp_path, images=True)
    stage_all(config)
    roomy(monkeypatch)
    result = preflight.run_preflight(config, gpu=None, gpu_suite=None)
    assert not result.blockers and preflight.exit_code(result) == 0
    assert not [f for f in result.findings if f.level == preflight.WARNING]
    datasets_ok = [f for f in result.findings if f.topic == "datasets"]
    assert len(datasets_ok) == 9 and all(f.level == preflight.OK for f in datasets_ok)
    models = {f.subject: f for f in result.findings if f.topic == "models"}
    assert all("sizes and SHA-256 verified" in f.message for f in models.values())
    assert "ready to submit" in preflight.format_report(result)


def test_a_staged_model_that_does_not_match_its_lock_blocks(tmp_path, monkeypatch):
    config = paper(tmp_path, seeds=1, images=True)
    models_dir = stage_all(config)
    roomy(monkeypatch)
    sam = staged_folder("facebook/sam-vit-huge", models_dir) / "sam" / "model.safetensors"
    sam.write_bytes(b"x" * sam.stat().st_size)                        # same size, other bytes
    unet = staged_folder(hub_spec("diffusion", config["models"]["diffusion"])[0], models_dir) / \
        "diffusion/model.safetensors"
    unet.write_bytes(b"truncated")
    lock = json.loads((models_dir / LOCK).read_text())
    del lock["grounding_dino"]
    (models_dir / LOCK).write_text(json.dumps(lock))
    result = preflight.run_preflight(config, gpu=None, gpu_suite=None)
    models = {f.subject: f for f in result.blockers if f.topic == "models"}
    assert set(models) == {"sam", "diffusion", "grounding_dino"}
    assert f"{sam}: SHA-256 differs from the manifest's" in models["sam"].message
    assert f"{unet}: 9 bytes, the manifest says" in models["diffusion"].message
    assert "not staged" in models["grounding_dino"].message and "fetch_models" in models["grounding_dino"].message


def test_tiny_models_warn_loudly_on_real_data_and_note_on_the_demo(tmp_path, monkeypatch):
    roomy(monkeypatch)
    tiny = {kind: "tiny" for kind in ("diffusion", "clip", "grounding_dino", "sam")}
    real = preflight.run_preflight(paper(tmp_path, seeds=1, images=True, models=tiny), gpu=None, gpu_suite=None)
    warnings = [f for f in real.findings if f.topic == "models"]
    assert [f.level for f in warnings] == [preflight.WARNING] * 4
    assert all("RANDOM WEIGHTS" in f.message and "images will be noise" in f.message for f in warnings)
    text = preflight.format_report(real)
    assert text.count("!" * 100) == 8 and not real.blockers   # a banner per model, above everything else
    assert text.index("RANDOM WEIGHTS") < text.index("Datasets")

    demo = yaml.safe_load(write_config(tmp_path / "demo.yaml").read_text())
    notes = [f for f in preflight.run_preflight(demo, gpu=None, gpu_suite=None).findings if f.topic == "models"]
    assert [f.level for f in notes] == [preflight.NOTE] * 4 and all("random weights" in f.message for f in notes)
    assert "!!!" not in preflight.format_report(preflight.run_preflight(demo, gpu=None, gpu_suite=None))


def test_snakemake_preflight_passes_on_the_demo(tmp_path):
    result = snakemake_preflight(write_config(tmp_path / "c.yaml", longtail=True))
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "made by the workflow (rule demo_data)" in result.stdout and "ready to submit" in result.stdout
    assert "each request gpu=1" in result.stdout   # the GPU rules, read from the workflow's rules


def _mini(tmp_path: Path) -> Path:
    config = yaml.safe_load((REPO / "config" / "mini.yaml").read_text())
    config["results"] = str(tmp_path / "results")
    config["datasets"]["digits"]["root"] = str(tmp_path / "results" / "data" / "digits")
    (tmp_path / "mini.yaml").write_text(yaml.safe_dump(config))
    return tmp_path / "mini.yaml"


def _paper_one_seed(tmp_path: Path) -> Path:
    (tmp_path / "paper.yaml").write_text(yaml.safe_dump(paper(tmp_path, seeds=1)))
    return tmp_path / "paper.yaml"


@pytest.mark.parametrize("make_config", [
    lambda tmp: write_config(tmp / "demo.yaml", longtail=True,
                             methods=["real", "issynth", "chimera", "loft", "datadream"]),
    lambda tmp: write_config(tmp / "parts.yaml", classes_per_job=2),
    _mini,
    _paper_one_seed,
], ids=["demo", "demo-parts-of-2", "mini", "paper"])
def test_job_counts_are_those_of_a_dry_run(tmp_path, make_config):
    """The preflight counts jobs from the config; Snakemake's dry run plans them: they must agree per rule."""
    config = make_config(tmp_path)
    result = snakemake("-n", configfile=config, timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    work = preflight.estimate_work(WorkflowConfig(yaml.safe_load(config.read_text())))
    assert dict(work.jobs) == planned_jobs(result)


def test_storage_blocks_a_run_larger_than_the_free_space(tmp_path, monkeypatch):
    config = yaml.safe_load(write_config(tmp_path / "c.yaml").read_text())
    cfg = WorkflowConfig(config)
    work = preflight.estimate_work(cfg)
    total = sum(work.bytes.values())
    roomy(monkeypatch, free=total - 1)
    assert preflight.check_storage(cfg, work).level == preflight.BLOCKER
    roomy(monkeypatch, free=int(total * 1.1))
    assert preflight.check_storage(cfg, work).level == preflight.WARNING
    roomy(monkeypatch, free=total * 10)
    finding = preflight.check_storage(cfg, work)
    assert finding.level == preflight.OK and f"{sum(work.files.values()):,} files" in finding.message


def test_gpu_memory_against_what_the_gpu_rules_need(tmp_path):
    cfg = WorkflowConfig(paper(tmp_path, seeds=1, images=False))
    work = preflight.estimate_work(cfg)
    rules = ["train", "generate"]
    small = preflight.check_device(cfg, work, rules, {"name": "Tesla T4", "memory_gib": 15.0, "count": 1})[0]
    assert small.level == preflight.WARNING and "NOT ENOUGH" in small.message
    assert f"{work.jobs['train'] + work.jobs['generate']:,} jobs of the GPU rules (train, generate)" in small.message
    big = preflight.check_device(cfg, work, rules, {"name": "NVIDIA H100", "memory_gib": 79.1, "count": 1})[0]
    assert big.level == preflight.OK and ">= 20 GiB" in big.message
    none = preflight.check_device(cfg, work, rules, None)[0]
    assert none.level == preflight.NOTE and "no GPU visible" in none.message


def test_gpu_hours_from_the_gpu_suite(tmp_path):
    cfg = WorkflowConfig(paper(tmp_path, seeds=1, images=False))
    work = preflight.estimate_work(cfg)
    suite = tmp_path / "gpu_suite.json"
    suite.write_text(json.dumps({"gpu": "NVIDIA H100 80GB HBM3", "stages": {
        "train": {"per_s": 4.0, "resolution": 512}, "generate": {"per_s": 2.0, "resolution": 512, "steps": 25},
        "classify": {"per_s": 1000.0}}}))
    finding, hours = preflight.check_rates(cfg, work, suite, None)
    assert finding.level == preflight.OK and "NVIDIA H100 80GB HBM3" in finding.message
    assert hours["train"] == pytest.approx(sum(work.steps.values()) / 4 / 3600)
    # the config generates with 50 steps, the suite measured 25: twice the time per image
    assert hours["generate"] == pytest.approx(sum(work.made.values()) * 2 / 2 / 3600)
    assert hours["classify"] == pytest.approx(sum(work.seen.values()) / 1000 / 3600)
    finding, hours = preflight.check_rates(cfg, work, suite, {"name": "Tesla V100", "memory_gib": 32, "count": 1})
    assert hours is None and "no rate measured for this GPU (Tesla V100)" in finding.message
    finding, hours = preflight.check_rates(cfg, work, tmp_path / "none.json", None)
    assert hours is None and "no rate measured for this GPU" in finding.message
    suite.write_text(json.dumps({"stages": {"train": {}}}))
    assert preflight.check_rates(cfg, work, suite, None)[0].level == preflight.WARNING


def test_bytes_per_pixel_are_what_the_formats_store_today():
    """The table in core.images, re-measured as its comment says (a PIL upgrade that moves it shows here)."""
    import matplotlib.cbook
    from PIL import Image, ImageOps

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
        image = ImageOps.fit(Image.open(handle).convert("RGB"), (512, 512), Image.Resampling.LANCZOS)
    for fmt, options in (("png", {}), ("jpeg", {"quality": 95}), ("webp", {"quality": 95})):
        buffer = io.BytesIO()
        image.save(buffer, format=fmt.upper(), **options)
        assert buffer.tell() / 512**2 == pytest.approx(BYTES_PER_PIXEL[fmt], rel=0.05), fmt


def test_the_preflight_runs_from_the_makefile():
    make = (REPO / "Makefile").read_text()
    assert "preflight: $(STAMP)" in make and "snakemake preflight" in make and "CONFIG" in make
    dry = subprocess.run(["make", "-n", "preflight", "CONFIG=config/paper_fewshot.yaml"], cwd=REPO,
                         capture_output=True, text=True)
    assert "snakemake preflight --cores 1 --configfile config/paper_fewshot.yaml" in dry.stdout

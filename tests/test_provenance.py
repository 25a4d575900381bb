"""What produced a report: models from the staging lock, the tiny-model warning, the effective config's digest,
where the jobs ran, the job time per stage."""
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from ChimeraPipe.core.hashing import settings_digest
from ChimeraPipe.pipeline import stages
from ChimeraPipe.pipeline.config import WorkflowConfig
from ChimeraPipe.pipeline.settings import ClassifierConfig
from ChimeraPipe.report import build_report
from ChimeraPipe.report.provenance import job_hardware, tiny_warning
from ChimeraPipe.report.stage_times import stage_summary, stage_times

from helpers import train
from test_preflight import stage
from test_report import write_eval

REPO = Path(__file__).resolve().parents[1]
SPECS = {"diffusion": "stabilityai/stable-diffusion-2-1-base", "clip": "tiny", "grounding_dino": "digits-base",
         "sam": "facebook/sam-vit-huge"}


def run_settings(models_dir: Path, models: dict | None = None) -> dict:
    return {"models": models or SPECS, "models_dir": str(models_dir), "config_digest": "d" * 32, "seeds": [0, 1],
            "pretrain": {"seed": 0, "unet_steps": 3000}}


def test_models_are_cited_from_the_staging_lock(tmp_path):
    models_dir = tmp_path / "models"
    weights = {"unet/diffusion_pytorch_model.safetensors": b"u" * 64, "vae/diffusion_pytorch_model.safetensors": b"v",
               "model_index.json": b"{}"}
    stage(models_dir, "diffusion", SPECS["diffusion"], weights, revision="5ede9e4bf3e3fd1cb0ef2f7a3fff13ee514fdf06")
    prov = stages.provenance(run_settings(models_dir))
    models = {m["kind"]: m for m in prov["models"]}
    diffusion = models["diffusion"]
    assert (diffusion["id"], diffusion["revision"]) == (SPECS["diffusion"], "5ede9e4bf3e3fd1cb0ef2f7a3fff13ee514fdf06")
    assert diffusion["sha256"] == {  # the weight files only, with the lock's checksums
        "unet/diffusion_pytorch_model.safetensors": hashlib.sha256(b"u" * 64).hexdigest(),
        "vae/diffusion_pytorch_model.safetensors": hashlib.sha256(b"v").hexdigest()}
    assert models["clip"]["weights"].startswith("random")
    assert models["grounding_dino"]["spec"] == "digits-base" and "settings_digest" not in models["grounding_dino"]
    assert models["sam"]["weights"].startswith("hub model, not staged") and "fetch_models" in models["sam"]["weights"]
    assert prov["code"]["version"] and prov["code"]["commit"] and prov["seeds"] == [0, 1]

    base = stages.provenance(run_settings(models_dir, {**SPECS, "diffusion": "digits-base"}))["models"][0]
    assert base["weights"] == "pretrained by the workflow (rule pretrain_base)"
    assert base["settings_digest"] == settings_digest({"seed": 0, "unet_steps": 3000})


def _report(tmp_path, provenance):
    evals = [write_eval(tmp_path, "cars", "real", "real", 0, 0.5), write_eval(tmp_path, "cars", "chimera",
                                                                              "alpha1_n8", 0, 0.6)]
    return build_report(evals, [], [], [], [], tmp_path / "report", provenance=provenance)


def test_the_report_opens_with_provenance_and_warns_about_tiny_models(tmp_path):
    prov = stages.provenance(run_settings(tmp_path / "models"))
    sections = _report(tmp_path, prov)
    assert sections[0].title == "Provenance" and sections[1].title == "Few-shot classification"
    page, markdown = (tmp_path / "report" / "report.html").read_text(), (tmp_path / "report" / "report.md").read_text()
    warning = tiny_warning(prov)
    assert warning and "clip" in warning and "noise" in warning
    assert page.index("class='warning'") < page.index("<nav>") < page.index(">Provenance</h2>")
    assert page.index(">Provenance</h2>") < page.index(">Few-shot classification</h2>")
    assert "d" * 32 in page and prov["code"]["commit"] in page and "stabilityai/stable-diffusion-2-1-base" in page
    assert markdown.startswith("# ChimeraPipe report\n\n> **Warning: random-weight models")
    assert markdown.index("## Provenance") < markdown.index("## Few-shot classification")
    assert json.loads((tmp_path / "report" / "provenance.json").read_text()) == json.loads(json.dumps(prov))


def test_no_warning_without_tiny_models(tmp_path):
    prov = stages.provenance(run_settings(tmp_path / "models", {**SPECS, "clip": "ViT-B-16:openai"}))
    assert tiny_warning(prov) is None
    _report(tmp_path, prov)
    page = (tmp_path / "report" / "report.html").read_text()
    assert "class='warning'" not in page and ">Provenance</h2>" in page
    assert "Warning" not in (tmp_path / "report" / "report.md").read_text()


def test_config_digest_ignores_key_order_number_spelling_defaults_and_locations():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    same = yaml.safe_load(yaml.safe_dump(config))        # keys sorted
    same["classify"] = {**dict(reversed(list(same["classify"].items()))), "rank": 16, "lora_alpha": 32}
    same["generate"] = {**same["generate"], "guidance_scale": 2, "precision": "auto"}
    same["alpha"], same["num_images"] = [1, 0.5], [8, 4]
    same["train"] = {**same["train"], "grad_clip": 1}
    same["datasets"]["shapes_longtail"]["longtail"] = {"head_max": 8, "tail": 0.5}
    same["results"] = "elsewhere"                         # where results go is not what produced them
    digest = WorkflowConfig(config).digest()
    assert WorkflowConfig(same).digest() == digest and len(digest) == 32
    for key, value in (("classify", {**config["classify"], "lr": 0.002}), ("seeds", [0, 1]), ("alpha", [1.0]),
                       ("models", {**config["models"], "clip": "ViT-B-16:openai"})):
        assert WorkflowConfig({**config, key: value}).digest() != digest, key


def test_where_the_jobs_ran_and_how_long_each_stage_took(tmp_path):
    from PIL import Image

    table = pd.DataFrame({"path": ["a.png", "b.png"], "label": [0, 1], "real": [False, False]})
    for name in ("a", "b"):
        Image.new("RGB", (16, 16), (200 if name == "a" else 0, 0, 0)).save(tmp_path / f"{name}.png")
    table["path"] = [str(tmp_path / p) for p in table["path"]]
    cfg = ClassifierConfig(backend="cnn", image_size=16, epochs=1, warmup_epochs=0, batch_size=2, augment="none")
    meta = train(cfg, table, ["a", "b"], tmp_path / "clf" / "classifier.safetensors")
    assert meta["hardware"]["device"] == "cpu" and meta["hardware"]["gpu"] is None
    index = tmp_path / "p000.json"
    index.write_text(json.dumps({"classes": {}, "hardware": {"device": "cuda", "gpu": "NVIDIA H100"}}))
    old = tmp_path / "p001.json"
    old.write_text(json.dumps({"classes": {}}))
    rows = job_hardware({"classify": [str(tmp_path / "clf" / "classifier.json")], "generate": [str(index)] * 2
                         + [str(old)]})
    assert rows == [{"stage": "classify", "device": "cpu", "gpu": "none", "jobs": 1},
                    {"stage": "generate", "device": "cuda", "gpu": "NVIDIA H100", "jobs": 2},
                    {"stage": "generate", "device": "not recorded", "gpu": "none", "jobs": 1}]

    results = tmp_path / "results"
    for rel, seconds in (("train/cars/shots4_seed0/chimera/p000.tsv", [5.0, 30.5]),   # a re-run: its last line
                         ("train/cars/shots4_seed1/chimera/p000.tsv", [29.5]),
                         ("dataset_table/cars.tsv", [2.0])):
        path = results / "benchmarks" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("s\th:m:s\tmax_rss\n" + "".join(f"{s}\t0:00:{int(s):02d}\t100\n" for s in seconds))
    times = stage_times(results)
    jobs = {(row.rule, None if pd.isna(row.seed) else int(row.seed)): row.s for row in times.itertuples()}
    assert jobs == {("train", 0): 30.5, ("train", 1): 29.5, ("dataset_table", None): 2.0}
    summary = stage_summary(times).set_index("rule")
    assert summary.loc["train", "jobs"] == 2 and summary.loc["train", "job_hours"] == 60 / 3600
    bench = subprocess.run([sys.executable, str(REPO / "bench" / "stage_times.py"), str(results)], capture_output=True,
                           text=True, cwd=REPO)
    assert bench.returncode == 0 and "train" in bench.stdout and "all jobs: 62 job-s" in bench.stdout

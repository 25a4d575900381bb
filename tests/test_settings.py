"""Stage settings: keys and defaults stated once, canonical params, precision choice, the LR schedule."""
import dataclasses
import math
from pathlib import Path

import pytest
import torch
import yaml

from ChimeraPipe.core.runtime import resolve_precision, warmup_cosine
from ChimeraPipe.models.specs import MODEL_KINDS
from ChimeraPipe.pipeline.config import SECTIONS, ConfigError, WorkflowConfig
from ChimeraPipe.pipeline.settings import (
    ClassifierConfig,
    CropSettings,
    DatasetSettings,
    DetectSettings,
    GenerationSettings,
    LongtailSettings,
    LoraTrainConfig,
    MetricsSettings,
    ModelSettings,
    PretrainSettings,
    RunSettings,
    canonical,
    settings_dataclass,
)

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())


def fields(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def schema_defaults(node, where="") -> list[str]:
    """Every `default:` anywhere in the schema (there must be none: the dataclasses hold the defaults)."""
    found = [where] if isinstance(node, dict) and "default" in node else []
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, child in children:
        found += schema_defaults(child, f"{where}/{key}")
    return found


def test_the_schema_describes_every_key_and_states_no_default():
    """Each key the config takes is one settings dataclass field (or a section), and no default is written
    in the schema: the one place for a default is the dataclass."""
    props = SCHEMA["properties"]
    assert set(props) == fields(RunSettings) | set(SECTIONS)
    assert set(props["models"]["properties"]) == fields(ModelSettings) == set(MODEL_KINDS)
    assert set(props["datasets"]["additionalProperties"]["properties"]) == fields(DatasetSettings)
    assert set(props["pretrain"]["properties"]) == fields(PretrainSettings)
    assert schema_defaults(SCHEMA) == []


def test_no_settings_default_is_restated_outside_the_settings():
    """No `.get(<settings key>, <literal>)` outside pipeline/: a module below it reads complete settings."""
    import ast

    keys = set().union(*(fields(cls) for cls in (RunSettings, DatasetSettings, ModelSettings, LoraTrainConfig,
                                                 ClassifierConfig, GenerationSettings, DetectSettings, CropSettings,
                                                 MetricsSettings, LongtailSettings, PretrainSettings)))
    offenders = []
    for path in [*(REPO / "ChimeraPipe").rglob("*.py"), *(REPO / "workflow" / "scripts").glob("*.py")]:
        if "pipeline" in path.relative_to(REPO).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                    and len(node.args) == 2 and isinstance(node.args[0], ast.Constant)
                    and node.args[0].value in keys and not (isinstance(node.args[1], ast.Constant)
                                                            and node.args[1].value is None)):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno} .get({node.args[0].value!r}, ...)")
    assert offenders == []


def test_closed_schema_sections_list_exactly_the_settings():
    props = SCHEMA["properties"]
    assert set(SCHEMA["$defs"]["train"]["properties"]) == fields(LoraTrainConfig)
    assert set(props["classify"]["properties"]) == fields(ClassifierConfig) - {"seed"}  # seed: the run's
    assert set(props["generate"]["properties"]) == fields(GenerationSettings) - {"resolution"}  # crops'
    assert set(props["detect"]["properties"]) == fields(DetectSettings)
    assert set(props["crops"]["properties"]) == fields(CropSettings)
    assert set(props["metrics"]["properties"]) == fields(MetricsSettings)
    longtail = props["datasets"]["additionalProperties"]["properties"]["longtail"]
    assert set(longtail["properties"]) == fields(LongtailSettings)
    for section in (SCHEMA["$defs"]["train"], props["classify"], props["generate"], props["detect"], props["crops"],
                    props["metrics"], longtail):
        assert section["additionalProperties"] is False
        # Defaults live in the dataclasses only (schema defaults in train would override every preset).
        assert not any("default" in p for p in section["properties"].values())


@pytest.mark.parametrize("a, b", [
    ({"lr": 0.001, "epochs": 3}, {"epochs": 3, "lr": 1e-3}),        # key order
    ({"lora_alpha": 32}, {"lora_alpha": 32.0}),                       # 1 vs 1.0
    ({}, {"rank": 16, "with_real": False, "augment": "anchor"}),      # absent = default
])
def test_canonical_settings_ignore_order_number_form_and_spelt_out_defaults(a, b):
    assert canonical(ClassifierConfig, a, "classify") == canonical(ClassifierConfig, b, "classify")
    assert list(canonical(ClassifierConfig, a, "classify")) == [f.name for f in dataclasses.fields(ClassifierConfig)]


def test_canonical_crop_settings_type_the_scale_range():
    assert canonical(CropSettings, {"scale_range": [0.8, 1]}, "crops")["scale_range"] == [0.8, 1.0]
    assert canonical(CropSettings, {"scale_range": [0.8, 1]}, "crops") == canonical(CropSettings, {}, "crops")


def test_canonical_train_settings_type_lists_and_floats():
    full = canonical(LoraTrainConfig, {"targets": ("to_q",), "lora_alpha": 4, "lr_a": 1}, "train")
    assert full["targets"] == ["to_q"] and full["lora_alpha"] == 4.0 and isinstance(full["lr_a"], float)
    assert settings_dataclass(LoraTrainConfig, {"targets": ["to_q"]}, "train").targets == ("to_q",)


def test_misspelt_train_setting_of_a_method_fails_at_planning(tmp_path):
    config = {"datasets": {"d": {"root": str(tmp_path), "classes": ["a"]}}, "methods": ["chimera"],
              "method_overrides": {"chimera": {"train": {"stepz": 3}}}}
    with pytest.raises(ConfigError, match=r"train \(method chimera\).*stepz"):
        WorkflowConfig(config)
    config["method_overrides"] = {}
    config["classify"] = {"epochz": 1}
    with pytest.raises(ConfigError, match="classify.*epochz"):
        WorkflowConfig(config)


def test_precision_choice_per_device():
    assert resolve_precision("cpu", "fp16") == resolve_precision("cpu", "auto")  # CPU: always fp32
    assert resolve_precision("cpu", "bf16").autocast is None
    assert resolve_precision("cuda", "auto", bf16_supported=True) == resolve_precision("cuda", "bf16")
    bf16 = resolve_precision("cuda", "bf16")
    assert bf16.autocast is torch.bfloat16 and not bf16.scale_loss
    # V100 / T4: no bf16, so auto is fp16, and fp16 always gets loss scaling.
    old = resolve_precision("cuda:1", "auto", bf16_supported=False)
    assert old.autocast is torch.float16 and old.scale_loss and old.name == "fp16"
    assert resolve_precision("cuda", "fp16").scale_loss
    assert resolve_precision("cuda", "fp32") == resolve_precision("cpu")
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("cuda", "half")


def test_warmup_cosine_schedule_by_hand():
    assert [warmup_cosine(s, 10, 4) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert warmup_cosine(4, 10, 4) == 1.0
    assert math.isclose(warmup_cosine(7, 10, 4), 0.5)                  # half-way through the decay
    assert math.isclose(warmup_cosine(10, 10, 4, floor=0.1), 0.1)      # ends at the floor
    assert math.isclose(warmup_cosine(7, 10, 4, floor=0.2), 0.6)
    assert warmup_cosine(50, 10, 0) == 0.0                             # past the end stays at the floor


def test_models_folder_follows_results(tmp_path):
    config = {"datasets": {"d": {"root": str(tmp_path), "demo": True}}, "results": str(tmp_path / "elsewhere")}
    assert WorkflowConfig(config).models_dir == f"{tmp_path}/elsewhere/models"


@pytest.mark.parametrize("classify, message", [
    ({"backend": "cnn"}, "'anchor' is not a recipe of the cnn backend"),      # the CLIP backend's default
    ({"backend": "cnn", "augment": "simple"}, "'simple' is not a recipe of the cnn backend"),
    ({"augment": "affine"}, "'affine' is not a recipe of the clip backend"),
    ({"backend": "svm"}, "unknown backend 'svm'"),
    ({"real_weight": 2.0}, "real_weight"),
])
def test_backend_specific_classifier_settings_fail_at_planning(tmp_path, classify, message):
    config = {"datasets": {"d": {"root": str(tmp_path), "demo": True}}, "classify": classify}
    with pytest.raises(ConfigError, match=message):
        WorkflowConfig(config)
    WorkflowConfig({**config, "classify": {"backend": "cnn", "augment": "affine", "select": "val"}})  # fine


def test_mixing_single_is_one_head_per_image():
    from ChimeraPipe.diffusion.generate import mixing_weights

    single = mixing_weights("single", 4, 6, None, seed=0)
    assert (single.max(1) == 1).all() and list(single.argmax(1)) == [0, 1, 2, 3, 0, 1]  # the heads in turn
    assert not (single == mixing_weights("uniform", 4, 6, None, seed=0)).all()
    assert (mixing_weights("single", 1, 3, None, seed=0) == 1).all()                    # a class-wise LoRA

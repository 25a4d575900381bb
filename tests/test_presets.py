"""Method presets carry the reference implementations' settings; overrides merge as documented."""
import pytest

from ChimeraPipe.presets import PRESETS, generation_tag, method_settings


def test_presets_match_the_anchors():
    chimera = method_settings("chimera")["train"]
    assert (chimera["share"], chimera["rank"], chimera["lr_a"], chimera["lr_b"]) == ("A", 16, 1e-4, 1e-3)
    loft = method_settings("loft")
    assert (loft["train"]["share"], loft["train"]["rank"], loft["train"]["lr_a"]) == ("none", 2, 1e-3)
    assert loft["mixing"] == "pairs" and loft["boxes"] == "full"
    dream = method_settings("datadream")
    assert (dream["train"]["share"], dream["train"]["rank"], dream["train"]["lr_a"]) == ("both", 16, 1e-4)
    assert dream["train"]["text_encoder_lora"] and dream["train"]["warmup_steps"] == 100
    assert method_settings("shared_b")["train"]["share"] == "B"
    assert method_settings("chimera_nobox")["boxes"] == "full"


def test_overrides_merge_and_do_not_leak():
    custom = method_settings("chimera", {"train": {"rank": 4}, "mixing": "uniform"}, {"steps": 7})
    assert custom["train"]["rank"] == 4 and custom["train"]["steps"] == 7 and custom["mixing"] == "uniform"
    assert method_settings("chimera")["train"]["rank"] == 16 and PRESETS["chimera"]["train"]["steps"] == 600
    assert "train" not in method_settings("real", train_overrides={"steps": 3})
    with pytest.raises(KeyError, match="unknown method"):
        method_settings("nope")
    assert method_settings("mine", {"kind": "lora", "train": {"share": "A"}})["train"] == {"share": "A"}


def test_generation_tag_depends_on_alpha_only_for_dirichlet():
    assert generation_tag(method_settings("chimera"), 0.5, 500) == "alpha0.5_n500"
    assert generation_tag(method_settings("loft"), 0.5, 500) == "n500"
    assert generation_tag(method_settings("real"), 0.5, 500) == "real"


def test_unknown_settings_name_their_section():
    from ChimeraPipe.settings import LoraTrainConfig, settings_dataclass

    assert settings_dataclass(LoraTrainConfig, {"rank": 4}, "train").rank == 4
    with pytest.raises(ValueError, match=r"train: unknown setting\(s\) \['rnak'\]"):
        settings_dataclass(LoraTrainConfig, {"rnak": 4}, "train")

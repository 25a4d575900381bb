"""Method presets carry the reference implementations' settings; overrides merge as documented."""
import pytest

from ChimeraPipe.pipeline.presets import FAMILY, PRESETS, method_settings


def test_presets_match_the_references():
    chimera = method_settings("chimera")
    assert (chimera["train"]["share"], chimera["train"]["lr_a"], chimera["train"]["lr_b"]) == ("A", 1e-4, 1e-3)
    assert chimera["crop"] == "box" and chimera["mixing"] == "dirichlet"
    loft = method_settings("loft")
    assert (loft["train"]["share"], loft["train"]["lr_a"], loft["crop"], loft["mixing"]) == ("none", 1e-3, "center",
                                                                                             "pairs")
    dream = method_settings("datadream")
    assert (dream["train"]["share"], dream["train"]["rank"], dream["train"]["lr_a"]) == ("both", 16, 1e-4)
    assert dream["train"]["text_encoder_lora"] and dream["train"]["warmup_steps"] == 100 and dream["crop"] == "random"
    assert method_settings("shared_b")["train"]["share"] == "B"
    assert method_settings("chimera_nobox")["crop"] == "center"
    issynth, text2img = method_settings("issynth"), method_settings("text2img")
    assert (issynth["guidance"], issynth["clip_filter"]) == ("real", True) and 0 < issynth["strength"] < 1
    assert text2img["guidance"] == "text" and not text2img.get("clip_filter")


def test_datadream_feeds_four_images_per_step_at_four_shots():
    """DataDream: batch 8, partial batch kept, so at 4 shots each step sees the 4 images once."""
    train = method_settings("datadream")["train"]
    assert 4 * train["batch_per_image"] == 4 and train["steps"] == 200


def differing(a: dict, b: dict) -> set[str]:
    """Settings that differ between two presets, train settings flattened."""
    flat = [{**{k: v for k, v in s.items() if k != "train"}, **s["train"]} for s in (a, b)]
    return {k for k in flat[0].keys() | flat[1].keys() if flat[0].get(k) != flat[1].get(k)}


TYING = {"share", "lr_a", "lr_b", "mixing"}   # the multi-head component: tying, the tied matrix's lr, mixing
CROPS = {"crop"}                              # the semantic-boosting component


@pytest.mark.parametrize("rank", [2, 16])
def test_ablation_family_differs_only_in_tying_and_crops(rank):
    family = {name: method_settings(name, lora_rank=rank) for name in FAMILY}
    assert {s["train"]["rank"] for s in family.values()} == {rank}
    assert differing(family["loft"], family["loft_box"]) == CROPS
    assert differing(family["chimera_nobox"], family["chimera"]) == CROPS
    assert differing(family["loft"], family["chimera_nobox"]) and differing(family["loft"],
                                                                             family["chimera_nobox"]) <= TYING
    assert differing(family["loft_box"], family["chimera"]) == differing(family["loft"], family["chimera_nobox"])
    assert differing(family["loft"], family["chimera"]) == differing(family["loft"], family["chimera_nobox"]) | CROPS
    assert differing(family["chimera"], family["shared_b"]) <= TYING
    assert method_settings("datadream", lora_rank=rank)["train"]["rank"] == 16  # not in the family


def test_overrides_merge_and_do_not_leak():
    custom = method_settings("chimera", {"train": {"rank": 4}, "mixing": "uniform"}, {"steps": 7})
    assert custom["train"]["rank"] == 4 and custom["train"]["steps"] == 7 and custom["mixing"] == "uniform"
    assert method_settings("chimera")["train"]["rank"] == 16 and PRESETS["chimera"]["train"]["steps"] == 600
    assert "train" not in method_settings("real", global_train={"steps": 3})
    with pytest.raises(KeyError, match="unknown method"):
        method_settings("nope")
    assert method_settings("mine", {"kind": "lora", "train": {"share": "A"}})["train"] == {"share": "A"}


def test_unknown_settings_name_their_section():
    from ChimeraPipe.pipeline.settings import LoraTrainConfig, settings_dataclass

    assert settings_dataclass(LoraTrainConfig, {"rank": 4}, "train").rank == 4
    with pytest.raises(ValueError, match=r"train: unknown setting\(s\) \['rnak'\]"):
        settings_dataclass(LoraTrainConfig, {"rnak": 4}, "train")


def test_method_overrides_beat_the_global_train_section_which_beats_the_preset():
    # the preset's 600 steps < the global `train:` < the method's own method_overrides entry
    assert method_settings("chimera")["train"]["steps"] == 600
    assert method_settings("chimera", None, {"steps": 40})["train"]["steps"] == 40
    assert method_settings("chimera", {"train": {"steps": 1000}}, {"steps": 40})["train"]["steps"] == 1000
    both = method_settings("datadream", {"train": {"warmup_steps": 100}}, {"steps": 80, "warmup_steps": 10})
    assert (both["train"]["steps"], both["train"]["warmup_steps"]) == (80, 100)  # key by key
    assert method_settings("loft", {"train": {"rank": 2}}, lora_rank=8)["train"]["rank"] == 2  # over lora_rank too


def test_no_family_member_trains_on_mirrored_views_by_default():
    """With the default crop settings no LoRA preset's views are mirrored (the paper's jitter is scaling and
    translation; DataDream and LoFT never flip), so the ablation family differs only in tying and placement."""
    import dataclasses

    from ChimeraPipe.boxes.crops import sample_crop
    from ChimeraPipe.pipeline.settings import CropSettings

    crops = dataclasses.asdict(CropSettings())
    for name in FAMILY + ("datadream",):
        mode = method_settings(name)["crop"]
        flips = [sample_crop((120, 90), (20, 10, 70, 60), 64, seed=s, mode=mode, flip_prob=crops["flip_prob"],
                             scale_range=tuple(crops["scale_range"]), translate=crops["translate"]).flip
                 for s in range(200)]
        assert not any(flips), name
    assert sum(sample_crop((120, 90), (20, 10, 70, 60), 64, seed=s, flip_prob=0.5).flip for s in range(200)) > 50

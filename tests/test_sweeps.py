"""Sweeps (alpha and volume lists), their path tags, and the long-tail split."""
import pandas as pd
import pytest

from ChimeraPipe.core.names import alpha_tag, split_eval_tag
from ChimeraPipe.datasets import draw_longtail
from ChimeraPipe.pipeline import stages
from ChimeraPipe.pipeline.config import ConfigError, WorkflowConfig


def config(tmp_path, **changes):
    base = {"datasets": {"d": {"root": str(tmp_path), "demo": True}}, "methods": ["real", "loft", "chimera"]}
    return WorkflowConfig({**base, **changes})


def test_tags_name_each_alpha_and_volume_and_read_back(tmp_path):
    cfg = config(tmp_path, alpha=[1, 0.5, 1.0], num_images=[100, 500, 100])
    assert cfg.alphas("d") == [0.5, 1.0] and cfg.volumes("d") == [100, 500] and cfg.num_images("d") == 500
    assert cfg.synth_tags("chimera", "d") == ["alpha0.5", "alpha1"]
    assert cfg.synth_tags("loft", "d") == ["fixed"] and cfg.synth_tags("real", "d") == []
    assert cfg.eval_tags("chimera", "d") == ["alpha0.5_n100", "alpha0.5_n500", "alpha1_n100", "alpha1_n500"]
    assert cfg.eval_tags("loft", "d") == ["fixed_n100", "fixed_n500"] and cfg.eval_tags("real", "d") == ["real"]
    assert cfg.alpha_of("chimera", "alpha0.5") == 0.5 and cfg.alpha_of("loft", "fixed") is None
    assert split_eval_tag("alpha0.5_n100") == ("alpha0.5", 100) and split_eval_tag("real") == ("real", None)
    assert split_eval_tag("fixed") == ("fixed", None)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 1e-3, 0.1234567891, 10.0, 100.0])
def test_alpha_tags_name_the_value_exactly(alpha):
    tag = alpha_tag(alpha)
    assert float(tag.removeprefix("alpha")) == alpha


def test_a_dataset_can_set_its_own_methods_and_sweeps(tmp_path):
    cfg = config(tmp_path, alpha=[0.5, 1.0], num_images=[4, 8])
    cfg.raw["datasets"]["d"].update(methods=["real", "chimera"], alpha=2, num_images=16)
    cfg = WorkflowConfig(cfg.raw)
    assert cfg.methods_for("d") == ["real", "chimera"] and cfg.eval_tags("chimera", "d") == ["alpha2_n16"]


def test_bad_sweeps_and_long_tail_settings_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="alpha"):
        config(tmp_path, alpha=[0.5, 0])
    with pytest.raises(ConfigError, match="num_images"):
        config(tmp_path, num_images=[0, 4])
    with pytest.raises(ConfigError, match="longtail"):
        config(tmp_path, datasets={"d": {"root": str(tmp_path), "demo": True, "longtail": {"tial": 0.5}}})
    with pytest.raises(ConfigError, match="pentagon"):
        config(tmp_path, datasets={"d": {"root": str(tmp_path), "demo": True,
                                         "longtail": {"tail": ["pentagon"]}}}).tail_classes("d")


def test_long_tail_classes_by_fraction_or_list(tmp_path):
    lt = {"root": str(tmp_path), "demo": True}
    cfg = config(tmp_path, datasets={"d": {**lt, "longtail": {"tail": 0.5}}})
    assert cfg.class_groups("d") == {"head": ["circle"], "tail": ["square", "triangle"]}  # head: floor(3 * .5)
    assert cfg.synth_classes("d") == ["square", "triangle"] and list(cfg.parts("d")) == ["p000", "p001"]
    assert cfg.classify_settings("d")["with_real"] is True and cfg.classify_settings()["with_real"] is False
    cfg = config(tmp_path, datasets={"d": {**lt, "longtail": {"tail": ["circle"], "head_max": 3}}})
    assert cfg.class_groups("d") == {"head": ["square", "triangle"], "tail": ["circle"]}
    assert cfg.longtail("d") == {"tail": ["circle"], "head_max": 3}


def test_long_tail_training_set_caps_the_head_and_keeps_the_tail_shots():
    table = pd.DataFrame({"class": ["h"] * 10 + ["t"] * 10, "class_name": ["h"] * 10 + ["t"] * 10,
                          "label": [0] * 10 + [1] * 10, "path": [f"{i}.png" for i in range(20)],
                          "split": ["train"] * 20})
    shots = table[table["class"] == "t"].head(4).assign(shot=range(4))
    drawn = draw_longtail(table, shots, ["h"], ["t"], head_max=6, seed=0)
    assert drawn.groupby("class").size().to_dict() == {"h": 6, "t": 4}
    assert list(drawn.loc[drawn["class"] == "t", "path"]) == list(shots["path"])
    assert drawn.equals(draw_longtail(table, shots, ["h"], ["t"], head_max=6, seed=0))  # seeded
    assert len(draw_longtail(table, shots, ["h"], ["t"], head_max=50, seed=0)) == 14  # all 10 when fewer


def test_classifier_trains_on_a_prefix_of_the_synthetic_set(tmp_path):
    manifest = tmp_path / "m.csv"
    pd.DataFrame({"file": [f"img{j}.png" for j in range(6)], "class": ["a"] * 6}).to_csv(manifest, index=False)
    split = tmp_path / "split.csv"
    pd.DataFrame({"class": ["a"], "path": ["shot.png"]}).to_csv(split, index=False)
    table = stages.classifier_table(str(split), [str(manifest)], ["a"], with_real=False, per_class=4)
    assert list(table["path"]) == [f"img{j}.png" for j in range(4)]
    with pytest.raises(ValueError, match="fewer than the 8"):
        stages.classifier_table(str(split), [str(manifest)], ["a"], with_real=False, per_class=8)

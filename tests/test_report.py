"""Report tables against hand-computed cells, and the HTML page's structure."""
import json

import numpy as np
import pandas as pd
import pytest

from ChimeraPipe.report import build_report
from ChimeraPipe.report.results import cell
from ChimeraPipe.report.tables import ablation_table, fewshot_table, sweep_table


def write_eval(folder, dataset, method, tag, seed, accuracy, groups=None, with_real=False):
    path = folder / f"{dataset}_{method}_{tag}_{seed}.json"
    path.write_text(json.dumps({"accuracy": accuracy, "mean_per_class_accuracy": accuracy, "n_test": 10,
                                "per_class": {}, "group_accuracy": groups or {},
                                "tags": {"dataset": dataset, "method": method, "synthetic": tag, "seed": seed,
                                         "shots": 4, "with_real": with_real, "eval_split": "test"}}))
    return str(path)


@pytest.fixture
def evaluations(tmp_path):
    paths = []
    for seed, (a, b) in enumerate([(0.50, 0.70), (0.60, 0.90)]):
        paths.append(write_eval(tmp_path, "cars", "real", "real", seed, a))
        paths.append(write_eval(tmp_path, "pets", "real", "real", seed, b))
        for alpha, shift in (("alpha0.5", 0.0), ("alpha1", 0.1)):
            for volume, drop in ((4, 0.2), (8, 0.0)):
                for dataset, base in (("cars", a), ("pets", b)):
                    paths.append(write_eval(tmp_path, dataset, "chimera", f"{alpha}_n{volume}", seed,
                                            base + shift - drop))
        paths.append(write_eval(tmp_path, "cars", "loft", "fixed_n8", seed, a))
    return paths


def test_cells_are_mean_std_and_seed_count():
    assert cell(55.0, 7.0710678, 2) == "55.0 ± 7.1 (2)"
    assert cell(55.0, float("nan"), 1) == "55.0 (1)"
    assert cell(float("nan"), float("nan"), 0) == "–"


def test_fewshot_table_by_hand(evaluations):
    from ChimeraPipe.report.results import collect_evaluations

    long, wide = fewshot_table(collect_evaluations(evaluations))
    wide = wide.set_index("method")
    # real: cars 50, 60 -> 55 ± 7.07; pets 70, 90 -> 80 ± 14.1; AVG per seed (60, 75) -> 67.5 ± 10.6
    assert wide.loc["real", "cars"] == "55.0 ± 7.1 (2)" and wide.loc["real", "pets"] == "80.0 ± 14.1 (2)"
    assert wide.loc["real", "AVG"] == "67.5 ± 10.6 (2)"
    # chimera at its largest volume (n8), a row per alpha; alpha1 = real + 10
    assert wide.loc["chimera (α=1)", "cars"] == "65.0 ± 7.1 (2)"
    # loft ran on cars only: no AVG over datasets it lacks
    assert wide.loc["loft", "pets"] == "not run" and wide.loc["loft", "AVG"] == "–"
    numbers = long.set_index(["row", "dataset"])
    assert numbers.loc[("real", "AVG"), "mean"] == pytest.approx(67.5) and numbers.loc[("real", "AVG"), "n_seeds"] == 2


def test_sweeps_and_ablation_tables(evaluations):
    from ChimeraPipe.report.results import collect_evaluations

    results = collect_evaluations(evaluations)
    long, wide = sweep_table(results, "volume")
    chimera = long[(long["series"] == "chimera (α=0.5)") & (long["dataset"] == "cars")].set_index("volume")
    assert chimera.loc[4, "mean"] == pytest.approx(35.0) and chimera.loc[8, "mean"] == pytest.approx(55.0)
    long, _ = sweep_table(results, "alpha")
    assert sorted(long["alpha"].unique()) == [0.5, 1.0]
    _, ablation = ablation_table(results)
    assert list(ablation["method"])[:3] == ["LoFT (image-wise LoRA)", "+ multi-head", "+ semantic boosting"]
    assert (ablation.set_index("method").loc["+ multi-head"] == "not run").all()


def test_report_page_holds_tables_and_figures(evaluations, tmp_path):
    paths = evaluations + [write_eval(tmp_path, "lt", "real", "real", 0, 0.5, {"head": 0.9, "tail": 0.1}),
                           write_eval(tmp_path, "lt", "chimera", "alpha1_n8", 0, 0.6, {"head": 0.8, "tail": 0.4},
                                      with_real=True)]
    sections = build_report(paths, [], [], [], [], tmp_path / "report")
    titles = [s.title for s in sections]
    assert titles == ["Few-shot classification", "Component ablation", "Paired differences against ChimeraLoRA",
                      "Long-tail", "Alpha sweep", "Synthetic volume"]
    page = (tmp_path / "report" / "report.html").read_text()
    assert page.count("<table") == 7 and page.count("data:image/png;base64,") == 2
    longtail = pd.read_csv(tmp_path / "report" / "tables" / "longtail.csv")
    tail = longtail[(longtail["classes"] == "tail") & (longtail["row"] == "chimera (α=1) + real shots")]
    assert tail["mean"].item() == pytest.approx(40.0)
    fewshot = pd.read_csv(tmp_path / "report" / "accuracy.csv")
    assert "lt" not in set(fewshot["dataset"])  # the long-tail dataset has its own table


def test_paired_differences_against_chimeralora_by_hand(tmp_path):
    from scipy import stats

    from ChimeraPipe.report.results import collect_evaluations
    from ChimeraPipe.report.tables import paired_table

    chimera = [0.60, 0.62, 0.58, 0.61, 0.64]
    loft = [0.55, 0.60, 0.57, 0.55, 0.58]      # differences -5, -2, -1, -6, -6 points
    paths = [write_eval(tmp_path, "digits", "chimera", "alpha1_n50", s, a) for s, a in enumerate(chimera)]
    paths += [write_eval(tmp_path, "digits", "chimera", "alpha0.1_n50", s, a - 0.01) for s, a in enumerate(chimera)]
    paths += [write_eval(tmp_path, "digits", "loft", "fixed_n50", s, a) for s, a in enumerate(loft)]
    long, wide = paired_table(collect_evaluations(paths))
    row = long[long["row"] == "loft"].iloc[0]
    diffs = [-5, -2, -1, -6, -6]
    half = stats.t.ppf(0.975, 4) * np.std(diffs, ddof=1) / np.sqrt(5)
    assert row["reference"] == "chimera (α=1)" and row["n_seeds"] == 5
    assert row["mean_difference"] == pytest.approx(-4.0)
    assert (row["ci95_low"], row["ci95_high"]) == (pytest.approx(-4.0 - half), pytest.approx(-4.0 + half))
    assert wide.set_index("method").loc["chimera (α=0.1)", "digits"].startswith("-1.0 [-1.0, -1.0] (5)")


def test_report_shows_the_trained_base_and_judge(evaluations, tmp_path):
    from PIL import Image

    base = tmp_path / "models" / "digits-base"
    base.mkdir(parents=True)
    check = {"samples_right_class": 0.72, "per_digit": [0.9, 0.5] + [0.72] * 8, "judge_heldout_accuracy": 0.999,
             "per_digit_samples": 20, "guidance_scale": 5.0}
    (base / "base.json").write_text(json.dumps({"check": check, "timings_s": {"vae_s": 100.4, "unet_s": 600.2}}))
    Image.new("RGB", (48, 30)).save(base / "samples.png")
    judge = tmp_path / "digits" / "judge" / "judge.json"
    judge.parent.mkdir(parents=True)
    judge.write_text(json.dumps({"test_accuracy": 0.987}))
    sections = build_report(evaluations, [], [], [], [], tmp_path / "report", base_dirs=[str(base)],
                            judge_jsons=[str(judge)])
    trained = next(s for s in sections if s.title == "Models the workflow trained")
    base_table = trained.items[0].table.iloc[0]
    assert (base_table["samples labelled as prompted"], base_table["chance"]) == (0.72, 0.1)
    assert base_table["per prompt"].startswith("0.90 0.50 0.72") and base_table["training s"] == 701
    assert trained.items[1].figure == base / "samples.png"
    assert trained.items[2].table.to_dict("records") == [{"dataset": "digits", "test accuracy": 0.987}]
    page = (tmp_path / "report" / "report.html").read_text()
    assert ">Models the workflow trained</h2>" in page and "data:image/png;base64" in page


def test_regime_and_alpha_dial_tables_by_hand():
    from ChimeraPipe.report.tables import alpha_regime_table, regime_table

    rows = []
    for seed, shift in ((0, 0.00), (1, 0.02)):
        for gen, alpha, near in (("alpha0.1", 0.1, 0.10), ("alpha10", 10.0, 0.20), ("onehead", None, 0.05)):
            rows.append({"dataset": "digits", "method": "chimera", "generation": gen, "alpha": alpha, "seed": seed,
                         "copy_rate": 0.5, "nearest_shot": near + shift, "own_shot": 0.9 if gen == "onehead" else
                         float("nan"), "pixel_nearest_shot": near + shift + 0.01 * seed})
    gap = pd.DataFrame(rows)
    spread = pd.DataFrame([{"dataset": "digits", "method": "chimera", "seed": s, "moved": 0.1, "spread": 0.02}
                           for s in (0, 1)])
    long, wide = regime_table(gap, spread)
    one_head = wide[wide["method"] == "chimera (one head)"].iloc[0]
    assert one_head["own shot (one head)"] == "0.900 ± 0.000 (2)"
    assert one_head["heads' spread / |W0|"].startswith("0.020")
    assert wide[wide["method"] == "chimera (α=0.1)"].iloc[0]["nearest shot"] == "0.110 ± 0.014 (2)"
    long, wide = alpha_regime_table(gap)
    # pixels measured: the dial reads them; alpha 10 - alpha 0.1 = 0.10 on both seeds (paired): no spread
    assert wide.iloc[0]["metric"] == "pixels: nearest shot (RMS)"
    diff = long[long["alpha"] == "difference"].iloc[0]
    assert diff["mean"] == pytest.approx(0.10) and diff["ci95_low"] == pytest.approx(0.10)

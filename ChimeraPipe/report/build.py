"""Build every table and figure for whatever the config ran, and the Markdown and HTML pages."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..core.io import write_csv, write_text
from . import figures, tables
from .html import Item, Section, render_html, render_markdown
from .provenance import provenance_section, tiny_warning, write_provenance
from .results import collect_evaluations, collect_gap, collect_spread

TITLE = "ChimeraPipe report"


def _write_table(out_dir: Path, name: str, result) -> pd.DataFrame | None:
    """`<name>.csv` (numbers) and `<name>.md` (the displayed table); returns the displayed table."""
    if result is None:
        return None
    long, wide = result
    write_csv(out_dir / f"{name}.csv", long)
    write_text(out_dir / f"{name}.md", wide.to_markdown(index=False) + "\n")
    return wide


def _grid_items(grid_dirs: list[str], max_classes: int) -> list[Item]:
    items = []
    for folder in grid_dirs:
        pngs = sorted(Path(folder).glob("*.png"))
        run = f"{Path(folder).parent.name}, {Path(folder).name}"
        items += [Item(f"{run}, class {p.stem}: real shots (top row), then each synthetic set", figure=p)
                  for p in pngs[:max_classes]]
        if len(pngs) > max_classes:
            items.append(Item(f"{run}: {len(pngs) - max_classes} more classes' grids in {folder}",
                              table=pd.DataFrame({"class": [p.stem for p in pngs[max_classes:]]})))
    return items


def _trained_model_items(base_dirs: list[str], judge_jsons: list[str]) -> list[Item]:
    """What the workflow's own trained models can do: a pretrained base's check (its samples, labelled by a
    source-domain judge) and each dataset judge's accuracy on the real test images."""
    items = []
    for folder in base_dirs:
        base = json.loads((Path(folder) / "base.json").read_text())
        check = base["check"]
        per_class = check.get("per_digit", [])
        table = pd.DataFrame([{
            "base": Path(folder).name,
            "samples labelled as prompted": round(check["samples_right_class"], 3),
            "chance": round(1 / len(per_class), 3) if per_class else None,
            "per prompt": " ".join(f"{v:.2f}" for v in per_class),
            "source judge, held-out accuracy": round(check["judge_heldout_accuracy"], 3),
            "samples per prompt": check.get("per_digit_samples"),
            "guidance": check.get("guidance_scale"),
            "training s": round(sum(base.get("timings_s", {}).values())),
        }])
        items.append(Item(f"{Path(folder).name}: its samples, labelled by a classifier of the source domain",
                          table=table))
        if (Path(folder) / "samples.png").is_file():
            items.append(Item(f"{Path(folder).name}: samples, one row per prompt (in class order)",
                              figure=Path(folder) / "samples.png"))
    if judge_jsons:
        rows = [{"dataset": Path(p).parent.parent.name, "test accuracy": round(json.loads(Path(p).read_text())
                                                                               ["test_accuracy"], 3)}
                for p in judge_jsons]
        items.append(Item("Judges (a CNN on all real training images; the gap metrics' feature space): accuracy on"
                          " the real test images", table=pd.DataFrame(rows)))
    return items


def build_report(evaluations: list[str], gap_results: list[str], tsne_plots: list[str], grid_dirs: list[str],
                 box_quality: list[str], out_dir: str | Path, max_grid_classes: int = 4,
                 base_dirs: list[str] = (), judge_jsons: list[str] = (), spread_jsons: list[str] = (),
                 provenance: dict | None = None) -> list[Section]:
    """Writes accuracy.{csv,md}, tables/*.{csv,md}, figures/*.png, report.md and report.html in out_dir; with
    `provenance` (report.provenance) the pages open with it, and provenance.json is written beside them."""
    out_dir = Path(out_dir)
    table_dir, figure_dir = out_dir / "tables", out_dir / "figures"
    table_dir.mkdir(parents=True, exist_ok=True)
    figure_dir.mkdir(parents=True, exist_ok=True)
    results = collect_evaluations(evaluations)
    longtail = results["tail_accuracy"].notna() if "tail_accuracy" in results else pd.Series(False, results.index)
    fewshot_runs, gap = results[~longtail], collect_gap(gap_results)
    sections = [provenance_section(provenance)] if provenance is not None else []
    warning = tiny_warning(provenance) if provenance is not None else None
    if provenance is not None:
        write_provenance(out_dir, provenance)

    shots = ", ".join(str(int(k)) for k in sorted(results["shots"].dropna().unique()))
    seeds = ", ".join(str(int(s)) for s in sorted(results["seed"].dropna().unique()))
    splits = ", ".join(f"{d}: {s}" for d, s in results.groupby("dataset")["eval_split"].first().items())
    intro = (f"Shots per class: {shots}; seeds: {seeds}. Cells are mean ± std over seeds (number of seeds); "
             f"evaluated on {splits}. Tables as CSV and Markdown in tables/, figures in figures/.")

    if not fewshot_runs.empty:
        accuracy = tables.fewshot_table(fewshot_runs)
        write_csv(out_dir / "accuracy.csv", accuracy[0])
        per_class = _write_table(table_dir, "mean_per_class", tables.method_by_dataset(
            tables.headline(fewshot_runs), "mean_per_class_accuracy"))
        shown = _write_table(table_dir, "fewshot", accuracy)
        write_text(out_dir / "accuracy.md",
                   f"# Top-1 accuracy (%)\n\n{intro}\n\n{shown.to_markdown(index=False)}\n\n"
                   f"## Mean per-class accuracy (%)\n\n{per_class.to_markdown(index=False)}\n")
        sections.append(Section("Few-shot classification", "Top-1 accuracy (%) of a classifier trained on each "
                                "method's synthetic images (largest volume; one row per alpha), as the paper's "
                                "main table.", [Item("Top-1 accuracy (%)", table=shown),
                                                Item("Mean per-class accuracy (%): the figure to read on "
                                                     "imbalanced test sets", table=per_class)]))
    else:
        write_csv(out_dir / "accuracy.csv", pd.DataFrame(columns=["row", "dataset", "mean", "std", "n_seeds"]))
        write_text(out_dir / "accuracy.md", "# Top-1 accuracy (%)\n\nNo few-shot dataset in this run.\n")

    ablation = _write_table(table_dir, "ablation", tables.ablation_table(fewshot_runs))
    if ablation is not None:
        sections.append(Section("Component ablation", "LoFT, + multi-head (ChimeraLoRA without box-constrained "
                                "crops), + semantic boosting (LoFT with box-constrained crops), and both.",
                                [Item("Top-1 accuracy (%)", table=ablation)]))

    paired = _write_table(table_dir, "paired", tables.paired_table(fewshot_runs)) if not fewshot_runs.empty else None
    if paired is not None:
        sections.append(Section("Paired differences against ChimeraLoRA", "Each method's accuracy minus "
                                "ChimeraLoRA's on the same seed (same shots), in points: mean [95 % t-interval] "
                                "(seeds). An interval that excludes 0 is a difference larger than the seed spread.",
                                [Item("Accuracy difference (points) against ChimeraLoRA", table=paired)]))

    lt = _write_table(table_dir, "longtail", tables.longtail_table(results))
    if lt is not None:
        sections.append(Section("Long-tail", "Head classes keep their real training images (up to head_max), "
                                "tail classes keep K shots plus the method's synthetic images.",
                                [Item("Top-1 accuracy (%) overall, on head classes and on tail classes",
                                      table=lt)]))

    gap_shown = _write_table(table_dir, "gap", tables.gap_table(gap))
    if gap_shown is not None:
        write_csv(table_dir / "gap_by_dataset.csv", gap)
        items = [Item("Gap metrics of each synthetic set against the real test images (per class, then averaged;"
                      " docs/metrics.md). FD: Fréchet distance in the feature space; CLIP score, centroid "
                      "similarity x100", table=gap_shown)]
        if gap["alpha"].notna().any() and gap.groupby(["dataset", "method"])["alpha"].nunique().max() > 1:
            figures.alpha_dial_plot(gap, figure_dir / "alpha_dial.png")
            items.append(Item("Alpha as a dial: diversity against fidelity of the synthetic set",
                              figure=figure_dir / "alpha_dial.png"))
        items += [Item(f"t-SNE of one class ({Path(p).stem}; the class is in the plot's title): real shots, "
                       "real test images and each synthetic set, embedded jointly", figure=p) for p in tsne_plots]
        sections.append(Section("Synthetic-to-real gap", "How far each synthetic set lies from the real images, "
                                "in the configured feature space.", items))

    regime = _write_table(table_dir, "regime", tables.regime_table(gap, collect_spread(list(spread_jsons))))
    if regime is not None:
        items = [Item("Per synthetic set: the copy rate (an image nearer a shot than the class's two closest shots are "
                      "to each other), the mean distance to the nearest shot and, for images made through one head "
                      "alone, the share whose nearest shot is that head's own; in the metrics' feature space and "
                      "on grey thumbnails (pixels, RMS) when measured. Per method: how far its LoRA heads move the "
                      "base's attention weights and how much they differ (medians over projections and classes)",
                      table=regime)]
        dial = _write_table(table_dir, "alpha_regime", tables.alpha_regime_table(gap))
        if dial is not None:
            items.append(Item("Alpha as a dial: the nearest-shot distance per alpha, and the largest alpha minus the "
                              "smallest on the same seeds, mean [95 % t-interval] (seeds): positive = large alpha "
                              "sits farther from single shots (class-wise), small alpha nearer (image-wise)",
                              table=dial))
        sections.append(Section("Regime", "Where the LoRAs sit between image-wise copies and class-wise drift: "
                                "the premise of the paper's comparison (image-wise LoRA copies its shot, class-wise "
                                "drifts, the mixed heads in between with alpha as the dial).", items))

    for by, name, xlabel, title in (("alpha", "accuracy_vs_alpha", "Dirichlet α", "Alpha sweep"),
                                    ("volume", "accuracy_vs_volume", "synthetic images per class",
                                     "Synthetic volume")):
        result = tables.sweep_table(fewshot_runs, by) if not fewshot_runs.empty else None
        shown = _write_table(table_dir, name, result)
        if shown is None:
            continue
        figures.sweep_plot(result[0], by, figure_dir / f"{name}.png", xlabel, log_x=by == "alpha")
        sections.append(Section(title, f"Top-1 accuracy (%) against {xlabel}.",
                                [Item(f"Top-1 accuracy (%) by {xlabel}", table=shown),
                                 Item(f"Accuracy against {xlabel} (mean ± std over seeds)",
                                      figure=figure_dir / f"{name}.png")]))

    trained = _trained_model_items(list(base_dirs), list(judge_jsons))
    if trained:
        sections.append(Section("Models the workflow trained", "The pretrained base must know its classes before "
                                "its fine-tuned images can mean anything; the judges define the gap metrics.",
                                trained))

    grids = _grid_items(grid_dirs, max_grid_classes)
    if grids:
        sections.append(Section("Sample grids", "Real shots and generated images of each synthetic set.", grids))
    if box_quality:
        items = [Item(Path(p).stem, table=pd.read_csv(p).round(3)) for p in box_quality]
        sections.append(Section("Boxes against ground truth", "Each box backend's boxes and the crops cut around "
                                "them, against the dataset's annotated boxes.", items))

    write_text(out_dir / "report.md", render_markdown(TITLE, intro, sections, out_dir, warning))
    write_text(out_dir / "report.html", render_html(TITLE, intro, sections, warning))
    return sections

"""The report: every table and figure of the paper for whatever the config ran, as Markdown + CSV tables,
PNG figures and one self-contained HTML page.

- `results`: evaluation and gap JSONs as tidy tables; `tables`: the paper's tables; `figures`: sweeps and
  the alpha dial; `grids`: image grids; `html`: the pages; `provenance`: what produced the report;
  `stage_times`: job time per rule from Snakemake's benchmark files; `build`: all of it.

May import: ChimeraPipe.core.
"""
from .build import build_report
from .grids import write_image_grid, write_sample_grid

__all__ = ["build_report", "write_image_grid", "write_sample_grid"]

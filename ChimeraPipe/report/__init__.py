"""The report stage: every table and figure of the paper for whatever the config ran, as Markdown + CSV
tables, PNG figures and one self-contained HTML page."""
from .build import build_report
from .grids import write_image_grid, write_sample_grid

__all__ = ["build_report", "write_image_grid", "write_sample_grid"]

from pathlib import Path

from ChimeraPipe.models import build_tiny_model
from ChimeraPipe.runtime import setup_logging

setup_logging(snakemake.log[0])
out = Path(snakemake.output[0])
build_tiny_model(snakemake.wildcards.kind, out.parent)

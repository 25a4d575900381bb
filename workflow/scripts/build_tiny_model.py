from pathlib import Path

from ChimeraPipe.core.runtime import start_job
from ChimeraPipe.models.tiny import build_tiny_model

start_job(snakemake.log[0], snakemake.threads)
build_tiny_model(snakemake.wildcards.kind, Path(snakemake.output[0]).parent)

from pathlib import Path

from ChimeraPipe.models import build_tiny_model
from ChimeraPipe.runtime import start_job

start_job(snakemake.log[0], snakemake.threads)
out = Path(snakemake.output[0])
build_tiny_model(snakemake.wildcards.kind, out.parent)

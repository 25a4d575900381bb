from ChimeraPipe.core.runtime import start_job
from ChimeraPipe.pipeline import stages

start_job(snakemake.log[0], snakemake.threads, offline=False)  # the one job that may reach the hub
stages.fetch_models(snakemake.params.specs, snakemake.params.models_dir)

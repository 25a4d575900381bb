from ChimeraPipe.core.runtime import start_job
from ChimeraPipe.pipeline import stages

start_job(snakemake.log[0], snakemake.threads)
stages.lora_spread(list(snakemake.input.adapters), snakemake.output[0], models=snakemake.params.models,
                   tags=snakemake.params.tags)

from ChimeraPipe.core.runtime import start_job
from ChimeraPipe.pipeline import stages

start_job(snakemake.log[0], snakemake.threads)
p = snakemake.params
stages.train_part(snakemake.input.views, p.classes, snakemake.output.index, models=p.models,
                  train_settings=p.train, prompt_prefix=p.prompt_prefix, device=p.device, names=p.names)

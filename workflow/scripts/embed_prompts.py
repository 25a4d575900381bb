from ChimeraPipe.core.runtime import start_job
from ChimeraPipe.pipeline import stages

start_job(snakemake.log[0], snakemake.threads)
p = snakemake.params
stages.embed_prompts(p.classes, snakemake.output[0], models=p.models, names=p.names, prompt_prefix=p.prompt_prefix,
                     device=p.device)

from ChimeraPipe import stages
from ChimeraPipe.runtime import start_job

start_job(snakemake.log[0], snakemake.threads)
p = snakemake.params
stages.embed_prompts(p.classes, snakemake.output[0], models=p.models, names=p.names, prompt_prefix=p.prompt_prefix,
                     device=p.device)

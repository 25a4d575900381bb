from ChimeraPipe import stages
from ChimeraPipe.runtime import start_job

start_job(snakemake.log[0], snakemake.threads)
p, wc = snakemake.params, snakemake.wildcards
stages.crops_class(snakemake.input.split, snakemake.input.boxes, wc.cls, snakemake.output.views,
                   snakemake.output.preview, models=p.models,
                   settings=p.settings, seed=int(wc.seed), device=p.device)

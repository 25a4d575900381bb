from ChimeraPipe import stages
from ChimeraPipe.runtime import start_job

start_job(snakemake.log[0], snakemake.threads)
p, wc = snakemake.params, snakemake.wildcards
stages.crops_part(snakemake.input.split, snakemake.input.boxes, p.classes, snakemake.output.index,
                  models=p.models, settings=p.settings, seed=int(wc.seed), device=p.device)

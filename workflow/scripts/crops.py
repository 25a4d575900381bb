from ChimeraPipe.core.runtime import start_job
from ChimeraPipe.pipeline import stages

start_job(snakemake.log[0], snakemake.threads)
p, wc = snakemake.params, snakemake.wildcards
stages.crops_part(snakemake.input.split, snakemake.input.boxes, p.classes, snakemake.output.index,
                  models=p.models, settings=p.settings, seed=int(wc.seed), device=p.device)

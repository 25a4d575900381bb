from ChimeraPipe import stages
from ChimeraPipe.runtime import setup_logging

setup_logging(snakemake.log[0])
p, wc = snakemake.params, snakemake.wildcards
stages.crops_class(snakemake.input.split, snakemake.input.boxes, wc.cls, snakemake.output.views,
                   snakemake.output.preview, models=p.models,
                   settings=p.settings, seed=int(wc.seed), device=p.device)

from ChimeraPipe import stages
from ChimeraPipe.runtime import setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
stages.evaluate(snakemake.input.classifier, p.root, p.classes, snakemake.output.metrics,
                snakemake.output.predictions, tags=p.tags, device=p.device)

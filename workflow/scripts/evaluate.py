from ChimeraPipe import stages
from ChimeraPipe.runtime import start_job

start_job(snakemake.log[0], snakemake.threads)
p = snakemake.params
stages.evaluate(snakemake.input.classifier, snakemake.input.table, p.classes, snakemake.output.metrics,
                snakemake.output.predictions, tags=p.tags, device=p.device, groups=p.groups)

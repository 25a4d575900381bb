from ChimeraPipe.core.runtime import start_job
from ChimeraPipe.pipeline import stages

start_job(snakemake.log[0], snakemake.threads)
p = snakemake.params
stages.evaluate(snakemake.input.classifier, snakemake.input.table, p.classes, snakemake.output.metrics,
                snakemake.output.predictions, tags=p.tags, device=p.device, groups=p.groups,
                num_workers=max(0, snakemake.threads - 1))

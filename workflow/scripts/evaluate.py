from ChimeraPipe.core.runtime import loader_workers, start_job
from ChimeraPipe.pipeline import stages

start_job(snakemake.log[0], snakemake.threads)
p = snakemake.params
stages.evaluate(snakemake.input.classifier, snakemake.input.table, p.classes, snakemake.output.metrics,
                snakemake.output.predictions, tags=p.tags, device=p.device, groups=p.groups,
                num_workers=loader_workers(snakemake.threads))

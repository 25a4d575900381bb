from ChimeraPipe.core.runtime import start_job
from ChimeraPipe.pipeline import stages

start_job(snakemake.log[0], snakemake.threads)
p = snakemake.params
stages.longtail_train(snakemake.input.table, snakemake.input.split, p.groups["head"], p.groups["tail"],
                      p.head_max, int(snakemake.wildcards.seed), snakemake.output[0])

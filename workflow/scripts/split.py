from ChimeraPipe.core.runtime import start_job
from ChimeraPipe.pipeline import stages

start_job(snakemake.log[0], snakemake.threads)
p, wc = snakemake.params, snakemake.wildcards
stages.split(snakemake.input.table, p.classes, int(wc.shots), int(wc.seed), snakemake.output[0],
             shots_file=p.shots_file, root=p.root)

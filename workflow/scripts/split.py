from ChimeraPipe import stages
from ChimeraPipe.runtime import start_job

start_job(snakemake.log[0], snakemake.threads)
p, wc = snakemake.params, snakemake.wildcards
stages.split(snakemake.input.table, p.classes, int(wc.shots), int(wc.seed), snakemake.output[0],
             shots_file=p.shots_file, root=p.root)

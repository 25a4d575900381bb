from ChimeraPipe import stages
from ChimeraPipe.runtime import start_job

start_job(snakemake.log[0], snakemake.threads)
wc = snakemake.wildcards
stages.split(snakemake.params.root, snakemake.params.classes, int(wc.shots), int(wc.seed), snakemake.output[0])

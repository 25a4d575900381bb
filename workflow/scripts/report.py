from ChimeraPipe import stages
from ChimeraPipe.runtime import start_job

start_job(snakemake.log[0], snakemake.threads)
stages.report(list(snakemake.input), snakemake.output.table, snakemake.output.markdown)

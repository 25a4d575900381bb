from ChimeraPipe.core.runtime import start_job
from ChimeraPipe.pipeline import stages

start_job(snakemake.log[0], snakemake.threads)
stages.export_synth(list(snakemake.input.synth), snakemake.output[0])

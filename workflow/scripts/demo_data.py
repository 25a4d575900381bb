from ChimeraPipe.data import make_demo_dataset
from ChimeraPipe.runtime import start_job

start_job(snakemake.log[0], snakemake.threads)
make_demo_dataset(snakemake.params.kind, snakemake.output[0], seed=snakemake.params.seed)

from ChimeraPipe.core.runtime import start_job
from ChimeraPipe.datasets.demo import make_demo_dataset

start_job(snakemake.log[0], snakemake.threads)
make_demo_dataset(snakemake.params.kind, snakemake.output[0], seed=snakemake.params.seed)

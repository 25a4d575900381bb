from ChimeraPipe.data import make_shapes_dataset
from ChimeraPipe.runtime import start_job

start_job(snakemake.log[0], snakemake.threads)
make_shapes_dataset(snakemake.output[0], seed=snakemake.params.seed)

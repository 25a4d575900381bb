from ChimeraPipe.data import make_shapes_dataset
from ChimeraPipe.runtime import setup_logging

setup_logging(snakemake.log[0])
make_shapes_dataset(snakemake.output[0], seed=snakemake.params.seed)

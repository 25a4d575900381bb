import os

from ChimeraPipe.core.runtime import start_job
from ChimeraPipe.pipeline import stages

# Every core this job may use: nothing downstream of the base can start while it trains, and Snakemake's
# `--max-threads 1` (right for the tiny jobs) would otherwise leave one of two cores idle for minutes.
start_job(snakemake.log[0], len(os.sched_getaffinity(0)))
stages.pretrain_base(snakemake.output[0], snakemake.params.settings)

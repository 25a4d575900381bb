from ChimeraPipe.core.runtime import pretrain_threads, start_job
from ChimeraPipe.pipeline import stages

# Every core this job may use (unless CHIMERAPIPE_PRETRAIN_THREADS caps it): nothing downstream of the base can
# start while it trains, and Snakemake's `--max-threads 1` (right for the tiny jobs) would leave cores idle.
start_job(snakemake.log[0], pretrain_threads())
stages.pretrain_base(snakemake.output[0], snakemake.params.settings)

from ChimeraPipe.core.runtime import start_job
from ChimeraPipe.pipeline import stages

start_job(snakemake.log[0], snakemake.threads)
p, wc = snakemake.params, snakemake.wildcards
stages.detect_part(snakemake.input.split, p.classes, wc.backend, snakemake.output.boxes, snakemake.output.preview,
                   root=p.root, models=p.models, settings=p.settings, device=p.device, names=p.names)

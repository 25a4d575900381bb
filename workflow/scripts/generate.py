from ChimeraPipe.core.runtime import start_job
from ChimeraPipe.pipeline import stages

start_job(snakemake.log[0], snakemake.threads)
p, wc = snakemake.params, snakemake.wildcards
stages.generate_part(snakemake.input.adapter or None, p.classes, snakemake.output.index,
                     models=p.models, method=p.method, alpha=p.alpha, num_images=p.num_images,
                     settings=p.settings, seed=int(wc.seed), prompt_prefix=p.prompt_prefix, device=p.device,
                     split_csv=snakemake.input.split, all_classes=p.all_classes, names=p.names)

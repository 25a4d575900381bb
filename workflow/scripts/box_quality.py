from ChimeraPipe.core.runtime import start_job
from ChimeraPipe.pipeline import stages

start_job(snakemake.log[0], snakemake.threads)
p, inp = snakemake.params, snakemake.input
stages.box_quality(p.root, p.annotations_file, {b: list(inp[f"boxes_{b}"]) for b in p.backends},
                   {b: list(inp[f"views_{b}"]) for b in p.backends}, snakemake.output.table,
                   snakemake.output.markdown)

from ChimeraPipe import stages
from ChimeraPipe.runtime import setup_logging

setup_logging(snakemake.log[0])
p, inp = snakemake.params, snakemake.input
stages.box_quality(p.root, p.annotations_file, {b: list(inp[f"boxes_{b}"]) for b in p.backends},
                   {b: list(inp[f"views_{b}"]) for b in p.backends}, snakemake.output.table,
                   snakemake.output.markdown)

"""Semantic boosting costs: box-constrained views per second (sampling + resampling, and with the VAE
encode), and Grounded-SAM detection time per image, measured in one run.

    python bench/bench_crops.py --models results/models [--device cpu] [--resolution 64]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from PIL import Image

from ChimeraPipe.boxes.crops import apply_crop, sample_crop
from ChimeraPipe.boxes.detect import GroundedSam, full_boxes, grounded_sam_boxes
from ChimeraPipe.boxes.views import encode_views
from ChimeraPipe.datasets import dataset_table, draw_shots
from ChimeraPipe.datasets.demo import make_shapes_dataset
from ChimeraPipe.models.specs import built_model_name, resolve_model
from ChimeraPipe.models.tiny import build_tiny_model


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="results/models", help="folder of tiny models (built if missing)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--views", type=int, default=200)
    args = parser.parse_args()
    for kind in ("diffusion", "grounding_dino", "sam"):
        if not (Path(args.models) / built_model_name(kind, "tiny") / "BUILT").is_file():
            build_tiny_model(kind, args.models)
    with tempfile.TemporaryDirectory() as tmp:
        root = make_shapes_dataset(Path(tmp) / "shapes")
        shots = draw_shots(dataset_table("imagefolder", root), ["circle", "square", "triangle"], 4, 0)
        paths = list(shots.path)
        boxes = full_boxes(paths).set_index("path")
        images = {p: Image.open(p).convert("RGB") for p in paths}

        start = time.perf_counter()
        views = []
        for i in range(args.views):
            p = paths[i % len(paths)]
            b = boxes.loc[p]
            spec = sample_crop(images[p].size, (b.x0, b.y0, b.x1, b.y1), args.resolution, seed=i)
            views.append(apply_crop(images[p], spec))
        crop_s = time.perf_counter() - start

        from diffusers import AutoencoderKL

        vae = AutoencoderKL.from_pretrained(resolve_model("diffusion", "tiny", args.models), subfolder="vae")
        vae = vae.to(args.device).eval()
        start = time.perf_counter()
        encode_views(vae, [views], args.device)
        encode_s = time.perf_counter() - start

        detector = GroundedSam(resolve_model("grounding_dino", "tiny", args.models),
                               resolve_model("sam", "tiny", args.models), args.device, 0.0, 0.0)
        grounded_sam_boxes(paths[:2], "circle.", detector)  # warm-up
        start = time.perf_counter()
        grounded_sam_boxes(paths, "circle.", detector)
        detect_s = time.perf_counter() - start

    print(f"views at {args.resolution}px on {args.device}, {args.views} views")
    print(f"  sample + crop:        {args.views / crop_s:8.1f} views/s")
    print(f"  tiny VAE encode:      {args.views / encode_s:8.1f} views/s")
    print(f"  cached (both):        {args.views / (crop_s + encode_s):8.1f} views/s")
    print(f"tiny Grounded-SAM:      {1e3 * detect_s / len(paths):8.1f} ms/image ({len(paths)} images, batches of 4)")


if __name__ == "__main__":
    main()

"""Box quality against ground truth."""
import json

import numpy as np
import pandas as pd
import torch

from ChimeraPipe.boxes.quality import box_quality, iou
from ChimeraPipe.core.io import save_tensors


def test_iou():
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 2, 2]], float)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [5, 5, 6, 6]], float)
    np.testing.assert_allclose(iou(a, b), [1.0, 50 / 150, 0.0])


def test_box_quality_counts_crops_holding_the_whole_box(tmp_path):
    truth = pd.DataFrame({"path": ["a.png", "b.png"], "x0": [10, 0], "y0": [10, 0], "x1": [20, 5], "y1": [20, 5]})
    boxes = truth.assign(width=30, height=30, score=1.0, source="annotation")
    boxes.to_csv(tmp_path / "boxes.csv", index=False)
    regions = torch.tensor([[[0, 0, 30, 30], [12, 12, 30, 30]],      # a: second crop cuts the box
                            [[-5, -5, 10, 10], [0, 0, 5, 5]]], dtype=torch.float32)
    save_tensors(tmp_path / "views.safetensors", {"regions": regions},
                 metadata={"paths": json.dumps(["a.png", "b.png"])})
    table = box_quality({"annotations": [tmp_path / "boxes.csv"]}, {"annotations": [tmp_path / "views.safetensors"]},
                        truth)
    row = table.iloc[0]
    assert row.mean_iou == 1.0 and row.crops_with_whole_gt_box == 0.75 and row.sources == "annotation:2"


def test_shared_a_saves_389_percent_on_sd21_unet():
    """The paper's parameter saving, on the real SD 2.1-base UNet's targets (built on the meta device)."""
    from diffusers import UNet2DConditionModel

    from ChimeraPipe.lora import count_lora_parameters, inject_multihead_lora

    targets = ("to_q", "to_k", "to_v", "to_out.0")
    counts = {}
    for share in ("none", "A"):
        with torch.device("meta"):
            unet = UNet2DConditionModel(block_out_channels=(320, 640, 1280, 1280), layers_per_block=2,
                                        cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20),
                                        use_linear_projection=True, sample_size=64)
            inject_multihead_lora(unet, targets, rank=16, heads=4, share=share)
        counts[share] = count_lora_parameters(unet)
    assert round(counts["none"] / 1e6, 2) == 13.28 and round(counts["A"] / 1e6, 2) == 8.11
    assert round(1 - counts["A"] / counts["none"], 3) == 0.389

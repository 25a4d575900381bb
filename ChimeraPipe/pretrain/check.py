"""Does the base draw the digit its prompt names? A CNN trained on freshly rendered digits (the
source domain, so a wrong answer is the base's fault, not a domain gap) labels seeded samples of each
prompt; the share it labels as prompted (chance: 10 %) and a grid of the samples go with the base."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..classify.backends import CnnBackend
from ..classify.loop import fit
from ..core.images import to_signed_unit
from ..datasets.official import DIGIT_WORDS
from .glyphs import caption, render_digits


def fit_source_judge(judge_cfg, seed: int, count: int = 6000, fonts=None) -> tuple[CnnBackend, float]:
    """The CNN backend trained on `count` freshly rendered digits (another seed than the base's pool) by the
    classifier loop with `judge_cfg` (ChimeraPipe.pipeline.settings.source_judge_settings); its accuracy on
    held-out rendered digits."""
    held_out = max(10, count // 6)
    images, labels = render_digits(count + held_out, judge_cfg.image_size, seed + 1000, fonts)
    x, y = to_signed_unit(images), torch.as_tensor(labels)
    torch.manual_seed(judge_cfg.seed)
    judge = CnnBackend(list(DIGIT_WORDS), judge_cfg)
    data = torch.utils.data.TensorDataset(x[:count], y[:count], torch.ones(count, dtype=torch.bool))
    fit(judge, data, judge_cfg)
    judge.eval()
    with torch.no_grad():
        accuracy = float((judge.logits(x[count:]).argmax(-1) == y[count:]).float().mean())
    return judge, accuracy


@torch.no_grad()
def sample_check(pipe, judge: CnnBackend, size: int, out_png: str | Path, per_digit: int = 20,
                 guidance_scale: float = 3.0, steps: int = 20, seed: int = 0) -> dict:
    """Samples of each prompt, judged; a grid (a row per digit) written to out_png."""
    right, rows = [], []
    for digit in range(10):
        generator = torch.Generator().manual_seed(seed + digit)
        images = pipe([caption(digit)] * per_digit, height=size, width=size, num_inference_steps=steps,
                      guidance_scale=guidance_scale, generator=generator, output_type="np").images
        images = np.uint8(np.round(255 * images))   # what a saved sample holds
        right.append(float((judge.logits(to_signed_unit(images)).argmax(-1) == digit).float().mean()))
        rows.append(np.concatenate(list(images[:12]), axis=1))
    grid = Image.fromarray(np.concatenate(rows, axis=0))
    grid.resize((grid.width * 3, grid.height * 3), Image.NEAREST).save(out_png)
    return {"samples_right_class": float(np.mean(right)), "per_digit": right, "guidance_scale": guidance_scale,
            "per_digit_samples": per_digit}

"""Does the base draw the digit its prompt names? A SmallCNN trained on held-out rendered digits (the
source domain, so a wrong answer is the base's fault, not a domain gap) labels seeded samples of each
prompt; the share it labels as prompted (chance: 10 %) and a grid of the samples go with the base."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..cnn import SmallCNN
from .glyphs import caption, render_digits, to_pixels


def source_judge(size: int, seed: int, count: int = 6000, epochs: int = 4, fonts=None) -> tuple[SmallCNN, float]:
    """A SmallCNN on freshly rendered digits (another seed than the base's pool); its held-out accuracy."""
    held_out = max(10, count // 6)
    images, labels = render_digits(count + held_out, size, seed + 1000, fonts)
    x, y = to_pixels(images), torch.as_tensor(labels)
    torch.manual_seed(seed)
    model = SmallCNN(10)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    for _ in range(epochs):
        model.train()
        for batch in torch.randperm(count).split(128):
            loss = F.cross_entropy(model(x[batch]), y[batch])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        accuracy = float((model(x[count:]).argmax(-1) == y[count:]).float().mean())
    return model, accuracy


@torch.no_grad()
def sample_check(pipe, judge: SmallCNN, size: int, out_png: str | Path, per_digit: int = 20,
                 guidance_scale: float = 3.0, steps: int = 20, seed: int = 0) -> dict:
    """Samples of each prompt, judged; a grid (a row per digit) written to out_png."""
    right, rows = [], []
    for digit in range(10):
        generator = torch.Generator().manual_seed(seed + digit)
        images = pipe([caption(digit)] * per_digit, height=size, width=size, num_inference_steps=steps,
                      guidance_scale=guidance_scale, generator=generator, output_type="np").images
        pixels = torch.from_numpy(images).permute(0, 3, 1, 2).float() * 2 - 1
        right.append(float((judge(pixels).argmax(-1) == digit).float().mean()))
        rows.append(np.concatenate(list(np.uint8(255 * images[:12])), axis=1))
    grid = Image.fromarray(np.concatenate(rows, axis=0))
    grid.resize((grid.width * 3, grid.height * 3), Image.NEAREST).save(out_png)
    return {"samples_right_class": float(np.mean(right)), "per_digit": right, "guidance_scale": guidance_scale,
            "per_digit_samples": per_digit}

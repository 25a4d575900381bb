"""The source domain: the digits 0-9 rendered with the TrueType fonts matplotlib ships, jittered in size,
position, rotation, stroke and colour, captioned 'a photo of a {zero..nine}'."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..core.names import class_prompt
from ..datasets.official import DIGIT_WORDS

RENDER = 64   # glyphs are drawn large, then rotated and downsampled (smooth edges)


def font_files() -> list[Path]:
    import matplotlib

    return sorted((Path(matplotlib.get_data_path()) / "fonts" / "ttf").glob("*.ttf"))


def _glyph(font: ImageFont.FreeTypeFont, digit: str, stroke: int = 0) -> np.ndarray:
    """The digit's ink mask, centred on a RENDER x RENDER canvas (float in [0, 1])."""
    canvas = Image.new("L", (RENDER, RENDER), 0)
    draw = ImageDraw.Draw(canvas)
    x0, y0, x1, y1 = draw.textbbox((0, 0), digit, font=font, stroke_width=stroke)
    draw.text(((RENDER - (x1 - x0)) / 2 - x0, (RENDER - (y1 - y0)) / 2 - y0), digit, fill=255, font=font,
              stroke_width=stroke, stroke_fill=255)
    return np.asarray(canvas, dtype=np.float32) / 255


def _shape(font: ImageFont.FreeTypeFont, digit: str) -> np.ndarray:
    """The glyph cropped to its ink and resized to 24 x 24: its shape, whatever its size and offset."""
    mask = Image.fromarray(np.uint8(255 * _glyph(font, digit)))
    box = mask.getbbox()
    if box is None:
        return np.zeros(24 * 24, np.float32)
    return np.asarray(mask.crop(box).resize((24, 24), Image.BILINEAR), np.float32).ravel() / 255


REFERENCE_FONTS = ("DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf", "DejaVuSans-Oblique.ttf")


def digit_fonts(min_margin: float = 0.0) -> list[Path]:
    """Fonts whose ten glyphs are digits: each glyph is non-empty and its shape correlates best with the
    same digit of the reference fonts (upright and slanted DejaVu) than with any other digit's; fonts that
    map the digit code points to symbols fail this."""
    files = {f.name: f for f in font_files()}
    refs = []
    for name in REFERENCE_FONTS:
        font = ImageFont.truetype(str(files[name]), 40)
        ref = np.stack([_shape(font, str(d)) for d in range(10)])
        refs.append((ref - ref.mean(1, keepdims=True)) / (ref.std(1, keepdims=True) + 1e-6))
    kept = []
    for path in files.values():
        try:
            font = ImageFont.truetype(str(path), 40)
            glyphs = np.stack([_shape(font, str(d)) for d in range(10)])
        except OSError:
            continue
        if (glyphs.sum(1) < 5).any():
            continue
        z = (glyphs - glyphs.mean(1, keepdims=True)) / (glyphs.std(1, keepdims=True) + 1e-6)
        corr = np.max([z @ ref.T / ref.shape[1] for ref in refs], axis=0)   # [font digit, reference digit]
        own = np.diag(corr)
        rival = np.where(np.eye(10, dtype=bool), -np.inf, corr).max(1)
        if (own > rival + min_margin).all():
            kept.append(path)
    return sorted(kept)


def render_digits(count: int, size: int, seed: int = 0, fonts: list[Path] | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """`count` RGB images [count, size, size, 3] (uint8) and their digit labels, seeded: a random font,
    scale (60-95 % of the frame), offset, rotation (+-15 deg), stroke (0-2 px at 64 px), ink and paper
    colours (mostly dark on light, as handwriting; one in five inverted)."""
    rng = np.random.default_rng(seed)
    fonts = fonts or digit_fonts()
    loaded = {}
    images = np.zeros((count, size, size, 3), np.uint8)
    labels = rng.integers(0, 10, count)
    for i, label in enumerate(labels):
        path = fonts[rng.integers(len(fonts))]
        font = loaded.setdefault(path, ImageFont.truetype(str(path), 44))
        mask = Image.fromarray(np.uint8(255 * _glyph(font, str(label), int(rng.integers(0, 3)))))
        mask = mask.rotate(float(rng.uniform(-15, 15)), resample=Image.BILINEAR)
        box = mask.getbbox() or (0, 0, RENDER, RENDER)
        mask = mask.crop(box)
        scale = rng.uniform(0.6, 0.95) * size / max(mask.size)
        w, h = max(1, round(mask.size[0] * scale)), max(1, round(mask.size[1] * scale))
        mask = np.asarray(mask.resize((w, h), Image.LANCZOS), np.float32)[..., None] / 255
        frame = np.zeros((size, size, 1), np.float32)
        x, y = rng.integers(0, size - w + 1), rng.integers(0, size - h + 1)
        frame[y:y + h, x:x + w] = mask
        paper = rng.uniform(200, 255, 3) if rng.random() > 0.2 else rng.uniform(0, 60, 3)
        ink = rng.uniform(0, 80, 3) if paper.mean() > 128 else rng.uniform(190, 255, 3)
        images[i] = np.clip(paper * (1 - frame) + ink * frame, 0, 255).astype(np.uint8)
    return images, labels


def caption(label: int) -> str:
    """The base's training caption of a digit: the class prompt of its word, as every stage writes it."""
    return class_prompt(DIGIT_WORDS[int(label)])

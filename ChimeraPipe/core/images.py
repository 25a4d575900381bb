"""Reading real-world images robustly (one RGB convention for every stage), and their tensor form."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from . import shards

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif"}


class ImageLoadError(ValueError):
    """An image file that cannot be read; the message names the file and the reason."""


def to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit grey: rescale to the observed range, not by a fixed shift (many files use 12 bits).
        arr = np.asarray(image, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        return Image.fromarray(arr.round().astype(np.uint8), "L").convert("RGB")
    if image.mode == "P":
        image = image.convert("RGBA") if "transparency" in image.info else image.convert("RGB")
    if image.mode in ("RGBA", "LA", "PA"):
        # Transparent pixels become black, the same value as crop padding.
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return image.convert("RGB")


def read_image_bytes(path: str | Path) -> bytes:
    """The encoded bytes of an image file or of a shard reference '<shard>.tar::<member>' (core.shards);
    ImageLoadError naming it if there is none."""
    if shards.is_ref(path):
        try:
            return shards.read(str(path))
        except FileNotFoundError as err:
            raise ImageLoadError(f"{path}: no such image ({err})") from err
    path = Path(path)
    if not path.is_file():
        raise ImageLoadError(f"{path}: no such image file")
    return path.read_bytes()


def libjpeg_decodable(image: Image.Image, data: bytes) -> bool:
    """Whether `decode_jpeg_rgb(data)` gives the pixels of the opened `image`: a complete JPEG (it ends with its
    end-of-image marker; a truncated one is left to PIL, which raises) in RGB or grey, not EXIF-turned."""
    return (image.format == "JPEG" and image.mode in ("RGB", "L") and data.endswith(b"\xff\xd9")
            and image.getexif().get(0x0112, 1) == 1)


def decode_jpeg_rgb(data: bytes) -> np.ndarray:
    """uint8 RGB pixels [H, W, 3] of a JPEG, decoded in one call by OpenCV's libjpeg-turbo: the values PIL
    decodes (tests/test_images_and_data.py), 10-20 % faster than PIL's decode of the same bytes here."""
    import cv2

    flags = cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if pixels is None:
        raise ValueError("OpenCV cannot decode it")
    return pixels


def load_rgb(path: str | Path, max_side: int | None = None) -> Image.Image:
    """Open an image (a file, or a member of a shard) as RGB with its EXIF orientation applied.

    `max_side` downscales very large images (keeping aspect ratio) before heavy models see them.
    Raises ImageLoadError naming the file for anything unreadable or truncated.
    """
    data = read_image_bytes(path)
    try:
        with Image.open(io.BytesIO(data)) as image:
            if libjpeg_decodable(image, data):
                rgb = Image.fromarray(decode_jpeg_rgb(data))
            else:
                image.load()  # forces a full decode: truncated files fail here, not later
                rgb = to_rgb(ImageOps.exif_transpose(image))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ImageLoadError(f"{path}: cannot read image ({err})") from err
    if rgb.width < 1 or rgb.height < 1:
        raise ImageLoadError(f"{path}: image has no pixels")
    return downscale(rgb, max_side) if max_side is not None else rgb


def downscale(image: Image.Image, max_side: int) -> Image.Image:
    """The image shrunk (aspect kept) so that its longer side is at most max_side; unchanged if smaller."""
    if max(image.size) <= max_side:
        return image
    return ImageOps.contain(image, (max_side, max_side), Image.Resampling.BICUBIC)


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly inside `folder`, sorted by name for determinism."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def to_signed_unit(images):
    """uint8 RGB images - a [n, h, w, 3] array or a list of PIL images - as a float tensor [n, 3, h, w] in
    [-1, 1]: the input range of the VAE and of the judges."""
    import torch

    array = np.stack([np.asarray(im, dtype=np.uint8) for im in images]) if isinstance(images, list) \
        else np.asarray(images, dtype=np.uint8)
    return torch.from_numpy(array).permute(0, 3, 1, 2).float() / 127.5 - 1


# Bytes per pixel of a 512 x 512 RGB photograph as each format stores it (PIL 13, PNG at its default
# compression, JPEG and WebP at quality 95): matplotlib's bundled grace_hopper.jpg, centre-cropped to 512 px.
# Measured with
#   python -c "import io, matplotlib.cbook as c; from PIL import Image, ImageOps
#   im = ImageOps.fit(Image.open(c.get_sample_data('grace_hopper.jpg')).convert('RGB'), (512, 512),
#                     Image.Resampling.LANCZOS)
#   for f, kw in (('PNG', {}), ('JPEG', {'quality': 95}), ('WEBP', {'quality': 95})):
#       b = io.BytesIO(); im.save(b, format=f, **kw); print(f, b.tell(), b.tell() / 512**2)"
# -> PNG 403,386 B, JPEG 110,370 B, WebP 89,886 B. Generated images are as detailed as a photograph or
# less (noise from random weights compresses worse: a PNG of noise is ~3 B per pixel), so these are estimates.
BYTES_PER_PIXEL = {"png": 1.539, "jpeg": 0.421, "webp": 0.343}


def image_bytes(resolution: int, image_format: str = "png") -> int:
    """Estimated bytes of one square RGB image of side `resolution` stored as `image_format`."""
    if image_format not in BYTES_PER_PIXEL:
        raise ValueError(f"unknown image format {image_format!r}; known: {sorted(BYTES_PER_PIXEL)}")
    return round(BYTES_PER_PIXEL[image_format] * resolution * resolution)

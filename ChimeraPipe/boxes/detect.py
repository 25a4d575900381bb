"""Object boxes b* for the reference images: Grounded-SAM, shipped annotations, or the full image.

Every row records where its box came from (`source`): mask (SAM's tight box), dino (SAM's mask was
empty or degenerate), annotation, or full (no detection: the whole image). Nothing falls back silently.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..core.images import downscale, load_rgb

log = logging.getLogger(__name__)
BACKENDS = ("grounded_sam", "annotations", "full")
BOX_COLUMNS = ["path", "width", "height", "x0", "y0", "x1", "y1", "score", "source"]


def grounding_prompt(class_name: str, noun: str | None = None) -> str:
    """Grounding-DINO wants lower-case phrases ending in '.'; an optional domain noun is appended."""
    text = class_name.replace("_", " ").strip().lower()
    if noun and noun.lower() not in text.split():
        text = f"{text} {noun.lower()}"
    return text + "."


class TransformersSam:
    """SAM in transformers' format (a hub id such as facebook/sam-vit-huge, or its local folder)."""

    def __init__(self, path: str, device: str = "cpu"):
        from transformers import SamModel, SamProcessor

        self.device = device
        self.processor = SamProcessor.from_pretrained(path)
        self.model = SamModel.from_pretrained(path).to(device).eval()

    @torch.no_grad()
    def mask(self, image, box: list[float]) -> torch.Tensor:
        """SAM's single mask [H, W] (bool) for the prompt box."""
        inputs = self.processor(image, input_boxes=[[box]], return_tensors="pt").to(self.device)
        outputs = self.model(**inputs, multimask_output=False)
        masks = self.processor.image_processor.post_process_masks(
            outputs.pred_masks.cpu(), inputs["original_sizes"].cpu(), inputs["reshaped_input_sizes"].cpu())
        return masks[0][0, 0].bool()


# Architectures of original SAM checkpoints beyond segment-anything's own registry (tests add tiny ones).
ORIGINAL_SAM_BUILDERS: dict = {}


class OriginalSam:
    """An original SAM checkpoint (sam_vit_h_4b8939.pth, ...) through the optional `segment-anything`
    package. The architecture comes from the file name (vit_h, vit_l, vit_b); the weights are read with
    torch.load(weights_only=True), never unpickled as code."""

    def __init__(self, checkpoint: str | Path, device: str = "cpu"):
        try:
            from segment_anything import SamPredictor, sam_model_registry
        except ImportError:
            raise ImportError(f"{checkpoint}: original SAM checkpoints need the segment-anything package "
                              "(pip install -e '.[sam-original]')") from None
        builders = {**sam_model_registry, **ORIGINAL_SAM_BUILDERS}
        arch = re.search(r"vit_[a-z]+", Path(checkpoint).name)
        if arch is None or arch.group() not in builders:
            raise ValueError(f"{checkpoint}: cannot tell the SAM architecture from the file name; expected one of "
                             f"{sorted(k for k in builders if k != 'default')} in it (e.g. sam_vit_h_4b8939.pth)")
        model = builders[arch.group()](checkpoint=None)
        model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
        self.predictor = SamPredictor(model.to(device).eval())

    @torch.no_grad()
    def mask(self, image, box: list[float]) -> torch.Tensor:
        self.predictor.set_image(np.asarray(image.convert("RGB")))
        masks, _, _ = self.predictor.predict(box=np.asarray(box, dtype=np.float32), multimask_output=False)
        return torch.from_numpy(masks[0]).bool()


def load_sam(path: str, device: str = "cpu"):
    """An original `.pth` checkpoint goes through segment-anything; anything else through transformers."""
    return OriginalSam(path, device) if str(path).endswith(".pth") else TransformersSam(path, device)


class GroundedSam:
    """Grounding-DINO box from text, then SAM's mask inside that box; loaded once, used for many images."""

    def __init__(self, dino_path: str, sam_path: str, device: str = "cpu",
                 box_threshold: float = 0.3, text_threshold: float = 0.25):
        from transformers import AutoProcessor, GroundingDinoForObjectDetection

        self.device = device
        self.box_threshold, self.text_threshold = box_threshold, text_threshold
        self.dino_processor = AutoProcessor.from_pretrained(dino_path)
        self.dino = GroundingDinoForObjectDetection.from_pretrained(dino_path).to(device).eval()
        self.sam = load_sam(sam_path, device)

    @torch.no_grad()
    def dino_boxes(self, images: Sequence, prompt: str) -> list[tuple[list[float], float] | None]:
        """Highest-scoring Grounding-DINO box per image, or None where nothing passes the thresholds."""
        inputs = self.dino_processor(images=list(images), text=[prompt] * len(images), return_tensors="pt")
        outputs = self.dino(**inputs.to(self.device))
        results = self.dino_processor.post_process_grounded_object_detection(
            outputs, inputs["input_ids"], threshold=self.box_threshold, text_threshold=self.text_threshold,
            target_sizes=[(im.height, im.width) for im in images])
        found = []
        for result in results:
            if len(result["scores"]) == 0:
                found.append(None)
                continue
            best = int(torch.argmax(result["scores"]))
            found.append((result["boxes"][best].tolist(), float(result["scores"][best])))
        return found

    @torch.no_grad()
    def sam_box(self, image, box: list[float]) -> list[float] | None:
        """Tight box of SAM's single mask for the prompt box; None if the mask is empty or degenerate."""
        from torchvision.ops import masks_to_boxes

        mask = self.sam.mask(image, box)
        if int(mask.sum()) < 4:
            return None
        x0, y0, x1, y1 = masks_to_boxes(mask[None].float())[0].tolist()
        if x1 - x0 < 1 or y1 - y0 < 1:
            return None
        return [x0, y0, x1 + 1, y1 + 1]  # masks_to_boxes gives inclusive pixel indices


def _row(path, image, box, score, source, scale=1.0) -> dict:
    x0, y0, x1, y1 = (float(v) / scale for v in box)
    width, height = image.width / scale, image.height / scale
    x0, x1 = max(0.0, min(x0, width)), max(0.0, min(x1, width))
    y0, y1 = max(0.0, min(y0, height)), max(0.0, min(y1, height))
    return {"path": str(path), "width": round(width), "height": round(height),
            "x0": x0, "y0": y0, "x1": x1, "y1": y1, "score": float(score), "source": source}


def full_boxes(paths: Sequence[str | Path]) -> pd.DataFrame:
    rows = []
    for path in paths:
        image = load_rgb(path)
        rows.append(_row(path, image, (0, 0, image.width, image.height), 1.0, "full"))
    return pd.DataFrame(rows, columns=BOX_COLUMNS)


def annotation_boxes(paths: Sequence[str | Path], annotations: pd.DataFrame, source_file: str) -> pd.DataFrame:
    """Boxes a dataset ships, looked up by image path (a missing box is an error, not a silent full image)."""
    by_path = {str(Path(p)): r for p, r in zip(annotations["path"], annotations.itertuples(), strict=True)}
    rows = []
    for path in paths:
        image = load_rgb(path)
        ann = by_path.get(str(Path(path)))
        if ann is None:
            raise ValueError(f"{source_file}: no box for image {path}")
        rows.append(_row(path, image, (ann.x0, ann.y0, ann.x1, ann.y1), 1.0, "annotation"))
    return pd.DataFrame(rows, columns=BOX_COLUMNS)


def grounded_sam_boxes(paths: Sequence[str | Path], prompt: str, detector: GroundedSam,
                       max_side: int = 1333, batch_size: int = 4) -> pd.DataFrame:
    rows = []
    for start in range(0, len(paths), batch_size):
        chunk = list(paths[start:start + batch_size])
        originals = [load_rgb(p) for p in chunk]
        # Very large images are downscaled for the models; boxes are mapped back to full resolution.
        resized = [downscale(image, max_side) for image in originals]
        for path, original, image, hit in zip(chunk, originals, resized, detector.dino_boxes(resized, prompt),
                                              strict=True):
            scale = image.width / original.width
            if hit is None:
                rows.append(_row(path, image, (0, 0, image.width, image.height), 0.0, "full", scale))
                continue
            dino_box, score = hit
            mask_box = detector.sam_box(image, dino_box)
            source = "mask" if mask_box is not None else "dino"
            rows.append(_row(path, image, mask_box or dino_box, score, source, scale))
    frame = pd.DataFrame(rows, columns=BOX_COLUMNS)
    counts = frame["source"].value_counts().to_dict()
    log.info("prompt %r: %d images, box sources %s", prompt, len(frame), counts)
    if counts.get("full"):
        log.warning("prompt %r: no detection in %d of %d images; whole image used", prompt, counts["full"], len(frame))
    return frame

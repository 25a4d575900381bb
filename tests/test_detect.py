"""Detection backends on tiny models: valid boxes inside the image, fallbacks recorded."""
import pytest

from ChimeraPipe.boxes.detect import GroundedSam, annotation_boxes, full_boxes, grounded_sam_boxes, grounding_prompt
from ChimeraPipe.datasets.demo import read_annotations
from ChimeraPipe.models.specs import resolve_model


@pytest.fixture(scope="module")
def paths(shapes_root):
    return sorted(str(p) for p in (shapes_root / "train" / "circle").glob("*.png"))[:3]


def detector(models_dir, threshold):
    return GroundedSam(resolve_model("grounding_dino", "tiny", models_dir), resolve_model("sam", "tiny", models_dir),
                       box_threshold=threshold, text_threshold=threshold)


def check_inside(frame):
    assert ((frame.x0 >= 0) & (frame.x0 < frame.x1) & (frame.x1 <= frame.width)).all()
    assert ((frame.y0 >= 0) & (frame.y0 < frame.y1) & (frame.y1 <= frame.height)).all()


def test_prompt():
    assert grounding_prompt("Boeing_737") == "boeing 737."
    assert grounding_prompt("737", noun="aircraft") == "737 aircraft."


def test_grounded_sam_produces_boxes(models_dir, paths):
    frame = grounded_sam_boxes(paths, "circle.", detector(models_dir, 0.0))
    assert len(frame) == 3
    assert set(frame.source) <= {"mask", "dino"}
    check_inside(frame)


def test_no_detection_falls_back_to_full_and_says_so(models_dir, paths, caplog):
    frame = grounded_sam_boxes(paths, "circle.", detector(models_dir, 1.01))
    assert (frame.source == "full").all()
    assert (frame.x1 == frame.width).all() and (frame.score == 0).all()
    assert "no detection in 3 of 3" in caplog.text


def test_large_images_are_detected_downscaled_and_mapped_back(models_dir, tmp_path):
    from PIL import Image

    Image.new("RGB", (1200, 600), (30, 60, 90)).save(tmp_path / "big.png")
    frame = grounded_sam_boxes([str(tmp_path / "big.png")], "thing.", detector(models_dir, 0.0), max_side=300)
    assert frame.loc[0, "width"] == 1200 and frame.loc[0, "height"] == 600
    check_inside(frame)


def test_annotation_and_full_backends(shapes_root, paths):
    annotations, source = read_annotations(shapes_root)
    frame = annotation_boxes(paths, annotations, source)
    assert (frame.source == "annotation").all()
    check_inside(frame)
    truth = annotations.set_index("path").loc[paths]
    assert frame.x0.tolist() == truth.x0.tolist()
    with pytest.raises(ValueError, match="no box for image"):
        annotation_boxes(paths, annotations.iloc[:0], source)
    full = full_boxes(paths)
    assert (full.source == "full").all() and (full.x0 == 0).all()


def tiny_original_sam(checkpoint=None):
    import importlib

    build = importlib.import_module("segment_anything.build_sam")
    return build._build_sam(encoder_embed_dim=16, encoder_depth=1, encoder_num_heads=1,
                            encoder_global_attn_indexes=[0], checkpoint=checkpoint)


def test_original_sam_checkpoint_loads_safely_and_boxes(tmp_path, models_dir, paths, monkeypatch):
    """An original SAM .pth (here a tiny architecture registered for the test) is read with weights_only
    and gives the same kind of boxes through the whole Grounded-SAM path."""
    import torch

    from ChimeraPipe.boxes import detect

    monkeypatch.setitem(detect.ORIGINAL_SAM_BUILDERS, "vit_tiny", tiny_original_sam)
    torch.manual_seed(0)
    checkpoint = tmp_path / "sam_vit_tiny_0000.pth"
    torch.save(tiny_original_sam().state_dict(), checkpoint)
    assert resolve_model("sam", str(checkpoint), models_dir) == str(checkpoint)
    found = GroundedSam(resolve_model("grounding_dino", "tiny", models_dir), str(checkpoint), box_threshold=0.0,
                        text_threshold=0.0)
    assert isinstance(found.sam, detect.OriginalSam)
    frame = grounded_sam_boxes(paths[:2], "circle.", found)
    check_inside(frame)
    assert set(frame.source) <= {"mask", "dino", "full"}
    # A pickle that runs code is refused, not executed.
    evil = tmp_path / "sam_vit_tiny_evil.pth"
    torch.save({"state": object()}, evil)
    with pytest.raises(Exception, match="(?i)weights_only|unsupported|global"):
        detect.OriginalSam(evil)
    with pytest.raises(ValueError, match="architecture"):
        detect.OriginalSam(tmp_path / "mystery.pth")

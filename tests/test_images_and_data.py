"""Real-world image handling, the demo dataset and K-shot splits, and their bad-input errors."""
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ChimeraPipe.core.images import ImageLoadError, decode_jpeg_rgb, libjpeg_decodable, load_rgb
from ChimeraPipe.datasets import DatasetLayoutError, dataset_classes
from ChimeraPipe.datasets.demo import make_shapes_dataset, read_annotations

from helpers import shots_of


def test_modes_become_rgb(tmp_path):
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (0, 255, 0, 255))
    rgba.save(tmp_path / "rgba.png")
    out = np.asarray(load_rgb(tmp_path / "rgba.png"))
    assert out[0, 0].tolist() == [0, 255, 0] and out[1, 1].tolist() == [0, 0, 0]  # transparent -> black
    Image.new("L", (5, 3), 7).save(tmp_path / "l.png")
    Image.new("LA", (5, 3), (7, 255)).save(tmp_path / "la.png")
    Image.new("P", (5, 3), 1).save(tmp_path / "p.png")
    Image.new("CMYK", (5, 3), (0, 0, 0, 0)).save(tmp_path / "cmyk.jpg")
    Image.fromarray(np.array([[0, 4095], [2048, 100]], dtype=np.uint16)).save(tmp_path / "i16.png")
    for name in ("l.png", "la.png", "p.png", "cmyk.jpg", "i16.png"):
        image = load_rgb(tmp_path / name)
        assert image.mode == "RGB"
    assert np.asarray(load_rgb(tmp_path / "i16.png"))[0, 1].tolist() == [255, 255, 255]


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (6, 2), (1, 2, 3))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    image.save(tmp_path / "rot.jpg", exif=exif)
    assert load_rgb(tmp_path / "rot.jpg").size == (2, 6)


def test_large_images_downscale_and_tiny_ones_load(tmp_path):
    Image.new("RGB", (3000, 1500)).save(tmp_path / "big.png")
    assert load_rgb(tmp_path / "big.png", max_side=1000).size == (1000, 500)
    Image.new("RGB", (8, 8)).save(tmp_path / "small.png")
    assert load_rgb(tmp_path / "small.png").size == (8, 8)


@pytest.mark.parametrize("kind", ["420", "444", "progressive", "grey"])
def test_jpegs_decode_to_pils_pixels_by_libjpeg(tmp_path, kind):
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        photo = Image.open(handle).convert("L" if kind == "grey" else "RGB").resize((200, 150))
    options = {"420": dict(subsampling=2), "444": dict(subsampling=0), "progressive": dict(progressive=True),
               "grey": {}}[kind]
    photo.save(tmp_path / "a.jpg", quality=90, **options)
    data = (tmp_path / "a.jpg").read_bytes()
    with Image.open(tmp_path / "a.jpg") as image:
        assert libjpeg_decodable(image, data)
        expected = np.asarray(image.convert("RGB"))
    assert np.array_equal(decode_jpeg_rgb(data), expected)
    assert np.array_equal(np.asarray(load_rgb(tmp_path / "a.jpg")), expected)
    with Image.open(tmp_path / "a.jpg") as image:
        assert not libjpeg_decodable(image, data[:-100])       # truncated: PIL's decoder, which raises


def test_corrupt_and_truncated_files_name_the_file(tmp_path):
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    with pytest.raises(ImageLoadError, match="junk.png"):
        load_rgb(tmp_path / "junk.png")
    Image.new("RGB", (64, 64), (9, 9, 9)).save(tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match="cut.jpg"):
        load_rgb(tmp_path / "cut.jpg")
    with pytest.raises(ImageLoadError, match="missing.png"):
        load_rgb(tmp_path / "missing.png")


def test_shapes_dataset_layout_and_ground_truth(shapes_root):
    assert [cid for cid, _ in dataset_classes("imagefolder", shapes_root)] == ["circle", "square", "triangle"]
    boxes, _ = read_annotations(shapes_root)
    assert len(boxes) == 3 * (8 + 6)
    sizes = set()
    for row in boxes.itertuples():
        image = load_rgb(row.path)
        sizes.add(image.size)
        assert 0 <= row.x0 < row.x1 <= image.width and 0 <= row.y0 < row.y1 <= image.height
    assert len(sizes) > 10  # varied sizes, so crops and boxes matter
    total = sum(f.stat().st_size for f in shapes_root.rglob("*") if f.is_file())
    assert total < 5 * 2**20


def test_shapes_dataset_is_deterministic(tmp_path, shapes_root):
    again = make_shapes_dataset(tmp_path / "again", seed=0)
    for rel in ("train/circle/000.png", "test/triangle/005.png"):
        assert (again / rel).read_bytes() == (shapes_root / rel).read_bytes()


def test_choose_shots_is_seeded(shapes_root):
    classes = [cid for cid, _ in dataset_classes("imagefolder", shapes_root)]
    a, b = shots_of(shapes_root, classes, 4, 0), shots_of(shapes_root, classes, 4, 0)
    pd.testing.assert_frame_equal(a, b)
    assert a.groupby("class").size().tolist() == [4, 4, 4]
    assert not shots_of(shapes_root, classes, 4, 1)["path"].equals(a["path"])


def test_bad_datasets_are_named(tmp_path, shapes_root):
    with pytest.raises(DatasetLayoutError, match="fewer than shots=9"):
        shots_of(shapes_root, ["circle"], 9, 0)
    with pytest.raises(DatasetLayoutError, match="nowhere does not exist"):
        dataset_classes("imagefolder", tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetLayoutError, match="train/ not found"):
        dataset_classes("imagefolder", tmp_path / "empty")
    broken = tmp_path / "broken"
    (broken / "train" / "cat").mkdir(parents=True)
    (broken / "train" / "cat" / "a.png").write_bytes(b"garbage")
    with pytest.raises(ImageLoadError, match="a.png"):
        shots_of(broken, ["cat"], 1, 0)

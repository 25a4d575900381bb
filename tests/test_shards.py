"""Synthetic sets in a few tar shards: batches kept as they finish, shards never rewritten, references read."""
import io
import tarfile

import pytest
from PIL import Image

from ChimeraPipe.core import shards
from ChimeraPipe.core.images import ImageLoadError, load_rgb
from ChimeraPipe.core.shards import ShardStore, encode


def image(value: int) -> Image.Image:
    return Image.new("RGB", (8, 8), (value, 255 - value, 0))


def batch(indices, fmt="png"):
    return [(i, encode(image(i), fmt, 95), {"seed": i}) for i in indices]


def state(path):
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns


def test_batches_become_shards_and_a_finished_shard_is_never_rewritten(tmp_path):
    store = ShardStore(tmp_path, shard_size=4, fmt="png")
    store.add_batch(batch([0, 1, 2]))
    assert store.shards() == [] and sorted(store.done()) == [0, 1, 2]          # a batch is kept as it finishes
    store.add_batch(batch([3, 4, 5]))
    assert [p.name for p in store.shards()] == ["shard-000000-000003.tar"]      # 4 images make a shard
    assert sorted(store.done()) == [0, 1, 2, 3, 4, 5]
    first = state(store.shards()[0])
    store.compact(final=True)
    assert [p.name for p in store.shards()] == ["shard-000000-000003.tar", "shard-000004-000005.tar"]
    assert not list(tmp_path.glob(".pending-*"))
    store.add_batch(batch([6, 7, 8, 9]))                                         # a larger volume later
    store.compact(final=True)
    assert state(store.shards()[0]) == first and len(store.shards()) == 3
    for i, reference in store.done().items():
        assert load_rgb(reference).getpixel((0, 0)) == (i, 255 - i, 0)


def test_a_merge_killed_before_its_clean_up_loses_and_doubles_nothing(tmp_path):
    store = ShardStore(tmp_path, shard_size=2, fmt="jpeg")
    store.add_batch(batch([0], "jpeg"))
    pending = list(tmp_path.glob(".pending-*.tar"))
    keep = {p: p.read_bytes() for p in pending}
    store.add_batch(batch([1], "jpeg"))               # merges 0 and 1 into a shard, removes the batches
    for path, data in keep.items():                   # ... as if killed before removing the first batch
        path.write_bytes(data)
    assert sorted(store.done()) == [0, 1] and shards.is_ref(store.done()[0])
    assert store.done()[0].split("::")[0].endswith("shard-000000-000001.tar")   # the shard wins
    store.compact()
    assert not list(tmp_path.glob(".pending-*"))


def test_shard_members_are_webdataset_pairs_and_bad_references_name_the_shard(tmp_path):
    store = ShardStore(tmp_path, shard_size=2, fmt="webp")
    store.add_batch(batch([0, 1], "webp"))
    shard = store.shards()[0]
    with tarfile.open(shard) as tar:
        assert tar.getnames() == ["000000.webp", "000000.json", "000001.webp", "000001.json"]
    assert Image.open(io.BytesIO(shards.read(f"{shard}::000001.webp"))).size == (8, 8)
    with pytest.raises(ImageLoadError, match="no member '000009.webp'"):
        load_rgb(f"{shard}::000009.webp")
    with pytest.raises(ImageLoadError, match="gone.tar"):
        load_rgb(f"{tmp_path}/gone.tar::000000.webp")
    with pytest.raises(ValueError, match="generate.format"):
        encode(image(0), "gif", 95)


def test_jpeg_is_several_times_smaller_than_png_for_a_natural_image():
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        photo = Image.open(handle).convert("RGB").resize((512, 512), Image.Resampling.LANCZOS)
    png, jpeg = len(encode(photo, "png", 95)), len(encode(photo, "jpeg", 95))
    assert png > 2.5 * jpeg and 60_000 < jpeg < 200_000

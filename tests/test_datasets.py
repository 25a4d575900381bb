"""Dataset readers on miniature replicas in each official layout: paths, labels, display names, splits,
the shot draw, and a clear message for every kind of broken download."""
import json
import pickle
from pathlib import Path

import pandas as pd
import pytest

from ChimeraPipe import datasets
from ChimeraPipe.datasets import DatasetLayoutError, dataset_classes, dataset_table, draw_shots, eval_split, safe_id
from ChimeraPipe.datasets.names import baseline_lists, words

from replicas import (
    AIRCRAFT_CLASSES,
    CIFAR_CLASSES,
    COOP_CLASSES,
    write_aircraft,
    write_coop,
    write_isic,
    write_replica,
)

COOP_KINDS = sorted(COOP_CLASSES)


def table_of(kind, tmp_path, **options):
    root = write_replica(kind, tmp_path / kind, **options)
    return root, dataset_table(kind, root, decoded_dir=tmp_path / "decoded")


@pytest.mark.parametrize("kind", COOP_KINDS)
def test_coop_layouts_give_the_split_files_entries(tmp_path, kind):
    root, table = table_of(kind, tmp_path)
    split_file = next(root.glob("split_zhou_*.json"))
    entries = json.loads(split_file.read_text())
    image_dir = root / datasets.reader(kind).image_dir
    for split in ("train", "val", "test"):
        rows = table[table["split"] == split]
        assert list(rows["path"]) == [str(image_dir / rel) for rel, _, _ in entries[split]]
        assert list(rows["label"]) == [label for _, label, _ in entries[split]]
    assert all(Path(p).is_file() for p in table["path"])
    coop_names = [name for name, _ in COOP_CLASSES[kind]]
    coop = dataset_table(kind, root, naming="coop")
    assert list(dict.fromkeys(coop["class_name"])) == coop_names   # CoOp's spelling, as in the split file
    assert [n for _, n in dataset_classes(kind, root, "coop")] == coop_names
    assert all("/" not in c and not c.startswith(".") for c in table["class"])  # ids are path-safe
    assert eval_split(table) == "test"


# CoOp's own spelling of each dataset's classes, derived from the baselines' names the way CoOp's readers
# write their split files (lower-cased pet breeds from the file names, the car's year first, EuroSAT's long
# names, underscores in food and scene folders, Caltech's renamed folders).
EUROSAT_COOP = {"AnnualCrop": "Annual Crop Land", "HerbaceousVegetation": "Herbaceous Vegetation Land",
                "Highway": "Highway or Road", "Industrial": "Industrial Buildings", "Pasture": "Pasture Land",
                "PermanentCrop": "Permanent Crop Land", "Residential": "Residential Buildings",
                "SeaLake": "Sea or Lake"}
CALTECH_FOLDERS = {"face": "Faces", "leopard": "Leopards", "motorbike": "Motorbikes", "airplane": "airplanes"}


def coop_spelling(kind: str, name: str) -> tuple[str, str]:
    """(CoOp's class name, the image folder) of one of the baselines' names."""
    if kind == "oxford_pets":
        return name.lower().replace(" ", "_"), name.replace(" ", "_")
    if kind == "stanford_cars":
        *model, year = name.split(" ")
        return " ".join([year, *model]), ""
    if kind == "eurosat":
        return EUROSAT_COOP.get(name, name), name
    if kind == "food101":
        return name.replace("_", " "), name
    if kind == "sun397":
        return name, "a/" + name.replace(" ", "_")
    if kind == "caltech101":
        return name, CALTECH_FOLDERS.get(name, name)
    return name, name.replace(" ", "_")


@pytest.mark.parametrize("kind", sorted(baseline_lists()))
def test_default_names_are_the_baselines_lists(tmp_path, kind):
    """Every dataset the baselines cover, at its full class count in its official layout with CoOp's (or the
    official variants.txt) spelling: the default naming gives DataDream's list, in label order."""
    expected = baseline_lists()[kind]
    if kind == "fgvc_aircraft":
        root = write_aircraft(tmp_path / kind, classes=expected, counts={"train": 1}, images=False)
    else:
        root = write_coop(kind, tmp_path / kind, classes=[coop_spelling(kind, n) for n in expected],
                          counts={"train": 1, "test": 1}, images=False)
    assert [name for _, name in dataset_classes(kind, root)] == expected
    if kind != "fgvc_aircraft":
        assert [name for _, name in dataset_classes(kind, root, "coop")] == [coop_spelling(kind, n)[0]
                                                                             for n in expected]


def test_anchor_facts_of_the_baselines_spelling():
    lists = baseline_lists()
    assert lists["caltech101"][:5] == ["face", "leopard", "motorbike", "accordion", "airplane"]
    assert "car_side" in lists["caltech101"] and "water_lilly" in lists["caltech101"]
    assert lists["oxford_pets"][1] == "American Bulldog" and "German Shorthaired" in lists["oxford_pets"]
    assert lists["stanford_cars"][0] == "AM General Hummer SUV 2000" and lists["eurosat"][0] == "AnnualCrop"
    assert lists["food101"][0] == "apple_pie" and "outdoor apartment_building" in lists["sun397"]
    assert "F/A-18" in lists["fgvc_aircraft"] and len(lists["sun397"]) == 397 and len(lists["stanford_cars"]) == 196
    for names in lists.values():  # the word-wise match is one-to-one within every list
        assert len({words(n) for n in names}) == len(names)


def test_a_class_the_baselines_do_not_have_is_named(tmp_path):
    root = write_coop("dtd", tmp_path / "dtd", classes=[("banded", "banded"), ("plaid", "plaid")], images=False)
    with pytest.raises(DatasetLayoutError, match="'plaid' is not in the baselines' class list"):
        dataset_classes("dtd", root)
    assert [n for _, n in dataset_classes("dtd", root, "coop")] == ["banded", "plaid"]


def test_baseline_spelling_of_the_awkward_replicas(tmp_path):
    expect = {"eurosat": ["AnnualCrop", "Forest", "HerbaceousVegetation"],
              "stanford_cars": ["Ram C/V Cargo Van Minivan 2012", "Tesla Model S Sedan 2012",
                                "AM General Hummer SUV 2000"],
              "caltech101": ["airplane", "face", "dalmatian"],
              "oxford_pets": ["Abyssinian", "Great Pyrenees", "Pug"],
              "food101": ["apple_pie", "creme_brulee", "pho"]}
    for kind, names in expect.items():
        root = write_replica(kind, tmp_path / kind, images=False)
        assert [n for _, n in dataset_classes(kind, root)] == names, kind
    cars = dict(dataset_classes("stanford_cars", tmp_path / "stanford_cars"))
    assert cars["Ram_C_V_Cargo_Van_Minivan_2012"] == "Ram C/V Cargo Van Minivan 2012"


def test_fgvc_aircraft_official_split_and_slash_names(tmp_path):
    root, table = table_of("fgvc_aircraft", tmp_path)
    assert [n for _, n in dataset_classes("fgvc_aircraft", root, "coop")] == AIRCRAFT_CLASSES  # variants.txt
    ids = dict(dataset_classes("fgvc_aircraft", root, "coop"))
    assert ids == {"707-320": "707-320", "F_A-18": "F/A-18", "Falcon_2000": ".Falcon 2000"}
    assert [n for _, n in dataset_classes("fgvc_aircraft", root)] == ["707-320", "F/A-18", "Falcon 2000"]
    for split in ("train", "val", "test"):
        lines = (root / f"images_variant_{split}.txt").read_text().split("\n")[:2]
        rows = table[table["split"] == split].head(2)
        assert list(rows["path"]) == [str(root / "images" / f"{line.split(' ')[0]}.jpg") for line in lines]
        assert list(rows["class_name"]) == [line.split(" ", 1)[1] for line in lines]


def test_isic_codes_splits_and_fallback_to_validation(tmp_path):
    root, table = table_of("isic2018", tmp_path)
    assert list(dict.fromkeys(table["class"])) == ["MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC"]
    truth = pd.read_csv(root / "ISIC2018_Task3_Training_GroundTruth" / "ISIC2018_Task3_Training_GroundTruth.csv")
    train = table[table["split"] == "train"]
    assert list(train["path"]) == [str(root / "ISIC2018_Task3_Training_Input" / f"{n}.jpg") for n in truth["image"]]
    assert list(train["class"]) == list(truth[["MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC"]].idxmax(axis=1))
    assert eval_split(table) == "test"
    no_test = write_isic(tmp_path / "isic-no-test", with_test=False)
    assert eval_split(dataset_table("isic2018", no_test)) == "val"  # evaluation says it used Validation


def test_cifar10_batches_decode_once_and_refuse_code(tmp_path):
    root, table = table_of("cifar10", tmp_path)
    assert list(dict.fromkeys(table["class_name"])) == CIFAR_CLASSES
    assert table.split.value_counts().to_dict() == {"train": 100, "test": 20}
    assert all(Path(p).is_file() for p in table["path"]) and (tmp_path / "decoded" / "DONE").is_file()
    stamp = (tmp_path / "decoded" / "DONE").stat().st_mtime_ns
    dataset_table("cifar10", root, decoded_dir=tmp_path / "decoded")
    assert (tmp_path / "decoded" / "DONE").stat().st_mtime_ns == stamp  # decoded once
    evil = tmp_path / "evil"
    (evil / "cifar-10-batches-py").mkdir(parents=True)

    class Boom:
        def __reduce__(self):
            return (print, ("ran code",))

    with open(evil / "cifar-10-batches-py" / "batches.meta", "wb") as handle:
        pickle.dump({b"label_names": [Boom()]}, handle)
    with pytest.raises(DatasetLayoutError, match="refusing to load builtins.print"):
        dataset_classes("cifar10", evil)


def test_imagefolder_keeps_the_demo_layout(tmp_path, shapes_root):
    table = dataset_table("imagefolder", shapes_root)
    assert list(dict.fromkeys(table["class"])) == ["circle", "square", "triangle"]
    assert table.split.value_counts().to_dict() == {"train": 24, "test": 18}


def test_shot_draw_is_seeded_from_train_only_and_a_shot_list_is_honoured(tmp_path):
    root, table = table_of("oxford_pets", tmp_path)
    classes = list(dict.fromkeys(table["class"]))
    a, b = draw_shots(table, classes, 2, 0), draw_shots(table, classes, 2, 0)
    pd.testing.assert_frame_equal(a, b)
    assert set(a["path"]) <= set(table.loc[table["split"] == "train", "path"])
    assert a.groupby("class").size().to_dict() == {c: 2 for c in classes}
    assert list(a.columns) == ["class", "class_name", "label", "path", "shot"]
    train = table[table["split"] == "train"]
    listed = pd.DataFrame({"class": [train[train["class"] == c]["class_name"].iloc[0] for c in classes for _ in (0, 1)],
                           "path": [str(Path(p).relative_to(root)) for c in classes
                                    for p in train[train["class"] == c]["path"].iloc[-2:]]})
    listed.to_csv(tmp_path / "shots.csv", index=False)
    chosen = draw_shots(table, classes, 2, 0, tmp_path / "shots.csv", root)
    assert list(chosen["path"]) == [str(root / p) for p in listed["path"]]
    bad = listed.copy()
    bad.loc[0, "path"] = str(Path(table.loc[table["split"] == "test", "path"].iloc[0]).relative_to(root))
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DatasetLayoutError, match="is not a training image"):
        draw_shots(table, classes, 2, 0, tmp_path / "bad.csv", root)


@pytest.mark.parametrize("kind, remove, message", [
    ("oxford_pets", "split_zhou_OxfordPets.json",
     "oxford_pets: split_zhou_OxfordPets.json not found in .*; expected layout: images/, annotations/, "
     "split_zhou_OxfordPets.json"),
    ("flowers102", "jpg", "flowers102: jpg/ not found"),
    ("fgvc_aircraft", "images_variant_test.txt", "fgvc_aircraft: images_variant_test.txt not found"),
    ("isic2018", "ISIC2018_Task3_Training_GroundTruth", "isic2018: ISIC2018_Task3_Training_GroundTruth"),
    ("cifar10", "cifar-10-batches-py/batches.meta", "cifar10: cifar-10-batches-py/batches.meta not found"),
])
def test_partial_downloads_name_the_missing_file_and_the_layout(tmp_path, kind, remove, message):
    import shutil

    root = write_replica(kind, tmp_path / kind)
    target = root / remove
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(DatasetLayoutError, match=message):
        dataset_table(kind, root, decoded_dir=tmp_path / "decoded")
    with pytest.raises(DatasetLayoutError, match=f"{kind}: dataset root .*nowhere does not exist"):
        dataset_classes(kind, tmp_path / "nowhere")


def test_missing_split_images_stop_or_are_skipped_and_listed(tmp_path):
    root = write_replica("dtd", tmp_path / "dtd")
    gone = sorted((root / "images" / "banded").glob("*.jpg"))[:2]
    for path in gone:
        path.unlink()
    with pytest.raises(DatasetLayoutError, match=f"2 image\\(s\\) of the split are missing .*{gone[0].name}"):
        dataset_table("dtd", root)
    table = dataset_table("dtd", root, on_missing="skip")
    assert sorted(table.attrs["skipped"]) == sorted(str(p) for p in gone)
    assert not set(table["path"]) & {str(p) for p in gone}


def test_corrupt_split_file_is_named(tmp_path):
    root = write_replica("eurosat", tmp_path / "eurosat", images=False)
    (root / "split_zhou_EuroSAT.json").write_text("{not json")
    with pytest.raises(DatasetLayoutError, match="split_zhou_EuroSAT.json is not a readable JSON file"):
        dataset_classes("eurosat", root)


def test_safe_ids():
    assert safe_id("F/A-18") == "F_A-18"
    assert safe_id(".hidden name") == "hidden_name"
    assert safe_id("crème brûlée") == "creme_brulee"
    assert safe_id("///") == "class"
    assert datasets.class_ids(["a/b", "a b"]) == ["a_b", "a_b_1"]  # a clash keeps ids unique

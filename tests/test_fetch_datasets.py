"""Datasets fetched into their readers' layouts: replica archives in the official layouts served from 127.0.0.1
(no network), checked against checksums, and fetches that break off part-way leave nothing that looks done."""
import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from ChimeraPipe import datasets
from ChimeraPipe.datasets import fetch
from ChimeraPipe.datasets.fetch import FetchError, ManualDownloadError, fetch_dataset

from replicas import FileServer, replica_downloads


def published(monkeypatch, kind: str, files: dict[str, bytes]) -> None:
    """The kind's recipe with the replicas' MD5s where the official download publishes one (the rest, as
    officially, without)."""
    recipe = fetch.RECIPES[kind]
    downloads = tuple(dataclasses.replace(d, md5=hashlib.md5(files[d.file]).hexdigest() if d.md5 else None)
                      for d in recipe.downloads)
    monkeypatch.setitem(fetch.RECIPES, kind, dataclasses.replace(recipe, downloads=downloads))


@pytest.fixture
def serve():
    servers = []

    def start(files):
        servers.append(FileServer(files))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def looks_done(root) -> list[str]:
    """The stamps of completed downloads (not the journals of moves in progress)."""
    stamps = (root / fetch.WORK).glob("*.json") if (root / fetch.WORK).is_dir() else []
    return sorted(p.name for p in stamps if not p.name.endswith(".moving.json"))


@pytest.mark.parametrize("kind", ["eurosat", "fgvc_aircraft", "caltech101", "dtd", "cifar10"])
def test_a_fetch_gives_a_root_the_reader_reads(tmp_path, serve, monkeypatch, kind):
    files = replica_downloads(kind, tmp_path / "src")
    published(monkeypatch, kind, files)
    server = serve(files)
    root = tmp_path / "data" / kind
    records = fetch_dataset(kind, root, urls=server.urls())
    table = datasets.dataset_table(kind, root, decoded_dir=tmp_path / "decoded")
    assert set(table["split"]) >= {"train", "test"} and len(table) > 0
    for record in records:
        assert record["sha256"] == hashlib.sha256(files[record["file"]]).hexdigest()
        assert record["md5_published"] in (None, record["md5"])
    assert not list((root / fetch.WORK).glob("*.part")) and not list((root / fetch.WORK).glob("*.extracted"))
    before = len(server.requests)
    assert fetch_dataset(kind, root, urls=server.urls()) == records   # done: nothing fetched again
    assert len(server.requests) == before


def test_a_corrupt_download_is_caught_and_leaves_nothing_that_looks_done(tmp_path, serve, monkeypatch):
    files = replica_downloads("eurosat", tmp_path / "src")
    published(monkeypatch, "eurosat", files)
    server = serve(files)
    server.corrupt = {"EuroSAT.zip"}
    root = tmp_path / "eurosat"
    with pytest.raises(FetchError, match="EuroSAT.zip: MD5 .* is not the published"):
        fetch_dataset("eurosat", root, urls=server.urls())
    assert looks_done(root) == [] and not (root / "2750").exists()
    assert not (root / fetch.WORK / "EuroSAT.zip").exists()
    server.corrupt = set()
    fetch_dataset("eurosat", root, urls=server.urls())
    assert len(datasets.dataset_table("eurosat", root)) == 3 * 9


def test_a_download_cut_short_is_caught_by_its_archive_and_the_rerun_starts_over(tmp_path, serve, monkeypatch):
    files = replica_downloads("fgvc_aircraft", tmp_path / "src")
    published(monkeypatch, "fgvc_aircraft", files)   # as officially: no MD5 to catch it
    server = serve(files)
    server.cut = 10                                   # every response breaks off half-way
    root = tmp_path / "fgvc" / "data"
    with pytest.raises(FetchError, match="fgvc-aircraft-2013b.tar.gz: cannot extract .*incomplete or corrupt"):
        fetch_dataset("fgvc_aircraft", root, urls=server.urls())
    assert looks_done(root) == [] and not (root / "images").exists()
    assert not [p.name for p in (root / fetch.WORK).iterdir() if "fgvc" in p.name]   # no half file kept
    server.cut = 0
    records = fetch_dataset("fgvc_aircraft", root, urls=server.urls())
    assert server.requests[-1] == ("fgvc-aircraft-2013b.tar.gz", None)   # the whole file, from the start
    assert records[0]["md5_published"] is None   # no published checksum: the SHA-256 of what came is recorded
    assert records[0]["sha256"] == hashlib.sha256(files["fgvc-aircraft-2013b.tar.gz"]).hexdigest()
    assert len(datasets.dataset_table("fgvc_aircraft", root)) == 3 * 9


def test_an_unreachable_server_is_a_clear_error(tmp_path, serve, monkeypatch):
    files = replica_downloads("dtd", tmp_path / "src")
    published(monkeypatch, "dtd", files)
    server = serve(files)
    urls = server.urls()
    server.stop()
    with pytest.raises(FetchError, match="dtd-r1.0.1.tar.gz: the download failed .*run the fetch again"):
        fetch_dataset("dtd", tmp_path / "dtd", urls=urls)
    assert looks_done(tmp_path / "dtd") == []


def test_a_crash_while_moving_into_place_is_repaired_by_the_rerun(tmp_path, serve, monkeypatch):
    files = replica_downloads("dtd", tmp_path / "src")
    published(monkeypatch, "dtd", files)
    server = serve(files)
    root = tmp_path / "dtd"
    moves, replace = [], fetch.os.replace

    def crash_on_second_move(src, dst):   # the second part moved into the root (images/ is there)
        if Path(dst).parent == root and not Path(dst).name.startswith("."):
            moves.append(dst)
            if len(moves) == 2:
                raise OSError("killed")
        return replace(src, dst)

    monkeypatch.setattr(fetch.os, "replace", crash_on_second_move)
    with pytest.raises(OSError, match="killed"):
        fetch_dataset("dtd", root, urls=server.urls())
    assert looks_done(root) == [] and (root / "images").is_dir()   # half moved, no stamp
    monkeypatch.setattr(fetch.os, "replace", replace)
    fetch_dataset("dtd", root, urls=server.urls())
    assert len(datasets.dataset_table("dtd", root)) == 3 * 9 and (root / "labels" / "README").is_file()


def test_split_files_come_through_gdown(tmp_path, serve, monkeypatch):
    import gdown

    files = replica_downloads("eurosat", tmp_path / "src")
    published(monkeypatch, "eurosat", files)
    server = serve(files)
    asked = []

    def fake_gdown(id=None, output=None, quiet=False, resume=False, **_):   # noqa: A002 - gdown's signature
        asked.append(id)
        with open(output, "wb") as handle:
            handle.write(files["split_zhou_EuroSAT.json"])
        return output

    monkeypatch.setattr(gdown, "download", fake_gdown)
    root = tmp_path / "eurosat"
    records = fetch_dataset("eurosat", root, urls=server.urls(["EuroSAT.zip"]))
    assert asked == ["1Ip7yaCWFi0eaOFUGga0lUdVi_DDQth1o"]   # CoOp's DATASETS.md
    split = next(r for r in records if r["file"] == "split_zhou_EuroSAT.json")
    assert split["url"].endswith("id=1Ip7yaCWFi0eaOFUGga0lUdVi_DDQth1o") and split["md5_published"] is None
    assert json.loads((root / "split_zhou_EuroSAT.json").read_text())["train"]
    assert len(datasets.dataset_table("eurosat", root)) == 3 * 9


def test_what_cannot_be_fetched_says_what_to_put_where(tmp_path, monkeypatch):
    import gdown

    def fake_gdown(id=None, output=None, **_):   # noqa: A002 - gdown's signature
        Path(output).write_text(json.dumps({"train": [], "test": []}))
        return output

    monkeypatch.setattr(gdown, "download", fake_gdown)
    with pytest.raises(ManualDownloadError, match=r"cars_train/, cars_test/, devkit/, cars_test_annos_withlabels.mat"
                                                  r" missing .*official site is gone"):
        fetch_dataset("stanford_cars", tmp_path / "cars")
    assert (tmp_path / "cars" / "split_zhou_StanfordCars.json").is_file()   # what could be fetched, was
    with pytest.raises(ManualDownloadError, match="imagefolder: no download"):
        fetch_dataset("imagefolder", tmp_path / "mine")
    with pytest.raises(FetchError, match=r"\['nope.zip'\] are not downloads of eurosat"):
        fetch_dataset("eurosat", tmp_path / "e", urls={"nope.zip": "http://127.0.0.1:1/nope.zip"})


def test_every_recipe_places_what_its_reader_expects():
    """Each kind's downloads name the parts of the layout its reader requires (no network)."""
    from ChimeraPipe.datasets.coop import COOP_DATASETS

    for kind, spec in COOP_DATASETS.items():
        plan = fetch.recipe(kind)
        placed = {dest for d in plan.downloads for _, dest in d.members} | {d.file for d in plan.downloads
                                                                           if not d.members} | set(plan.manual)
        assert spec.split_file in placed, kind
        image_dir = spec.image_dir.rstrip("/")
        assert image_dir == "." or image_dir in placed, kind
    assert {"cifar-10-batches-py"} == {dest for d in fetch.recipe("cifar10").downloads for _, dest in d.members}
    isic = {dest for d in fetch.recipe("isic2018").downloads for _, dest in d.members}
    assert "ISIC2018_Task3_Training_GroundTruth" in isic and len(isic) == 6


def test_fetch_datasets_plans_one_fetch_per_dataset_before_any_is_there(tmp_path):
    """`snakemake fetch_datasets` plans while the datasets are still missing; demo datasets are not fetched."""
    import yaml

    from test_workflow import REPO, planned_jobs, snakemake

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config.update(results=str(tmp_path / "results"), data_root=str(tmp_path / "data"))
    config["datasets"].update(eurosat={"kind": "eurosat", "root": "eurosat"},
                              cars={"kind": "stanford_cars", "root": "stanford_cars"})
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    result = snakemake("-n", "fetch_datasets", configfile=tmp_path / "c.yaml")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert planned_jobs(result) == {"fetch_dataset": 2, "fetch_datasets": 1}
    assert str(tmp_path / "results" / "fetched" / "eurosat.json") in result.stdout

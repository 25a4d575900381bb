"""Classes grouped into parts: partitioning, class-by-class resume, and the part index."""
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ChimeraPipe.pipeline.parts import PartIndexError, class_files, partition, read_index, run_classes, write_index


@given(st.lists(st.text("abcxyz_", min_size=1, max_size=6), unique=True, max_size=60), st.integers(1, 20))
def test_partition_keeps_every_class_once_in_order(classes, per_job):
    parts = partition(classes, per_job)
    assert [c for chunk in parts.values() for c in chunk] == classes
    assert all(1 <= len(chunk) <= per_job for chunk in parts.values())
    assert list(parts) == sorted(parts)  # names sort in class order
    assert len(parts) == -(-len(classes) // per_job)


def test_partition_names_and_bad_size():
    assert partition(["a", "b", "c"], 2) == {"p000": ["a", "b"], "p001": ["c"]}
    assert list(partition([str(i) for i in range(1001)], 1))[-1] == "p1000"
    with pytest.raises(ValueError, match="classes_per_job"):
        partition(["a"], 0)


class Stage:
    """A toy per-class stage that records which classes it really ran."""

    def __init__(self, root, settings="s1"):
        self.root, self.settings, self.ran = root, settings, []

    def __call__(self, classes, fail_on=None):
        def work(cls):
            if cls == fail_on:
                raise RuntimeError("killed")
            self.ran.append(cls)
            (self.root / cls).mkdir(parents=True, exist_ok=True)
            (self.root / cls / "out.txt").write_text(f"{cls}:{self.settings}")

        return run_classes(classes, lambda c: self.root / c, lambda c: {"settings": self.settings},
                           lambda c: {"out": str(self.root / c / "out.txt")}, work, "toy")


def test_interrupted_part_resumes_class_by_class(tmp_path):
    stage = Stage(tmp_path)
    with pytest.raises(RuntimeError):
        stage(["a", "b", "c"], fail_on="b")
    assert stage.ran == ["a"]
    stage.ran.clear()
    entries = stage(["a", "b", "c"])
    assert stage.ran == ["b", "c"]  # a was kept
    assert set(entries) == {"a", "b", "c"}
    assert entries["a"]["files"]["out"] == str(tmp_path / "a" / "out.txt")


def test_changed_settings_or_missing_output_redo_the_class(tmp_path):
    Stage(tmp_path)(["a", "b"])
    changed = Stage(tmp_path, settings="s2")
    changed(["a", "b"])
    assert changed.ran == ["a", "b"] and (tmp_path / "a" / "out.txt").read_text() == "a:s2"
    (tmp_path / "b" / "out.txt").unlink()
    again = Stage(tmp_path, settings="s2")
    again(["a", "b"])
    assert again.ran == ["b"]


def test_index_round_trip_and_errors(tmp_path):
    entries = Stage(tmp_path)(["a", "b"])
    write_index(tmp_path / "parts" / "p000.json", entries)
    assert read_index(tmp_path / "parts" / "p000.json") == json.loads(json.dumps(entries))
    assert class_files([str(tmp_path / "parts" / "p000.json")], "out") == {
        "a": str(tmp_path / "a" / "out.txt"), "b": str(tmp_path / "b" / "out.txt")}
    (tmp_path / "b" / "out.txt").unlink()
    with pytest.raises(PartIndexError, match="'b'.*missing"):
        read_index(tmp_path / "parts" / "p000.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(PartIndexError, match="bad.json"):
        read_index(tmp_path / "bad.json")

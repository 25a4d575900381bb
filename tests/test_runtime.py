"""What every job does first: the threads it was given reach torch, and the light stages never load torch."""
import subprocess
import sys
import textwrap


def run_python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


def test_the_jobs_threads_reach_torch_whether_it_loads_before_or_after():
    before = run_python("""
        import torch
        from ChimeraPipe.core.runtime import start_job
        start_job(None, 1)
        print(torch.get_num_threads())
    """)
    after = run_python("""
        from ChimeraPipe.core.runtime import start_job
        start_job(None, 1)
        import torch
        print(torch.get_num_threads())
    """)
    assert before == after == "1"


def test_the_light_stages_run_without_loading_torch(tmp_path):
    """A split, a dataset table and the long-tail draw: start-up of a job that never touches a tensor is
    Python's and pandas', not torch's (seconds per job, times a thousand jobs)."""
    out = run_python(f"""
        import sys
        from ChimeraPipe.core.runtime import start_job
        from ChimeraPipe.datasets.demo import make_demo_dataset
        from ChimeraPipe.pipeline import stages
        start_job(None, 1)
        root = make_demo_dataset("imagefolder", r"{tmp_path / 'shapes'}")
        stages.dataset_table("imagefolder", str(root), r"{tmp_path / 'table.csv'}")
        stages.split(r"{tmp_path / 'table.csv'}", ["circle", "square"], 2, 0, r"{tmp_path / 'split.csv'}")
        stages.longtail_train(r"{tmp_path / 'table.csv'}", r"{tmp_path / 'split.csv'}", ["circle"], ["square"], 4,
                              0, r"{tmp_path / 'longtail.csv'}")
        print(sorted(m for m in ("torch", "torchvision", "diffusers", "transformers") if m in sys.modules))
    """)
    assert out == "[]"
    assert (tmp_path / "split.csv").is_file() and (tmp_path / "longtail.csv").is_file()


def test_the_base_pretraining_takes_every_core_unless_capped(monkeypatch):
    import os

    import pytest

    from ChimeraPipe.core.runtime import PRETRAIN_THREADS, pretrain_threads

    cores = len(os.sched_getaffinity(0))
    monkeypatch.delenv(PRETRAIN_THREADS, raising=False)
    assert pretrain_threads() == cores
    monkeypatch.setenv(PRETRAIN_THREADS, "1")
    assert pretrain_threads() == 1
    monkeypatch.setenv(PRETRAIN_THREADS, str(cores + 7))      # never more than the job may use
    assert pretrain_threads() == cores
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(PRETRAIN_THREADS, bad)
        with pytest.raises(ValueError, match=PRETRAIN_THREADS):
            pretrain_threads()

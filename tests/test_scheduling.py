"""The Snakemake scheduler fix (pipeline.scheduling): one pending wake-up at a time instead of a new endless chain
of them per finished job, and every job still runs."""
import subprocess
import sys
import textwrap

SNAKEFILE = textwrap.dedent("""
    import threading
    if config["patch"]:
        from ChimeraPipe.pipeline.scheduling import coalesce_reevaluations
        assert coalesce_reevaluations() and not coalesce_reevaluations()     # in once
    rule all:
        input: expand("out/{i}.txt", i=range(30))
    rule one:
        output: "out/{i}.txt"
        shell: "sleep 0.1; touch {output}"
    onsuccess:
        print("THREADS", threading.active_count())
""")


def _threads_at_the_end(tmp_path, patch: bool) -> int:
    folder = tmp_path / str(patch)
    folder.mkdir()
    (folder / "Snakefile").write_text(SNAKEFILE)
    result = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "--config", f"patch={int(patch)}"],
                            cwd=folder, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(list((folder / "out").iterdir())) == 30
    return int(result.stdout.split("THREADS")[1].split()[0])


def test_finished_jobs_leave_no_chains_of_wakeups(tmp_path):
    assert _threads_at_the_end(tmp_path, patch=True) <= 3
    assert _threads_at_the_end(tmp_path, patch=False) > 10     # what the patch is for: a chain per finished job

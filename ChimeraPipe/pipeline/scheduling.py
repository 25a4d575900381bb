"""A fix to the Snakemake scheduler this workflow runs under, applied by the Snakefile.

Snakemake 9's job scheduler ends every pass of its loop by starting a `threading.Timer` that wakes the loop again
after the job rate limiter's timespan (1 s by default, `--max-jobs-per-timespan`), and the pass that wake-up
causes starts another: every event that wakes the loop (each finished job) starts a chain of passes that never
ends. After N finished jobs the scheduler makes N passes a second, each looking at every ready job's input
files. Two thirds through `make mini` (~160 of 376 jobs done) Snakemake's own process held 164 threads and 42 % of
a core, taken from the jobs beside it, and growing with every job. The loop needs one pending wake-up at a time
(a pass looks at every job); `coalesce_reevaluations` makes it so, and its timer is a daemon thread, so a
finished run does not wait for it to fire.
"""
from __future__ import annotations

import threading

PATCHED = "_chimerapipe_one_pending_wakeup"


def coalesce_reevaluations() -> bool:
    """Patch Snakemake's JobScheduler so at most one re-evaluation wake-up is pending; False where this Snakemake
    has no such method (then it runs as it comes) or the patch is already in."""
    from snakemake.scheduling.job_scheduler import JobScheduler

    original = getattr(JobScheduler, "_schedule_reevalutation", None)
    if original is None or getattr(original, PATCHED, False):
        return False

    def schedule_reevaluation(self, delay) -> None:
        lock = self.__dict__.setdefault("_chimerapipe_wakeup_lock", threading.Lock())
        with lock:
            if self.__dict__.get("_chimerapipe_wakeup_pending"):
                return                         # the pending wake-up's pass will look at every job
            self._chimerapipe_wakeup_pending = True

        def wake() -> None:
            with lock:
                self._chimerapipe_wakeup_pending = False      # cleared first: the pass it causes may start another
            self._open_jobs.release()

        timer = threading.Timer(delay, wake)
        timer.daemon = True
        timer.start()

    setattr(schedule_reevaluation, PATCHED, True)
    JobScheduler._schedule_reevalutation = schedule_reevaluation
    return True

"""What produced a report: the models (and their weights' SHA-256), the code, the effective config's digest, the
seeds, the device and GPU each stage's jobs ran on, and the job time per stage. The report opens with it, warns
when a model had random weights, and writes it as provenance.json."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd

from ..core.io import write_json
from .html import Item, Section

TITLE = "Provenance"
TINY = "tiny"


def job_hardware(descriptions: dict[str, list[str]]) -> list[dict]:
    """stage -> the JSON files its jobs wrote (classifier.json, part indexes) -> one row per stage, device and
    GPU: how many of the stage's jobs ran there. Files without a `hardware` record count as 'not recorded'."""
    rows = []
    for stage, paths in descriptions.items():
        seen = Counter()
        for path in paths:
            record = json.loads(Path(path).read_text()).get("hardware") or {}
            seen[(record.get("device") or "not recorded", record.get("gpu") or "none")] += 1
        rows += [{"stage": stage, "device": device, "gpu": gpu, "jobs": n} for (device, gpu), n in sorted(seen.items())]
    return rows


def tiny_warning(provenance: dict) -> str | None:
    """The warning the report opens with when any model had random weights."""
    tiny = [m["kind"] for m in provenance.get("models", []) if m.get("spec") == TINY]
    if not tiny:
        return None
    return (f"Warning: random-weight models ({', '.join(tiny)}: models.<kind> = tiny). Images generated or judged "
            "with them are noise: these numbers test the pipeline, they say nothing about the method.")


def provenance_section(provenance: dict) -> Section:
    """The report's first section: models, code and config, where the jobs ran, how long each stage took."""
    models = pd.DataFrame([{
        "kind": m["kind"], "spec": m["spec"], "weights": m["weights"], "hub id": m.get("id"),
        "revision": m.get("revision"), "settings digest": m.get("settings_digest"),
        "weight files (SHA-256)": "; ".join(f"{path} {sha[:16]}" for path, sha in (m.get("sha256") or {}).items())
        or None} for m in provenance["models"]]).dropna(axis=1, how="all")
    code = provenance["code"]
    run = pd.DataFrame([{"package version": code["version"], "git commit": code["commit"],
                         "config digest": provenance["config_digest"],
                         "seeds": ", ".join(str(s) for s in provenance["seeds"])}])
    items = [Item("Models (weight SHA-256 cut to 16 hex digits here; in full in provenance.json)", table=models),
             Item("Code and config: the digest is of the config as the workflow applied it (canonical settings, "
                  "defaults filled in, locations left out)", table=run)]
    if provenance.get("hardware"):
        items.append(Item("Where the jobs ran (recorded by each classifier and generation job)",
                          table=pd.DataFrame(provenance["hardware"])))
    if provenance.get("stage_times"):
        times = pd.DataFrame(provenance["stage_times"]).round({"job_hours": 3, "mean_s": 1})
        items.append(Item("Job time per stage (Snakemake's benchmark files: jobs, summed job hours, mean job "
                          "seconds)", table=times))
    return Section(TITLE, "What produced this report; provenance.json holds the same in full.", items)


def write_provenance(out_dir: str | Path, provenance: dict) -> None:
    write_json(Path(out_dir) / "provenance.json", provenance)

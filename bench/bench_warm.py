"""A job's start-up, cold (its own interpreter imports the libraries) against warm (core.warm: it runs in a fork of
a server that imported them), side by side in one run. The job is a rule script's first lines - start_job - then
the imports a train or generate job makes (torch, transformers' CLIP text model, diffusers' UNet and VAE), or a
classify / evaluate job's (torch, torchvision's transforms, open_clip), or a light job's (pandas: the splits,
tables and gap metrics, which never load torch and so gain nothing), and nothing else.

    .venv/bin/python bench/bench_warm.py [--repeats 5]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ChimeraPipe.core.warm import WARM_SOCKET

JOBS = {
    "train/generate": "import torch\nfrom transformers import CLIPTextModel\n"
                      "from diffusers import AutoencoderKL, UNet2DConditionModel\n",
    "classify/evaluate": "import torch\nfrom torchvision.transforms import v2\nimport open_clip\n",
    "light (no torch)": "import pandas\n",
}


def script(imports: str) -> str:
    return ("from ChimeraPipe.core.runtime import start_job\nstart_job(None, 1)\n" + imports)


def timed(path: Path, env: dict) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, str(path)], env=env, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        address, ready = str(folder / "socket"), folder / "ready"
        env = {k: v for k, v in os.environ.items() if k != WARM_SOCKET}
        server = subprocess.Popen([sys.executable, "-m", "ChimeraPipe.core.warm", "--serve", address,
                                   "--ready", str(ready)], env=env)
        while not ready.exists():
            time.sleep(0.1)
        preload_s = json.loads(ready.read_text())["preload_s"]
        try:
            print(f"server preload: {preload_s:.1f} s, once per run; {args.repeats} jobs each way, taking turns")
            print(f"{'job':<20}{'cold s':>9}{'warm s':>9}{'ratio':>8}")
            for name, imports in JOBS.items():
                path = folder / f"{name.replace('/', '_')}.py"
                path.write_text(script(imports))
                cold, warm = [], []
                for _ in range(args.repeats):
                    cold.append(timed(path, env))
                    warm.append(timed(path, {**env, WARM_SOCKET: address}))
                c, w = statistics.median(cold), statistics.median(warm)
                print(f"{name:<20}{c:>9.2f}{w:>9.2f}{c / w:>7.1f}x")
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()

"""What produced a result: the package version, the git commit of the code, the machine."""
from __future__ import annotations

import platform
import subprocess
from pathlib import Path


def package_version() -> str:
    from .. import __version__

    return __version__


def git_commit() -> str:
    """The commit of the checkout the package runs from ('+dirty' with uncommitted changes), or 'unknown'."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=here)
        if head.returncode != 0 or not head.stdout.strip():
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=10, cwd=here)
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def hardware() -> dict:
    """The machine and device a job ran on (GPU name and memory when CUDA is visible)."""
    info = {"host": platform.node(), "python": platform.python_version(), "platform": platform.platform()}
    try:
        import torch

        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                        gpus=torch.cuda.device_count())
        else:
            info["gpu"] = None
    except ImportError:
        pass
    return info

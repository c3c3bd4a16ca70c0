"""One line naming what a benchmark ran on: Python, torch, transformers, transformer-lens, the
workbench, CUDA and the GPU (or "none"); imports the stack, so it fails first if it is broken."""

from __future__ import annotations

import platform
from importlib.metadata import version

import torch
import transformer_lens.model_bridge  # noqa: F401  (the import is the check)
import transformers

import workbench

if __name__ == "__main__":
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    print(
        f"python {platform.python_version()} torch {torch.__version__} "
        f"transformers {transformers.__version__} transformer-lens {version('transformer-lens')} "
        f"workbench {workbench.__version__} cuda {torch.version.cuda} gpu {gpu}"
    )

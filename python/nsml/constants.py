"""The session's constants, where most KHD code imports them from::

    from nsml.constants import DATASET_PATH, GPU_NUM

The same values are importable from ``nsml`` itself. On the platform they come from the
session's environment; off it they describe a local run (no dataset, no GPUs).
"""

import os as _os

__all__ = ["IS_ON_NSML", "HAS_DATASET", "DATASET_PATH", "DATASET_NAME", "GPU_NUM", "SESSION_NAME"]


def _gpu_count():
    try:
        return int(_os.environ.get("KHD_GPU_NUM", "0"))
    except ValueError:
        return 0


IS_ON_NSML = _os.environ.get("KHD_SESSION") == "1"
DATASET_PATH = _os.environ.get("KHD_DATASET_PATH") or None
DATASET_NAME = _os.environ.get("KHD_DATASET_NAME") or None
HAS_DATASET = DATASET_PATH is not None and _os.path.isdir(DATASET_PATH)
GPU_NUM = _gpu_count()
SESSION_NAME = _os.environ.get("KHD_SESSION_NAME") or None

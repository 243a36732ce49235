"""The ``nsml`` runtime that khd puts on every session's PYTHONPATH.

Baselines written for NSML import it unchanged::

    import nsml
    from nsml import DATASET_PATH, GPU_NUM

On the platform the constants come from the session's environment; off it (``python main.py``
on a laptop) they describe a local run: ``IS_ON_NSML`` is False and ``DATASET_PATH`` is None
unless ``KHD_DATASET_PATH`` is set.
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

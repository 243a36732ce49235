"""The ``nsml`` runtime that khd puts on every session's PYTHONPATH.

Baselines written for NSML import it unchanged::

    import nsml
    from nsml import DATASET_PATH, GPU_NUM

    nsml.bind(save=save, load=load, infer=infer)
    nsml.report(summary=True, epoch=1, train__loss=0.3)
    nsml.save('best')
    if args.pause:
        nsml.paused(scope=locals())

On the platform the constants come from the session's environment and checkpoints and reports
go to the server; off it (``python main.py`` on a laptop) everything works locally:
checkpoints go to ``.nsml/checkpoints/`` in the working folder and ``infer`` calls the bound
function.
"""

import os as _os

from ._runtime import bind, infer, load, paused, report, save

__all__ = [
    "IS_ON_NSML", "HAS_DATASET", "DATASET_PATH", "DATASET_NAME", "GPU_NUM", "SESSION_NAME",
    "bind", "save", "load", "report", "paused", "infer",
]


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

"""The ``nsml`` runtime that khd puts on every session's PYTHONPATH.

Baselines written for NSML import it unchanged::

    import nsml
    from nsml.constants import DATASET_PATH, GPU_NUM   # or: from nsml import DATASET_PATH

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

from ._runtime import bind, infer, load, paused, report, save
from .constants import DATASET_NAME, DATASET_PATH, GPU_NUM, HAS_DATASET, IS_ON_NSML, SESSION_NAME

__all__ = [
    "IS_ON_NSML", "HAS_DATASET", "DATASET_PATH", "DATASET_NAME", "GPU_NUM", "SESSION_NAME",
    "bind", "save", "load", "report", "paused", "infer",
]

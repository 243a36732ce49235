"""bind / save / load / report / paused / infer.

The session has no network. It talks to the server through files the server mounts for it:
``KHD_CHECKPOINT_DIR`` (this session's checkpoints, writable), ``KHD_TEAM_CHECKPOINTS``
(every checkpoint of the team, read-only, as USER/DATASET/N/NAME) and ``KHD_EVENTS_FILE`` (one JSON
event per line: reports, saves, and a submit's stages). A submit session also gets
``KHD_SUBMIT_CHECKPOINT`` (the checkpoint to load), ``KHD_SUBMIT_OUTPUT`` (where predictions
go) and, when the dataset has one, ``KHD_DATA_LOADER``. A fork gets ``KHD_FORK_CHECKPOINT``, the
checkpoint ``paused()`` loads before training goes on.
"""

import importlib.util
import json
import math
import numbers
import os
import shutil
import sys
import tempfile
import time

LOCAL_ROOT = ".nsml"
_bound = {}


def _env(name):
    return os.environ.get(name) or None


def _checkpoint_dir():
    return _env("KHD_CHECKPOINT_DIR") or os.path.join(LOCAL_ROOT, "checkpoints")


def _emit(event, **fields):
    path = _env("KHD_EVENTS_FILE") or os.path.join(LOCAL_ROOT, "events.jsonl")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    line = json.dumps(dict(event=event, ts=time.time(), **fields), allow_nan=False)
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")


def _check_name(checkpoint):
    name = str(checkpoint)
    if not name or name in (".", "..") or "/" in name or "\\" in name or name.startswith(".") or len(name) > 128:
        raise ValueError("checkpoint name %r: use letters, digits, '-', '_' (no '/', not starting with '.')" % (checkpoint,))
    return name


def bind(save=None, load=None, infer=None, **kwargs):
    """Registers how to save, load and infer; extra keyword functions are kept too."""
    _bound.update(kwargs)
    _bound.update(save=save, load=load, infer=infer)


def _require(kind):
    fn = _bound.get(kind)
    if fn is None:
        raise RuntimeError("nsml.%s needs a %s function: call nsml.bind(%s=...) first" % (kind, kind, kind))
    return fn


def save(checkpoint):
    """Hands the bound save a fresh folder; what it writes becomes checkpoint ``checkpoint``."""
    if _env("KHD_SUBMIT"):
        return  # A submit evaluates a checkpoint; it keeps none of its own.
    name = _check_name(checkpoint)
    fn = _require("save")
    root = _checkpoint_dir()
    os.makedirs(root, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".saving-", dir=root)
    try:
        # mkdtemp makes it 0700: the user's later sessions (their own uids) load it too.
        os.chmod(staging, 0o755)
        fn(staging)
        final = os.path.join(root, name)
        if os.path.exists(final):
            # Same name overwrites: swap the new folder in, then drop the old one.
            old = tempfile.mkdtemp(prefix=".old-", dir=root)
            os.rename(final, os.path.join(old, "x"))
            os.rename(staging, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _emit("save", checkpoint=name)


def load(checkpoint, session=None):
    """Calls the bound load with the folder of ``checkpoint``, of this session or of another of
    the team's (``session='kim/mnist/3'``): NSML gave each team one account, so a team's
    sessions share their checkpoints, read-only."""
    name = _check_name(checkpoint)
    fn = _require("load")
    if session is None:
        folder = os.path.join(_checkpoint_dir(), name)
    else:
        parts = str(session).split("/")
        if len(parts) != 3 or not all(parts) or any(p in (".", "..") for p in parts):
            raise ValueError("session %r: expected USER/DATASET/N, e.g. kim/mnist/3" % (session,))
        root = _env("KHD_TEAM_CHECKPOINTS")
        if root is None:
            raise RuntimeError("nsml.load(session=%r): other sessions' checkpoints are on the server; "
                               "off the platform load your own (no session=)" % (session,))
        if not os.path.isdir(os.path.join(root, parts[0])):
            raise FileNotFoundError(
                "session %s is not one of your team's: only your team's sessions' checkpoints can be loaded" % session)
        folder = os.path.join(root, parts[0], parts[1], parts[2], name)
    if not os.path.isdir(folder):
        raise FileNotFoundError("checkpoint %r not found%s" % (name, "" if session is None else " in session %s" % session))
    return fn(folder)


def _reading(value):
    """The number a reported value stands for, or None: numbers as they are, numpy and torch
    scalars (anything with ``.item()``), and the last value of a sequence (Keras's
    ``hist.history['loss']``)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (str, bytes)):
        return None
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return _reading(item())
        except (ValueError, RuntimeError, TypeError):
            pass  # not one element: maybe a sequence
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        value = tolist()
    if isinstance(value, (list, tuple)) and value:
        return _reading(value[-1])
    return None


def _number(key, value):
    """The reading of one metric, or None, with a warning on stderr, when it has none to give."""
    reading = _reading(value)
    if reading is None:
        sys.stderr.write("nsml.report: %s=%.80r is a %s, not a number: left out\n" % (key, value, type(value).__name__))
    elif isinstance(reading, float) and not math.isfinite(reading):
        sys.stderr.write("nsml.report: %s=%r is not a finite number: left out\n" % (key, reading))
        reading = None
    return reading


def report(summary=False, scope=None, step=None, **metrics):
    """Records metrics (``train__loss`` shows as ``train/loss``); ``summary=True`` feeds ps.

    A value may be a number, a numpy or torch scalar, or a sequence of numbers (its last value
    is the reading); anything else is left out with a warning on stderr, never an error."""
    values = {}
    for key, value in metrics.items():
        reading = _number(key, value)
        if reading is not None:
            values[key] = reading
    if step is not None:
        step = _number("step", step)
        if isinstance(step, float):
            step = int(step)  # steps count: 3.0 is step 3
    if not _env("KHD_SESSION"):
        print("[nsml.report] step=%s %s" % (step, " ".join("%s=%s" % (k.replace("__", "/"), v) for k, v in values.items())))
    _emit("report", summary=bool(summary), step=step, metrics=values)


def infer(data, **kwargs):
    """Calls the bound infer, as the platform does in a submit."""
    return _require("infer")(data, **kwargs)


def paused(scope=None):
    """In training: returns at once. In a fork (``khd fork``): loads the checkpoint it continues
    from and returns, so training goes on from it. In a submit: loads the checkpoint, infers, and
    exits."""
    fork = _env("KHD_FORK_CHECKPOINT")
    if fork is not None and not _env("KHD_SUBMIT"):
        _require("load")(fork)
        _emit("resumed", checkpoint=os.path.basename(fork))
        return
    if not _env("KHD_SUBMIT"):
        return
    _emit("paused")
    started = time.time()
    _require("load")(_env("KHD_SUBMIT_CHECKPOINT"))
    _emit("loaded", seconds=round(time.time() - started, 3))
    output = _env("KHD_SUBMIT_OUTPUT")
    started = time.time()
    feed = _data_loader_feed() or _builtin_feed
    feed(output, _require("infer"))
    if not os.path.exists(output):
        raise RuntimeError("inference wrote no predictions to %s" % output)
    _emit("inferred", seconds=round(time.time() - started, 3))
    sys.stdout.flush()
    sys.exit(0)


def _data_loader_feed():
    path = _env("KHD_DATA_LOADER")
    if path is None:
        return None
    spec = importlib.util.spec_from_file_location("khd_data_loader", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.feed_infer


def _builtin_feed(output_file, infer_func):
    """Without a data_loader.py: infer(test folder) returns one prediction per test item."""
    dataset = _env("KHD_DATASET_PATH")
    predictions = infer_func(os.path.join(dataset, "test"))
    if predictions is None:
        raise RuntimeError("infer returned nothing: it must return one prediction per test item")
    with open(output_file, "w", encoding="utf-8") as f:
        for p in predictions:
            f.write("%s\n" % (p,))

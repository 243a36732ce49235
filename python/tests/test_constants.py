"""The nsml constants, read in a fresh interpreter so each test sees its own environment."""
import json
import os
import subprocess
import sys
import tempfile

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = ['IS_ON_NSML', 'HAS_DATASET', 'DATASET_PATH', 'DATASET_NAME', 'GPU_NUM', 'SESSION_NAME']
PROBE = "import json, nsml; print(json.dumps({k: getattr(nsml, k) for k in %r}))" % NAMES
# The way most KHD baselines and datasets' data_loader.py import them.
CONSTANTS_PROBE = (
    "import json\nfrom nsml.constants import %s\nprint(json.dumps({k: globals()[k] for k in %r}))"
    % (", ".join(NAMES), NAMES)
)


def constants(env, probe=PROBE):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KHD_")}
    clean.update(env, PYTHONPATH=PYTHON_DIR)
    out = subprocess.run([sys.executable, "-c", probe], env=clean, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def test_off_the_platform_it_describes_a_local_run():
    assert constants({}) == {
        "IS_ON_NSML": False,
        "HAS_DATASET": False,
        "DATASET_PATH": None,
        "DATASET_NAME": None,
        "GPU_NUM": 0,
        "SESSION_NAME": None,
    }


def test_in_a_session_it_reads_what_the_executor_set():
    with tempfile.TemporaryDirectory() as data:
        got = constants({
            "KHD_SESSION": "1",
            "KHD_DATASET_PATH": data,
            "KHD_DATASET_NAME": "mnist",
            "KHD_GPU_NUM": "2",
            "KHD_SESSION_NAME": "kim/mnist/3",
        })
    assert got == {
        "IS_ON_NSML": True,
        "HAS_DATASET": True,
        "DATASET_PATH": data,
        "DATASET_NAME": "mnist",
        "GPU_NUM": 2,
        "SESSION_NAME": "kim/mnist/3",
    }


def test_a_dataset_path_that_is_missing_means_no_dataset():
    got = constants({"KHD_SESSION": "1", "KHD_DATASET_PATH": "/nonexistent/khd", "KHD_DATASET_NAME": "x"})
    assert got["HAS_DATASET"] is False


def test_a_garbled_gpu_count_reads_as_zero():
    assert constants({"KHD_GPU_NUM": "lots"})["GPU_NUM"] == 0


def test_nsml_constants_holds_the_same_values_as_nsml():
    with tempfile.TemporaryDirectory() as data:
        env = {"KHD_SESSION": "1", "KHD_DATASET_PATH": data, "KHD_DATASET_NAME": "Breast_Pathology",
               "KHD_GPU_NUM": "1", "KHD_SESSION_NAME": "KHD005/Breast_Pathology/276"}
        from_constants = constants(env, CONSTANTS_PROBE)
        assert from_constants == constants(env)
    assert from_constants["DATASET_NAME"] == "Breast_Pathology" and from_constants["GPU_NUM"] == 1
    assert constants({}, CONSTANTS_PROBE)["IS_ON_NSML"] is False

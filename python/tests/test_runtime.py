"""The nsml API off the platform (local folders) and in a submit (KHD_SUBMIT set)."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import nsml
from nsml import _runtime

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def local_run(tmp_path, monkeypatch):
    for key in list(os.environ):
        if key.startswith("KHD_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    _runtime._bound.clear()
    yield tmp_path


def events(path=".nsml/events.jsonl"):
    with open(path) as f:
        return [json.loads(line) for line in f]


def bind_text_model(state):
    def save(d):
        with open(os.path.join(d, "w.txt"), "w") as f:
            f.write(state["w"])

    def load(d):
        with open(os.path.join(d, "w.txt")) as f:
            state["w"] = f.read()

    nsml.bind(save=save, load=load, infer=lambda data: [state["w"], data])


def test_save_hands_a_fresh_folder_and_the_same_name_overwrites():
    state = {"w": "one"}
    bind_text_model(state)
    nsml.save("best")
    state["w"] = "two"
    nsml.save("best")
    assert os.listdir(".nsml/checkpoints") == ["best"]
    assert open(".nsml/checkpoints/best/w.txt").read() == "two"
    assert [e["checkpoint"] for e in events() if e["event"] == "save"] == ["best", "best"]


def test_a_failing_save_leaves_no_checkpoint_behind():
    def broken(d):
        open(os.path.join(d, "half"), "w").write("x")
        raise IOError("disk full")

    nsml.bind(save=broken)
    with pytest.raises(IOError):
        nsml.save(3)
    assert os.listdir(".nsml/checkpoints") == []


def test_load_calls_the_bound_load_with_the_checkpoint_folder():
    state = {"w": "saved"}
    bind_text_model(state)
    nsml.save(1)
    state["w"] = "changed"
    nsml.load(1)
    assert state["w"] == "saved"
    with pytest.raises(FileNotFoundError, match="checkpoint '9' not found"):
        nsml.load(9)


def test_checkpoint_names_cannot_escape_the_folder():
    bind_text_model({"w": ""})
    for bad in ("../x", "a/b", ".hidden", ""):
        with pytest.raises(ValueError):
            nsml.save(bad)


def test_calls_without_bind_say_what_to_bind():
    with pytest.raises(RuntimeError, match=r"call nsml.bind\(save=...\) first"):
        nsml.save("x")
    with pytest.raises(RuntimeError, match=r"nsml.bind\(infer=...\)"):
        nsml.infer([1])


def test_infer_calls_the_bound_function_locally():
    bind_text_model({"w": "m"})
    assert nsml.infer("data") == ["m", "data"]


def test_report_takes_numbers_including_numpy_and_records_them(capsys):
    nsml.report(summary=True, step=2, epoch=2, train__loss=np.float32(0.25), n=np.int64(3))
    (event,) = events()
    assert event["event"] == "report" and event["summary"] is True and event["step"] == 2
    assert event["metrics"] == {"epoch": 2, "train__loss": 0.25, "n": 3}
    assert "train/loss=0.25" in capsys.readouterr().out


def test_report_takes_what_keras_and_pytorch_code_passes():
    class Scalar:  # a 0-d torch tensor: .item() gives the number
        def item(self):
            return 0.5

    class Vector:  # a tensor of several values: .item() refuses, .tolist() gives them
        def item(self):
            raise ValueError("only one element tensors can be converted to Python scalars")

        def tolist(self):
            return [0.9, 0.7]

    nsml.report(step=np.int64(0), loss=[1.5, 0.75, 0.25], acc=(0.5, 0.8), t=Scalar(), v=Vector(),
                a0=np.float64(0.125), arr=np.array([3, 4]), n=np.int32(7))
    (event,) = events()
    assert event["step"] == 0 and isinstance(event["step"], int)
    assert event["metrics"] == {"loss": 0.25, "acc": 0.8, "t": 0.5, "v": 0.7, "a0": 0.125, "arr": 4, "n": 7}
    nsml.report(step=3.0, loss=1)
    assert events()[-1]["step"] == 3 and isinstance(events()[-1]["step"], int)


@pytest.mark.parametrize("value, why", [("0.5", "is a str"), (None, "is a NoneType"), (True, "is a bool"),
                                        (float("nan"), "not a finite number"), ([], "is a list"),
                                        ({"a": 1}, "is a dict")])
def test_report_leaves_out_what_is_not_a_number_with_a_warning(value, why, capsys):
    nsml.report(loss=value, acc=0.5)
    (event,) = events()
    assert event["metrics"] == {"acc": 0.5}
    err = capsys.readouterr().err
    assert "nsml.report: loss=" in err and why in err and "left out" in err


def test_load_from_a_teammates_session_reads_the_team_checkpoints(tmp_path, monkeypatch):
    team = tmp_path / "team"
    (team / "lee" / "Breast_Pathology" / "276" / "6").mkdir(parents=True)
    (team / "lee" / "Breast_Pathology" / "276" / "6" / "w.txt").write_text("lee's")
    monkeypatch.setenv("KHD_TEAM_CHECKPOINTS", str(team))
    state = {}
    bind_text_model(state)
    nsml.load(checkpoint="6", session="lee/Breast_Pathology/276")
    assert state["w"] == "lee's"
    with pytest.raises(FileNotFoundError, match="not one of your team's"):
        nsml.load(checkpoint="6", session="park/Breast_Pathology/1")
    with pytest.raises(FileNotFoundError, match="checkpoint '7' not found in session lee/Breast_Pathology/276"):
        nsml.load(checkpoint="7", session="lee/Breast_Pathology/276")
    with pytest.raises(ValueError, match="expected USER/DATASET/N"):
        nsml.load(checkpoint="6", session="lee/../276")


def test_load_from_another_session_off_the_platform_says_why_it_cannot():
    bind_text_model({})
    with pytest.raises(RuntimeError, match="on the server"):
        nsml.load(checkpoint="6", session="lee/Breast_Pathology/276")


def test_paused_returns_at_once_in_training():
    assert nsml.paused(scope=locals()) is None


def test_paused_in_a_fork_loads_the_checkpoint_and_returns(tmp_path, monkeypatch):
    ckpt = tmp_path / "team" / "kim" / "mnist" / "3" / "20"
    ckpt.mkdir(parents=True)
    (ckpt / "w.txt").write_text("0.5")
    monkeypatch.setenv("KHD_FORK_CHECKPOINT", str(ckpt))
    monkeypatch.setenv("KHD_EVENTS_FILE", str(tmp_path / "events.jsonl"))
    model = {}
    nsml.bind(save=lambda d: None, load=lambda d: model.update(w=open(os.path.join(d, "w.txt")).read()))
    assert nsml.paused(scope=locals()) is None
    # Training goes on from the checkpoint.
    assert model == {"w": "0.5"}
    assert [(e["event"], e["checkpoint"]) for e in events(tmp_path / "events.jsonl")] == [("resumed", "20")]


SUBMIT_SCRIPT = textwrap.dedent("""
    import os, sys
    import nsml
    model = {}
    def load(d):
        model['w'] = open(os.path.join(d, 'w.txt')).read()
    def infer(test_path):
        return [model['w'] + ':' + name for name in sorted(os.listdir(test_path))]
    nsml.bind(save=lambda d: None, load=load, infer=infer)
    nsml.save('ignored')  # a submit keeps no checkpoints
    nsml.paused(scope=locals())
    print('training would start here')
""")


def test_paused_in_a_submit_loads_infers_writes_predictions_and_exits(tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "w.txt").write_text("W")
    data = tmp_path / "data" / "test"
    data.mkdir(parents=True)
    for name in ("a", "b"):
        (data / name).write_text("")
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR, KHD_SUBMIT="real", KHD_SESSION="1",
               KHD_SUBMIT_CHECKPOINT=str(ckpt), KHD_SUBMIT_OUTPUT=str(out / "predictions"),
               KHD_DATASET_PATH=str(tmp_path / "data"), KHD_EVENTS_FILE=str(tmp_path / "events.jsonl"),
               KHD_CHECKPOINT_DIR=str(tmp_path / "own"))
    result = subprocess.run([sys.executable, "-c", SUBMIT_SCRIPT], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "training would start here" not in result.stdout
    assert (out / "predictions").read_text() == "W:a\nW:b\n"
    assert [e["event"] for e in events(tmp_path / "events.jsonl")] == ["paused", "loaded", "inferred"]
    assert not (tmp_path / "own").exists()


def test_report_takes_real_torch_tensors():
    torch = pytest.importorskip("torch", reason="PyTorch is in Debian's python3-torch, not in every Python")
    nsml.report(step=torch.tensor(4), loss=torch.tensor(0.5), batch=torch.tensor([0.25, 0.125]),
                history=[torch.tensor(1.0), torch.tensor(0.75)])
    (event,) = events()
    assert event["step"] == 4 and isinstance(event["step"], int)
    assert event["metrics"] == {"loss": 0.5, "batch": 0.125, "history": 0.75}

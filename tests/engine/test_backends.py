"""Backend choice: what this machine cannot run falls back to torch-cpu with one notice."""

import numpy as np
import pytest

from engine.backends import open_accompanist
from models.checkpoint import save_model
from models.runtime import debug_model
from models.sampling import ControlledSampler


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return str(save_model(debug_model(1).model, tmp_path_factory.mktemp("b") / "m.safetensors"))


def test_a_backend_this_machine_lacks_falls_back_with_one_line(ckpt):
    import torch

    if torch.cuda.is_available():
        pytest.fail("this test describes a machine without CUDA; on a GPU machine torch-cuda must load")
    notes = []
    acc, used = open_accompanist("torch-cuda", ckpt, notify=notes.append)
    assert used == "torch-cpu" and len(notes) == 1 and "torch-cuda" in notes[0] and "\n" not in notes[0]
    acc.reset("pop", "4/4")
    frame = acc.advance(63, 0, ControlledSampler(0))
    assert frame.shape == (4,) and np.issubdtype(frame.dtype, np.integer)


def test_a_loader_failure_on_another_backend_falls_back_but_torch_cpu_failures_surface():
    calls, notes = [], []

    def loader(checkpoint, backend):
        calls.append(backend)
        if backend == "onnx-cpu":
            raise RuntimeError("onnxruntime session failed\nlong details")
        return "acc"

    assert open_accompanist("onnx-cpu", None, loader=loader, notify=notes.append) == ("acc", "torch-cpu")
    assert calls == ["onnx-cpu", "torch-cpu"] and notes == [
        "backend onnx-cpu is not available here (onnxruntime session failed); using torch-cpu"
    ]

    def broken(checkpoint, backend):
        raise RuntimeError("weights are corrupt")

    with pytest.raises(RuntimeError, match="corrupt"):
        open_accompanist("torch-cpu", None, loader=broken)


def test_onnx_cuda_falls_back_to_onnx_on_the_cpu_first(monkeypatch):
    import models.backends as b

    calls, notes = [], []

    def loader(checkpoint, backend):
        calls.append(backend)
        return backend

    real = b.backend_unavailable_reason
    monkeypatch.setattr(
        b, "backend_unavailable_reason", lambda name: "no CUDA GPU is visible" if name.endswith("cuda") else real(name)
    )
    assert open_accompanist("onnx-cuda", None, loader=loader, notify=notes.append) == ("onnx-cpu", "onnx-cpu")
    assert calls == ["onnx-cpu"] and notes == [
        "backend onnx-cuda is not available here (no CUDA GPU is visible); using onnx-cpu"
    ]


def test_an_onnxruntime_that_refuses_the_fresh_export_falls_back_to_torch_in_one_line(ckpt, tmp_path, monkeypatch):
    """onnxruntime raises plain Exceptions (InvalidProtobuf, Fail...): the model room turns
    one on a fresh export into a RuntimeError, so the fallback catches it (it was a traceback)."""
    import models.export as export

    monkeypatch.setenv("LIVEBAND_CACHE", str(tmp_path))
    real = export.OnnxStepModel.__init__

    def refuse(self, onnx_path, *a, **k):
        if not str(onnx_path).endswith(".tmp"):  # the parity check at export opens the temporary file
            raise Exception("[ONNXRuntimeError] : 1 : FAIL : Load model failed\ndetails")
        real(self, onnx_path, *a, **k)

    monkeypatch.setattr(export.OnnxStepModel, "__init__", refuse)
    notes = []
    acc, used = open_accompanist("onnx-cpu", ckpt, notify=notes.append)
    assert used == "torch-cpu" and len(notes) == 1 and "\n" not in notes[0]
    assert notes[0].startswith("backend onnx-cpu is not available here (") and "Load model failed" in notes[0]
    acc.reset("pop", "4/4")
    assert acc.advance(63, 0, ControlledSampler(0)).shape == (4,)

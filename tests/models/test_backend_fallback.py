"""The backends and their one fallback rule (models.backends)."""

import pytest

import models.backends as b


def test_unknown_backend_is_named_and_refused():
    assert "unknown backend" in b.backend_unavailable_reason("tpu")
    assert b.backend_unavailable_reason("torch-cpu") is None
    with pytest.raises(ValueError, match="unknown backend 'tpu'"):
        b.open_backend("tpu", lambda name: name)


def test_the_chain_is_walked_once_with_one_notice(monkeypatch):
    monkeypatch.setattr(
        b, "backend_unavailable_reason", lambda name: "no CUDA GPU is visible" if name.endswith("cuda") else None
    )
    tried, notes = [], []

    def load(name):
        tried.append(name)
        if name == "onnx-cpu":
            raise RuntimeError("export refused\ndetails")
        return name

    assert b.open_backend("onnx-cuda", load, notes.append) == ("torch-cpu", "torch-cpu")
    assert tried == ["onnx-cpu", "torch-cpu"]
    assert notes == ["backend onnx-cuda is not available here (no CUDA GPU is visible); using torch-cpu"]
    # a loader error that is not a backend problem is not retried
    with pytest.raises(RuntimeError, match="export refused"):
        b.open_backend("onnx-cpu", load, notes.append, retry_on=())


def test_a_torch_cpu_failure_surfaces_as_it_is():
    def broken(name):
        raise OSError("weights are corrupt")

    with pytest.raises(OSError, match="corrupt"):
        b.open_backend("torch-cuda" if b.backend_unavailable_reason("torch-cuda") else "torch-cpu", broken)


def test_the_backend_names_have_one_home():
    import engine.backends
    import liveband.config
    import models.runtime

    assert liveband.config.BACKENDS is b.BACKENDS
    for module in (engine.backends, models.runtime, liveband.config):
        source = open(module.__file__).read()
        assert '"onnx-cuda")' not in source, f"{module.__name__} spells out the backend list again"
        assert "re.search" not in source

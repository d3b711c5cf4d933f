"""`liveband render --stems --loudness`: per-part stems that add up to the mix, the mix
at a loudness target without clipping, MIDI tracks named after their instruments."""

import mido
import numpy as np
import pytest
from test_render import WALTZ, melody_file

from engine.export import integrated_loudness
from engine.wav import read_wav
from liveband.cli import main

PARTS = ("bass", "keys", "pad", "drums", "melody")


def db(x: np.ndarray, ref: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(x**2)) / np.sqrt(np.mean(ref**2))))


@pytest.fixture(scope="module")
def stems(tmp_path_factory, soundfont):
    """One render of the waltz with the shipped model, with stems and the default loudness."""
    d = tmp_path_factory.mktemp("stems")
    src = melody_file(d / "waltz.mid", WALTZ)
    rc = main(
        [
            "render",
            str(src),
            "-o",
            str(d / "band.wav"),
            "--midi-out",
            str(d / "band.mid"),
            "--stems",
            "--seed",
            "3",
            "--soundfont",
            str(soundfont),
        ]
    )
    assert rc == 0
    return d


def test_stems_are_written_beside_the_mix_and_add_up_to_it(stems):
    assert sorted(p.name for p in stems.iterdir()) == sorted(
        ["waltz.mid", "band.wav", "band.mid"] + [f"band.{p}.wav" for p in PARTS]
    )  # no temporary left
    mix, sr = read_wav(stems / "band.wav")
    total = np.zeros_like(mix)
    for part in PARTS:
        x, rate = read_wav(stems / f"band.{part}.wav")
        assert rate == sr and x.shape == mix.shape
        assert np.abs(x).max() > 0.01, part  # each stem holds its part
        total += x
    # the mix is their sum (one FluidSynth for all parts differs by -55 dB: engine.export)
    assert db(total - mix, mix) < -60.0


def test_the_mix_is_at_the_loudness_target_with_peaks_under_the_ceiling(stems, capsys):
    mix, sr = read_wav(stems / "band.wav")
    assert abs(integrated_loudness(mix, sr) - (-16.0)) < 0.5
    assert np.abs(mix).max() <= 10 ** (-1 / 20) + 1e-4


def test_midi_tracks_are_named_after_the_instruments(stems):
    names = [t.name for t in mido.MidiFile(str(stems / "band.mid")).tracks]
    assert "Bass (Fingered Bass)" in names and "Melody" in names
    assert any(n.startswith("Drums (") and n.endswith("Kit)") for n in names)


def test_a_loud_target_is_held_under_the_ceiling_and_off_leaves_the_render_as_it_was(tmp_path, soundfont, capsys):
    src = melody_file(tmp_path / "waltz.mid", WALTZ)
    assert (
        main(
            [
                "render",
                str(src),
                "-o",
                str(tmp_path / "loud.wav"),
                "--loudness",
                "-6",
                "--seed",
                "3",
                "--soundfont",
                str(soundfont),
            ]
        )
        == 0
    )
    said = capsys.readouterr().out
    loud, sr = read_wav(tmp_path / "loud.wav")
    peak = np.abs(loud).max()
    assert 10 ** (-1.2 / 20) < peak <= 10 ** (-1 / 20) + 1e-4  # at the ceiling, not clipped
    assert integrated_loudness(loud, sr) < -6.5 and "under the -6 LUFS target" in said
    assert (
        main(
            [
                "render",
                str(src),
                "-o",
                str(tmp_path / "raw.wav"),
                "--loudness",
                "off",
                "--seed",
                "3",
                "--soundfont",
                str(soundfont),
            ]
        )
        == 0
    )
    assert "LUFS" not in capsys.readouterr().out
    raw, _ = read_wav(tmp_path / "raw.wav")
    # the same audio, one gain apart
    g = np.abs(loud).max() / np.abs(raw).max()
    assert db(loud - raw * g, loud) < -60.0


def test_a_bad_loudness_is_an_argparse_error_naming_the_option(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["render", "x.mid", "-o", str(tmp_path / "o.wav"), "--loudness", "loud"])
    assert exc.value.code == 2 and "--loudness" in capsys.readouterr().err

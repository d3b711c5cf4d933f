"""`liveband` / `liveband play`: user mistakes are one line and exit 2, before any window."""

import pytest

from liveband.cli import main


def test_options_without_a_subcommand_go_to_play(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert main(["--autoplay", "banjo"]) == 2
    assert capsys.readouterr().err.startswith("liveband play: --autoplay must be one of")


@pytest.mark.parametrize("seconds", ["nan", "inf", "-1", "0", "1e10"])
def test_a_quit_after_that_is_no_time_is_an_argparse_error_before_any_window(capsys, monkeypatch, seconds):
    import ui.app

    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.setattr(ui.app, "run", lambda *a, **k: pytest.fail("the app opened"))
    with pytest.raises(SystemExit) as exit_:
        main(["play", "--quit-after", seconds])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.splitlines()[-1]
    assert (
        err == f"liveband play: error: argument --quit-after: must be seconds above 0 (at most 2147483), got {seconds}"
    )


def test_no_display_says_how_to_run_headless(capsys, monkeypatch):
    for var in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(var, raising=False)
    assert main(["play"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "no display" in err and "xvfb-run" in err


def test_bad_buffer_size_is_refused_before_audio_opens(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert main(["play", "--blocksize", "300"]) == 2
    assert "block size must be a power of two" in capsys.readouterr().err


def test_unknown_autoplay_mode_is_refused(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert main(["play", "--autoplay", "banjo"]) == 2
    assert "--autoplay must be one of keyboard" in capsys.readouterr().err


def test_a_bad_chart_or_split_is_one_line_before_any_window(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    song = tmp_path / "song.txt"
    song.write_text("| C | G |\n| Q7 |\n")
    assert main(["play", "--chart", str(song)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("liveband play: ") and f"{song} line 2: not a chord symbol" in err and "\n" not in err
    assert main(["play", "--chart", str(tmp_path / "none.txt")]) == 2
    assert "cannot read chart" in capsys.readouterr().err
    for bad, why in (("H3", "note name like F#3"), ("0", "MIDI note 1-127")):
        assert main(["play", "--arranger", bad]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("liveband play: --arranger: ") and why in err and "\n" not in err


def test_band_flags_for_a_launch_are_checked_before_any_window(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert main(["play", "--tempo", "300"]) == 2
    assert capsys.readouterr().err.strip() == "liveband play: tempo must be 40-240 BPM, got 300.0"
    for args, name in (
        (["--swing", "1.5"], "--swing"),
        (["--meter", "5/4"], "--meter"),
        (["--fills", "sometimes"], "--fills"),
        (["--humanise", "x"], "--humanise"),
    ):
        try:
            code = main(["play", *args])
        except SystemExit as exc:  # argparse's own refusal
            code = exc.code
        assert code == 2 and name in capsys.readouterr().err

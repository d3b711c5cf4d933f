"""The GM name table lives in the engine (the MIDI export names tracks with it) and reaches
the UI through the shell (liveband.gm); the widgets import it from here as before."""
from liveband.gm import DRUM_KITS, GM_PROGRAMS, NOTE_NAMES, instrument_name, note_name, program_choices

__all__ = ["DRUM_KITS", "GM_PROGRAMS", "NOTE_NAMES", "instrument_name", "note_name", "program_choices"]

"""General MIDI names for the UI's instrument and note menus. The engine names the MIDI
tracks with the same table (engine.gm); the shell passes it on, so ui never imports engine."""

from engine.gm import DRUM_KITS, GM_PROGRAMS, NOTE_NAMES, instrument_name, note_name, program_choices

__all__ = ["DRUM_KITS", "GM_PROGRAMS", "NOTE_NAMES", "instrument_name", "note_name", "program_choices"]

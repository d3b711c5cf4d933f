"""General MIDI names for the UI's instrument and note menus. The engine names the MIDI
tracks with the same table (engine.gm); the shell passes it on, so ui never imports engine."""

from engine.gm import DRUM_KITS, GM_PROGRAMS, instrument_name, program_choices
from models.tokens import note_name

__all__ = ["DRUM_KITS", "GM_PROGRAMS", "instrument_name", "note_name", "program_choices"]

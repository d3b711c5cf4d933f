"""Temporary: the GM name table reaches the UI through the shell (``liveband.gm``); import
it from there. Kept only while ui/pianoroll.py (being changed elsewhere) imports it from
here; delete this file once it does."""
from liveband.gm import DRUM_KITS, GM_PROGRAMS, NOTE_NAMES, instrument_name, note_name, program_choices

__all__ = ["DRUM_KITS", "GM_PROGRAMS", "NOTE_NAMES", "instrument_name", "note_name", "program_choices"]

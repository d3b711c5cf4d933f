"""bench pitch scores the notes a listener hears: a note the segmenter took back (an early
note replaced or withdrawn, ending where it began) is neither a hit nor a false note."""
from engine.quantiser import MelodyEvent
from liveband.bench.pitch import heard_onsets


def test_a_replaced_early_note_is_not_scored_and_its_replacement_is():
    ev = [(MelodyEvent(time=100, pitch=61, on=True, velocity=90), 480),
          (MelodyEvent(time=100, pitch=61, on=False, velocity=0), 960),
          (MelodyEvent(time=100, pitch=62, on=True, velocity=90), 960),
          (MelodyEvent(time=900, pitch=62, on=False, velocity=0), 1900),
          # a repeated note starting where the last one ended is heard
          (MelodyEvent(time=900, pitch=62, on=True, velocity=90), 1950),
          (MelodyEvent(time=1500, pitch=62, on=False, velocity=0), 2500)]
    kept, withdrawn = heard_onsets(ev, 48000)
    assert [(e.pitch, e.time) for e, _ in kept] == [(62, 100), (62, 900)]
    assert kept[0][1] == 960 / 48000              # latency counts from the replacement
    assert withdrawn == 1

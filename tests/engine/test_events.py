import numpy as np

from engine.events import EVENT_DTYPE, IMMEDIATE, NOTE_OFF, NOTE_ON, EventQueue


def test_pop_until_returns_only_due_events_in_order():
    q = EventQueue(8)
    q.push(10, NOTE_ON, 0, 60, 100)
    q.push(20, NOTE_OFF, 0, 60)
    q.push(30, NOTE_ON, 1, 40, 90)
    out = np.zeros(4, EVENT_DTYPE)
    assert q.pop_until(21, out) == 2
    assert list(out["time"][:2]) == [10, 20] and list(out["kind"][:2]) == [NOTE_ON, NOTE_OFF]
    assert q.peek_time() == 30 and len(q) == 1


def test_full_queue_refuses_instead_of_overwriting():
    q = EventQueue(4)
    assert all(q.push(t, NOTE_ON, 0, 60, 1) for t in range(4))
    assert not q.push(99, NOTE_ON, 0, 61, 1)
    assert q.dropped == 1
    out = np.zeros(8, EVENT_DTYPE)
    assert q.pop_until(1000, out) == 4 and list(out["time"][:4]) == [0, 1, 2, 3]


def test_immediate_events_are_always_due_and_output_capacity_is_respected():
    q = EventQueue(8)
    for _ in range(3):
        q.push(IMMEDIATE, NOTE_ON, 0, 60, 100)
    out = np.zeros(2, EVENT_DTYPE)
    assert q.pop_until(0, out) == 2
    assert q.pop_until(0, out) == 1
    assert q.peek_time() is None


def test_a_stamped_queue_gives_immediate_events_the_stampers_time():
    """Player events are timed when they arrive (the stamper maps 'now' onto the audio
    clock plus a fixed delay), so they no longer wait for 'the next block'."""
    q = EventQueue(8)
    stamps = iter([1000, 1300])
    q.stamper = lambda arrived: next(stamps)
    q.push(IMMEDIATE, NOTE_ON, 0, 60, 100)
    assert q.last_time == 1000
    q.push(IMMEDIATE, NOTE_OFF, 0, 60)
    assert q.last_time == 1300
    out = np.zeros(4, EVENT_DTYPE)
    assert q.pop_until(1001, out) == 1 and out["time"][0] == 1000
    assert q.pop_until(1301, out) == 1 and out["time"][0] == 1300


def test_the_stamper_is_given_the_moment_the_event_arrived():
    """A key or MIDI handler reads the clock first and hands it down: the stamp is taken
    from there, whatever Python runs between the arrival and the push."""
    q = EventQueue(8)
    seen = []
    q.stamper = lambda arrived: seen.append(arrived) or 1000
    q.push(IMMEDIATE, NOTE_ON, 0, 60, 100, 12.5)
    q.push(IMMEDIATE, NOTE_OFF, 0, 60)
    assert seen == [12.5, None]


def test_a_stamp_that_goes_back_is_held_so_the_note_after_never_overtakes():
    q = EventQueue(8)
    stamps = iter([500, 480, IMMEDIATE])
    q.stamper = lambda arrived: next(stamps)
    for kind in (NOTE_ON, NOTE_OFF, NOTE_ON):
        q.push(IMMEDIATE, kind, 0, 60, 100)
    out = np.zeros(4, EVENT_DTYPE)
    assert q.pop_until(501, out) == 3
    # the second stamp is held at the first; a stamper that cannot tell leaves IMMEDIATE
    assert list(out["time"][:3]) == [500, 500, IMMEDIATE]
    assert list(out["kind"][:3]) == [NOTE_ON, NOTE_OFF, NOTE_ON]


def test_explicit_times_are_never_stamped():
    q = EventQueue(8)
    q.stamper = lambda arrived: 10_000
    q.push(42, NOTE_ON, 0, 60, 100)
    assert q.last_time == 42

/* LiveBand's audio callback in C: timed events -> FluidSynth -> mix -> limiter, without
 * the GIL.
 *
 * engine/mixer.py's Mixer.process, line for line (same event order, same sample timing,
 * same limiter and metronome arithmetic), plus engine/audio_out.py's per-block timing
 * rows. PortAudio calls lb_pa_callback on its own thread; nothing here touches Python,
 * so no Python thread (generator, pitch tracker, UI) can delay a block.
 *
 * All state lives in memory the Python side allocated with numpy/ctypes and keeps alive
 * (the layouts are mirrored in engine/native/__init__.py; bump LB_ABI with any change):
 * - event queues: engine.events.EventQueue rings, single producer (Python) / single
 *   consumer (here); the producer writes the slot before it stores the write index;
 * - the recorder tap: engine.ring.AudioRing, producer here;
 * - controls (volume, mute, program, metronome) written by Python setters; the metronome
 *   under a sequence counter so a half-written update is never used.
 * No allocation, no locks, no I/O. FluidSynth is called through function pointers the
 * Python side resolved (so no -dev headers are needed to build this file).
 *
 * Build: cc -O2 -shared -fPIC -o _callback.so callback.c -lm  (scripts/setup.sh does it)
 */
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define LB_ABI 3

typedef int (*write_float_fn)(void *, int, void *, int, int, void *, int, int);
typedef int (*noteon_fn)(void *, int, int, int);
typedef int (*noteoff_fn)(void *, int, int);
typedef int (*cc_fn)(void *, int, int, int);
typedef int (*progsel_fn)(void *, int, int, int, int);
typedef int (*voices_fn)(void *);

enum { NOTE_ON = 1, NOTE_OFF = 2, CONTROL = 3, PROGRAM = 4, ALL_OFF = 5 };
#define IMMEDIATE (-1)
#define CC_VOLUME 7
#define CC_SUSTAIN 64
#define CC_ALL_NOTES_OFF 123
#define NUM_CHANNELS 16
#define DRUM_CHANNEL 9
#define AUDIBLE 1e-3   /* -60 dBFS: a gap beside quieter output is not heard */
#define SYNTH_PERIOD 64
#define PLAYER_PHASES 4
#define PLAYER_VOICES 64       /* the player's voices at most, over all its synths */
#define STARTS_PER_PERIOD 4    /* player notes one synth starts per period at most */
#define POST_CHUNK 224
#define MAX_QUEUES 16
#define EVENT_SIZE 12 /* engine.events.EVENT_DTYPE: i8 time, u1 kind, channel, data1, data2 */

/* Mixer ints */
enum { I_CLOCK, I_BLOCKS, I_XRUNS, I_LATE, I_APPLIED, I_CTL_VERSION, I_CTL_APPLIED, I_RESET,
       I_PLAYER_CH, I_NEXTRA, I_EV_CAP, I_MAX_BLOCK, I_METRO_SEQ,
       I_PHASE0,                                   /* 1 + PLAYER_PHASES: main, then extra k */
       I_XPER0 = I_PHASE0 + 1 + PLAYER_PHASES,     /* each extra synth's latest period with a start */
       I_XSTARTS0 = I_XPER0 + PLAYER_PHASES,       /* ... and how many notes it starts there */
       I_DROPPED = I_XSTARTS0 + PLAYER_PHASES,     /* player notes a flood left unplayed */
       I_AUDIBLE_XRUNS,                            /* xruns beside sound */
       I_NONFINITE,                                /* pieces of NaN/inf audio silenced */
       I_N_INTS };
/* Mixer doubles */
enum { D_PEAK, D_GR_DB, D_GAIN, D_MASTER, D_CEILING, D_RELEASE, D_M_ON, D_M_ORIGIN, D_M_SPB,
       D_M_BPB, D_M_GAIN, D_M_FIRST, D_M_HASPREV, D_M_PORIGIN, D_M_PSPB, D_M_PBPB, D_M_PFIRST,
       D_N_DBLS };
#define METRO_N (D_N_DBLS - D_M_ON)

/* Output-stream ints / doubles */
enum { O_BLK_N, O_CONV_N, O_LAST_BLOCK_CLOCK, O_RT_PRIO, O_REALTIME, O_N_INTS };
enum { OD_CONV_PREV, OD_CONV_CUR, OD_LAST_BLOCK_TIME, OD_LAST_DAC_OFFSET, OD_RATE, OD_N_DBLS };

typedef struct { uint8_t *buf; int64_t mask; int64_t *idx; } lb_queue;      /* idx: write, read, dropped */
typedef struct { int64_t n; lb_queue q[MAX_QUEUES]; } lb_qtable;
typedef struct { float *buf; int64_t cap; int64_t *idx; } lb_ring;          /* idx: write, read, overflows,
                                                                               dropped_frames, first_time */
typedef struct { void *handle; int64_t *frames; int64_t sfid; } lb_synth;

typedef struct {
    write_float_fn write; noteon_fn noteon; noteoff_fn noteoff; cc_fn cc; progsel_fn progsel;
    voices_fn voices;
    int64_t *ints; double *dbls;
    int16_t *vol; int16_t *part_cc7; uint8_t *mute; int16_t *prog;
    int16_t *applied_vol; int16_t *applied_prog; uint8_t *held;
    lb_synth synths[1 + PLAYER_PHASES];   /* [0] the main synth, [1..] the player's own */
    float *xbuf;                   /* (PLAYER_PHASES, max_block, 2) */
    float *ramp; float *gbuf;      /* (max_block,) each */
    float *click_hi; float *click_lo; int64_t click_len; float *cbuf;
    int64_t *work_ns; int32_t *work_frames; int64_t work_ring;
    lb_qtable *qtable; lb_queue *log; lb_ring *tap;     /* published by Python: one store each */
    double metro[METRO_N];         /* this side's copy of the last consistent metronome */
    int64_t xpos[PLAYER_PHASES];
} lb_mixer;

#define TIMING_RING 1024
typedef struct {
    lb_mixer *m;
    int64_t *ints; double *dbls;
    int64_t *blk_clock; double *blk_time; double *blk_dac; double *blk_lead; double *blk_entry;
    uint8_t *blk_xrun;
    pthread_t rt_thread; int64_t rt_known;
} lb_out;

typedef struct { double inputBufferAdcTime, currentTime, outputBufferDacTime; } pa_time_info;
#define PA_OUTPUT_UNDERFLOW 0x4

int lb_abi(void) { return LB_ABI; }
int lb_sizes(int which) {
    switch (which) {
    case 0: return (int)sizeof(lb_mixer);
    case 1: return (int)sizeof(lb_out);
    case 2: return (int)sizeof(lb_qtable);
    case 3: return I_N_INTS;
    case 4: return D_N_DBLS;
    case 5: return O_N_INTS;
    case 6: return OD_N_DBLS;
    }
    return -1;
}

static inline int64_t load_acq(int64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void store_rel(int64_t *p, int64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

static inline double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
static inline int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
static inline int64_t pymod(int64_t a, int64_t b) { int64_t r = a % b; return r < 0 ? r + b : r; }

/* -- synth --------------------------------------------------------------------------- */
static inline void render(lb_mixer *m, lb_synth *s, float *out, int64_t start, int64_t stop) {
    int64_t n = stop - start;
    if (n <= 0) return;
    float *base = out + 2 * start;
    m->write(s->handle, (int)n, base, 0, 2, base, 1, 2);
    s->frames[0] += n;
}

static inline void set_program(lb_mixer *m, lb_synth *s, int ch, int program) {
    m->progsel(s->handle, ch, (int)s->sfid, ch == DRUM_CHANNEL ? 128 : 0, program);
}

static void apply_event(lb_mixer *m, lb_synth *s, int kind, int ch, int d1, int d2) {
    void *h = s->handle;
    if (kind == NOTE_ON) {
        if (d2 == 0) m->noteoff(h, ch, d1 & 127);
        else m->noteon(h, ch, d1 & 127, d2 & 127);
    } else if (kind == NOTE_OFF) {
        m->noteoff(h, ch, d1 & 127);
    } else if (kind == CONTROL) {
        if (d1 == CC_VOLUME) {
            /* a part's own level, scaled by the user's fader and mute */
            m->part_cc7[ch] = (int16_t)d2;
            int v = m->mute[ch] ? 0 : (d2 * (int)m->vol[ch]) / 127;
            m->applied_vol[ch] = (int16_t)v;
            m->cc(h, ch, CC_VOLUME, v & 127);
        } else {
            /* a panic: FluidSynth keeps pedalled notes through CC123, so the pedal goes first */
            if (d1 == 120 || d1 == 121 || d1 == CC_ALL_NOTES_OFF) m->cc(h, ch, CC_SUSTAIN, 0);
            m->cc(h, ch, d1 & 127, d2 & 127);
        }
    } else if (kind == PROGRAM) {
        set_program(m, s, ch, d1 & 127);
    } else if (kind == ALL_OFF) {
        m->cc(h, ch, CC_SUSTAIN, 0);
        m->cc(h, ch, CC_ALL_NOTES_OFF, 0);
    }
}

static void apply_controls(lb_mixer *m) {
    int64_t *I = m->ints;
    int ns = 1 + (int)I[I_NEXTRA];
    if (I[I_RESET]) {
        I[I_RESET] = 0;
        for (int k = 0; k < ns; k++)
            for (int ch = 0; ch < NUM_CHANNELS; ch++) {
                m->cc(m->synths[k].handle, ch, CC_SUSTAIN, 0);
                m->cc(m->synths[k].handle, ch, CC_ALL_NOTES_OFF, 0);
            }
        memset(m->held, 0, 128);
    }
    int64_t version = I[I_CTL_VERSION];
    if (version == I[I_CTL_APPLIED]) return;
    I[I_CTL_APPLIED] = version;
    for (int ch = 0; ch < NUM_CHANNELS; ch++) {
        int v = m->mute[ch] ? 0 : ((int)m->part_cc7[ch] * (int)m->vol[ch]) / 127;
        if (v != m->applied_vol[ch]) {
            m->applied_vol[ch] = (int16_t)v;
            for (int k = 0; k < ns; k++) m->cc(m->synths[k].handle, ch, CC_VOLUME, v & 127);
        }
        int p = m->prog[ch];
        if (p >= 0 && p != m->applied_prog[ch]) {
            m->applied_prog[ch] = (int16_t)p;
            for (int k = 0; k < ns; k++) set_program(m, &m->synths[k], ch, p);
        }
    }
}

/* Synth `which` (1: main, k + 1: extra k) rendered up to `off`, then the event applied.
 * Returns the main synth's render position. */
static int64_t on_synth(lb_mixer *m, int which, float *out, int64_t off, int64_t pos,
                        int kind, int ch, int d1, int d2) {
    if (which == 1) {
        if (off > pos) { render(m, &m->synths[0], out, pos, off); pos = off; }
        apply_event(m, &m->synths[0], kind, ch, d1, d2);
        return pos;
    }
    int k = which - 2;
    int64_t mb = m->ints[I_MAX_BLOCK];
    if (off > m->xpos[k]) {
        render(m, &m->synths[k + 1], m->xbuf + (size_t)k * mb * 2, m->xpos[k], off);
        m->xpos[k] = off;
    }
    apply_event(m, &m->synths[k + 1], kind, ch, d1, d2);
    return pos;
}

static int64_t player_event(lb_mixer *m, float *out, int64_t off, int64_t t, int64_t pos,
                            int kind, int ch, int d1, int d2) {
    uint8_t *held = m->held;
    int nextra = (int)m->ints[I_NEXTRA];
    int p = d1 & 127;
    if (kind == NOTE_ON && d2 > 0) {
        /* The player's synth whose next period boundary comes first starts the note
         * soonest; a full one only when all are; at most STARTS_PER_PERIOD starts per
         * synth and period, beyond which the note drops (engine/mixer.py explains). */
        int64_t *I = m->ints;
        int use = 0, full = 0;
        int64_t wait = SYNTH_PERIOD, full_wait = SYNTH_PERIOD;
        int limit = PLAYER_VOICES / nextra - 1;
        for (int k = 1; k < nextra + 1; k++) {
            int64_t ph = I[I_PHASE0 + k];
            int64_t w = pymod(-(t + ph), SYNTH_PERIOD);
            if (I[I_XPER0 + k - 1] == (t + ph + w) / SYNTH_PERIOD && I[I_XSTARTS0 + k - 1] >= STARTS_PER_PERIOD)
                continue;
            if (m->voices(m->synths[k].handle) >= limit) {
                if (w < full_wait) { full = k + 1; full_wait = w; }
            } else if (w < wait) {
                use = k + 1; wait = w;
            }
        }
        if (!use) { use = full; wait = full_wait; }
        if (!use) { I[I_DROPPED] += 1; return pos; }
        int64_t per = (t + I[I_PHASE0 + use - 1] + wait) / SYNTH_PERIOD;
        if (I[I_XPER0 + use - 2] == per) I[I_XSTARTS0 + use - 2] += 1;
        else { I[I_XPER0 + use - 2] = per; I[I_XSTARTS0 + use - 2] = 1; }
        int old = held[p];
        if (old && old != use) pos = on_synth(m, old, out, off, pos, NOTE_OFF, ch, d1, 0);
        held[p] = (uint8_t)use;
        return on_synth(m, use, out, off, pos, kind, ch, d1, d2);
    }
    if (kind == NOTE_ON || kind == NOTE_OFF) {
        int which = held[p] ? held[p] : 1;
        held[p] = 0;
        return on_synth(m, which, out, off, pos, kind, ch, d1, d2);
    }
    if (kind == ALL_OFF || (kind == CONTROL && (d1 == 120 || d1 == CC_ALL_NOTES_OFF))) memset(held, 0, 128);
    for (int which = 1; which < nextra + 2; which++)
        pos = on_synth(m, which, out, off, pos, kind, ch, d1, d2);
    return pos;
}

/* -- post-processing ------------------------------------------------------------------ */
static void master_and_limit(lb_mixer *m, float *out, int64_t frames) {
    double *D = m->dbls;
    double master = D[D_MASTER];
    int64_t n = frames * 2;
    if (master != 1.0) {
        float g = (float)master;
        for (int64_t i = 0; i < n; i++) out[i] *= g;
    }
    float peakf = 0.0f;
    int finite = 1;
    for (int64_t i = 0; i < n; i++) {
        float a = fabsf(out[i]);
        if (!(a <= 3.4028234663852886e38f)) finite = 0;     /* NaN or inf */
        else if (a > peakf) peakf = a;
    }
    double peak = frames ? (double)peakf : 0.0;
    if (!finite) {
        memset(out, 0, (size_t)n * sizeof(float));
        peak = 0.0;
        m->ints[I_NONFINITE] += 1;
    }
    double ceiling = D[D_CEILING];
    double target = peak <= ceiling ? 1.0 : ceiling / peak;
    double g0 = D[D_GAIN], g1;
    if (target < g0) g1 = target;                                    /* attack: by block end */
    else g1 = target + (g0 - target) * pow(D[D_RELEASE], (double)frames);   /* release */
    if (g0 != 1.0 || g1 != 1.0) {
        /* ramp[:frames] holds (j+1)/max_block; rescaled to (j+1)/frames, mapped to g0..g1 */
        float c = (float)((g1 - g0) * (double)m->ints[I_MAX_BLOCK] / (double)frames);
        float g0f = (float)g0;
        for (int64_t j = 0; j < frames; j++) {
            float g = m->ramp[j] * c + g0f;
            out[2 * j] *= g;
            out[2 * j + 1] *= g;
        }
    }
    double gmax = g0 > g1 ? g0 : g1;
    if (peak * gmax > ceiling) {
        float c = (float)ceiling;
        for (int64_t i = 0; i < n; i++) {
            if (out[i] > c) out[i] = c;
            else if (out[i] < -c) out[i] = -c;
        }
    }
    D[D_GAIN] = g1;
    double gl = g1 < 1.0 ? g1 : 1.0;
    D[D_GR_DB] = -20.0 * log10(gl > 1e-6 ? gl : 1e-6);
    double pk = peak * gmax;
    D[D_PEAK] = peak > 0 ? (pk < ceiling ? pk : ceiling) : 0.0;
}

static void click_grid(lb_mixer *m, float *out, int64_t lo, int64_t hi, int64_t clock, double origin,
                       double spb, int64_t bpb, int64_t first, double gain) {
    if (hi <= lo) return;
    int64_t L = m->click_len;
    double kc = ceil(((double)(lo - L) - origin) / spb);
    int64_t k = kc > 0 ? (int64_t)kc : 0;
    float gf = (float)gain;
    for (;;) {
        int64_t beat = (int64_t)nearbyint(origin + (double)k * spb);   /* Python's round() */
        if (beat >= hi) break;
        int64_t a = beat > lo ? beat : lo;
        int64_t b = beat + L < hi ? beat + L : hi;
        if (b > a) {
            float *click = pymod(k + first, bpb) == 0 ? m->click_hi : m->click_lo;
            float *dst = out + 2 * (a - clock);
            for (int64_t j = 0; j < b - a; j++) {
                float seg = click[a - beat + j] * gf;
                dst[2 * j] += seg;
                dst[2 * j + 1] += seg;
            }
        }
        k++;
    }
}

static void click(lb_mixer *m, float *out, int64_t clock, int64_t frames, const double *mt) {
    double origin = mt[D_M_ORIGIN - D_M_ON], spb = mt[D_M_SPB - D_M_ON], gain = mt[D_M_GAIN - D_M_ON];
    int64_t bpb = (int64_t)mt[D_M_BPB - D_M_ON], first = (int64_t)mt[D_M_FIRST - D_M_ON];
    int64_t t_end = clock + frames;
    int64_t r_origin = (int64_t)nearbyint(origin);
    if (mt[D_M_HASPREV - D_M_ON] != 0.0 && (double)clock < origin)
        click_grid(m, out, clock, t_end < r_origin ? t_end : r_origin, clock, mt[D_M_PORIGIN - D_M_ON],
                   mt[D_M_PSPB - D_M_ON], (int64_t)mt[D_M_PBPB - D_M_ON], (int64_t)mt[D_M_PFIRST - D_M_ON], gain);
    click_grid(m, out, clock > r_origin ? clock : r_origin, t_end, clock, origin, spb, bpb, first, gain);
}

static void read_metro(lb_mixer *m) {
    /* a consistent copy, or the previous one while Python is mid-update */
    int64_t *seq = &m->ints[I_METRO_SEQ];
    int64_t s0 = load_acq(seq);
    if (s0 & 1) return;
    double tmp[METRO_N];
    memcpy(tmp, &m->dbls[D_M_ON], sizeof tmp);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (load_acq(seq) != s0) return;
    memcpy(m->metro, tmp, sizeof tmp);
}

static void ring_write(lb_ring *r, const float *block, int64_t n, int64_t time) {
    int64_t *idx = r->idx;
    if (idx[4] < 0) idx[4] = time;
    int64_t w = idx[0];
    int64_t rd = load_acq(&idx[1]);
    if (n > r->cap - (w - rd)) {
        idx[2] += 1;
        idx[3] += n;
        return;
    }
    int64_t start = w % r->cap;
    int64_t first = n < r->cap - start ? n : r->cap - start;
    memcpy(r->buf + 2 * start, block, (size_t)first * 2 * sizeof(float));
    if (first < n) memcpy(r->buf, block + 2 * first, (size_t)(n - first) * 2 * sizeof(float));
    store_rel(&idx[0], w + n);          /* publish after the frames are in place */
}

static void queue_push(lb_queue *q, int64_t time, int kind, int ch, int d1, int d2) {
    int64_t *idx = q->idx;
    int64_t w = idx[0];
    if (w - load_acq(&idx[1]) > q->mask) { idx[2] += 1; return; }
    uint8_t *slot = q->buf + (size_t)(w & q->mask) * EVENT_SIZE;
    memcpy(slot, &time, 8);
    slot[8] = (uint8_t)kind; slot[9] = (uint8_t)ch; slot[10] = (uint8_t)d1; slot[11] = (uint8_t)d2;
    store_rel(&idx[0], w + 1);
}

static inline int64_t ev_time(const lb_queue *q, int64_t r) {
    int64_t t;
    memcpy(&t, q->buf + (size_t)(r & q->mask) * EVENT_SIZE, 8);
    return t;
}

/* -- one block ------------------------------------------------------------------------ */
void lb_process(lb_mixer *m, float *out, int64_t frames, int xrun) {
    int64_t t_start = mono_ns();
    int64_t *I = m->ints;
    if (xrun) I[I_XRUNS] += 1;
    double before = m->dbls[D_PEAK];      /* the end of the last block, just before the gap */
    int64_t clock = I[I_CLOCK];
    int64_t t_end = clock + frames;
    if (I[I_RESET] || I[I_CTL_VERSION] != I[I_CTL_APPLIED]) apply_controls(m);
    lb_synth *synth = &m->synths[0];
    int nextra = (int)I[I_NEXTRA];
    int64_t pch = nextra ? I[I_PLAYER_CH] : -1;
    for (int k = 0; k < nextra; k++) m->xpos[k] = 0;

    /* Events in time order across queues: each queue is time-ordered, so a k-way merge over
     * their heads keeps cross-queue order. Each queue gives at most cap / n events a block
     * (its share of the Python mixer's scratch array), only those due before t_end. */
    int64_t pos = 0;
    lb_qtable *qt = __atomic_load_n(&m->qtable, __ATOMIC_ACQUIRE);
    lb_queue *log = __atomic_load_n(&m->log, __ATOMIC_ACQUIRE);
    int nq = qt ? (int)qt->n : 0;
    if (nq > MAX_QUEUES) nq = MAX_QUEUES;
    if (nq > 0) {
        int64_t share = I[I_EV_CAP] / nq;
        int64_t r[MAX_QUEUES], w[MAX_QUEUES], lim[MAX_QUEUES];
        for (int qi = 0; qi < nq; qi++) {
            r[qi] = qt->q[qi].idx[1];
            w[qi] = load_acq(&qt->q[qi].idx[0]);
            lim[qi] = r[qi] + share;
            if (w[qi] < lim[qi]) lim[qi] = w[qi];
        }
        for (;;) {
            int best = -1;
            int64_t best_off = frames;
            for (int qi = 0; qi < nq; qi++) {
                if (r[qi] < lim[qi]) {
                    int64_t t = ev_time(&qt->q[qi], r[qi]);
                    if (t >= t_end) { lim[qi] = r[qi]; continue; }    /* not due: the queue is done */
                    int64_t off = t == IMMEDIATE ? 0 : t - clock;
                    if (off < 0) off = 0;
                    if (best < 0 || off < best_off) { best = qi; best_off = off; }
                }
            }
            if (best < 0) break;
            lb_queue *q = &qt->q[best];
            const uint8_t *e = q->buf + (size_t)(r[best] & q->mask) * EVENT_SIZE;
            int64_t t;
            memcpy(&t, e, 8);
            int kind = e[8], ch = e[9], d1 = e[10], d2 = e[11];
            r[best] += 1;
            store_rel(&q->idx[1], r[best]);
            if (t != IMMEDIATE && t < clock) I[I_LATE] += 1;
            int64_t dropped = I[I_DROPPED];
            if (ch == pch) {
                pos = player_event(m, out, best_off, clock + best_off, pos, kind, ch, d1, d2);
            } else {
                if (best_off > pos) { render(m, synth, out, pos, best_off); pos = best_off; }
                apply_event(m, synth, kind, ch, d1, d2);
            }
            I[I_APPLIED] += 1;
            if (log && I[I_DROPPED] == dropped)      /* a take holds what was heard */
                queue_push(log, clock + best_off, kind, ch, d1, d2);
        }
    }
    if (pos < frames) render(m, synth, out, pos, frames);
    int64_t mb = I[I_MAX_BLOCK];
    for (int k = 0; k < nextra; k++)
        if (m->xpos[k] < frames) render(m, &m->synths[k + 1], m->xbuf + (size_t)k * mb * 2, m->xpos[k], frames);

    /* post-processing in the same pieces as the Python mixer (identical limiter steps) */
    lb_ring *tap = __atomic_load_n(&m->tap, __ATOMIC_ACQUIRE);
    read_metro(m);
    for (int64_t s = 0; s < frames; s += POST_CHUNK) {
        int64_t e = frames < s + POST_CHUNK ? frames : s + POST_CHUNK;
        float *piece = out + 2 * s;
        int64_t n = e - s;
        for (int k = 0; k < nextra; k++) {
            float *x = m->xbuf + (size_t)k * mb * 2 + 2 * s;
            for (int64_t i = 0; i < 2 * n; i++) piece[i] += x[i];
        }
        master_and_limit(m, piece, n);
        if (xrun && s == 0 && (before >= AUDIBLE || m->dbls[D_PEAK] >= AUDIBLE || m->metro[0] != 0.0))
            I[I_AUDIBLE_XRUNS] += 1;
        if (tap) ring_write(tap, piece, n, clock + s);
        if (m->metro[0] != 0.0) {
            click(m, piece, clock + s, n, m->metro);
            for (int64_t i = 0; i < 2 * n; i++) {
                if (piece[i] > 1.0f) piece[i] = 1.0f;
                else if (piece[i] < -1.0f) piece[i] = -1.0f;
            }
        }
    }
    store_rel(&I[I_CLOCK], t_end);
    int64_t k = I[I_BLOCKS] & (m->work_ring - 1);
    m->work_ns[k] = mono_ns() - t_start;
    m->work_frames[k] = (int32_t)frames;
    store_rel(&I[I_BLOCKS], I[I_BLOCKS] + 1);
}

/* -- the PortAudio callback ----------------------------------------------------------- */
static void make_realtime(lb_out *o) {
    o->rt_thread = pthread_self();
    o->rt_known = 1;
    int prio = (int)o->ints[O_RT_PRIO];
    if (prio <= 0) { o->ints[O_REALTIME] = 0; return; }
    struct sched_param p;
    memset(&p, 0, sizeof p);
    p.sched_priority = prio;
    o->ints[O_REALTIME] = pthread_setschedparam(pthread_self(), SCHED_FIFO, &p) == 0 ? 1 : 0;
}

#define CONV_BUCKET 256

int lb_pa_callback(const void *input, void *output, unsigned long frames, const pa_time_info *ti,
                   unsigned long status, void *user) {
    (void)input;
    lb_out *o = (lb_out *)user;
    lb_mixer *m = o->m;
    float *out = (float *)output;
    if (!o->rt_known || !pthread_equal(o->rt_thread, pthread_self())) make_realtime(o);
    double now = mono_s();
    int64_t *OI = o->ints;
    double *OD = o->dbls;
    int64_t clock = m->ints[I_CLOCK];
    OD[OD_LAST_BLOCK_TIME] = now;
    OI[O_LAST_BLOCK_CLOCK] = clock;
    double pa_now = ti->currentTime;
    double dac = ti->outputBufferDacTime - pa_now;
    /* PortAudio's clock -> monotonic: the smallest (entry - PortAudio's time) of the last
     * 256-512 blocks (engine/audio_out.py explains why) */
    double entry = now - pa_now;
    if (entry < OD[OD_CONV_CUR]) OD[OD_CONV_CUR] = entry;
    OI[O_CONV_N] += 1;
    if (OI[O_CONV_N] >= CONV_BUCKET || entry - OD[OD_CONV_PREV] > 1.0) {
        OD[OD_CONV_PREV] = entry - OD[OD_CONV_PREV] <= 1.0 ? OD[OD_CONV_CUR] : entry;
        OD[OD_CONV_CUR] = entry;
        OI[O_CONV_N] = 0;
    }
    double conv = OD[OD_CONV_PREV] < OD[OD_CONV_CUR] ? OD[OD_CONV_PREV] : OD[OD_CONV_CUR];
    double dac_abs = ti->outputBufferDacTime + conv;
    OD[OD_LAST_DAC_OFFSET] = dac_abs - now;
    int underflow = (status & PA_OUTPUT_UNDERFLOW) != 0;
    int64_t n = OI[O_BLK_N];
    int64_t i = n & (TIMING_RING - 1);
    o->blk_clock[i] = clock;
    o->blk_time[i] = now;
    o->blk_dac[i] = dac_abs;
    o->blk_lead[i] = dac + (double)frames / OD[OD_RATE];
    o->blk_entry[i] = entry;
    o->blk_xrun[i] = (uint8_t)underflow;
    store_rel(&OI[O_BLK_N], n + 1);
    int64_t mb = m->ints[I_MAX_BLOCK];
    if ((int64_t)frames <= mb) {
        lb_process(m, out, (int64_t)frames, underflow);
    } else {              /* a host that ignores the block size: render in pieces */
        for (int64_t s = 0; s < (int64_t)frames; s += mb) {
            int64_t e = (int64_t)frames < s + mb ? (int64_t)frames : s + mb;
            lb_process(m, out + 2 * s, e - s, underflow && s == 0);
        }
    }
    return 0;    /* paContinue */
}

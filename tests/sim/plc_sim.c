/*
 * plc_sim.c — linecert-plc-sim, a fake line PLC for integration tests,
 * benchmarks and the demo (docs/simulators.md).
 *
 * A Modbus TCP server (libmodbus server API) holding one handshake block per
 * line (station/plcmap.h).  Per line it plays the PLC side of the handshake:
 * every takt it puts a new device serial in DEVICE_SERIAL and raises REQ_SEQ,
 * waits for the station to write ACK_SEQ == REQ_SEQ (with RESULT and REASON
 * in the same write), and records the outcome and the latency.  It also
 * watches HEARTBEAT the way a real PLC would.  One thread, one select() loop
 * serving any number of client connections, as libmodbus's
 * tests/bandwidth-server-many-up.c: the station opens one connection per line
 * and reconnects after a fault, and tests connect alongside it.
 *
 * With --abuse it is also a badly behaved PLC, for the fault suite
 * (tests/fault/): sequence jumps and reuse, a device presented twice, lost
 * ACKs, serials with non-printable bytes, random writes into the block and
 * connections dropped mid-request.  Every abuse is chosen by a seeded PRNG,
 * logged, and marked on the request's record.
 */
#include "plcmap.h"
#include "policy.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <modbus.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS    256 /* connections served at once; more are refused */
#define MAX_LINES      1000
#define MAX_PREFIX     16   /* keeps prefix + line + '-' + 10-digit counter within 32 bytes */
#define LINGER_S       2.0  /* after the last request: wait this long at most for a heartbeat */
#define MAX_SELECT_S   0.25 /* upper bound on one select() wait */
#define SERIAL_BUFSIZE (PLC_SERIAL_MAX + 1)
#define PRETTY_MAX     10000 /* records; larger summaries are written compact */
#define SEQ_HISTORY    8     /* REQ_SEQ values remembered per line for seq-reuse */
#define ABUSE_WINDOW_S 0.05  /* a scribble or a drop lands within this after the trigger */

enum outcome {
    OUT_ISSUED,
    OUT_REFUSED,
    OUT_FAULT,
    OUT_INVALID, /* ACK with a RESULT that is not issued/refused/fault */
    OUT_TIMEOUT,
};

static const char *const OUTCOME_NAME[] = {"issued", "refused", "fault", "invalid", "timeout"};

/*
 * What --abuse can do.  The first five change one request (one of them per
 * abused request); the last two are events scheduled by a request.
 */
enum abuse {
    AB_NONE,
    AB_SEQ_JUMP,      /* REQ_SEQ jumps to a random value */
    AB_SEQ_REUSE,     /* REQ_SEQ goes back to a value used earlier, new serial */
    AB_SERIAL_REPEAT, /* the previous request's serial again, new REQ_SEQ */
    AB_ACK_LOSS,   /* the first ACK is undone (ACK_SEQ put back): the station must answer again */
    AB_BAD_SERIAL, /* DEVICE_SERIAL with a non-printable byte, a gap or nothing */
    AB_RANDOM_WRITES, /* random values into the block's other registers */
    AB_DROP,          /* every client connection closed */
    AB_COUNT
};

static const char *const ABUSE_NAME[AB_COUNT] = {"none",          "seq-jump", "seq-reuse",
                                                 "serial-repeat", "ack-loss", "bad-serial",
                                                 "random-writes", "drop"};

#define AB_FIRST_EVENT AB_RANDOM_WRITES /* the ones from here on are events, not request kinds */

/* One finished request, compact: runs of millions of requests stay small. */
struct record {
    uint32_t counter; /* serial counter: the serial is rebuilt from it */
    uint16_t line;    /* 1-based */
    uint16_t seq;     /* REQ_SEQ of the request */
    uint16_t result;  /* RESULT register at ACK time (0 for a timeout) */
    uint16_t reason;  /* REASON register at ACK time (0 for a timeout) */
    uint8_t outcome;  /* enum outcome */
    uint8_t abuse;    /* enum abuse of the request (AB_NONE normally) */
    float latency_ms; /* trigger to ACK observed (to giving up, for a timeout) */
};

struct line {
    int n;             /* line number, 1-based */
    size_t off;        /* index of the block in the mapping's register table */
    uint32_t raised;   /* requests raised so far */
    int pending;       /* a request is waiting for its ACK */
    uint16_t seq;      /* current REQ_SEQ */
    double trigger_t;  /* monotonic time the current/last request was raised */
    uint16_t last_ack; /* ACK_SEQ last seen, to report stray ACKs once */
    uint32_t count[OUT_TIMEOUT + 1];
    double done_t;    /* monotonic time the last request finished; 0 if none */
    uint16_t hb_last; /* HEARTBEAT last seen */
    uint64_t hb_changes;
    double hb_last_t;  /* monotonic time of the last HEARTBEAT change */
    double hb_max_gap; /* seconds, between two consecutive changes */
    /* --abuse */
    uint32_t counter;                    /* serial counter of the current/last request */
    uint8_t abuse;                       /* enum abuse of the current request */
    uint16_t ack_before;                 /* ACK_SEQ when the request was raised */
    int ack_undone;                      /* ack-loss: the first ACK was put back */
    uint16_t first_result, first_reason; /* ack-loss: what the first ACK said */
    uint16_t seq_hist[SEQ_HISTORY];      /* REQ_SEQ values used on this line */
    unsigned nhist;
    double scribble_at; /* random-writes: when (0: none scheduled) */
};

struct options {
    char host[256];
    char port[16];
    int lines;
    int base;
    int stride;
    int takt_ms;
    uint32_t count;         /* requests per line; 0 = unlimited */
    uint32_t first_counter; /* counter of the first serial on each line */
    const char *prefix;
    int unit; /* -1: answer every unit id */
    const char *summary_json;
    double timeout_s;
    int hold;
    int wait_heartbeat;
    int verbose;
    unsigned abuse_mask; /* 1 << enum abuse */
    double abuse_rate;   /* probability per request */
    uint64_t seed;
    int have_seed;
};

struct sim {
    struct options o;
    modbus_t *ctx;
    modbus_mapping_t *map;
    int listen_fd;
    int clients[MAX_CLIENTS];
    int nclients;
    struct line *lines;
    struct record *recs;
    size_t nrecs, caprecs;
    double start_t;
    double first_trigger_t; /* 0 until the first request */
    double last_done_t;
    int interrupted;
    uint64_t rng;   /* xorshift64 state (--abuse) */
    double drop_at; /* drop: when to close every connection (0: none scheduled) */
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void warnx_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void warnx_(const char *fmt, ...)
{
    va_list ap;

    fputs("linecert-plc-sim: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void usage(FILE *f)
{
    fputs("usage: linecert-plc-sim --listen HOST:PORT --lines N [--base B] [--stride S]\n"
          "         [--takt-ms T] [--count C] [--first-counter K] [--serial-prefix P]\n"
          "         [--unit U] [--timeout-s X] [--summary-json FILE] [--hold]\n"
          "         [--wait-heartbeat] [--verbose]\n"
          "         [--abuse LIST] [--abuse-rate P] [--seed N]\n"
          "A fake line PLC (Modbus TCP server); see docs/simulators.md.\n",
          f);
}

/* Parses a decimal integer in [lo, hi]; returns 0 or -1. */
static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* Splits "HOST:PORT" or "[V6]:PORT"; PORT may be 0 (any free port). */
static int parse_listen(const char *s, struct options *o)
{
    const char *colon = strrchr(s, ':');
    const char *h = s;
    size_t hlen;
    long port;

    if (colon == NULL || parse_long(colon + 1, 0, 65535, &port) != 0)
        return -1;
    hlen = (size_t)(colon - s);
    if (hlen >= 2 && s[0] == '[' && s[hlen - 1] == ']') {
        h = s + 1;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= sizeof o->host)
        return -1;
    memcpy(o->host, h, hlen);
    o->host[hlen] = '\0';
    snprintf(o->port, sizeof o->port, "%ld", port);
    return 0;
}

/* Parses --abuse's comma-separated list into a mask of 1 << enum abuse.  Returns 0 or -1. */
static int parse_abuse(const char *list, unsigned *mask)
{
    const char *p = list;

    *mask = 0;
    while (*p != '\0') {
        size_t n = strcspn(p, ",");
        int found = 0;
        for (int k = AB_NONE + 1; k < AB_COUNT; k++) {
            if (strlen(ABUSE_NAME[k]) == n && strncmp(p, ABUSE_NAME[k], n) == 0) {
                *mask |= 1u << k;
                found = 1;
            }
        }
        if (!found)
            return -1;
        p += n;
        if (*p == ',')
            p++;
    }
    return *mask != 0 ? 0 : -1;
}

static int parse_args(int argc, char **argv, struct options *o)
{
    int have_listen = 0;
    long v;
    double d;
    char *end;

    memset(o, 0, sizeof *o);
    o->stride = 64;
    o->takt_ms = 1000;
    o->first_counter = 1;
    o->prefix = "SN";
    o->unit = -1;
    o->timeout_s = 30.0;
    o->abuse_rate = 0.25;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1;

        if (strcmp(a, "--hold") == 0) {
            o->hold = 1;
            takes = 0;
        } else if (strcmp(a, "--wait-heartbeat") == 0) {
            o->wait_heartbeat = 1;
            takes = 0;
        } else if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
            o->verbose = 1;
            takes = 0;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (val == NULL) {
            warnx_("%s: unknown option or missing value", a);
            return -1;
        } else if (strcmp(a, "--listen") == 0) {
            if (parse_listen(val, o) != 0) {
                warnx_("--listen %s: expected HOST:PORT", val);
                return -1;
            }
            have_listen = 1;
        } else if (strcmp(a, "--lines") == 0) {
            if (parse_long(val, 1, MAX_LINES, &v) != 0)
                goto bad;
            o->lines = (int)v;
        } else if (strcmp(a, "--base") == 0) {
            if (parse_long(val, 0, 65535, &v) != 0)
                goto bad;
            o->base = (int)v;
        } else if (strcmp(a, "--stride") == 0) {
            if (parse_long(val, PLC_BLOCK, 65535, &v) != 0)
                goto bad;
            o->stride = (int)v;
        } else if (strcmp(a, "--takt-ms") == 0) {
            if (parse_long(val, 0, 86400000, &v) != 0)
                goto bad;
            o->takt_ms = (int)v;
        } else if (strcmp(a, "--count") == 0) {
            if (parse_long(val, 0, 100000000, &v) != 0)
                goto bad;
            o->count = (uint32_t)v;
        } else if (strcmp(a, "--first-counter") == 0) {
            if (parse_long(val, 0, 1000000000, &v) != 0)
                goto bad;
            o->first_counter = (uint32_t)v;
        } else if (strcmp(a, "--serial-prefix") == 0) {
            if (strlen(val) > MAX_PREFIX) {
                warnx_("--serial-prefix: at most %d bytes", MAX_PREFIX);
                return -1;
            }
            o->prefix = val;
        } else if (strcmp(a, "--unit") == 0) {
            if (parse_long(val, 0, 255, &v) != 0)
                goto bad;
            o->unit = (int)v;
        } else if (strcmp(a, "--summary-json") == 0) {
            o->summary_json = val;
        } else if (strcmp(a, "--abuse") == 0) {
            if (parse_abuse(val, &o->abuse_mask) != 0) {
                warnx_("--abuse %s: expected a comma-separated list of seq-jump, seq-reuse, "
                       "serial-repeat, ack-loss, bad-serial, random-writes, drop",
                       val);
                return -1;
            }
        } else if (strcmp(a, "--abuse-rate") == 0) {
            errno = 0;
            d = strtod(val, &end);
            if (errno != 0 || end == val || *end != '\0' || !(d >= 0) || d > 1)
                goto bad;
            o->abuse_rate = d;
        } else if (strcmp(a, "--seed") == 0) {
            errno = 0;
            o->seed = strtoull(val, &end, 10);
            if (errno != 0 || end == val || *end != '\0' || val[0] == '-')
                goto bad;
            o->have_seed = 1;
        } else if (strcmp(a, "--timeout-s") == 0) {
            errno = 0;
            d = strtod(val, &end);
            if (errno != 0 || end == val || *end != '\0' || !(d > 0) || d > 86400)
                goto bad;
            o->timeout_s = d;
        } else {
            warnx_("%s: unknown option", a);
            return -1;
        }
        i += takes;
        continue;
    bad:
        warnx_("%s %s: invalid value", a, val);
        return -1;
    }
    if (!have_listen || o->lines == 0) {
        warnx_("--listen and --lines are required");
        return -1;
    }
    if ((long)o->base + (long)(o->lines - 1) * o->stride + PLC_BLOCK > 65536) {
        warnx_("the last line's block (base %d + %d x stride %d) ends beyond register 65535",
               o->base, o->lines - 1, o->stride);
        return -1;
    }
    return 0;
}

static uint16_t *block(struct sim *s, const struct line *l)
{
    return s->map->tab_registers + l->off;
}

static void make_serial(const struct sim *s, int line, uint32_t counter, char *out)
{
    snprintf(out, SERIAL_BUFSIZE, "%s%d-%06" PRIu32, s->o.prefix, line, counter);
}

static int add_record(struct sim *s, const struct line *l, int outcome, uint16_t result,
                      uint16_t reason, double latency_s)
{
    struct record *r;

    if (s->nrecs == s->caprecs) {
        size_t cap = s->caprecs ? s->caprecs * 2 : 1024;
        struct record *n = realloc(s->recs, cap * sizeof *n);
        if (n == NULL)
            return -1;
        s->recs = n;
        s->caprecs = cap;
    }
    r = &s->recs[s->nrecs++];
    r->counter = l->counter;
    r->abuse = l->abuse;
    r->line = (uint16_t)l->n;
    r->seq = l->seq;
    r->result = result;
    r->reason = reason;
    r->outcome = (uint8_t)outcome;
    r->latency_ms = (float)(latency_s * 1000.0);
    return 0;
}

static void finish(struct sim *s, struct line *l, int outcome, uint16_t result, uint16_t reason,
                   double t)
{
    if (add_record(s, l, outcome, result, reason, t - l->trigger_t) != 0)
        warnx_("out of memory: request not recorded");
    l->count[outcome]++;
    l->pending = 0;
    l->done_t = t;
    s->last_done_t = t;
}

/* xorshift64: the abuse decisions, reproducible from --seed. */
static uint64_t rnd(struct sim *s)
{
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    return s->rng;
}

/* A uniform double in [0, 1). */
static double rnd01(struct sim *s)
{
    return (double)(rnd(s) >> 11) / 9007199254740992.0;
}

/* Picks the abuse of a new request: one of the request kinds in --abuse, or none. */
static int pick_abuse(struct sim *s)
{
    int kinds[AB_COUNT], n = 0;

    for (int k = AB_NONE + 1; k < AB_FIRST_EVENT; k++)
        if (s->o.abuse_mask & (1u << k))
            kinds[n++] = k;
    if (n == 0 || rnd01(s) >= s->o.abuse_rate)
        return AB_NONE;
    return kinds[rnd(s) % (uint64_t)n];
}

/*
 * Writes a serial with something wrong in it: a control byte, DEL, a byte
 * above 0x7e or a space at a random place, nothing at all, or a NUL followed
 * by more characters.  The station must refuse it (serial-invalid).
 */
static void encode_bad_serial(struct sim *s, const char *good, uint16_t *regs)
{
    unsigned char b[PLC_SERIAL_MAX] = {0};
    size_t n = strlen(good), at = (size_t)(rnd(s) % (n > 1 ? n - 1 : 1)) + 1;
    unsigned variant = (unsigned)(rnd(s) % 6);

    memcpy(b, good, n);
    switch (variant) {
    case 0:
        b[at] = (unsigned char)(1 + rnd(s) % 0x1f);
        break;
    case 1:
        b[at] = 0x7f;
        break;
    case 2:
        b[at] = (unsigned char)(0x80 + rnd(s) % 0x80);
        break;
    case 3:
        b[at] = ' ';
        break;
    case 4:
        memset(b, 0, sizeof b);
        break;
    default:
        /* "SN1" NUL "-000042": bytes after the padding started.  Never the last
         * character: "SN1-00004" NUL is a shorter serial, not a bad one. */
        b[at < n - 1 ? at : n - 2] = 0;
        break;
    }
    for (int i = 0; i < PLC_SERIAL_REGS; i++)
        regs[i] = (uint16_t)(b[2 * i] << 8 | b[2 * i + 1]);
}

/* A REQ_SEQ for this request that the station sees as new: != current REQ_SEQ and ACK_SEQ. */
static uint16_t next_seq(struct sim *s, struct line *l, const uint16_t *r)
{
    uint16_t cur = r[PLC_REQ_SEQ], ack = r[PLC_ACK_SEQ], v;
    uint16_t plain = (uint16_t)(cur == 65535 ? 1 : cur + 1);

    if (plain == ack)
        plain = (uint16_t)(plain == 65535 ? 1 : plain + 1);
    if (l->abuse == AB_SEQ_JUMP) {
        do
            v = (uint16_t)(1 + rnd(s) % 65535);
        while (v == cur || v == ack);
        return v;
    }
    if (l->abuse == AB_SEQ_REUSE) {
        unsigned n = l->nhist < SEQ_HISTORY ? l->nhist : SEQ_HISTORY;
        for (unsigned tries = 0; n > 0 && tries < 2 * SEQ_HISTORY; tries++) {
            v = l->seq_hist[rnd(s) % n];
            if (v != cur && v != ack && v != 0)
                return v;
        }
        l->abuse = AB_NONE; /* no usable earlier value yet */
    }
    return plain;
}

/* Raises the next request on a line: serial first, then REQ_SEQ. */
static void raise_request(struct sim *s, struct line *l, double t)
{
    uint16_t *r = block(s, l);
    char serial[SERIAL_BUFSIZE];

    l->raised++;
    l->abuse = s->o.abuse_mask ? (uint8_t)pick_abuse(s) : AB_NONE;
    if (l->abuse == AB_SERIAL_REPEAT && l->raised > 1)
        ; /* l->counter stays: the previous device again */
    else {
        if (l->abuse == AB_SERIAL_REPEAT)
            l->abuse = AB_NONE; /* nothing to repeat yet */
        l->counter = s->o.first_counter + l->raised - 1;
    }
    make_serial(s, l->n, l->counter, serial);
    if (l->abuse == AB_BAD_SERIAL)
        encode_bad_serial(s, serial, r + PLC_SERIAL);
    else
        plc_encode_serial(serial, r + PLC_SERIAL);
    l->ack_before = r[PLC_ACK_SEQ];
    l->ack_undone = 0;
    l->seq = s->o.abuse_mask ? next_seq(s, l, r)
                             : (uint16_t)(r[PLC_REQ_SEQ] == 65535 ? 1 : r[PLC_REQ_SEQ] + 1);
    r[PLC_REQ_SEQ] = l->seq;
    l->seq_hist[l->nhist++ % SEQ_HISTORY] = l->seq;
    l->pending = 1;
    l->trigger_t = t;
    if (s->first_trigger_t == 0)
        s->first_trigger_t = t;
    if (s->o.verbose)
        warnx_("line %d: request seq %u serial %s", l->n, l->seq, serial);
    if (l->abuse != AB_NONE)
        warnx_("line %d: abuse %s on seq %u (serial %s)", l->n, ABUSE_NAME[l->abuse], l->seq,
               serial);
    /* The events: a scribble into some line's block, and a drop of every connection. */
    if ((s->o.abuse_mask & (1u << AB_RANDOM_WRITES)) && rnd01(s) < s->o.abuse_rate) {
        struct line *victim = &s->lines[rnd(s) % (uint64_t)s->o.lines];
        if (victim->scribble_at == 0)
            victim->scribble_at = t + rnd01(s) * ABUSE_WINDOW_S;
    }
    if ((s->o.abuse_mask & (1u << AB_DROP)) && s->drop_at == 0 && rnd01(s) < s->o.abuse_rate)
        s->drop_at = t + rnd01(s) * ABUSE_WINDOW_S;
}

/*
 * random-writes: a random value into one of the block's registers that the
 * PLC does not own or does not use: the reserved 17-31, ACK_SEQ (never to the
 * pending REQ_SEQ: that would be the PLC acknowledging itself), RESULT,
 * REASON, ISSUED_COUNT and STATION_STATE.  HEARTBEAT is left alone so the
 * heartbeat watch stays meaningful.  The station owns those registers and
 * must neither crash nor issue twice because of what it finds there.
 */
static void scribble(struct sim *s, struct line *l)
{
    static const int regs[] = {17,
                               18,
                               19,
                               20,
                               21,
                               22,
                               23,
                               24,
                               25,
                               26,
                               27,
                               28,
                               29,
                               30,
                               31,
                               PLC_ACK_SEQ,
                               PLC_RESULT,
                               PLC_REASON,
                               PLC_ISSUED_HI,
                               PLC_ISSUED_LO,
                               PLC_STATION_STATE};
    uint16_t *r = block(s, l);
    int reg = regs[rnd(s) % (sizeof regs / sizeof regs[0])];
    uint16_t v = (uint16_t)rnd(s);

    if (reg == PLC_ACK_SEQ && v == r[PLC_REQ_SEQ])
        v = (uint16_t)(v + 1);
    r[reg] = v;
    if (reg == PLC_ACK_SEQ)
        l->last_ack = v; /* our own write: not a station ACK to report */
    warnx_("line %d: abuse random-writes: register %d = %u", l->n, reg, v);
}

static void close_client(struct sim *s, int idx);

static void drop_all(struct sim *s)
{
    warnx_("abuse drop: closing %d connection(s)", s->nclients);
    while (s->nclients > 0)
        close_client(s, s->nclients - 1);
}

static int line_finished(const struct sim *s, const struct line *l)
{
    return !l->pending && s->o.count != 0 && l->raised >= s->o.count;
}

/* Time-driven PLC logic: raise requests and give up on missing ACKs. */
static void tick(struct sim *s, double t)
{
    if (s->drop_at != 0 && t >= s->drop_at) {
        s->drop_at = 0;
        drop_all(s);
    }
    for (int i = 0; i < s->o.lines; i++) {
        struct line *l = &s->lines[i];

        if (l->scribble_at != 0 && t >= l->scribble_at) {
            l->scribble_at = 0;
            scribble(s, l);
        }

        if (l->pending && t - l->trigger_t >= s->o.timeout_s) {
            char serial[SERIAL_BUFSIZE];
            make_serial(s, l->n, l->counter, serial);
            warnx_("line %d: no ACK for seq %u (serial %s) after %.1f s", l->n, l->seq, serial,
                   s->o.timeout_s);
            finish(s, l, OUT_TIMEOUT, 0, 0, t);
        }
        if (s->o.hold || l->pending || (s->o.count != 0 && l->raised >= s->o.count))
            continue;
        if (s->o.wait_heartbeat && l->hb_changes == 0)
            continue;
        if (l->raised == 0 || t - l->trigger_t >= s->o.takt_ms / 1000.0)
            raise_request(s, l, t);
    }
}

/* Looks at what the station wrote: HEARTBEAT and ACK_SEQ.  Runs after every reply. */
static void observe(struct sim *s, double t)
{
    for (int i = 0; i < s->o.lines; i++) {
        struct line *l = &s->lines[i];
        uint16_t *r = block(s, l);
        uint16_t ack = r[PLC_ACK_SEQ];

        if (r[PLC_HEARTBEAT] != l->hb_last) {
            if (l->hb_changes > 0 && t - l->hb_last_t > l->hb_max_gap)
                l->hb_max_gap = t - l->hb_last_t;
            l->hb_last = r[PLC_HEARTBEAT];
            l->hb_last_t = t;
            l->hb_changes++;
        }
        if (l->pending && ack == l->seq) {
            uint16_t result = r[PLC_RESULT], reason = r[PLC_REASON];
            int out = result == PLC_RESULT_ISSUED    ? OUT_ISSUED
                      : result == PLC_RESULT_REFUSED ? OUT_REFUSED
                      : result == PLC_RESULT_FAULT   ? OUT_FAULT
                                                     : OUT_INVALID;
            if (l->abuse == AB_ACK_LOSS && !l->ack_undone) {
                /* As if the station's write never arrived: it must answer again, the same way. */
                l->ack_undone = 1;
                l->first_result = result;
                l->first_reason = reason;
                r[PLC_ACK_SEQ] = l->ack_before;
                l->last_ack = l->ack_before;
                warnx_("line %d: abuse ack-loss: ACK seq %u result %u reason %u undone", l->n, ack,
                       result, reason);
                continue;
            }
            if (l->ack_undone && (result != l->first_result || reason != l->first_reason)) {
                warnx_("line %d: seq %u answered again with result %u reason %u, first %u %u", l->n,
                       ack, result, reason, l->first_result, l->first_reason);
                out = OUT_INVALID;
            } else if (out == OUT_INVALID)
                warnx_("line %d: ACK for seq %u with RESULT %u (not issued/refused/fault)", l->n,
                       ack, result);
            if (s->o.verbose)
                warnx_("line %d: ACK seq %u result %u reason %u (%s) after %.2f ms", l->n, ack,
                       result, reason, policy_reason_name(reason), (t - l->trigger_t) * 1e3);
            finish(s, l, out, result, reason, t);
        } else if (ack != l->last_ack && !s->o.hold && ack != l->seq) {
            warnx_("line %d: ACK_SEQ %u does not match REQ_SEQ %u", l->n, ack, l->seq);
        }
        l->last_ack = ack;
    }
}

static void close_client(struct sim *s, int idx)
{
    if (s->o.verbose)
        warnx_("client on fd %d closed", s->clients[idx]);
    close(s->clients[idx]);
    s->clients[idx] = s->clients[--s->nclients];
}

static void accept_client(struct sim *s)
{
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);

    if (fd < 0) {
        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
            warnx_("accept: %s", strerror(errno));
        return;
    }
    if (s->nclients == MAX_CLIENTS || fd >= FD_SETSIZE) {
        warnx_("too many connections; refusing one");
        close(fd);
        return;
    }
    s->clients[s->nclients++] = fd;
    if (s->o.verbose)
        warnx_("client connected on fd %d", fd);
}

/* Serves one request from a ready client.  Returns -1 if the client must be closed. */
static int serve_client(struct sim *s, int fd)
{
    uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
    int hlen = modbus_get_header_length(s->ctx);
    int rc;

    modbus_set_socket(s->ctx, fd);
    rc = modbus_receive(s->ctx, query);
    if (rc == 0)
        return 0; /* not for us (libmodbus filtered it) */
    if (rc < 0) {
        if (s->o.verbose && errno != ECONNRESET)
            warnx_("fd %d: %s", fd, modbus_strerror(errno));
        return -1;
    }
    if (s->o.unit >= 0 && hlen > 0 && query[hlen - 1] != s->o.unit) {
        /* A gateway answers a request for an absent unit with exception 0x0B. */
        if (modbus_reply_exception(s->ctx, query, MODBUS_EXCEPTION_GATEWAY_TARGET) < 0)
            return -1;
        return 0;
    }
    if (modbus_reply(s->ctx, query, rc, s->map) < 0)
        return -1;
    observe(s, now_s());
    return 0;
}

static int all_finished(const struct sim *s)
{
    if (s->o.hold || s->o.count == 0)
        return 0;
    for (int i = 0; i < s->o.lines; i++)
        if (!line_finished(s, &s->lines[i]))
            return 0;
    return 1;
}

/*
 * After the last request, ISSUED_COUNT is written with the next heartbeat,
 * not with the ACK: wait until every line that heartbeats has done so once
 * more, so that issued_count_reg in the summary is current.
 */
static int settled(const struct sim *s, double t)
{
    if (t - s->last_done_t >= LINGER_S)
        return 1;
    for (int i = 0; i < s->o.lines; i++) {
        const struct line *l = &s->lines[i];
        if (l->hb_changes > 0 && l->hb_last_t <= l->done_t)
            return 0;
    }
    return 1;
}

/* Seconds until the next time-driven event, capped at MAX_SELECT_S. */
static double next_wait(const struct sim *s, double t)
{
    double w = MAX_SELECT_S;

    if (s->drop_at != 0 && s->drop_at - t < w)
        w = s->drop_at - t;
    for (int i = 0; i < s->o.lines; i++) {
        const struct line *l = &s->lines[i];
        double due;

        if (l->scribble_at != 0 && l->scribble_at - t < w)
            w = l->scribble_at - t;

        if (l->pending)
            due = l->trigger_t + s->o.timeout_s;
        else if (!s->o.hold && (s->o.count == 0 || l->raised < s->o.count) &&
                 !(s->o.wait_heartbeat && l->hb_changes == 0))
            due = l->raised == 0 ? t : l->trigger_t + s->o.takt_ms / 1000.0;
        else
            continue;
        if (due - t < w)
            w = due - t;
    }
    return w < 0 ? 0 : w;
}

static int run(struct sim *s)
{
    sigset_t block_set, wait_set;

    sigemptyset(&block_set);
    sigaddset(&block_set, SIGINT);
    sigaddset(&block_set, SIGTERM);
    sigprocmask(SIG_BLOCK, &block_set, &wait_set);
    sigdelset(&wait_set, SIGINT);
    sigdelset(&wait_set, SIGTERM);

    for (;;) {
        double t = now_s(), w;
        struct timespec ts;
        fd_set rd;
        int maxfd = s->listen_fd, n;

        tick(s, t);
        if (stop_signal) {
            s->interrupted = 1;
            return 0;
        }
        if (all_finished(s) && settled(s, t))
            return 0;
        w = next_wait(s, t);
        ts.tv_sec = (time_t)w;
        ts.tv_nsec = (long)((w - (double)ts.tv_sec) * 1e9);
        FD_ZERO(&rd);
        FD_SET(s->listen_fd, &rd);
        for (int i = 0; i < s->nclients; i++) {
            FD_SET(s->clients[i], &rd);
            if (s->clients[i] > maxfd)
                maxfd = s->clients[i];
        }
        n = pselect(maxfd + 1, &rd, NULL, NULL, &ts, &wait_set);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            warnx_("select: %s", strerror(errno));
            return -1;
        }
        if (n == 0)
            continue;
        /* Walk backwards: close_client() moves the last entry into the freed slot. */
        for (int i = s->nclients - 1; i >= 0; i--)
            if (FD_ISSET(s->clients[i], &rd) && serve_client(s, s->clients[i]) != 0)
                close_client(s, i);
        if (FD_ISSET(s->listen_fd, &rd))
            accept_client(s);
    }
}

/* Latency statistics over the records selected by line (0 = all lines). */
struct stats {
    double p50, p99, max; /* ms; 0 when there is no sample */
    size_t n;
};

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[0..n-1]. */
static double percentile(const float *v, size_t n, double p)
{
    size_t rank = (size_t)ceil(p * (double)n);
    return v[rank == 0 ? 0 : rank - 1];
}

static void latency_stats(const struct sim *s, int line, struct stats *st, float *scratch)
{
    size_t n = 0;

    memset(st, 0, sizeof *st);
    for (size_t i = 0; i < s->nrecs; i++)
        if ((line == 0 || s->recs[i].line == line) && s->recs[i].outcome != OUT_TIMEOUT)
            scratch[n++] = s->recs[i].latency_ms;
    if (n == 0)
        return;
    qsort(scratch, n, sizeof *scratch, cmp_float);
    st->n = n;
    st->p50 = percentile(scratch, n, 0.50);
    st->p99 = percentile(scratch, n, 0.99);
    st->max = scratch[n - 1];
}

/* Totals of one line, or of all lines when l is NULL. */
struct totals {
    uint64_t requests, count[OUT_TIMEOUT + 1], issued_reg, pending, hb_changes;
    double hb_gap_ms;
    struct stats lat;
};

static double open_gap(const struct line *l, double t)
{
    /* A heartbeat that has stopped counts up to now: that is what a PLC sees. */
    double g = l->hb_max_gap;
    if (l->hb_changes > 0 && t - l->hb_last_t > g)
        g = t - l->hb_last_t;
    return g * 1000.0;
}

static void line_totals(const struct sim *s, const struct line *l, double t, struct totals *tt,
                        float *scratch)
{
    const uint16_t *r = s->map->tab_registers + l->off;

    memset(tt, 0, sizeof *tt);
    tt->requests = l->raised;
    for (int k = 0; k <= OUT_TIMEOUT; k++)
        tt->count[k] = l->count[k];
    tt->issued_reg = (uint64_t)r[PLC_ISSUED_HI] << 16 | r[PLC_ISSUED_LO];
    tt->pending = (uint64_t)l->pending;
    tt->hb_changes = l->hb_changes;
    tt->hb_gap_ms = open_gap(l, t);
    latency_stats(s, l->n, &tt->lat, scratch);
}

static void print_totals(FILE *f, const char *label, const struct totals *tt)
{
    fprintf(f,
            "%s: requests %" PRIu64 " issued %" PRIu64 " refused %" PRIu64 " faults %" PRIu64
            " timeouts %" PRIu64 " issued_count_reg %" PRIu64
            " p50_ms %.2f p99_ms %.2f max_ms %.2f max_heartbeat_gap_ms %.0f",
            label, tt->requests, tt->count[OUT_ISSUED], tt->count[OUT_REFUSED],
            tt->count[OUT_FAULT], tt->count[OUT_TIMEOUT], tt->issued_reg, tt->lat.p50, tt->lat.p99,
            tt->lat.max, tt->hb_gap_ms);
}

static json_object *json_ms(double v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%.3f", v);
    return json_object_new_double_s(v, buf);
}

static json_object *totals_json(const struct totals *tt)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "requests", json_object_new_int64((int64_t)tt->requests));
    json_object_object_add(o, "issued", json_object_new_int64((int64_t)tt->count[OUT_ISSUED]));
    json_object_object_add(o, "refused", json_object_new_int64((int64_t)tt->count[OUT_REFUSED]));
    json_object_object_add(o, "faults", json_object_new_int64((int64_t)tt->count[OUT_FAULT]));
    json_object_object_add(o, "timeouts", json_object_new_int64((int64_t)tt->count[OUT_TIMEOUT]));
    json_object_object_add(o, "invalid", json_object_new_int64((int64_t)tt->count[OUT_INVALID]));
    json_object_object_add(o, "pending", json_object_new_int64((int64_t)tt->pending));
    json_object_object_add(o, "issued_count_reg", json_object_new_int64((int64_t)tt->issued_reg));
    json_object_object_add(o, "latency_samples", json_object_new_int64((int64_t)tt->lat.n));
    json_object_object_add(o, "p50_ms", json_ms(tt->lat.p50));
    json_object_object_add(o, "p99_ms", json_ms(tt->lat.p99));
    json_object_object_add(o, "max_ms", json_ms(tt->lat.max));
    json_object_object_add(o, "heartbeat_changes", json_object_new_int64((int64_t)tt->hb_changes));
    json_object_object_add(o, "max_heartbeat_gap_ms", json_ms(tt->hb_gap_ms));
    return o;
}

/* Writes FILE atomically (temporary file + rename).  Returns 0 or -1. */
static int write_json(const struct sim *s, const struct totals *lt, const struct totals *all,
                      double elapsed, double rate)
{
    json_object *root = json_object_new_object(), *lines = json_object_new_array(),
                *recs = json_object_new_array();
    char tmp[PATH_MAX], serial[SERIAL_BUFSIZE];
    int ret = -1;

    for (int i = 0; i < s->o.lines; i++) {
        const struct line *l = &s->lines[i];
        const uint16_t *r = s->map->tab_registers + l->off;
        json_object *o = totals_json(&lt[i]);

        json_object_object_add(o, "line", json_object_new_int(l->n));
        json_object_object_add(o, "base", json_object_new_int(s->o.base + i * s->o.stride));
        json_object_object_add(o, "station_state", json_object_new_int(r[PLC_STATION_STATE]));
        json_object_array_add(lines, o);
    }
    for (size_t i = 0; i < s->nrecs; i++) {
        const struct record *rc = &s->recs[i];
        json_object *o = json_object_new_object();

        make_serial(s, rc->line, rc->counter, serial);
        json_object_object_add(o, "line", json_object_new_int(rc->line));
        json_object_object_add(o, "seq", json_object_new_int(rc->seq));
        json_object_object_add(o, "serial", json_object_new_string(serial));
        json_object_object_add(o, "outcome", json_object_new_string(OUTCOME_NAME[rc->outcome]));
        json_object_object_add(o, "result", json_object_new_int(rc->result));
        json_object_object_add(o, "reason", json_object_new_int(rc->reason));
        json_object_object_add(o, "reason_name",
                               json_object_new_string(policy_reason_name(rc->reason)));
        json_object_object_add(o, "latency_ms", json_ms(rc->latency_ms));
        if (rc->abuse != AB_NONE)
            json_object_object_add(o, "abuse", json_object_new_string(ABUSE_NAME[rc->abuse]));
        json_object_array_add(recs, o);
    }
    json_object_object_add(root, "lines", lines);
    json_object_object_add(root, "total", totals_json(all));
    json_object_object_add(root, "elapsed_s", json_ms(elapsed));
    json_object_object_add(root, "issued_per_s", json_ms(rate));
    json_object_object_add(root, "interrupted", json_object_new_boolean(s->interrupted));
    json_object_object_add(root, "records", recs);

    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", s->o.summary_json, (long)getpid()) >=
        (int)sizeof tmp) {
        warnx_("%s: path too long", s->o.summary_json);
        goto out;
    }
    /* Pretty for the runs people read; a benchmark's million records stay compact. */
    if (json_object_to_file_ext(
            tmp, root,
            (s->nrecs <= PRETTY_MAX ? JSON_C_TO_STRING_PRETTY : JSON_C_TO_STRING_PLAIN) |
                JSON_C_TO_STRING_NOSLASHESCAPE) != 0) {
        warnx_("%s: %s", tmp, json_util_get_last_err());
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, s->o.summary_json) != 0) {
        warnx_("%s: %s", s->o.summary_json, strerror(errno));
        unlink(tmp);
        goto out;
    }
    ret = 0;
out:
    json_object_put(root);
    return ret;
}

static int summarize(const struct sim *s)
{
    double t = now_s();
    struct totals *lt = calloc((size_t)s->o.lines, sizeof *lt), all;
    float *scratch = malloc((s->nrecs ? s->nrecs : 1) * sizeof *scratch);
    double elapsed = 0, rate = 0;
    int ret = -1;

    memset(&all, 0, sizeof all);
    if (lt == NULL || scratch == NULL) {
        warnx_("out of memory");
        goto out;
    }
    for (int i = 0; i < s->o.lines; i++) {
        line_totals(s, &s->lines[i], t, &lt[i], scratch);
        all.requests += lt[i].requests;
        for (int k = 0; k <= OUT_TIMEOUT; k++)
            all.count[k] += lt[i].count[k];
        all.issued_reg += lt[i].issued_reg;
        all.pending += lt[i].pending;
        all.hb_changes += lt[i].hb_changes;
        if (lt[i].hb_gap_ms > all.hb_gap_ms)
            all.hb_gap_ms = lt[i].hb_gap_ms;
    }
    latency_stats(s, 0, &all.lat, scratch);
    if (s->first_trigger_t > 0 && s->last_done_t > s->first_trigger_t) {
        elapsed = s->last_done_t - s->first_trigger_t;
        rate = (double)all.count[OUT_ISSUED] / elapsed;
    }
    ret = 0;
    if (s->o.summary_json != NULL && write_json(s, lt, &all, elapsed, rate) != 0)
        ret = -1;
    for (int i = 0; i < s->o.lines; i++) {
        char label[32];
        snprintf(label, sizeof label, "line %d", s->lines[i].n);
        print_totals(stdout, label, &lt[i]);
        fputc('\n', stdout);
    }
    print_totals(stdout, "total", &all);
    printf(" elapsed_s %.3f issued_per_s %.1f\n", elapsed, rate);
    fflush(stdout);
out:
    free(scratch);
    free(lt);
    return ret;
}

static int listen_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;

    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

static int setup(struct sim *s)
{
    int nregs = (s->o.lines - 1) * s->o.stride + PLC_BLOCK;
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    s->listen_fd = -1;
    s->lines = calloc((size_t)s->o.lines, sizeof *s->lines);
    if (s->lines == NULL) {
        warnx_("out of memory");
        return -1;
    }
    for (int i = 0; i < s->o.lines; i++) {
        s->lines[i].n = i + 1;
        s->lines[i].off = (size_t)i * (size_t)s->o.stride;
    }
    s->map =
        modbus_mapping_new_start_address(0, 0, 0, 0, (unsigned)s->o.base, (unsigned)nregs, 0, 0);
    if (s->map == NULL) {
        warnx_("register mapping: %s", modbus_strerror(errno));
        return -1;
    }
    s->ctx = modbus_new_tcp_pi(s->o.host, s->o.port);
    if (s->ctx == NULL) {
        warnx_("modbus context: %s", modbus_strerror(errno));
        return -1;
    }
    if (s->o.unit >= 0)
        modbus_set_slave(s->ctx, s->o.unit);
    /*
     * One thread serves every line, so no client may hold the loop: a frame
     * that stalls half-way is dropped after 50 ms, and libmodbus's reply to a
     * bad request (unknown function, bad quantity) sleeps for the response
     * timeout before it flushes the socket: keep that at 1 ms, not 500.
     */
    modbus_set_byte_timeout(s->ctx, 0, 50000);
    modbus_set_indication_timeout(s->ctx, 0, 50000);
    modbus_set_response_timeout(s->ctx, 0, 1000);
    s->listen_fd = modbus_tcp_pi_listen(s->ctx, 64);
    if (s->listen_fd < 0) {
        warnx_("listen on %s:%s: %s", s->o.host, s->o.port, modbus_strerror(errno));
        return -1;
    }
    s->start_t = now_s();
    printf("listening on %s%s%s:%d\n", strchr(s->o.host, ':') ? "[" : "", s->o.host,
           strchr(s->o.host, ':') ? "]" : "", listen_port(s->listen_fd));
    fflush(stdout);
    return 0;
}

static void teardown(struct sim *s)
{
    for (int i = 0; i < s->nclients; i++)
        close(s->clients[i]);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    if (s->ctx != NULL)
        modbus_free(s->ctx);
    if (s->map != NULL)
        modbus_mapping_free(s->map);
    free(s->recs);
    free(s->lines);
}

int main(int argc, char **argv)
{
    struct sim s;
    int ret = 1;

    memset(&s, 0, sizeof s);
    if (parse_args(argc, argv, &s.o) != 0) {
        usage(stderr);
        return 2;
    }
    if (s.o.abuse_mask != 0) {
        char names[160] = "";
        for (int k = AB_NONE + 1; k < AB_COUNT; k++)
            if (s.o.abuse_mask & (1u << k))
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s",
                         names[0] ? "," : "", ABUSE_NAME[k]);
        if (!s.o.have_seed)
            s.o.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
        s.rng = s.o.seed != 0 ? s.o.seed : 0x9e3779b97f4a7c15u; /* xorshift must not start at 0 */
        warnx_("abuse %s rate %.2f seed %" PRIu64 " (--seed reproduces the choices)", names,
               s.o.abuse_rate, s.o.seed);
    }
    if (setup(&s) != 0)
        goto out;
    if (run(&s) != 0)
        goto out;
    if (summarize(&s) != 0)
        goto out;
    ret = 0;
out:
    teardown(&s);
    return ret;
}

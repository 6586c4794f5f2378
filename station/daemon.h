/*
 * daemon.h — state shared by linecertd's threads.
 *
 * Threads: main (signals, systemd watchdog, HSM/audit recovery probes,
 * reload), one worker per line (PLC handshake, jig, issuance), and the
 * control socket thread (status, pause/resume).  The issuer (signer client
 * + audit store) is thread-safe: lines issue in parallel and share group
 * commits; `issue_lock` only orders CRL generation; each line's counters under its
 * own `mu`, so that status never waits for an issuance.
 */
#ifndef LINECERT_DAEMON_H
#define LINECERT_DAEMON_H

#include "config.h"
#include "issuer.h"
#include "jig.h"
#include "plc.h"

#include <json-c/json.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define LAT_SAMPLES 1024
#define RATE_RING   4096

struct daemon;

/* One production line driven by a PLC. */
typedef struct line {
    struct daemon *d;
    const lc_line_cfg_t *cfg;
    pthread_t thread;
    pthread_t beat_thread; /* HEARTBEAT/ISSUED_COUNT/STATION_STATE writer */
    int started;
    plc_t *plc;
    plc_t *beat_plc; /* its own connection: a jig call never stalls it */
    jig_t *jig;
    pthread_mutex_t mu; /* guards everything below */
    int paused;
    int plc_up;
    char plc_error[300];
    int jig_ok;
    char jig_error[300];
    int busy;                         /* a request is in flight */
    double busy_since;                /* monotonic s */
    double alive_at;                  /* the worker's last loop (monotonic s) */
    int fault;                        /* reason of the current line fault, 0 none */
    uint64_t issued, refused, faults; /* since start */
    uint32_t issued_total;            /* ISSUED_COUNT register: all time, from the store */
    char last_serial[80];
    int last_result; /* enum plc_result */
    int last_reason;
    double last_at;                /* monotonic seconds, 0 = never */
    double issue_times[RATE_RING]; /* ring of issuance times (monotonic s) */
    unsigned issue_head;
    float lat_total[LAT_SAMPLES];   /* ms, request seen -> ACK written */
    float lat_station[LAT_SAMPLES]; /* ms, the same minus the jig program's own time */
    float lat_jig[LAT_SAMPLES];
    unsigned lat_n;
    /* the last finished request, so a lost ACK is answered again without redoing it */
    int done_valid;
    uint16_t done_seq;
    uint16_t done_serial[PLC_SERIAL_REGS]; /* a restarted PLC may reuse a seq for another device */
    int done_result, done_reason;
} line_t;

typedef struct daemon {
    lc_config_t *cfg;
    issuer_t *issuer;
    pthread_mutex_t issue_lock; /* CRL generation (numbering) and audit_error */
    line_t lines[CONFIG_MAX_LINES];
    size_t nlines;
    atomic_int stopping;    /* SIGTERM: finish in-flight requests, then exit */
    atomic_int hsm_fault;   /* the signer reported the token unusable */
    atomic_int audit_fault; /* the audit store failed: nothing is signed */
    char audit_error[300];  /* under issue_lock */
    double started_at;      /* monotonic */
} daemon_t;

/* Monotonic seconds. */
double daemon_now(void);

/* Starts a line's worker thread.  Returns LC_OK or LC_ERR_*. */
int line_start(line_t *l, char *err, size_t errlen);

/* Waits for the worker to finish its in-flight request and exit, frees PLC/jig. */
void line_stop(line_t *l);

/* The line's status object for the control socket. */
json_object *line_status(line_t *l);

/* STATION_STATE for a line (plcmap.h enum plc_state). */
int line_station_state(line_t *l);

#endif

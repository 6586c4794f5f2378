/*
 * line.c — one production line: the PLC handshake, the jig and the
 * issuance, on the line's own thread (docs/plc.md, docs/jig.md).
 *
 * One request yields at most one certificate whatever the PLC does: a
 * request is a REQ_SEQ value different from ACK_SEQ; the last finished one
 * is remembered, so a repeated or re-read request whose ACK was lost is
 * answered again without doing the work again; and after a station restart
 * the same device (same registration ID and key) gets its unacknowledged
 * certificate re-delivered by the issuer instead of a second one.
 */
#include "daemon.h"

#include "lcerr.h"
#include "log.h"
#include "policy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HEARTBEAT_S 0.25

double daemon_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    struct timespec ts;

    if (s <= 0)
        return;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int line_station_state(line_t *l)
{
    daemon_t *d = l->d;

    if (l->paused)
        return PLC_STATE_PAUSED;
    if (atomic_load(&d->hsm_fault))
        return PLC_STATE_HSM_FAULT;
    if (atomic_load(&d->audit_fault))
        return PLC_STATE_AUDIT_FAULT;
    if (!l->jig_ok)
        return PLC_STATE_JIG_FAULT;
    return PLC_STATE_OK;
}

/* Result of one request, for the PLC, the counters and the log. */
struct outcome {
    int result;      /* enum plc_result */
    int reason;      /* enum lc_reason */
    char serial[80]; /* certificate serial when one was issued */
    char detail[300];
};

static void set_outcome(struct outcome *o, int result, int reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void set_outcome(struct outcome *o, int result, int reason, const char *fmt, ...)
{
    va_list ap;

    o->result = result;
    o->reason = reason;
    va_start(ap, fmt);
    vsnprintf(o->detail, sizeof o->detail, fmt, ap);
    va_end(ap);
}

/*
 * Audits an outcome decided before or around the issuer (jig, pause, install,
 * a bad DEVICE_SERIAL): a `refused` row when the PLC is told RESULT 3, as
 * docs/audit.md defines the kinds, else a `fault` row.
 */
static void audit_fault(line_t *l, const char *regid, const char *serial, const struct outcome *o)
{
    daemon_t *d = l->d;
    int ret;

    ret = issuer_audit_event(d->issuer, l->cfg->id,
                             o->result == PLC_RESULT_REFUSED ? "refused" : "fault", regid, serial,
                             policy_reason_name(o->reason), o->detail);
    if (ret != LC_OK && !atomic_exchange(&d->audit_fault, 1))
        log_err("audit store failed: nothing will be issued until it can be written");
}

/* Builds the registration ID from the template and the PLC serial. */
static int make_regid(const char *tmpl, const char *serial, char *out, size_t len)
{
    const char *pct = strstr(tmpl, "%s");
    int n;

    if (pct == NULL)
        return -1;
    n = snprintf(out, len, "%.*s%s%s", (int)(pct - tmpl), tmpl, serial, pct + 2);
    if (n < 0 || (size_t)n >= len || !policy_regid_valid(out, (size_t)n))
        return -1;
    return 0;
}

/* Runs one request: jig CSR -> issuer -> jig install.  Fills *o; jig time in *jig_ms. */
static void serve(line_t *l, uint16_t seq, const char *serial, struct outcome *o, double *jig_ms)
{
    daemon_t *d = l->d;
    char regid[POLICY_MAX_REGID + 1], err[300], context[120];
    unsigned char *csr = NULL;
    size_t csr_len = 0, pem_len = 0;
    char *pem = NULL;
    double ms = 0;
    issue_req_t req = {0};
    issue_res_t res = {0};
    int ret, paused;

    *jig_ms = 0;
    pthread_mutex_lock(&l->mu);
    paused = l->paused;
    pthread_mutex_unlock(&l->mu);
    if (paused) {
        set_outcome(o, PLC_RESULT_FAULT, LC_REASON_PAUSED, "line paused by an operator (seq %u)",
                    seq);
        audit_fault(l, NULL, NULL, o);
        return;
    }
    if (atomic_load(&d->audit_fault)) {
        set_outcome(o, PLC_RESULT_FAULT, LC_REASON_AUDIT_UNAVAILABLE,
                    "audit store not writable; nothing is signed");
        return; /* cannot be audited: that is the fault */
    }
    if (make_regid(l->cfg->regid_template, serial, regid, sizeof regid) != 0) {
        set_outcome(o, PLC_RESULT_REFUSED, LC_REASON_SERIAL_INVALID,
                    "device serial \"%s\" does not make a valid registration ID", serial);
        audit_fault(l, NULL, NULL, o);
        return;
    }
    ret = jig_get_csr(l->jig, serial, &csr, &csr_len, &ms, err, sizeof err);
    *jig_ms += ms;
    if (ret != LC_OK) {
        set_outcome(o, PLC_RESULT_FAULT,
                    ret == LC_ERR_TIMEOUT    ? LC_REASON_JIG_TIMEOUT
                    : ret == LC_ERR_PROTOCOL ? LC_REASON_JIG_OUTPUT
                                             : LC_REASON_JIG_FAILED,
                    "%s (device %s)", err, serial);
        pthread_mutex_lock(&l->mu);
        l->jig_ok = 0;
        snprintf(l->jig_error, sizeof l->jig_error, "%s", err);
        pthread_mutex_unlock(&l->mu);
        audit_fault(l, regid, NULL, o);
        return;
    }
    pthread_mutex_lock(&l->mu);
    l->jig_ok = 1;
    l->jig_error[0] = '\0';
    pthread_mutex_unlock(&l->mu);

    snprintf(context, sizeof context, "PLC seq %u, device serial %s", seq, serial);
    req.line = l->cfg->id;
    req.input = csr;
    req.input_len = csr_len;
    req.expect_regid = regid;
    req.context = context;
    req.allow_redeliver = 1;
    /* The issuer is thread-safe: lines sign in parallel and share group commits. */
    ret = issuer_issue(d->issuer, &req, &res);
    if (ret == LC_OK)
        ret = issuer_chain_pem(d->issuer, l->cfg->id, res.der, res.der_len, 0, &pem, &pem_len);
    if (ret == LC_ERR_AUDIT) {
        pthread_mutex_lock(&d->issue_lock);
        snprintf(d->audit_error, sizeof d->audit_error, "%s", res.message);
        pthread_mutex_unlock(&d->issue_lock);
    }
    free(csr);

    switch (ret) {
    case LC_OK:
        atomic_store(&d->hsm_fault, 0);
        break;
    case LC_ERR_REFUSED:
        set_outcome(o, PLC_RESULT_REFUSED, res.refusal.reason, "%s", res.refusal.detail);
        goto out;
    case LC_ERR_AUDIT:
        if (!atomic_exchange(&d->audit_fault, 1))
            log_err("audit store failed: %s; nothing will be issued until it can be written",
                    res.message);
        set_outcome(o, PLC_RESULT_FAULT, LC_REASON_AUDIT_UNAVAILABLE, "%s", res.message);
        goto out;
    case LC_ERR_HSM:
    case LC_ERR_SIGNER:
        if (ret == LC_ERR_HSM && !atomic_exchange(&d->hsm_fault, 1))
            log_err("HSM not usable: %s", res.message);
        set_outcome(o, PLC_RESULT_FAULT,
                    ret == LC_ERR_HSM ? LC_REASON_HSM_UNAVAILABLE : LC_REASON_SIGNER_UNAVAILABLE,
                    "%s", res.message);
        goto out;
    default:
        set_outcome(o, PLC_RESULT_FAULT, LC_REASON_INTERNAL, "%s", res.message);
        goto out;
    }
    snprintf(o->serial, sizeof o->serial, "%s", res.serial);
    ret = jig_install(l->jig, serial, pem, pem_len, &ms, err, sizeof err);
    *jig_ms += ms;
    if (ret != LC_OK) {
        /* The certificate exists and is audited; security staff must see it was not installed. */
        set_outcome(o, PLC_RESULT_FAULT, LC_REASON_INSTALL_FAILED,
                    "certificate %s issued but not installed: %s", res.serial, err);
        pthread_mutex_lock(&l->mu);
        l->jig_ok = 0;
        snprintf(l->jig_error, sizeof l->jig_error, "%s", err);
        pthread_mutex_unlock(&l->mu);
        audit_fault(l, regid, res.serial, o);
        goto out;
    }
    set_outcome(o, PLC_RESULT_ISSUED, LC_REASON_NONE, "%s %s for %s",
                res.redelivered ? "re-delivered" : "issued", res.serial, regid);
    if (!res.redelivered) {
        pthread_mutex_lock(&l->mu);
        l->issued_total++;
        l->issue_times[l->issue_head++ % RATE_RING] = daemon_now();
        pthread_mutex_unlock(&l->mu);
    }
out:
    free(pem);
    issue_res_clear(&res);
}

static void record(line_t *l, const char *serial, const struct outcome *o, double total_ms,
                   double jig_ms)
{
    unsigned i;

    pthread_mutex_lock(&l->mu);
    if (o->result == PLC_RESULT_ISSUED)
        l->issued++;
    else if (o->result == PLC_RESULT_REFUSED)
        l->refused++;
    else
        l->faults++;
    l->fault = o->result == PLC_RESULT_FAULT ? o->reason : 0;
    snprintf(l->last_serial, sizeof l->last_serial, "%s", serial);
    l->last_result = o->result;
    l->last_reason = o->reason;
    l->last_at = daemon_now();
    i = l->lat_n++ % LAT_SAMPLES;
    l->lat_total[i] = (float)total_ms;
    l->lat_jig[i] = (float)jig_ms;
    l->lat_station[i] = (float)(total_ms - jig_ms);
    pthread_mutex_unlock(&l->mu);
}

static void handle(line_t *l, const plc_snapshot_t *snap)
{
    daemon_t *d = l->d;
    char serial[PLC_SERIAL_MAX + 1], err[300];
    struct outcome o = {0};
    double t0 = daemon_now(), jig_ms = 0, total;

    if (l->done_valid && l->done_seq == snap->req_seq &&
        memcmp(l->done_serial, snap->serial_regs, sizeof l->done_serial) == 0) {
        /* Finished before, but the PLC has not seen the ACK (lost write or reconnect). */
        if (plc_finish(l->plc, snap->req_seq, l->done_result, l->done_reason, err, sizeof err) ==
            LC_OK)
            log_info("line %s: seq %u answered again (ACK was lost)", l->cfg->id, snap->req_seq);
        return;
    }
    if (plc_set_busy(l->plc, err, sizeof err) != LC_OK)
        return; /* PLC gone: the request is still pending and will be served when it is back */
    pthread_mutex_lock(&l->mu);
    l->busy = 1;
    l->busy_since = t0;
    pthread_mutex_unlock(&l->mu);
    if (plc_decode_serial(snap->serial_regs, serial) <= 0) {
        set_outcome(&o, PLC_RESULT_REFUSED, LC_REASON_SERIAL_INVALID,
                    "DEVICE_SERIAL is empty or has non-printable bytes (seq %u)", snap->req_seq);
        snprintf(serial, sizeof serial, "?");
        audit_fault(l, NULL, NULL, &o);
    } else {
        serve(l, snap->req_seq, serial, &o, &jig_ms);
    }
    if (plc_finish(l->plc, snap->req_seq, o.result, o.reason, err, sizeof err) == LC_OK) {
        if (o.result == PLC_RESULT_ISSUED) {
            issuer_mark_acked(d->issuer, o.serial);
        }
    } else {
        log_warn("line %s: seq %u: could not write the result to the PLC: %s", l->cfg->id,
                 snap->req_seq, err);
    }
    l->done_valid = 1;
    l->done_seq = snap->req_seq;
    memcpy(l->done_serial, snap->serial_regs, sizeof l->done_serial);
    l->done_result = o.result;
    l->done_reason = o.reason;
    total = (daemon_now() - t0) * 1e3;
    record(l, serial, &o, total, jig_ms);
    pthread_mutex_lock(&l->mu);
    l->busy = 0;
    pthread_mutex_unlock(&l->mu);
    log_msg(o.result == PLC_RESULT_ISSUED ? LOG_LVL_INFO : LOG_LVL_WARN,
            "line %s: seq %u device %s: %s%s%s: %s (%.1f ms, jig %.1f ms)", l->cfg->id,
            snap->req_seq, serial,
            o.result == PLC_RESULT_ISSUED    ? "issued"
            : o.result == PLC_RESULT_REFUSED ? "refused"
                                             : "fault",
            o.reason ? " " : "", o.reason ? policy_reason_name(o.reason) : "", o.detail, total,
            jig_ms);
}

static void *worker(void *arg)
{
    line_t *l = arg;
    daemon_t *d = l->d;
    double period = l->cfg->poll_ms / 1000.0;
    char err[300];
    plc_snapshot_t snap;

    while (!atomic_load(&d->stopping)) {
        double t0 = daemon_now();
        int ret;
        ret = plc_poll(l->plc, &snap, err, sizeof err);
        pthread_mutex_lock(&l->mu);
        l->alive_at = t0;
        if (ret != LC_OK && l->plc_up)
            log_warn("line %s: %s", l->cfg->id, err);
        else if (ret == LC_OK && !l->plc_up)
            log_info("line %s: PLC %s connected", l->cfg->id, plc_address(l->plc));
        l->plc_up = ret == LC_OK;
        if (ret != LC_OK)
            snprintf(l->plc_error, sizeof l->plc_error, "%s", err);
        else
            l->plc_error[0] = '\0';
        pthread_mutex_unlock(&l->mu);
        if (ret == LC_OK && snap.req_seq != 0 && snap.req_seq != snap.ack_seq)
            handle(l, &snap);
        sleep_s(t0 + (ret == LC_OK ? period : 0.1) - daemon_now());
    }
    return NULL;
}

/*
 * The heartbeat: HEARTBEAT, ISSUED_COUNT and STATION_STATE every 250 ms on
 * the line's second connection.  HEARTBEAT advances only while the worker
 * is alive: it looped recently, or it is inside a request whose every step
 * is bounded (jig timeout).  A PLC watching HEARTBEAT sees a stuck line.
 */
static void *beat(void *arg)
{
    line_t *l = arg;
    daemon_t *d = l->d;
    double stuck_after = 2.0 + 2.0 * l->cfg->jig_timeout_ms / 1000.0 + 10.0;
    uint16_t hb = 0;
    char err[300];

    while (!atomic_load(&d->stopping)) {
        double now = daemon_now();
        int state, alive;
        uint32_t issued;
        pthread_mutex_lock(&l->mu);
        state = line_station_state(l);
        issued = l->issued_total;
        alive = now - l->alive_at < 2.0 || (l->busy && now - l->busy_since < stuck_after);
        pthread_mutex_unlock(&l->mu);
        if (alive)
            hb++;
        plc_status(l->beat_plc, hb, issued, state, err, sizeof err);
        sleep_s(now + HEARTBEAT_S - daemon_now());
    }
    return NULL;
}

int line_start(line_t *l, char *err, size_t errlen)
{
    daemon_t *d = l->d;
    int ret;

    pthread_mutex_init(&l->mu, NULL);
    l->jig_ok = 1;
    ret = plc_new(l->cfg->plc_host, l->cfg->plc_port, l->cfg->plc_unit, l->cfg->plc_base, &l->plc);
    if (ret == LC_OK)
        ret = plc_new(l->cfg->plc_host, l->cfg->plc_port, l->cfg->plc_unit, l->cfg->plc_base,
                      &l->beat_plc);
    if (ret != LC_OK)
        return lc_seterr(ret, err, errlen, "line %s: cannot set up the PLC client", l->cfg->id);
    ret = jig_new(l->cfg->jig, l->cfg->id, l->cfg->jig_timeout_ms, &l->jig, err, errlen);
    if (ret != LC_OK)
        return ret;
    l->issued_total = (uint32_t)issuer_issued_count(d->issuer, l->cfg->id);
    l->alive_at = daemon_now();
    if (pthread_create(&l->thread, NULL, worker, l) != 0)
        return lc_seterr(LC_ERR_INTERNAL, err, errlen, "line %s: cannot start thread", l->cfg->id);
    if (pthread_create(&l->beat_thread, NULL, beat, l) != 0) {
        atomic_store(&d->stopping, 1);
        pthread_join(l->thread, NULL);
        atomic_store(&d->stopping, 0);
        return lc_seterr(LC_ERR_INTERNAL, err, errlen, "line %s: cannot start thread", l->cfg->id);
    }
    l->started = 1;
    return LC_OK;
}

void line_stop(line_t *l)
{
    if (l->started) {
        pthread_join(l->thread, NULL);
        pthread_join(l->beat_thread, NULL);
    }
    l->started = 0;
    plc_free(l->beat_plc);
    l->beat_plc = NULL;
    plc_free(l->plc);
    jig_free(l->jig);
    l->plc = NULL;
    l->jig = NULL;
    pthread_mutex_destroy(&l->mu);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static double pct(float *v, unsigned n, double p)
{
    if (n == 0)
        return 0;
    return v[(unsigned)(p * (n - 1) + 0.5)];
}

static const char *result_name(int r)
{
    switch (r) {
    case PLC_RESULT_ISSUED:
        return "issued";
    case PLC_RESULT_REFUSED:
        return "refused";
    case PLC_RESULT_FAULT:
        return "fault";
    case PLC_RESULT_BUSY:
        return "busy";
    }
    return "none";
}

json_object *line_status(line_t *l)
{
    json_object *o = json_object_new_object(), *plc, *jig, *last, *lat;
    static float tot[LAT_SAMPLES], sta[LAT_SAMPLES], jg[LAT_SAMPLES]; /* control thread only */
    double now = daemon_now();
    unsigned n, last_min = 0, last_hour = 0;
    const char *state;

    pthread_mutex_lock(&l->mu);
    for (unsigned i = 0; i < RATE_RING && i < l->issue_head; i++) {
        double t = l->issue_times[i];
        if (t > now - 60)
            last_min++;
        if (t > now - 3600)
            last_hour++;
    }
    n = l->lat_n < LAT_SAMPLES ? l->lat_n : LAT_SAMPLES;
    memcpy(tot, l->lat_total, n * sizeof(float));
    memcpy(sta, l->lat_station, n * sizeof(float));
    memcpy(jg, l->lat_jig, n * sizeof(float));
    if (l->paused)
        state = "paused";
    else if (!l->plc_up || l->fault || line_station_state(l) != PLC_STATE_OK)
        state = "fault";
    else if (l->busy ||
             (l->last_at > 0 && now - l->last_at < 60 && l->last_result == PLC_RESULT_ISSUED))
        state = "issuing";
    else
        state = "idle";
    json_object_object_add(o, "id", json_object_new_string(l->cfg->id));
    json_object_object_add(o, "name", json_object_new_string(l->cfg->name));
    json_object_object_add(o, "state", json_object_new_string(state));
    {
        int reason = l->paused                         ? LC_REASON_PAUSED
                     : atomic_load(&l->d->hsm_fault)   ? LC_REASON_HSM_UNAVAILABLE
                     : atomic_load(&l->d->audit_fault) ? LC_REASON_AUDIT_UNAVAILABLE
                     : !l->jig_ok && l->fault          ? l->fault
                     : l->fault                        ? l->fault
                                                       : 0;
        char text[400];
        if (!l->plc_up && reason == 0)
            snprintf(text, sizeof text, "%s", l->plc_error);
        else
            snprintf(text, sizeof text, "%s", reason ? policy_reason_text(reason) : "");
        json_object_object_add(
            o, "reason",
            reason ? json_object_new_string(policy_reason_name(reason))
                   : (!l->plc_up ? json_object_new_string("plc-unreachable") : NULL));
        json_object_object_add(o, "reason_text", json_object_new_string(text));
    }
    plc = json_object_new_object();
    json_object_object_add(plc, "address", json_object_new_string(plc_address(l->plc)));
    json_object_object_add(plc, "connected", json_object_new_boolean(l->plc_up));
    json_object_object_add(plc, "error", json_object_new_string(l->plc_error));
    json_object_object_add(o, "plc", plc);
    jig = json_object_new_object();
    json_object_object_add(jig, "ok", json_object_new_boolean(l->jig_ok));
    json_object_object_add(jig, "error", json_object_new_string(l->jig_error));
    json_object_object_add(o, "jig", jig);
    json_object_object_add(o, "issued", json_object_new_int64((int64_t)l->issued));
    json_object_object_add(o, "refused", json_object_new_int64((int64_t)l->refused));
    json_object_object_add(o, "faults", json_object_new_int64((int64_t)l->faults));
    json_object_object_add(o, "issued_total", json_object_new_int64(l->issued_total));
    json_object_object_add(o, "rate_last_min", json_object_new_int(last_min));
    json_object_object_add(o, "rate_last_hour", json_object_new_double(last_hour / 60.0));
    last = json_object_new_object();
    json_object_object_add(last, "serial",
                           l->last_at > 0 ? json_object_new_string(l->last_serial) : NULL);
    json_object_object_add(last, "result", json_object_new_string(result_name(l->last_result)));
    json_object_object_add(last, "reason",
                           json_object_new_string(policy_reason_name(l->last_reason)));
    json_object_object_add(last, "age_s",
                           l->last_at > 0 ? json_object_new_double(now - l->last_at) : NULL);
    json_object_object_add(o, "last", last);
    pthread_mutex_unlock(&l->mu);
    qsort(tot, n, sizeof(float), cmp_float);
    qsort(sta, n, sizeof(float), cmp_float);
    qsort(jg, n, sizeof(float), cmp_float);
    lat = json_object_new_object();
    json_object_object_add(lat, "p50", json_object_new_double(pct(tot, n, 0.5)));
    json_object_object_add(lat, "p99", json_object_new_double(pct(tot, n, 0.99)));
    json_object_object_add(lat, "max", json_object_new_double(n ? tot[n - 1] : 0));
    json_object_object_add(lat, "station_p50", json_object_new_double(pct(sta, n, 0.5)));
    json_object_object_add(lat, "station_p99", json_object_new_double(pct(sta, n, 0.99)));
    json_object_object_add(lat, "jig_p50", json_object_new_double(pct(jg, n, 0.5)));
    json_object_object_add(lat, "samples", json_object_new_int((int)n));
    json_object_object_add(o, "latency_ms", lat);
    return o;
}

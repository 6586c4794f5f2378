/*
 * linecertd.c — the station daemon: one process per station, one worker
 * thread per line, the signer as an exec'd child (docs/operations.md).
 *
 * The main thread owns the lifecycle: it starts the lines, tells systemd it
 * is ready (Type=notify) and pings the watchdog, probes the signer/HSM and
 * the audit store while they are faulted so that the station recovers by
 * itself, reloads line settings on SIGHUP, and on SIGTERM lets every line
 * finish its in-flight request before it exits 0.
 */
#include "control.h"
#include "daemon.h"
#include "lcerr.h"
#include "lifecycle.h"
#include "log.h"
#include "policy.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#define PROBE_S     1.0
#define CRL_CHECK_S 10.0 /* a revocation reaches the published CRL within this */

static daemon_t D;
static pthread_rwlock_t g_state = PTHREAD_RWLOCK_INITIALIZER; /* lines and config (reload) */

/* Signer state as last probed by the main thread (read by status). */
static struct {
    pthread_mutex_t mu;
    int running, hsm_ok, pid;
    uint64_t signatures;
    unsigned restarts;
    char error[256];
} g_signer = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0, 0, ""};

static const char USAGE[] = "usage: linecertd --config FILE [--foreground]\n"
                            "The linecert station daemon; see docs/operations.md.\n";

static void probe_signer(void)
{
    int hsm_ok = 0, pid = 0, ret;
    uint64_t sigs = 0;
    unsigned restarts = 0;
    char err[256] = "";

    ret = issuer_probe(D.issuer, &hsm_ok, &sigs, &restarts, &pid, err, sizeof err);
    pthread_mutex_lock(&g_signer.mu);
    g_signer.running = ret == LC_OK;
    g_signer.hsm_ok = ret == LC_OK && hsm_ok;
    g_signer.pid = pid;
    g_signer.signatures = sigs;
    g_signer.restarts = restarts;
    snprintf(g_signer.error, sizeof g_signer.error, "%s", ret == LC_OK ? "" : err);
    pthread_mutex_unlock(&g_signer.mu);
    if (ret == LC_OK && hsm_ok && atomic_exchange(&D.hsm_fault, 0))
        log_info("HSM usable again: issuance resumes");
    else if ((ret != LC_OK || !hsm_ok) && !atomic_exchange(&D.hsm_fault, 1))
        log_err("HSM not usable: %s", ret == LC_OK ? "token or key not reachable" : err);
}

/* While the audit store is faulted, try to write the row that records the gap. */
static void probe_audit(void)
{
    char detail[400];
    int ret;

    if (!atomic_load(&D.audit_fault))
        return;
    pthread_mutex_lock(&D.issue_lock);
    snprintf(detail, sizeof detail, "audit store writable again after a failure: %s",
             D.audit_error);
    ret = issuer_audit_event(D.issuer, "", "fault", NULL, NULL,
                             policy_reason_name(LC_REASON_AUDIT_UNAVAILABLE), detail);
    pthread_mutex_unlock(&D.issue_lock);
    if (ret == LC_OK) {
        atomic_store(&D.audit_fault, 0);
        log_info("audit store writable again: issuance resumes");
    }
}

static control_t *g_ctl; /* for reload: the roles follow the configuration */

/* What this daemon last published per configured line (reset on reload). */
static struct {
    int64_t crl_seq;        /* audit seq of the "crl" row of the CRL we wrote */
    int64_t next_update_ms; /* its nextUpdate */
} g_published[CONFIG_MAX_LINES];

/* Writes a file atomically (temporary name, fsync, rename). */
static int write_file(const char *path, const void *data, size_t len)
{
    char tmp[4200];
    FILE *f;
    int ok;

    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    f = fopen(tmp, "we");
    if (f == NULL)
        return -1;
    /* CRLs are public: readable by a web server whatever the daemon's umask (0077). */
    ok = fchmod(fileno(f), 0644) == 0 && fwrite(data, 1, len, f) == len && fflush(f) == 0 &&
         fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

/*
 * Publishes each line's CRL to crl_dir when a certificate of the line was
 * revoked since the last CRL, when there is none yet, or when half of the
 * last one's lifetime has passed (so a CRL is always fresh before its
 * nextUpdate).  Called every CRL_CHECK_S by the main thread.
 */
static void publish_crls(void)
{
    int64_t now_ms = (int64_t)time(NULL) * 1000,
            half = (int64_t)D.cfg->crl_next_update_hours * 3600 * 1000 / 2;

    for (size_t i = 0; D.cfg->crl_dir != NULL && i < D.cfg->nlines; i++) {
        const lc_line_cfg_t *lc = &D.cfg->lines[i];
        lifecycle_crl_state_t cs;
        unsigned char *der = NULL;
        size_t len = 0;
        uint64_t number = 0;
        char err[300], path[256];
        int ret;

        if (snprintf(path, sizeof path, "%s/line-%s.crl", D.cfg->crl_dir, lc->id) >=
            (int)sizeof path) {
            log_err("line %s: CRL not published: crl_dir path too long", lc->id);
            continue;
        }
        /*
         * Up to date means: this daemon published the line's CRL itself, after
         * the line's last revocation, less than half its lifetime ago, and the
         * file is still there.  A CRL made by hand (`linecert crl`) does not
         * count: its nextUpdate and its publication are not ours.
         */
        pthread_mutex_lock(&D.issue_lock);
        ret = issuer_crl_state(D.issuer, lc->id, &cs, err, sizeof err);
        if (ret == LC_OK && g_published[i].crl_seq != 0 &&
            cs.last_revoked_seq < g_published[i].crl_seq &&
            now_ms < g_published[i].next_update_ms - half && access(path, F_OK) == 0) {
            pthread_mutex_unlock(&D.issue_lock);
            continue;
        }
        if (ret == LC_OK)
            ret = issuer_crl(D.issuer, lc->id, D.cfg->crl_next_update_hours, &der, &len, &number,
                             err, sizeof err);
        pthread_mutex_unlock(&D.issue_lock);
        if (ret == LC_OK && write_file(path, der, len) != 0) {
            snprintf(err, sizeof err, "cannot write %.200s: %s", path, strerror(errno));
            ret = LC_ERR_IO;
        }
        if (ret == LC_OK) {
            lifecycle_crl_state_t now_cs;
            if (issuer_crl_state(D.issuer, lc->id, &now_cs, err, sizeof err) == LC_OK) {
                g_published[i].crl_seq = now_cs.crl_seq;
                g_published[i].next_update_ms =
                    now_ms + (int64_t)D.cfg->crl_next_update_hours * 3600 * 1000;
            }
            log_info("line %s: CRL #%llu published to %s", lc->id, (unsigned long long)number,
                     path);
        } else
            log_err("line %s: CRL not published: %s", lc->id, err);
        free(der);
    }
}

static int start_lines(char *err, size_t errlen)
{
    D.nlines = 0;
    for (size_t i = 0; i < D.cfg->nlines; i++) {
        const lc_line_cfg_t *lc = &D.cfg->lines[i];
        line_t *l;
        int ret;
        if (lc->plc_host == NULL || lc->jig == NULL) {
            log_info("line %s has no plc/jig: CLI issuance only", lc->id);
            continue;
        }
        l = &D.lines[D.nlines++];
        memset(l, 0, sizeof *l);
        l->d = &D;
        l->cfg = lc;
        ret = line_start(l, err, errlen);
        if (ret != LC_OK)
            return ret;
        log_info("line %s (%s): PLC %s:%d unit %d base %d, jig %s", lc->id, lc->name, lc->plc_host,
                 lc->plc_port, lc->plc_unit, lc->plc_base, lc->jig);
    }
    return LC_OK;
}

static void stop_lines(void)
{
    atomic_store(&D.stopping, 1);
    for (size_t i = 0; i < D.nlines; i++)
        line_stop(&D.lines[i]);
    D.nlines = 0;
    atomic_store(&D.stopping, 0);
}

/* Opens the issuer and starts the lines for D.cfg. */
static int start_station(char *err, size_t errlen)
{
    int ret = issuer_open(D.cfg, NULL, "linecertd", ISSUER_TOLERATE_HSM, &D.issuer, err, errlen);

    if (ret != LC_OK)
        return ret;
    probe_signer();
    return start_lines(err, errlen);
}

static void reload(const char *path)
{
    lc_config_t *cfg = NULL;
    char err[512];

    if (config_load(path, &cfg, err, sizeof err) != LC_OK) {
        log_err("reload: %s; keeping the running configuration", err);
        return;
    }
    log_info("reload: finishing in-flight requests");
    pthread_rwlock_wrlock(&g_state);
    stop_lines();
    issuer_free(D.issuer);
    D.issuer = NULL;
    config_free(D.cfg);
    D.cfg = cfg;
    memset(g_published, 0, sizeof g_published); /* line indexes may have changed */
    if (start_station(err, sizeof err) != LC_OK)
        log_err("reload: %s (lines stay stopped until the next reload)", err);
    else
        log_info("reload: %zu line(s) running", D.nlines);
    if (g_ctl != NULL) {
        control_policy_t pol;
        char note[256] = "";
        if (control_policy_init(&pol, cfg->operator_group, cfg->security_group, note,
                                sizeof note) != LC_OK ||
            control_set_policy(g_ctl, &pol, err, sizeof err) != LC_OK)
            log_err("reload: control socket roles unchanged: %s", note[0] ? note : err);
        else if (note[0] != '\0')
            log_warn("reload: %s", note);
    }
    pthread_rwlock_unlock(&g_state);
}

static json_object *error_reply(const char *msg)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(0));
    json_object_object_add(o, "error", json_object_new_string(msg));
    return o;
}

static json_object *status_reply(void)
{
    json_object *o = json_object_new_object(), *signer, *audit, *lines;
    struct stat st;
    struct statvfs vfs;
    int64_t size = 0, rows;
    char wal[4200];
    const char *state = "ok";

    json_object_object_add(o, "ok", json_object_new_boolean(1));
    json_object_object_add(o, "version", json_object_new_string(LINECERT_VERSION));
    json_object_object_add(o, "uptime_s",
                           json_object_new_int64((int64_t)(daemon_now() - D.started_at)));
    signer = json_object_new_object();
    pthread_mutex_lock(&g_signer.mu);
    json_object_object_add(signer, "running", json_object_new_boolean(g_signer.running));
    json_object_object_add(signer, "pid", json_object_new_int(g_signer.pid));
    json_object_object_add(signer, "hsm_ok", json_object_new_boolean(g_signer.hsm_ok));
    json_object_object_add(signer, "signatures",
                           json_object_new_int64((int64_t)g_signer.signatures));
    json_object_object_add(signer, "restarts", json_object_new_int((int)g_signer.restarts));
    json_object_object_add(signer, "error", json_object_new_string(g_signer.error));
    pthread_mutex_unlock(&g_signer.mu);
    json_object_object_add(o, "signer", signer);

    audit = json_object_new_object();
    if (stat(D.cfg->audit_db, &st) == 0)
        size += st.st_size;
    snprintf(wal, sizeof wal, "%s-wal", D.cfg->audit_db);
    if (stat(wal, &st) == 0)
        size += st.st_size;
    snprintf(wal, sizeof wal, "%s", D.cfg->audit_db);
    if (strrchr(wal, '/') != NULL)
        *strrchr(wal, '/') = '\0';
    pthread_mutex_lock(&D.issue_lock);
    rows = D.issuer ? issuer_audit_rows(D.issuer) : -1;
    json_object_object_add(
        audit, "error", json_object_new_string(atomic_load(&D.audit_fault) ? D.audit_error : ""));
    pthread_mutex_unlock(&D.issue_lock);
    json_object_object_add(audit, "path", json_object_new_string(D.cfg->audit_db));
    json_object_object_add(audit, "ok", json_object_new_boolean(!atomic_load(&D.audit_fault)));
    json_object_object_add(audit, "size_bytes", json_object_new_int64(size));
    json_object_object_add(audit, "free_bytes",
                           json_object_new_int64(statvfs(wal, &vfs) == 0
                                                     ? (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize
                                                     : 0));
    json_object_object_add(audit, "rows", json_object_new_int64(rows));
    json_object_object_add(o, "audit", audit);

    lines = json_object_new_array();
    for (size_t i = 0; i < D.nlines; i++)
        json_object_array_add(lines, line_status(&D.lines[i]));
    json_object_object_add(o, "lines", lines);
    if (atomic_load(&D.hsm_fault))
        state = "hsm-fault";
    else if (atomic_load(&D.audit_fault))
        state = "audit-fault";
    json_object_object_add(o, "state", json_object_new_string(state));
    return o;
}

static json_object *pause_reply(const char *cmd, const char *arg, const control_peer_t *peer)
{
    int pause = strcmp(cmd, "pause") == 0, audited;
    char detail[200];
    json_object *o;

    for (size_t i = 0; i < D.nlines; i++) {
        line_t *l = &D.lines[i];
        if (strcmp(l->cfg->id, arg) != 0)
            continue;
        snprintf(detail, sizeof detail, "line %s %s; pid=%d", l->cfg->id,
                 pause ? "paused" : "resumed", (int)peer->pid);
        /* Audited first, with the caller as the actor: an action the log cannot hold is refused. */
        pthread_mutex_lock(&D.issue_lock);
        audited = issuer_audit_event_as(D.issuer, peer->actor, l->cfg->id, "control", NULL, NULL,
                                        pause ? "pause" : "resume", detail);
        pthread_mutex_unlock(&D.issue_lock);
        if (audited != LC_OK)
            return error_reply("the audit log cannot be written; nothing was changed");
        pthread_mutex_lock(&l->mu);
        l->paused = pause;
        pthread_mutex_unlock(&l->mu);
        log_info("%s by %s", detail, peer->actor);
        o = json_object_new_object();
        json_object_object_add(o, "ok", json_object_new_boolean(1));
        json_object_object_add(o, "line", json_object_new_string(l->cfg->id));
        json_object_object_add(o, "state", json_object_new_string(pause ? "paused" : "resumed"));
        return o;
    }
    snprintf(detail, sizeof detail, "no line \"%s\" driven by this daemon", arg);
    return error_reply(detail);
}

/*
 * "revoke SERIAL REASON" or "revoke regid:ID REASON" from a member of the
 * security group: through the daemon's own writer, recorded with the
 * caller as the actor.  The CRL follows within CRL_CHECK_S.
 */
static json_object *revoke_reply(const char *arg, const control_peer_t *peer)
{
    char what[160], reason[40], err[256];
    revoke_result_t res;
    json_object *o;
    int ret;

    if (sscanf(arg, "%159s %39s", what, reason) != 2)
        return error_reply("usage: revoke SERIAL|regid:ID REASON");
    if (D.issuer == NULL) /* a reload failed: no store open until the next one */
        return error_reply("the station is not running (see its log); nothing was changed");
    pthread_mutex_lock(&D.issue_lock);
    ret = issuer_revoke(D.issuer, strncmp(what, "regid:", 6) == 0 ? NULL : what,
                        strncmp(what, "regid:", 6) == 0 ? what + 6 : NULL, reason, peer->actor,
                        &res, err, sizeof err);
    pthread_mutex_unlock(&D.issue_lock);
    if (ret != LC_OK)
        return error_reply(err);
    log_info("certificate %s (line %s) %s by %s", res.serial, res.line,
             res.already ? "was already revoked; asked again" : "revoked", peer->actor);
    o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(1));
    json_object_object_add(o, "serial", json_object_new_string(res.serial));
    json_object_object_add(o, "line", json_object_new_string(res.line));
    json_object_object_add(o, "registration_id", json_object_new_string(res.registration_id));
    json_object_object_add(o, "already", json_object_new_boolean(res.already));
    json_object_object_add(o, "reason",
                           json_object_new_string(res.already ? res.earlier_reason : reason));
    json_object_object_add(o, "audit_seq", json_object_new_int64(res.seq));
    return o;
}

/* A refused control request: audited with who asked and what (control.h has sanitised both). */
static void control_denied(void *user, const char *cmd, const char *arg, const control_peer_t *peer,
                           const char *message)
{
    char detail[400];

    (void)user;
    snprintf(detail, sizeof detail, "refused \"%s%s%s\": %s; pid=%d", cmd, arg[0] ? " " : "", arg,
             message, (int)peer->pid);
    pthread_rwlock_rdlock(&g_state);
    pthread_mutex_lock(&D.issue_lock);
    if (D.issuer != NULL)
        issuer_audit_event_as(D.issuer, peer->actor, "", "control", NULL, NULL, "permission-denied",
                              detail);
    pthread_mutex_unlock(&D.issue_lock);
    pthread_rwlock_unlock(&g_state);
    log_warn("control: %s (%s)", detail, peer->actor);
}

static json_object *control_handler(void *user, const char *cmd, const char *arg,
                                    const control_peer_t *peer)
{
    json_object *reply;

    (void)user;
    pthread_rwlock_rdlock(&g_state);
    if (strcmp(cmd, "status") == 0)
        reply = status_reply();
    else if (strcmp(cmd, "pause") == 0 || strcmp(cmd, "resume") == 0)
        reply = pause_reply(cmd, arg, peer);
    else if (strcmp(cmd, "revoke") == 0)
        reply = revoke_reply(arg, peer);
    else
        reply = error_reply("unknown command (status, pause LINE, resume LINE, revoke SERIAL "
                            "REASON)");
    pthread_rwlock_unlock(&g_state);
    return reply;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"foreground", no_argument, NULL, 'f'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config = NULL;
    control_t *ctl = NULL;
    char err[512];
    sigset_t set;
    uint64_t wd_usec = 0;
    double next_probe = 0, next_wd = 0, next_crl = 0;
    int c, wd, ret = 1;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'f':
            break; /* linecertd never forks: systemd (Type=notify) or a terminal runs it */
        case 'h':
            fputs(USAGE, stdout);
            return 0;
        default:
            fputs(USAGE, stderr);
            return 2;
        }
    }
    if (config == NULL || optind != argc) {
        fputs(USAGE, stderr);
        return 2;
    }
    log_init("linecertd");
    if (config_load(config, &D.cfg, err, sizeof err) != LC_OK) {
        log_err("%s", err);
        return 2;
    }
    /* Signals are taken synchronously by the main thread only. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    pthread_mutex_init(&D.issue_lock, NULL);
    D.started_at = daemon_now();
    if (start_station(err, sizeof err) != LC_OK) {
        log_err("%s", err);
        goto out;
    }
    {
        control_opts_t o = {control_handler, control_denied, NULL, {0}};
        char note[256] = "";
        if (control_policy_init(&o.policy, D.cfg->operator_group, D.cfg->security_group, note,
                                sizeof note) != LC_OK ||
            control_open_opts(D.cfg->control_socket, &o, &ctl, err, sizeof err) != LC_OK) {
            log_err("control socket: %s", note[0] ? note : err);
            goto out;
        }
        if (control_notice(ctl)[0] != '\0')
            log_warn("control socket: %s", control_notice(ctl));
        g_ctl = ctl;
    }
    wd = sd_watchdog_enabled(0, &wd_usec);
    sd_notifyf(0, "READY=1\nSTATUS=%zu line(s) running", D.nlines);
    log_info("ready: %zu line(s), control socket %s, audit %s", D.nlines, D.cfg->control_socket,
             D.cfg->audit_db);
    for (;;) {
        struct timespec ts = {0, 200 * 1000 * 1000};
        int sig = sigtimedwait(&set, NULL, &ts);
        double now = daemon_now();
        if (sig == SIGTERM || sig == SIGINT) {
            log_info("%s: finishing in-flight requests", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            sd_notify(0, "STOPPING=1");
            break;
        }
        if (sig == SIGHUP) {
            sd_notify(0, "RELOADING=1");
            reload(config);
            sd_notify(0, "READY=1");
        }
        if (wd > 0 && now >= next_wd) {
            sd_notify(0, "WATCHDOG=1");
            next_wd = now + (double)wd_usec / 2e6;
        }
        if (now >= next_probe) {
            pthread_rwlock_rdlock(&g_state);
            if (D.issuer != NULL) {
                probe_signer();
                probe_audit();
            }
            pthread_rwlock_unlock(&g_state);
            next_probe = now + PROBE_S;
        }
        if (now >= next_crl) {
            pthread_rwlock_rdlock(&g_state);
            if (D.issuer != NULL)
                publish_crls();
            pthread_rwlock_unlock(&g_state);
            next_crl = now + CRL_CHECK_S;
        }
    }
    ret = 0;
out:
    control_free(ctl);
    pthread_rwlock_wrlock(&g_state);
    stop_lines();
    issuer_free(D.issuer); /* the signer exits; the store is closed after the last commit */
    config_free(D.cfg);
    pthread_rwlock_unlock(&g_state);
    log_info("stopped");
    return ret;
}

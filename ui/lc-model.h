/*
 * lc-model.h — what the operator screen shows, and where it comes from.
 *
 * Two read-only sources, refreshed every second (on the wall-clock second,
 * so that the clock ticks with them):
 *  - linecertd's control socket: "status" (docs/control.md), asked with GIO
 *    on the main loop (connect, write, read one line: all _async), on one
 *    connection kept open between requests.  It gives each line's live state,
 *    fault reason, rate and last device, and the signer/HSM and store state.
 *    If it does not answer, the model says so and keeps the last answer.
 *  - the audit store, opened read-only by db/stats.c on a worker thread
 *    (a GTask; the connection belongs to that worker and is used by one task
 *    at a time): per-line counts this shift and today, the 60-minute chart,
 *    the last device, the chain head and the latest refusals and faults.
 * Results are applied on the main thread, then "changed" is emitted.
 *
 * Nothing here can write the store or send anything but "status".
 */
#ifndef LC_MODEL_H
#define LC_MODEL_H

#include <gio/gio.h>

#include "lc-config.h"
#include "stats.h"

G_BEGIN_DECLS

#define LC_TYPE_MODEL (lc_model_get_type())
G_DECLARE_FINAL_TYPE(LcModel, lc_model, LC, MODEL, GObject)

typedef enum {
    LC_LINE_STATE_UNKNOWN, /* linecertd has not reported the line yet */
    LC_LINE_STATE_ISSUING,
    LC_LINE_STATE_IDLE,
    LC_LINE_STATE_PAUSED,
    LC_LINE_STATE_FAULT,
    LC_LINE_STATE_NOT_DRIVEN, /* linecertd runs but does not drive this line (no PLC/jig) */
} LcLineState;

/* One line: configuration, the daemon's last word on it, and the store's figures. */
typedef struct {
    const LcLineConfig *config; /* id and name */
    /* From linecertd: the last status that was answered (kept when it goes away). */
    gboolean have_status; /* a status has reported this line */
    LcLineState state;
    char *reason;         /* reason code of the current condition, NULL if none */
    char *reason_text;    /* the daemon's sentence for it, "" if none */
    gint64 rate_last_min; /* certificates in the last 60 s */
    char *last_serial;    /* device serial of the last request, NULL if none */
    char *last_result;    /* "issued", "refused", "fault", "busy", "none" */
    char *last_reason;    /* its reason code ("none" when issued) */
    double last_age_s;    /* its age when the status was received */
    gint64 status_ms;     /* when that status was received (UTC ms) */
    char *plc_address;    /* host:port */
    gboolean plc_connected;
    /* From the audit store. */
    gboolean have_stats;
    stats_line_t stats;
} LcLineInfo;

/* linecertd itself. */
typedef struct {
    gboolean reachable; /* the last status request was answered */
    gboolean ever;      /* at least one was, since the UI started */
    gint64 last_ok_ms;  /* when the last answer arrived (UTC ms), 0 = never */
    char *error;        /* why it is not reachable ("" when it is) */
    char *state;        /* "ok", "hsm-fault", "audit-fault" (last answer) */
    char *version;
    gint64 uptime_s;
    gboolean signer_running;
    gboolean hsm_ok;
    char *signer_error;
    gint64 signatures;
    gboolean audit_ok; /* the daemon can write the store */
    char *audit_error;
} LcDaemonInfo;

/* The audit store, as read by the UI. */
typedef struct {
    gboolean readable; /* the last query worked */
    gboolean ever;     /* at least one did */
    char *error;       /* why not ("" when readable) */
    gint64 head_seq;   /* last row of the chain */
    char head_hash[65];
    gint64 size_bytes;     /* -1 unknown */
    gint64 free_bytes;     /* -1 unknown */
    gint64 updated_ms;     /* when the figures were read */
    gint64 shift_start_ms; /* the shift the counts are for */
    gint64 day_start_ms;
    gboolean fast_path; /* schema-3 aggregate in use */
} LcStoreInfo;

/* A model for config (owned by the model from now on).  Nothing runs until lc_model_start(). */
LcModel *lc_model_new(LcConfig *config);

/* Starts the once-a-second refresh, with a first one right away. */
void lc_model_start(LcModel *self);

/* Stops refreshing and cancels what is in flight (also done on dispose). */
void lc_model_stop(LcModel *self);

/* Refreshes now (e.g. after the event filter changed), besides the regular ticks. */
void lc_model_refresh(LcModel *self);

const LcConfig *lc_model_get_config(LcModel *self);
guint lc_model_get_n_lines(LcModel *self);
const LcLineInfo *lc_model_get_line(LcModel *self, guint index);
const LcDaemonInfo *lc_model_get_daemon(LcModel *self);
const LcStoreInfo *lc_model_get_store(LcModel *self);

/* The current time as of the last tick (UTC ms): what the clock and the ages show. */
gint64 lc_model_get_now_ms(LcModel *self);

/* The events pane's rows (LcEvent), newest first. Owned by the model. */
GListModel *lc_model_get_events(LcModel *self);

/* Shows the events of one line (its id) or of all lines (NULL). */
void lc_model_set_event_line(LcModel *self, const char *line_id);
const char *lc_model_get_event_line(LcModel *self);

/* Number of completed refreshes of each source (answered or failed), for tests. */
guint lc_model_get_status_rounds(LcModel *self);
guint lc_model_get_store_rounds(LcModel *self);

G_END_DECLS

#endif

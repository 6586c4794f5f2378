/*
 * lc-model.c — the operator screen's data (see lc-model.h).
 *
 * Two refreshes run side by side each second, and neither can run twice at
 * once: a status request that is still out (or a query that is still
 * running) when the next second comes is simply not started again.  A status
 * request that takes longer than STATUS_TIMEOUT_S is cancelled and counts as
 * "linecertd not reachable": the daemon answers within milliseconds when it
 * is alive (docs/control.md), so a longer silence means it is stuck.
 *
 * Every asynchronous callback holds a reference on the model, and checks
 * self->stopped: after lc_model_stop() results are dropped, not applied.
 */
#include "lc-model.h"

#include <gio/gunixsocketaddress.h>
#include <json-c/json.h>
#include <string.h>

#include "lc-event.h"

#define STATUS_TIMEOUT_S 3

struct _LcModel {
    GObject parent_instance;

    LcConfig *config;
    LcLineInfo *lines; /* config->lines->len of them */
    LcDaemonInfo daemon;
    LcStoreInfo store;
    GListStore *events;     /* of LcEvent */
    char *event_line;       /* filter: a line id, NULL = all */
    guint event_generation; /* bumped by every filter change */
    guint events_shown_generation;
    gint64 now_ms;
    gboolean stopped;
    guint tick_id;

    /* Control socket. */
    GSocketClient *client;
    GSocketAddress *address;
    GSocketConnection *connection; /* kept open between requests */
    GDataInputStream *input;
    GCancellable *status_cancel; /* the request in flight */
    guint status_timeout_id;
    gboolean status_busy;
    gboolean status_timed_out;
    guint status_rounds;

    /* Audit store. */
    struct db_worker *worker; /* the read-only connection, used by one task at a time */
    GCancellable *db_cancel;
    gboolean db_busy;
    gboolean db_again; /* asked again while busy: run once more when done */
    guint store_rounds;
};

G_DEFINE_FINAL_TYPE(LcModel, lc_model, G_TYPE_OBJECT)

enum { SIGNAL_CHANGED, N_SIGNALS };
static guint signals[N_SIGNALS];

static void tick_schedule(LcModel *self);

/* ---- the store worker -------------------------------------------------- */

/* Owned jointly by the model and a running task (atomic refcount). */
struct db_worker {
    char *path;
    stats_t *stats; /* opened on first use, closed after an error */
};

static void db_worker_clear(gpointer p)
{
    struct db_worker *w = p;

    stats_free(w->stats);
    g_free(w->path);
}

static void db_worker_release(gpointer p)
{
    g_atomic_rc_box_release_full(p, db_worker_clear);
}

struct db_job {
    struct db_worker *worker; /* a reference */
    char **ids;               /* line ids, NULL-terminated */
    char *event_line;
    guint event_generation;
    stats_params_t params;
};

static void db_job_free(gpointer p)
{
    struct db_job *job = p;

    db_worker_release(job->worker);
    g_strfreev(job->ids);
    g_free(job->event_line);
    g_free(job);
}

/* Runs on a GTask thread: the only code that touches worker->stats. */
static void db_job_run(GTask *task, gpointer source, gpointer task_data, GCancellable *cancel)
{
    struct db_job *job = task_data;
    struct db_worker *w = job->worker;
    g_autofree stats_result_t *res = g_new0(stats_result_t, 1);
    char err[512];

    (void)source;
    (void)cancel;
    if (w->stats == NULL && stats_open(w->path, &w->stats, err, sizeof err) != 0) {
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", err);
        return;
    }
    if (stats_query(w->stats, &job->params, res, err, sizeof err) != 0) {
        /* Reopen next time: the file may have been replaced or restored. */
        g_clear_pointer(&w->stats, stats_free);
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", err);
        return;
    }
    g_task_return_pointer(task, g_steal_pointer(&res), g_free);
}

/* ---- small helpers ----------------------------------------------------- */

static void line_info_clear_status(LcLineInfo *l)
{
    g_clear_pointer(&l->reason, g_free);
    g_clear_pointer(&l->reason_text, g_free);
    g_clear_pointer(&l->last_serial, g_free);
    g_clear_pointer(&l->last_result, g_free);
    g_clear_pointer(&l->last_reason, g_free);
    g_clear_pointer(&l->plc_address, g_free);
}

static void daemon_info_clear(LcDaemonInfo *d)
{
    g_clear_pointer(&d->error, g_free);
    g_clear_pointer(&d->state, g_free);
    g_clear_pointer(&d->version, g_free);
    g_clear_pointer(&d->signer_error, g_free);
    g_clear_pointer(&d->audit_error, g_free);
}

static void set_str(char **dst, const char *v)
{
    char *old = *dst;

    *dst = v != NULL ? g_strdup(v) : NULL;
    g_free(old);
}

static void set_str_take(char **dst, char *v)
{
    g_free(*dst);
    *dst = v;
}

static json_object *jget(json_object *o, const char *key)
{
    json_object *v = NULL;

    if (o == NULL || !json_object_is_type(o, json_type_object) ||
        !json_object_object_get_ex(o, key, &v))
        return NULL;
    return v;
}

/* A string field, or NULL if absent, null or not a string. */
static const char *jstr(json_object *o, const char *key)
{
    json_object *v = jget(o, key);

    return v != NULL && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static gint64 jint(json_object *o, const char *key, gint64 dflt)
{
    json_object *v = jget(o, key);

    return v != NULL && (json_object_is_type(v, json_type_int) ||
                         json_object_is_type(v, json_type_double))
               ? (gint64)json_object_get_int64(v)
               : dflt;
}

static double jdouble(json_object *o, const char *key, double dflt)
{
    json_object *v = jget(o, key);

    return v != NULL && (json_object_is_type(v, json_type_int) ||
                         json_object_is_type(v, json_type_double))
               ? json_object_get_double(v)
               : dflt;
}

static gboolean jbool(json_object *o, const char *key, gboolean dflt)
{
    json_object *v = jget(o, key);

    return v != NULL && json_object_is_type(v, json_type_boolean) ? json_object_get_boolean(v)
                                                                  : dflt;
}

static LcLineState state_from_name(const char *s)
{
    if (g_strcmp0(s, "issuing") == 0)
        return LC_LINE_STATE_ISSUING;
    if (g_strcmp0(s, "idle") == 0)
        return LC_LINE_STATE_IDLE;
    if (g_strcmp0(s, "paused") == 0)
        return LC_LINE_STATE_PAUSED;
    if (g_strcmp0(s, "fault") == 0)
        return LC_LINE_STATE_FAULT;
    return LC_LINE_STATE_UNKNOWN;
}

static void emit_changed(LcModel *self)
{
    g_signal_emit(self, signals[SIGNAL_CHANGED], 0);
}

/* ---- status over the control socket ----------------------------------- */

/* Applies a parsed status reply.  Returns FALSE if it is not a status. */
static gboolean status_apply(LcModel *self, json_object *root)
{
    LcDaemonInfo *d = &self->daemon;
    json_object *signer = jget(root, "signer"), *audit = jget(root, "audit");
    json_object *lines = jget(root, "lines");

    if (!json_object_is_type(root, json_type_object) || !jbool(root, "ok", FALSE))
        return FALSE;
    d->reachable = TRUE;
    d->ever = TRUE;
    d->last_ok_ms = stats_now_ms();
    set_str(&d->error, "");
    set_str(&d->state, jstr(root, "state") != NULL ? jstr(root, "state") : "ok");
    set_str(&d->version, jstr(root, "version"));
    d->uptime_s = jint(root, "uptime_s", 0);
    d->signer_running = jbool(signer, "running", FALSE);
    d->hsm_ok = jbool(signer, "hsm_ok", FALSE);
    set_str(&d->signer_error, jstr(signer, "error"));
    d->signatures = jint(signer, "signatures", 0);
    d->audit_ok = jbool(audit, "ok", TRUE);
    set_str(&d->audit_error, jstr(audit, "error"));

    for (guint i = 0; i < self->config->lines->len; i++) {
        LcLineInfo *l = &self->lines[i];
        json_object *jl = NULL, *last, *plc;

        for (size_t k = 0; lines != NULL && json_object_is_type(lines, json_type_array) &&
                           k < json_object_array_length(lines);
             k++) {
            json_object *c = json_object_array_get_idx(lines, k);
            if (g_strcmp0(jstr(c, "id"), l->config->id) == 0) {
                jl = c;
                break;
            }
        }
        line_info_clear_status(l);
        l->have_status = TRUE;
        l->status_ms = d->last_ok_ms;
        if (jl == NULL) {
            l->state = LC_LINE_STATE_NOT_DRIVEN;
            l->rate_last_min = 0;
            continue;
        }
        last = jget(jl, "last");
        plc = jget(jl, "plc");
        l->state = state_from_name(jstr(jl, "state"));
        l->reason = g_strdup(jstr(jl, "reason"));
        l->reason_text = g_strdup(jstr(jl, "reason_text") != NULL ? jstr(jl, "reason_text") : "");
        l->rate_last_min = jint(jl, "rate_last_min", 0);
        l->last_serial = g_strdup(jstr(last, "serial"));
        l->last_result = g_strdup(jstr(last, "result"));
        l->last_reason = g_strdup(jstr(last, "reason"));
        l->last_age_s = jdouble(last, "age_s", -1);
        l->plc_address = g_strdup(jstr(plc, "address"));
        l->plc_connected = jbool(plc, "connected", FALSE);
    }
    return TRUE;
}

/* Closing a Unix socket does not wait for anything, so this may run on the main loop. */
static void status_drop_connection(LcModel *self)
{
    g_clear_object(&self->input);
    if (self->connection != NULL)
        g_io_stream_close(G_IO_STREAM(self->connection), NULL, NULL);
    g_clear_object(&self->connection);
}

/* Ends the request in flight (status_busy off, timeout gone). */
static void status_done(LcModel *self)
{
    self->status_busy = FALSE;
    self->status_timed_out = FALSE;
    g_clear_handle_id(&self->status_timeout_id, g_source_remove);
    g_clear_object(&self->status_cancel);
    self->status_rounds++;
}

static void status_connect(LcModel *self);
static void status_send(LcModel *self, gboolean reused);

/*
 * The request failed.  A connection that worked before may just have been
 * closed by a restarted daemon: one fresh connection is tried at once.
 */
static void status_fail(LcModel *self, const GError *error, gboolean reused)
{
    LcDaemonInfo *d = &self->daemon;
    gboolean timed_out = self->status_timed_out;

    status_drop_connection(self);
    if (self->stopped) {
        status_done(self);
        return;
    }
    if (reused && !timed_out) {
        status_connect(self);
        return;
    }
    d->reachable = FALSE;
    if (timed_out)
        set_str(&d->error, "linecertd did not answer within 3 s");
    else if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
        set_str_take(&d->error,
                     g_strdup_printf("no control socket at %s", self->config->control_socket));
    else if (error != NULL && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED))
        set_str(&d->error, "nothing listens on the control socket");
    else
        set_str(&d->error, error != NULL ? error->message : "the connection was closed");
    status_done(self);
    emit_changed(self);
}

struct status_op {
    LcModel *self;   /* a reference */
    gboolean reused; /* the connection was open before this request */
};

static struct status_op *status_op_new(LcModel *self, gboolean reused)
{
    struct status_op *op = g_new0(struct status_op, 1);

    op->self = g_object_ref(self);
    op->reused = reused;
    return op;
}

static void status_op_free(struct status_op *op)
{
    g_object_unref(op->self);
    g_free(op);
}

static void on_status_line(GObject *source, GAsyncResult *result, gpointer data)
{
    struct status_op *op = data;
    LcModel *self = op->self;
    g_autoptr(GError) error = NULL;
    g_autofree char *line = NULL;
    json_object *root = NULL;
    enum json_tokener_error jerr = json_tokener_success;

    line = g_data_input_stream_read_line_finish(G_DATA_INPUT_STREAM(source), result, NULL, &error);
    if (line == NULL) {
        status_fail(self, error, op->reused);
        goto out;
    }
    root = json_tokener_parse_verbose(line, &jerr);
    if (self->stopped) {
        status_done(self);
    } else if (root == NULL || !status_apply(self, root)) {
        const char *why = jstr(root, "error");
        g_autoptr(GError) bad = g_error_new(G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "linecertd: %s",
                                            why != NULL ? why : "its reply is not a status");
        status_fail(self, bad, FALSE);
    } else {
        status_done(self);
        emit_changed(self);
    }
out:
    json_object_put(root);
    status_op_free(op);
}

static void on_status_written(GObject *source, GAsyncResult *result, gpointer data)
{
    struct status_op *op = data;
    LcModel *self = op->self;
    g_autoptr(GError) error = NULL;

    if (!g_output_stream_write_all_finish(G_OUTPUT_STREAM(source), result, NULL, &error) ||
        self->input == NULL) {
        status_fail(self, error, op->reused);
        status_op_free(op);
        return;
    }
    g_data_input_stream_read_line_async(self->input, G_PRIORITY_DEFAULT, self->status_cancel,
                                        on_status_line, op);
}

static void status_send(LcModel *self, gboolean reused)
{
    static const char request[] = "status\n";
    GOutputStream *out = g_io_stream_get_output_stream(G_IO_STREAM(self->connection));

    g_output_stream_write_all_async(out, request, sizeof request - 1, G_PRIORITY_DEFAULT,
                                    self->status_cancel, on_status_written,
                                    status_op_new(self, reused));
}

static void on_status_connected(GObject *source, GAsyncResult *result, gpointer data)
{
    struct status_op *op = data;
    LcModel *self = op->self;
    g_autoptr(GError) error = NULL;
    GSocketConnection *conn;

    conn = g_socket_client_connect_finish(G_SOCKET_CLIENT(source), result, &error);
    if (conn == NULL) {
        status_fail(self, error, FALSE);
    } else if (self->stopped) {
        g_object_unref(conn);
        status_done(self);
    } else {
        self->connection = conn;
        self->input = g_data_input_stream_new(g_io_stream_get_input_stream(G_IO_STREAM(conn)));
        g_data_input_stream_set_newline_type(self->input, G_DATA_STREAM_NEWLINE_TYPE_LF);
        status_send(self, FALSE);
    }
    status_op_free(op);
}

static void status_connect(LcModel *self)
{
    g_socket_client_connect_async(self->client, G_SOCKET_CONNECTABLE(self->address),
                                  self->status_cancel, on_status_connected,
                                  status_op_new(self, FALSE));
}

static gboolean on_status_timeout(gpointer data)
{
    LcModel *self = data;

    self->status_timeout_id = 0;
    self->status_timed_out = TRUE;
    g_cancellable_cancel(self->status_cancel);
    return G_SOURCE_REMOVE;
}

static void status_request(LcModel *self)
{
    if (self->status_busy || self->stopped)
        return;
    self->status_busy = TRUE;
    self->status_timed_out = FALSE;
    self->status_cancel = g_cancellable_new();
    self->status_timeout_id = g_timeout_add_seconds(STATUS_TIMEOUT_S, on_status_timeout, self);
    if (self->connection != NULL)
        status_send(self, TRUE);
    else
        status_connect(self);
}

/* ---- queries on the audit store -------------------------------------- */

static const char *line_name(LcModel *self, const char *id)
{
    const LcLineConfig *l = lc_config_find_line(self->config, id);

    return l != NULL ? l->name : NULL;
}

/* Replaces the event rows if they differ from what is shown. */
static void events_apply(LcModel *self, const stats_result_t *res, guint generation)
{
    guint n = g_list_model_get_n_items(G_LIST_MODEL(self->events));
    gboolean same = n == res->nevents && generation == self->events_shown_generation;
    g_autoptr(GPtrArray) rows = NULL;

    for (guint i = 0; same && i < n; i++) {
        g_autoptr(LcEvent) e = g_list_model_get_item(G_LIST_MODEL(self->events), i);
        same = lc_event_get_seq(e) == res->events[i].seq;
    }
    if (same)
        return;
    rows = g_ptr_array_new_with_free_func(g_object_unref);
    for (size_t i = 0; i < res->nevents; i++)
        g_ptr_array_add(
            rows, lc_event_new(&res->events[i], line_name(self, res->events[i].line), res->now_ms));
    g_list_store_splice(self->events, 0, n, rows->pdata, rows->len);
    self->events_shown_generation = generation;
}

static void db_start(LcModel *self);

static void on_db_done(GObject *source, GAsyncResult *result, gpointer data)
{
    LcModel *self = LC_MODEL(source);
    struct db_job *job = g_task_get_task_data(G_TASK(result));
    g_autoptr(GError) error = NULL;
    g_autofree stats_result_t *res = g_task_propagate_pointer(G_TASK(result), &error);
    LcStoreInfo *s = &self->store;

    (void)data;
    self->db_busy = FALSE;
    self->store_rounds++;
    if (self->stopped)
        return;
    if (res == NULL) {
        s->readable = FALSE;
        set_str(&s->error, error->message);
    } else {
        s->readable = TRUE;
        s->ever = TRUE;
        set_str(&s->error, "");
        s->head_seq = res->head_seq;
        memcpy(s->head_hash, res->head_hash, sizeof s->head_hash);
        s->size_bytes = res->size_bytes;
        s->free_bytes = res->free_bytes;
        s->updated_ms = res->now_ms;
        s->shift_start_ms = job->params.shift_start_ms;
        s->day_start_ms = job->params.day_start_ms;
        s->fast_path = res->fast_path;
        for (guint i = 0; i < self->config->lines->len && i < res->nlines; i++) {
            self->lines[i].have_stats = TRUE;
            self->lines[i].stats = res->lines[i];
        }
        if (job->event_generation == self->event_generation)
            events_apply(self, res, job->event_generation);
    }
    emit_changed(self);
    if (self->db_again) {
        self->db_again = FALSE;
        db_start(self);
    }
}

static void db_start(LcModel *self)
{
    g_autoptr(GTask) task = NULL;
    struct db_job *job;
    guint n = self->config->lines->len;

    if (self->stopped)
        return;
    if (self->db_busy) {
        self->db_again = TRUE;
        return;
    }
    job = g_new0(struct db_job, 1);
    job->worker = g_atomic_rc_box_acquire(self->worker);
    job->ids = g_new0(char *, n + 1);
    for (guint i = 0; i < n; i++)
        job->ids[i] = g_strdup(self->lines[i].config->id);
    job->event_line = g_strdup(self->event_line);
    job->event_generation = self->event_generation;
    job->params.now_ms = stats_now_ms();
    stats_day_bounds(self->config->shifts, job->params.now_ms, &job->params.shift_start_ms,
                     &job->params.day_start_ms);
    job->params.lines = (const char *const *)job->ids;
    job->params.nlines = n;
    job->params.event_line = job->event_line;
    job->params.max_events = STATS_MAX_EVENTS;
    self->db_busy = TRUE;
    task = g_task_new(self, self->db_cancel, on_db_done, NULL);
    g_task_set_source_tag(task, db_start);
    g_task_set_task_data(task, job, db_job_free);
    g_task_run_in_thread(task, db_job_run);
}

/* ---- the clock ------------------------------------------------------- */

static gboolean on_tick(gpointer data)
{
    LcModel *self = data;

    self->tick_id = 0;
    self->now_ms = stats_now_ms();
    db_start(self);
    status_request(self);
    emit_changed(self);
    tick_schedule(self);
    return G_SOURCE_REMOVE;
}

/* The next tick just after the next wall-clock second, so that the clock is exact. */
static void tick_schedule(LcModel *self)
{
    gint64 now = stats_now_ms();

    if (!self->stopped)
        self->tick_id = g_timeout_add((guint)(1000 - now % 1000 + 5), on_tick, self);
}

/* ---- GObject --------------------------------------------------------- */

static void lc_model_dispose(GObject *object)
{
    LcModel *self = LC_MODEL(object);

    lc_model_stop(self);
    status_drop_connection(self);
    g_clear_object(&self->client);
    g_clear_object(&self->address);
    g_clear_object(&self->events);
    g_clear_object(&self->db_cancel);
    G_OBJECT_CLASS(lc_model_parent_class)->dispose(object);
}

static void lc_model_finalize(GObject *object)
{
    LcModel *self = LC_MODEL(object);

    for (guint i = 0; self->config != NULL && i < self->config->lines->len; i++)
        line_info_clear_status(&self->lines[i]);
    g_free(self->lines);
    daemon_info_clear(&self->daemon);
    g_free(self->store.error);
    g_free(self->event_line);
    if (self->worker != NULL)
        db_worker_release(self->worker);
    lc_config_free(self->config);
    G_OBJECT_CLASS(lc_model_parent_class)->finalize(object);
}

static void lc_model_class_init(LcModelClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);

    object_class->dispose = lc_model_dispose;
    object_class->finalize = lc_model_finalize;
    /**
     * LcModel::changed:
     *
     * Something shown may have changed: a status arrived or failed, the
     * store was read, or a second passed.
     */
    signals[SIGNAL_CHANGED] = g_signal_new("changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST,
                                           0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void lc_model_init(LcModel *self)
{
    self->events = g_list_store_new(LC_TYPE_EVENT);
    self->db_cancel = g_cancellable_new();
    self->daemon.error = g_strdup("");
    self->store.error = g_strdup("");
    self->store.size_bytes = -1;
    self->store.free_bytes = -1;
}

LcModel *lc_model_new(LcConfig *config)
{
    LcModel *self;
    struct db_worker *w;

    g_return_val_if_fail(config != NULL, NULL);
    self = g_object_new(LC_TYPE_MODEL, NULL);
    self->config = config;
    self->lines = g_new0(LcLineInfo, config->lines->len);
    for (guint i = 0; i < config->lines->len; i++)
        self->lines[i].config = g_ptr_array_index(config->lines, i);
    self->client = g_socket_client_new();
    self->address = g_unix_socket_address_new(config->control_socket);
    w = g_atomic_rc_box_new0(struct db_worker);
    w->path = g_strdup(config->audit_db);
    self->worker = w;
    self->now_ms = stats_now_ms();
    return self;
}

void lc_model_start(LcModel *self)
{
    g_return_if_fail(LC_IS_MODEL(self));
    if (self->tick_id != 0 || self->stopped)
        return;
    self->tick_id = g_idle_add(on_tick, self);
}

void lc_model_stop(LcModel *self)
{
    g_return_if_fail(LC_IS_MODEL(self));
    self->stopped = TRUE;
    g_clear_handle_id(&self->tick_id, g_source_remove);
    g_clear_handle_id(&self->status_timeout_id, g_source_remove);
    if (self->status_cancel != NULL)
        g_cancellable_cancel(self->status_cancel);
    if (self->db_cancel != NULL)
        g_cancellable_cancel(self->db_cancel);
}

void lc_model_refresh(LcModel *self)
{
    g_return_if_fail(LC_IS_MODEL(self));
    db_start(self);
    status_request(self);
}

const LcConfig *lc_model_get_config(LcModel *self)
{
    g_return_val_if_fail(LC_IS_MODEL(self), NULL);
    return self->config;
}

guint lc_model_get_n_lines(LcModel *self)
{
    g_return_val_if_fail(LC_IS_MODEL(self), 0);
    return self->config->lines->len;
}

const LcLineInfo *lc_model_get_line(LcModel *self, guint index)
{
    g_return_val_if_fail(LC_IS_MODEL(self), NULL);
    g_return_val_if_fail(index < self->config->lines->len, NULL);
    return &self->lines[index];
}

const LcDaemonInfo *lc_model_get_daemon(LcModel *self)
{
    g_return_val_if_fail(LC_IS_MODEL(self), NULL);
    return &self->daemon;
}

const LcStoreInfo *lc_model_get_store(LcModel *self)
{
    g_return_val_if_fail(LC_IS_MODEL(self), NULL);
    return &self->store;
}

gint64 lc_model_get_now_ms(LcModel *self)
{
    g_return_val_if_fail(LC_IS_MODEL(self), 0);
    return self->now_ms;
}

GListModel *lc_model_get_events(LcModel *self)
{
    g_return_val_if_fail(LC_IS_MODEL(self), NULL);
    return G_LIST_MODEL(self->events);
}

void lc_model_set_event_line(LcModel *self, const char *line_id)
{
    g_return_if_fail(LC_IS_MODEL(self));
    if (g_strcmp0(self->event_line, line_id) == 0)
        return;
    set_str(&self->event_line, line_id);
    self->event_generation++;
    db_start(self);
}

const char *lc_model_get_event_line(LcModel *self)
{
    g_return_val_if_fail(LC_IS_MODEL(self), NULL);
    return self->event_line;
}

guint lc_model_get_status_rounds(LcModel *self)
{
    g_return_val_if_fail(LC_IS_MODEL(self), 0);
    return self->status_rounds;
}

guint lc_model_get_store_rounds(LcModel *self)
{
    g_return_val_if_fail(LC_IS_MODEL(self), 0);
    return self->store_rounds;
}

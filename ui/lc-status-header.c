/*
 * lc-status-header.c — station, HSM, audit store, shift and clock (see
 * lc-status-header.h).  Each item is a dot (colour) and words (meaning):
 * the dot is never the only signal.
 */
#include "lc-status-header.h"

#include "lc-format.h"

struct _LcStatusHeader {
    GtkBox parent_instance;

    GtkWidget *station_dot;
    GtkLabel *station_label;
    GtkLabel *station_detail;
    GtkWidget *hsm_dot;
    GtkLabel *hsm_label;
    GtkLabel *hsm_detail;
    GtkWidget *audit_dot;
    GtkLabel *audit_label;
    GtkLabel *audit_detail;
    GtkLabel *clock_label;
    GtkLabel *shift_label;
    GtkWidget *fullscreen_button;
};

G_DEFINE_FINAL_TYPE(LcStatusHeader, lc_status_header, GTK_TYPE_BOX)

typedef enum { DOT_OK, DOT_WARN, DOT_BAD, DOT_UNKNOWN } Dot;

static void lc_status_header_dispose(GObject *object)
{
    gtk_widget_dispose_template(GTK_WIDGET(object), LC_TYPE_STATUS_HEADER);
    G_OBJECT_CLASS(lc_status_header_parent_class)->dispose(object);
}

static void lc_status_header_class_init(LcStatusHeaderClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);
    GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);

    object_class->dispose = lc_status_header_dispose;
    gtk_widget_class_set_template_from_resource(widget_class,
                                                "/org/linecert/ui/lc-status-header.ui");
    gtk_widget_class_bind_template_child(widget_class, LcStatusHeader, station_dot);
    gtk_widget_class_bind_template_child(widget_class, LcStatusHeader, station_label);
    gtk_widget_class_bind_template_child(widget_class, LcStatusHeader, station_detail);
    gtk_widget_class_bind_template_child(widget_class, LcStatusHeader, hsm_dot);
    gtk_widget_class_bind_template_child(widget_class, LcStatusHeader, hsm_label);
    gtk_widget_class_bind_template_child(widget_class, LcStatusHeader, hsm_detail);
    gtk_widget_class_bind_template_child(widget_class, LcStatusHeader, audit_dot);
    gtk_widget_class_bind_template_child(widget_class, LcStatusHeader, audit_label);
    gtk_widget_class_bind_template_child(widget_class, LcStatusHeader, audit_detail);
    gtk_widget_class_bind_template_child(widget_class, LcStatusHeader, clock_label);
    gtk_widget_class_bind_template_child(widget_class, LcStatusHeader, shift_label);
    gtk_widget_class_bind_template_child(widget_class, LcStatusHeader, fullscreen_button);
    gtk_widget_class_set_css_name(widget_class, "lc-status-header");
}

static void lc_status_header_init(LcStatusHeader *self)
{
    gtk_widget_init_template(GTK_WIDGET(self));
}

GtkWidget *lc_status_header_new(void)
{
    return g_object_new(LC_TYPE_STATUS_HEADER, NULL);
}

static void set_dot(GtkWidget *dot, Dot d)
{
    static const char *const classes[] = {"ok", "warn", "bad", "unknown"};

    for (gsize i = 0; i < G_N_ELEMENTS(classes); i++)
        if (i == (gsize)d)
            gtk_widget_add_css_class(dot, classes[i]);
        else
            gtk_widget_remove_css_class(dot, classes[i]);
}

static void set_item(GtkWidget *dot, GtkLabel *label, GtkLabel *detail, Dot d, const char *text,
                     const char *detail_text)
{
    set_dot(dot, d);
    gtk_label_set_text(label, text);
    gtk_label_set_text(detail, detail_text != NULL ? detail_text : "");
    gtk_widget_set_tooltip_text(GTK_WIDGET(detail), NULL);
}

static void update_station(LcStatusHeader *self, const LcDaemonInfo *d)
{
    g_autofree char *up = NULL, *at = NULL, *detail = NULL;

    if (!d->reachable) {
        at = d->ever ? lc_format_clock(d->last_ok_ms) : NULL;
        detail = at != NULL ? g_strdup_printf("linecertd: no answer since %s", at)
                            : g_strdup("linecertd not reachable");
        set_item(self->station_dot, self->station_label, self->station_detail, DOT_BAD,
                 "Station OFFLINE", detail);
        return;
    }
    up = lc_format_age((double)d->uptime_s);
    detail = g_strdup_printf("linecertd %s, up %s", d->version != NULL ? d->version : "", up);
    if (g_strcmp0(d->state, "ok") == 0)
        set_item(self->station_dot, self->station_label, self->station_detail, DOT_OK, "Station OK",
                 detail);
    else if (g_strcmp0(d->state, "hsm-fault") == 0)
        set_item(self->station_dot, self->station_label, self->station_detail, DOT_BAD,
                 "Station: HSM FAULT", detail);
    else if (g_strcmp0(d->state, "audit-fault") == 0)
        set_item(self->station_dot, self->station_label, self->station_detail, DOT_BAD,
                 "Station: AUDIT FAULT", detail);
    else
        set_item(self->station_dot, self->station_label, self->station_detail, DOT_WARN, d->state,
                 detail);
}

static void update_hsm(LcStatusHeader *self, const LcDaemonInfo *d)
{
    g_autofree char *sigs = NULL, *detail = NULL;

    if (!d->ever) {
        set_item(self->hsm_dot, self->hsm_label, self->hsm_detail, DOT_UNKNOWN, "HSM unknown",
                 "no status from linecertd");
        return;
    }
    sigs = lc_format_count(d->signatures);
    if (!d->reachable) {
        detail = g_strdup_printf("last: %s", !d->signer_running ? "signer not running"
                                             : d->hsm_ok        ? "ready"
                                                                : "FAULT");
        set_item(self->hsm_dot, self->hsm_label, self->hsm_detail, DOT_UNKNOWN, "HSM unknown",
                 detail);
        return;
    }
    if (!d->signer_running)
        set_item(self->hsm_dot, self->hsm_label, self->hsm_detail, DOT_BAD, "Signer NOT RUNNING",
                 d->signer_error != NULL && *d->signer_error ? d->signer_error : "being restarted");
    else if (!d->hsm_ok)
        set_item(self->hsm_dot, self->hsm_label, self->hsm_detail, DOT_BAD, "HSM FAULT",
                 d->signer_error != NULL && *d->signer_error ? d->signer_error
                                                             : "token not reachable");
    else {
        detail = g_strdup_printf("%s signatures", sigs);
        set_item(self->hsm_dot, self->hsm_label, self->hsm_detail, DOT_OK, "HSM ready", detail);
    }
}

static void update_audit(LcStatusHeader *self, const LcDaemonInfo *d, const LcStoreInfo *s)
{
    g_autofree char *size = NULL, *free_b = NULL, *text = NULL, *head = NULL;
    gboolean write_fault = d->reachable && !d->audit_ok;
    Dot dot = DOT_OK;

    if (!s->ever && !s->readable) {
        set_item(self->audit_dot, self->audit_label, self->audit_detail, DOT_BAD,
                 "Audit store NOT READABLE", s->error);
        return;
    }
    size = lc_format_bytes(s->size_bytes);
    free_b = lc_format_bytes(s->free_bytes);
    if (write_fault) {
        dot = DOT_BAD;
        text = g_strdup_printf("Audit FAULT · %s", size);
    } else if (!s->readable) {
        dot = DOT_WARN;
        text = g_strdup_printf("Audit NOT READABLE · %s", size);
    } else {
        /* Less than 1 GB free on the store's disk is worth a look before it fills. */
        dot = s->free_bytes >= 0 && s->free_bytes < 1000000000 ? DOT_WARN : DOT_OK;
        text = g_strdup_printf("Audit %s", size);
    }
    if (write_fault && d->audit_error != NULL && *d->audit_error)
        head = g_strdup(d->audit_error);
    else if (!s->readable)
        head = g_strdup(s->error);
    else if (s->head_seq > 0)
        head = g_strdup_printf("%s free · head #%" G_GINT64_FORMAT " %.12s", free_b, s->head_seq,
                               s->head_hash);
    else
        head = g_strdup_printf("%s free · empty log", free_b);
    set_item(self->audit_dot, self->audit_label, self->audit_detail, dot, text, head);
}

void lc_status_header_update(LcStatusHeader *self, LcModel *model)
{
    const LcDaemonInfo *d = lc_model_get_daemon(model);
    const LcStoreInfo *s = lc_model_get_store(model);
    g_autofree char *clock = lc_format_clock(lc_model_get_now_ms(model));
    g_autofree char *shift = NULL;

    g_return_if_fail(LC_IS_STATUS_HEADER(self));
    update_station(self, d);
    update_hsm(self, d);
    update_audit(self, d, s);
    gtk_label_set_text(self->clock_label, clock);
    if (s->shift_start_ms != 0) {
        g_autofree char *since = lc_format_clock(s->shift_start_ms);
        since[5] = '\0'; /* HH:MM */
        shift = g_strdup_printf("Shift since %s", since);
    }
    gtk_label_set_text(self->shift_label, shift != NULL ? shift : "");
}

/*
 * lc-event.c — one refusal or fault for the events pane (see lc-event.h).
 */
#include "lc-event.h"

#include "lc-reasons.h"

struct _LcEvent {
    GObject parent_instance;

    gint64 seq;
    char *time;          /* "14:31:26", or "22 Nov 14:31" before today */
    char *line;          /* the line's name */
    char *device;        /* registration ID, else serial, else "—" */
    char *kind;          /* "REFUSED" or "FAULT" */
    GStrv kind_css;      /* CSS classes of the kind label */
    char *reason;        /* the reason in words */
    char *detail;        /* the row's own detail text, "" if none */
    char *reason_markup; /* reason, then the detail muted, as Pango markup */
};

G_DEFINE_FINAL_TYPE(LcEvent, lc_event, G_TYPE_OBJECT)

enum {
    PROP_0,
    PROP_TIME,
    PROP_LINE,
    PROP_DEVICE,
    PROP_KIND,
    PROP_KIND_CSS,
    PROP_REASON,
    PROP_DETAIL,
    PROP_REASON_MARKUP,
    N_PROPS
};

static GParamSpec *props[N_PROPS];

static void lc_event_finalize(GObject *object)
{
    LcEvent *self = LC_EVENT(object);

    g_free(self->time);
    g_free(self->line);
    g_free(self->device);
    g_free(self->kind);
    g_strfreev(self->kind_css);
    g_free(self->reason);
    g_free(self->detail);
    g_free(self->reason_markup);
    G_OBJECT_CLASS(lc_event_parent_class)->finalize(object);
}

static void lc_event_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
    LcEvent *self = LC_EVENT(object);

    switch (prop_id) {
    case PROP_TIME:
        g_value_set_string(value, self->time);
        break;
    case PROP_LINE:
        g_value_set_string(value, self->line);
        break;
    case PROP_DEVICE:
        g_value_set_string(value, self->device);
        break;
    case PROP_KIND:
        g_value_set_string(value, self->kind);
        break;
    case PROP_KIND_CSS:
        g_value_set_boxed(value, self->kind_css);
        break;
    case PROP_REASON:
        g_value_set_string(value, self->reason);
        break;
    case PROP_DETAIL:
        g_value_set_string(value, self->detail);
        break;
    case PROP_REASON_MARKUP:
        g_value_set_string(value, self->reason_markup);
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
    }
}

static void lc_event_class_init(LcEventClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);
    const GParamFlags f = G_PARAM_READABLE | G_PARAM_STATIC_STRINGS;

    object_class->finalize = lc_event_finalize;
    object_class->get_property = lc_event_get_property;
    props[PROP_TIME] = g_param_spec_string("time", NULL, NULL, NULL, f);
    props[PROP_LINE] = g_param_spec_string("line", NULL, NULL, NULL, f);
    props[PROP_DEVICE] = g_param_spec_string("device", NULL, NULL, NULL, f);
    props[PROP_KIND] = g_param_spec_string("kind", NULL, NULL, NULL, f);
    props[PROP_KIND_CSS] = g_param_spec_boxed("kind-css", NULL, NULL, G_TYPE_STRV, f);
    props[PROP_REASON] = g_param_spec_string("reason", NULL, NULL, NULL, f);
    props[PROP_DETAIL] = g_param_spec_string("detail", NULL, NULL, NULL, f);
    props[PROP_REASON_MARKUP] = g_param_spec_string("reason-markup", NULL, NULL, NULL, f);
    g_object_class_install_properties(object_class, N_PROPS, props);
}

static void lc_event_init(LcEvent *self)
{
    (void)self;
}

LcEvent *lc_event_new(const stats_event_t *row, const char *line_name, gint64 now_ms)
{
    LcEvent *self = g_object_new(LC_TYPE_EVENT, NULL);
    g_autoptr(GDateTime) t = g_date_time_new_from_unix_local(row->ts_ms / 1000);
    g_autoptr(GDateTime) now = g_date_time_new_from_unix_local(now_ms / 1000);
    gboolean refused = g_strcmp0(row->kind, "refused") == 0;
    const char *text = lc_reason_text(row->reason);

    self->seq = row->seq;
    if (t != NULL && now != NULL && g_date_time_get_year(t) == g_date_time_get_year(now) &&
        g_date_time_get_day_of_year(t) == g_date_time_get_day_of_year(now))
        self->time = g_date_time_format(t, "%H:%M:%S");
    else if (t != NULL)
        self->time = g_date_time_format(t, "%d %b %H:%M");
    else
        self->time = g_strdup("—");
    if (line_name != NULL)
        self->line = g_strdup(line_name);
    else if (row->line[0] == '\0')
        self->line = g_strdup("Station");
    else
        self->line = g_strdup_printf("Line %s", row->line);
    self->device = g_strdup(row->registration_id[0] ? row->registration_id
                            : row->serial[0]        ? row->serial
                                                    : "—");
    self->kind = g_strdup(refused ? "REFUSED" : "FAULT");
    self->kind_css = g_strsplit(refused ? "lc-kind refused" : "lc-kind fault", " ", -1);
    if (text != NULL)
        self->reason = g_strdup(text);
    else if (row->reason[0] != '\0')
        self->reason = g_strdup_printf("Reason code \"%s\".", row->reason);
    else
        self->reason =
            g_strdup(refused ? "Refused (no reason recorded)." : "Fault (no reason recorded).");
    self->detail = g_strdup(row->detail);
    if (self->detail[0] != '\0')
        self->reason_markup = g_markup_printf_escaped(
            "%s  <span size=\"smaller\" alpha=\"65%%\">%s</span>", self->reason, self->detail);
    else
        self->reason_markup = g_markup_escape_text(self->reason, -1);
    return self;
}

gint64 lc_event_get_seq(LcEvent *self)
{
    g_return_val_if_fail(LC_IS_EVENT(self), 0);
    return self->seq;
}

const char *lc_event_get_time(LcEvent *self)
{
    g_return_val_if_fail(LC_IS_EVENT(self), NULL);
    return self->time;
}

const char *lc_event_get_line(LcEvent *self)
{
    g_return_val_if_fail(LC_IS_EVENT(self), NULL);
    return self->line;
}

const char *lc_event_get_device(LcEvent *self)
{
    g_return_val_if_fail(LC_IS_EVENT(self), NULL);
    return self->device;
}

const char *lc_event_get_kind(LcEvent *self)
{
    g_return_val_if_fail(LC_IS_EVENT(self), NULL);
    return self->kind;
}

const char *lc_event_get_reason(LcEvent *self)
{
    g_return_val_if_fail(LC_IS_EVENT(self), NULL);
    return self->reason;
}

const char *lc_event_get_detail(LcEvent *self)
{
    g_return_val_if_fail(LC_IS_EVENT(self), NULL);
    return self->detail;
}

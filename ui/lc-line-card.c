/*
 * lc-line-card.c — one production line (see lc-line-card.h).
 *
 * The look lives in style.css; this file only chooses texts and one state
 * class on the card (issuing, idle, paused, fault, unknown, not-driven) plus
 * "stale" while linecertd is not reachable.  Every state has its own word and
 * glyph, so colour is never the only signal.
 */
#include "lc-line-card.h"

#include <string.h>

#include "lc-format.h"
#include "lc-rate-chart.h"
#include "lc-reasons.h"

struct _LcLineCard {
    GtkBox parent_instance;

    GtkLabel *name_label;
    GtkWidget *state_band;
    GtkLabel *state_glyph;
    GtkLabel *state_word;
    GtkLabel *reason_label;
    GtkLabel *shift_value;
    GtkLabel *today_value;
    GtkLabel *rate_value;
    LcRateChart *chart;
    GtkLabel *last_label;
    GtkLabel *tally_label;

    const char *state_class; /* the class now on the card */
    const char *size_class;  /* "large", "medium" or "small": text sizes for the card's width */
    const char *want_size;   /* what the last allocation asked for */
    guint size_idle;         /* applies want_size after the allocation */
};

G_DEFINE_FINAL_TYPE(LcLineCard, lc_line_card, GTK_TYPE_BOX)

struct state_look {
    const char *word;
    const char *glyph;
    const char *css;
};

static const struct state_look LOOKS[] = {
    [LC_LINE_STATE_UNKNOWN] = {"NO DATA", "?", "unknown"},
    [LC_LINE_STATE_ISSUING] = {"ISSUING", "▶", "issuing"},
    [LC_LINE_STATE_IDLE] = {"IDLE", "○", "idle"},
    [LC_LINE_STATE_PAUSED] = {"PAUSED", "❚❚", "paused"},
    [LC_LINE_STATE_FAULT] = {"FAULT", "!", "fault"},
    [LC_LINE_STATE_NOT_DRIVEN] = {"NOT DRIVEN", "–", "not-driven"},
};

/*
 * Text sizes follow the card's width (4 cards on 1280 px are narrower than
 * 3 on 1920): CSS has no container queries, so the card picks a size class
 * when it is drawn at a new width.  It is applied from an idle callback,
 * never during layout or drawing; the sizes are chosen so that the narrower class
 * always fits, which keeps this from oscillating.  (The card's width comes
 * from the grid's homogeneous columns, not from its text.)
 */
static gboolean apply_size_class(gpointer data)
{
    LcLineCard *self = data;

    self->size_idle = 0;
    if (self->want_size != self->size_class) {
        if (self->size_class != NULL)
            gtk_widget_remove_css_class(GTK_WIDGET(self), self->size_class);
        gtk_widget_add_css_class(GTK_WIDGET(self), self->want_size);
        self->size_class = self->want_size;
    }
    return G_SOURCE_REMOVE;
}

/* GtkBox allocates through its layout manager, so the width is looked at when drawing. */
static void lc_line_card_snapshot(GtkWidget *widget, GtkSnapshot *snapshot)
{
    LcLineCard *self = LC_LINE_CARD(widget);
    int width = gtk_widget_get_width(widget);

    GTK_WIDGET_CLASS(lc_line_card_parent_class)->snapshot(widget, snapshot);
    self->want_size = width >= 440 ? "large" : width >= 330 ? "medium" : "small";
    if (self->want_size != self->size_class && self->size_idle == 0)
        self->size_idle = g_idle_add(apply_size_class, self);
}

static void lc_line_card_dispose(GObject *object)
{
    LcLineCard *self = LC_LINE_CARD(object);

    g_clear_handle_id(&self->size_idle, g_source_remove);
    gtk_widget_dispose_template(GTK_WIDGET(self), LC_TYPE_LINE_CARD);
    G_OBJECT_CLASS(lc_line_card_parent_class)->dispose(object);
}

static void lc_line_card_class_init(LcLineCardClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);
    GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);

    object_class->dispose = lc_line_card_dispose;
    widget_class->snapshot = lc_line_card_snapshot;
    g_type_ensure(LC_TYPE_RATE_CHART);
    gtk_widget_class_set_template_from_resource(widget_class, "/org/linecert/ui/lc-line-card.ui");
    gtk_widget_class_bind_template_child(widget_class, LcLineCard, name_label);
    gtk_widget_class_bind_template_child(widget_class, LcLineCard, state_band);
    gtk_widget_class_bind_template_child(widget_class, LcLineCard, state_glyph);
    gtk_widget_class_bind_template_child(widget_class, LcLineCard, state_word);
    gtk_widget_class_bind_template_child(widget_class, LcLineCard, reason_label);
    gtk_widget_class_bind_template_child(widget_class, LcLineCard, shift_value);
    gtk_widget_class_bind_template_child(widget_class, LcLineCard, today_value);
    gtk_widget_class_bind_template_child(widget_class, LcLineCard, rate_value);
    gtk_widget_class_bind_template_child(widget_class, LcLineCard, chart);
    gtk_widget_class_bind_template_child(widget_class, LcLineCard, last_label);
    gtk_widget_class_bind_template_child(widget_class, LcLineCard, tally_label);
    gtk_widget_class_set_css_name(widget_class, "lc-line-card");
}

static void lc_line_card_init(LcLineCard *self)
{
    gtk_widget_init_template(GTK_WIDGET(self));
    self->size_class = "medium";
    gtk_widget_add_css_class(GTK_WIDGET(self), self->size_class);
}

GtkWidget *lc_line_card_new(void)
{
    return g_object_new(LC_TYPE_LINE_CARD, NULL);
}

static void set_count(GtkLabel *label, gboolean have, gint64 n)
{
    g_autofree char *s = have ? lc_format_count(n) : g_strdup("—");

    gtk_label_set_text(label, s);
}

/* The fault text: the daemon's sentence (or ours for its code), then what to check. */
static char *fault_text(const LcLineInfo *line)
{
    const char *text = line->reason_text != NULL && *line->reason_text
                           ? line->reason_text
                           : lc_reason_text(line->reason);
    const char *hint = lc_reason_hint(line->reason);

    if (text == NULL)
        text = "The line cannot issue (no reason given): see the station log.";
    if (hint != NULL && strstr(text, "check") == NULL && strstr(text, "Check") == NULL)
        return g_strdup_printf("%s%s %s", text, g_str_has_suffix(text, ".") ? "" : ".", hint);
    return g_strdup(text);
}

/*
 * "Last: SN-00412 · issued · 2 s ago".  On a narrow card it may wrap only
 * after the device (no-break spaces elsewhere), never inside "2 s ago".
 */
static char *last_format(const char *device, const char *result, const char *age)
{
    g_autoptr(GString) tail = g_string_new(NULL);

    g_string_printf(tail, "%s · %s ago", result, age);
    g_string_replace(tail, " ", "\u00a0", 0);
    return g_strdup_printf("Last:\u00a0%s · %s", device, tail->str);
}

/* The last device, from the daemon if it has it, else from the store. */
static char *last_text(const LcLineInfo *line, gboolean live, gint64 now_ms)
{
    g_autofree char *age = NULL;

    if (live && line->last_serial != NULL && line->last_result != NULL) {
        double a = line->last_age_s >= 0 ? line->last_age_s : 0;
        a += (double)(now_ms - line->status_ms) / 1000.0;
        age = lc_format_age(a);
        return last_format(line->last_serial, line->last_result, age);
    }
    if (line->have_stats && line->stats.has_last) {
        const stats_line_t *s = &line->stats;
        age = lc_format_age((double)(now_ms - s->last_ts_ms) / 1000.0);
        return last_format(s->last_regid[0]    ? s->last_regid
                           : s->last_serial[0] ? s->last_serial
                                               : "—",
                           s->last_kind, age);
    }
    return g_strdup("Last: —");
}

void lc_line_card_update(LcLineCard *self, const LcLineInfo *line, const LcDaemonInfo *daemon,
                         gint64 now_ms)
{
    gboolean live = daemon->reachable && line->have_status;
    LcLineState state = live ? line->state : LC_LINE_STATE_UNKNOWN;
    const struct state_look *look = &LOOKS[state];
    g_autofree char *reason = NULL, *last = NULL, *tally = NULL;
    g_autofree char *refused = NULL, *faults = NULL;
    gint64 rate = 0;
    gboolean have_rate = FALSE;

    g_return_if_fail(LC_IS_LINE_CARD(self));
    gtk_label_set_text(self->name_label, line->config->name);
    gtk_label_set_text(self->state_word, look->word);
    gtk_label_set_text(self->state_glyph, look->glyph);
    if (self->state_class != look->css) {
        if (self->state_class != NULL)
            gtk_widget_remove_css_class(GTK_WIDGET(self), self->state_class);
        gtk_widget_add_css_class(GTK_WIDGET(self), look->css);
        self->state_class = look->css;
    }
    if (daemon->reachable)
        gtk_widget_remove_css_class(GTK_WIDGET(self), "stale");
    else
        gtk_widget_add_css_class(GTK_WIDGET(self), "stale");

    switch (state) {
    case LC_LINE_STATE_FAULT:
        reason = fault_text(line);
        break;
    case LC_LINE_STATE_PAUSED:
        reason = g_strdup(lc_reason_text("paused"));
        break;
    case LC_LINE_STATE_NOT_DRIVEN:
        reason = g_strdup("linecertd does not drive this line (no PLC or jig configured).");
        break;
    case LC_LINE_STATE_UNKNOWN:
        /* The banner says why; the card says what it was. */
        if (!daemon->reachable && daemon->ever && line->have_status) {
            g_autofree char *at = lc_format_clock(daemon->last_ok_ms);
            reason = g_strdup_printf("Last known: %s at %s", LOOKS[line->state].word, at);
        } else {
            reason = g_strdup("No state from linecertd.");
        }
        break;
    default:
        break;
    }
    gtk_label_set_text(self->reason_label, reason != NULL ? reason : "");
    gtk_widget_set_visible(GTK_WIDGET(self->reason_label), reason != NULL);

    set_count(self->shift_value, line->have_stats, line->stats.issued_shift);
    set_count(self->today_value, line->have_stats, line->stats.issued_today);
    if (line->have_status && line->state != LC_LINE_STATE_NOT_DRIVEN) {
        rate = line->rate_last_min; /* the daemon's 60-second window (kept when it goes away) */
        have_rate = TRUE;
    } else if (line->have_stats) {
        rate = line->stats.per_minute[STATS_MINUTES - 2]; /* the last complete minute */
        have_rate = TRUE;
    }
    set_count(self->rate_value, have_rate, rate);
    if (line->have_stats)
        lc_rate_chart_set_counts(self->chart, line->stats.per_minute);

    last = last_text(line, daemon->reachable, now_ms);
    gtk_label_set_text(self->last_label, last);
    refused = line->have_stats ? lc_format_count(line->stats.refused_shift) : g_strdup("—");
    faults = line->have_stats ? lc_format_count(line->stats.faults_shift) : g_strdup("—");
    tally = g_strdup_printf("Refused %s   Faults %s   this shift", refused, faults);
    gtk_label_set_text(self->tally_label, tally);
}

const char *lc_line_card_get_state_word(LcLineCard *self)
{
    g_return_val_if_fail(LC_IS_LINE_CARD(self), NULL);
    return gtk_label_get_text(self->state_word);
}

/*
 * lc-rate-chart.c — the 60-minute bar chart of a line card (see lc-rate-chart.h).
 *
 * Bars are drawn in the widget's own foreground colour, muted, so the chart
 * follows light and dark themes and greys out with its card; only the
 * current minute is at full strength.  The scale is rounded up to 5, 10,
 * 20, 50, ... so that it does not rescale on every new certificate.
 */
#include "lc-rate-chart.h"

#include <string.h>

#define AXIS_H 20.0f /* room for the time labels under the bars */
#define TOP_H  18.0f /* room for the scale label above them */
#define GAP    2.0f  /* between bars */

struct _LcRateChart {
    GtkWidget parent_instance;

    gint64 counts[STATS_MINUTES];
    gint64 scale; /* the value at the top of the chart */
};

G_DEFINE_FINAL_TYPE(LcRateChart, lc_rate_chart, GTK_TYPE_WIDGET)

/* The top of the scale: 15% above max, rounded up to 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 x 10^k.
 */
static gint64 nice_scale(gint64 max)
{
    static const int steps[] = {10, 12, 15, 20, 25, 30, 40, 50, 60, 80};
    gint64 want = max + (max * 15 + 99) / 100, mag = 1;

    if (want <= 5)
        return 5;
    for (;;) {
        for (gsize i = 0; i < G_N_ELEMENTS(steps); i++)
            if (steps[i] * mag >= want * 10 && (steps[i] * mag) % 10 == 0)
                return steps[i] * mag / 10;
        mag *= 10;
    }
}

static void fg_color(GtkWidget *widget, GdkRGBA *c)
{
#if GTK_CHECK_VERSION(4, 10, 0)
    gtk_widget_get_color(widget, c);
#else
    gtk_style_context_get_color(gtk_widget_get_style_context(widget), c);
#endif
}

/* Draws text at (x, y); align 0 = left edge at x, 1 = right edge at x. */
static void draw_text(GtkWidget *widget, GtkSnapshot *snapshot, const char *text, float x, float y,
                      float align, const GdkRGBA *color)
{
    g_autoptr(PangoLayout) layout = gtk_widget_create_pango_layout(widget, text);
    int w, h;

    pango_layout_get_pixel_size(layout, &w, &h);
    gtk_snapshot_save(snapshot);
    gtk_snapshot_translate(snapshot, &GRAPHENE_POINT_INIT(x - align * (float)w, y));
    gtk_snapshot_append_layout(snapshot, layout, color);
    gtk_snapshot_restore(snapshot);
}

static void lc_rate_chart_snapshot(GtkWidget *widget, GtkSnapshot *snapshot)
{
    LcRateChart *self = LC_RATE_CHART(widget);
    float width = (float)gtk_widget_get_width(widget);
    float height = (float)gtk_widget_get_height(widget);
    float plot_h = height - AXIS_H - TOP_H, bar_w;
    GdkRGBA fg, bar, now_bar, grid, text;
    char buf[64];

    if (width < 60 || plot_h < 20)
        return;
    fg_color(widget, &fg);
    bar = fg;
    bar.alpha *= 0.42f;
    now_bar = fg;
    now_bar.alpha *= 0.95f;
    grid = fg;
    grid.alpha *= 0.22f;
    text = fg;
    text.alpha *= 0.75f;
    bar_w = (width - GAP * (STATS_MINUTES - 1)) / STATS_MINUTES;

    g_snprintf(buf, sizeof buf, "%" G_GINT64_FORMAT " per min", self->scale);
    draw_text(widget, snapshot, buf, 0, 0, 0, &text);
    draw_text(widget, snapshot, "last 60 minutes", width, 0, 1, &text);
    draw_text(widget, snapshot, "60 min ago", 0, TOP_H + plot_h + 2, 0, &text);
    draw_text(widget, snapshot, "now", width, TOP_H + plot_h + 2, 1, &text);
    gtk_snapshot_save(snapshot);
    gtk_snapshot_translate(snapshot, &GRAPHENE_POINT_INIT(0, TOP_H));
    /* top line at the scale value, baseline */
    gtk_snapshot_append_color(snapshot, &grid, &GRAPHENE_RECT_INIT(0, 0, width, 1));
    gtk_snapshot_append_color(snapshot, &grid, &GRAPHENE_RECT_INIT(0, plot_h - 1, width, 1));
    for (int i = 0; i < STATS_MINUTES; i++) {
        float x = (float)i * (bar_w + GAP);
        float h = (float)self->counts[i] / (float)self->scale * (plot_h - 2);
        gboolean now = i == STATS_MINUTES - 1;

        if (h > plot_h - 2)
            h = plot_h - 2;
        if (self->counts[i] > 0 && h < 2)
            h = 2; /* one certificate is still visible */
        if (now) {
            /* the current minute's slot, outlined even when empty */
            GskRoundedRect r;
            const GdkRGBA c[4] = {now_bar, now_bar, now_bar, now_bar};
            const float wd[4] = {1, 1, 1, 1};
            gsk_rounded_rect_init_from_rect(&r, &GRAPHENE_RECT_INIT(x - 1, 0, bar_w + 2, plot_h),
                                            0);
            gtk_snapshot_append_border(snapshot, &r, wd, c);
        }
        if (h > 0)
            gtk_snapshot_append_color(snapshot, now ? &now_bar : &bar,
                                      &GRAPHENE_RECT_INIT(x, plot_h - 1 - h, bar_w, h));
    }
    gtk_snapshot_restore(snapshot);
}

static void lc_rate_chart_measure(GtkWidget *widget, GtkOrientation orientation, int for_size,
                                  int *minimum, int *natural, int *min_baseline, int *nat_baseline)
{
    (void)widget;
    (void)for_size;
    *min_baseline = *nat_baseline = -1;
    if (orientation == GTK_ORIENTATION_HORIZONTAL) {
        *minimum = 180;
        *natural = 360;
    } else {
        *minimum = (int)(AXIS_H + TOP_H) + 30;
        *natural = (int)(AXIS_H + TOP_H) + 110;
    }
}

static void lc_rate_chart_class_init(LcRateChartClass *klass)
{
    GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);

    widget_class->snapshot = lc_rate_chart_snapshot;
    widget_class->measure = lc_rate_chart_measure;
    gtk_widget_class_set_css_name(widget_class, "lc-rate-chart");
    gtk_widget_class_set_accessible_role(widget_class, GTK_ACCESSIBLE_ROLE_IMG);
}

static void lc_rate_chart_init(LcRateChart *self)
{
    self->scale = 5;
}

GtkWidget *lc_rate_chart_new(void)
{
    return g_object_new(LC_TYPE_RATE_CHART, NULL);
}

void lc_rate_chart_set_counts(LcRateChart *self, const gint64 counts[STATS_MINUTES])
{
    gint64 max = 0;
    char desc[128];

    g_return_if_fail(LC_IS_RATE_CHART(self));
    if (memcmp(self->counts, counts, sizeof self->counts) == 0)
        return;
    memcpy(self->counts, counts, sizeof self->counts);
    for (int i = 0; i < STATS_MINUTES; i++)
        if (counts[i] > max)
            max = counts[i];
    self->scale = nice_scale(max);
    g_snprintf(desc, sizeof desc,
               "Certificates per minute, last 60 minutes: highest %" G_GINT64_FORMAT
               ", this minute %" G_GINT64_FORMAT,
               max, counts[STATS_MINUTES - 1]);
    gtk_accessible_update_property(GTK_ACCESSIBLE(self), GTK_ACCESSIBLE_PROPERTY_LABEL, desc, -1);
    gtk_widget_queue_draw(GTK_WIDGET(self));
}

gint64 lc_rate_chart_get_max(LcRateChart *self)
{
    gint64 max = 0;

    g_return_val_if_fail(LC_IS_RATE_CHART(self), 0);
    for (int i = 0; i < STATS_MINUTES; i++)
        if (self->counts[i] > max)
            max = self->counts[i];
    return max;
}

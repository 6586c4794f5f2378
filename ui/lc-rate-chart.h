/*
 * lc-rate-chart.h — certificates per minute over the last hour, one bar per
 * minute, drawn natively (GtkSnapshot).  The rightmost bar is the current,
 * still running minute: it is drawn in full strength with an outline, so it
 * can be told apart even when it is zero.
 */
#ifndef LC_RATE_CHART_H
#define LC_RATE_CHART_H

#include <gtk/gtk.h>

#include "stats.h"

G_BEGIN_DECLS

#define LC_TYPE_RATE_CHART (lc_rate_chart_get_type())
G_DECLARE_FINAL_TYPE(LcRateChart, lc_rate_chart, LC, RATE_CHART, GtkWidget)

GtkWidget *lc_rate_chart_new(void);

/* Sets the STATS_MINUTES counts, oldest first, the current minute last. */
void lc_rate_chart_set_counts(LcRateChart *self, const gint64 counts[STATS_MINUTES]);

/* The highest count shown (for tests). */
gint64 lc_rate_chart_get_max(LcRateChart *self);

G_END_DECLS

#endif

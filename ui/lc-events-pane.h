/*
 * lc-events-pane.h — the latest 50 refusals and faults: time, line, device,
 * kind and the reason in words (with the row's own detail beneath), newest
 * first, for all lines or one line chosen in a drop-down.  Issuances are the
 * cards' business and are not listed.
 */
#ifndef LC_EVENTS_PANE_H
#define LC_EVENTS_PANE_H

#include <gtk/gtk.h>

#include "lc-model.h"

G_BEGIN_DECLS

#define LC_TYPE_EVENTS_PANE (lc_events_pane_get_type())
G_DECLARE_FINAL_TYPE(LcEventsPane, lc_events_pane, LC, EVENTS_PANE, GtkBox)

GtkWidget *lc_events_pane_new(void);

/* Shows model's events and offers its lines in the filter ("All lines" first). */
void lc_events_pane_set_model(LcEventsPane *self, LcModel *model);

/* Keeps the counter beside the title current. */
void lc_events_pane_update(LcEventsPane *self);

/* The line filter (item 0: all lines, item i: the i-th configured line). */
GtkDropDown *lc_events_pane_get_filter(LcEventsPane *self);

G_END_DECLS

#endif

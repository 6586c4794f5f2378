/*
 * lc-window.h — the operator screen: the status header, a full-width
 * banner while linecertd is not reachable, one card per configured line in
 * a grid that fills the screen, and the events pane.
 */
#ifndef LC_WINDOW_H
#define LC_WINDOW_H

#include <gtk/gtk.h>

#include "lc-events-pane.h"
#include "lc-line-card.h"
#include "lc-model.h"

G_BEGIN_DECLS

#define LC_TYPE_WINDOW (lc_window_get_type())
G_DECLARE_FINAL_TYPE(LcWindow, lc_window, LC, WINDOW, GtkApplicationWindow)

/* A window showing model (a reference is taken) for app (already registered). */
LcWindow *lc_window_new(GtkApplication *app, LcModel *model);

LcModel *lc_window_get_model(LcWindow *self);

/* The card of the index-th configured line, or NULL. */
LcLineCard *lc_window_get_card(LcWindow *self, guint index);

/* The "linecertd not reachable" banner (visible only then). */
GtkWidget *lc_window_get_banner(LcWindow *self);

LcEventsPane *lc_window_get_events_pane(LcWindow *self);

G_END_DECLS

#endif

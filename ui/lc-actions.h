/*
 * lc-actions.h — the application's actions: app.quit (Ctrl+Q) and
 * app.fullscreen (F11, and the header's "Full screen" button).  There is
 * deliberately no action that changes the station.
 */
#ifndef LC_ACTIONS_H
#define LC_ACTIONS_H

#include <gtk/gtk.h>

G_BEGIN_DECLS

/* Adds the actions and their keyboard shortcuts to app. */
void lc_actions_install(GtkApplication *app);

G_END_DECLS

#endif

/*
 * lc-application.h — linecert-ui, the operator application.
 *
 *   linecert-ui --config FILE [--fullscreen]
 *
 * Reads the station configuration, then shows one window (LcWindow) fed by
 * one LcModel.  Read-only by construction: it opens the audit store
 * read-only and sends linecertd nothing but "status".
 */
#ifndef LC_APPLICATION_H
#define LC_APPLICATION_H

#include <gtk/gtk.h>

#include "lc-window.h"

G_BEGIN_DECLS

#define LC_TYPE_APPLICATION (lc_application_get_type())
G_DECLARE_FINAL_TYPE(LcApplication, lc_application, LC, APPLICATION, GtkApplication)

LcApplication *lc_application_new(void);

/*
 * Loads config_path and opens the operator window on it (fullscreen if
 * asked), and starts refreshing.  The application must be registered (its
 * startup has run).  Returns the window (owned by the application), or NULL
 * with error set if the configuration cannot be read.
 */
LcWindow *lc_application_open(LcApplication *self, const char *config_path, gboolean fullscreen,
                              GError **error);

/* The window opened by lc_application_open(), or NULL. */
LcWindow *lc_application_get_window(LcApplication *self);

G_END_DECLS

#endif

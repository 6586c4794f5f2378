/*
 * lc-actions.c — app.quit and app.fullscreen (see lc-actions.h).
 */
#include "lc-actions.h"

static void on_quit(GSimpleAction *action, GVariant *param, gpointer data)
{
    (void)action;
    (void)param;
    g_application_quit(G_APPLICATION(data));
}

static void on_fullscreen(GSimpleAction *action, GVariant *param, gpointer data)
{
    GtkWindow *win = gtk_application_get_active_window(GTK_APPLICATION(data));

    (void)action;
    (void)param;
    if (win == NULL)
        return;
    if (gtk_window_is_fullscreen(win))
        gtk_window_unfullscreen(win);
    else
        gtk_window_fullscreen(win);
}

void lc_actions_install(GtkApplication *app)
{
    static const GActionEntry entries[] = {
        {.name = "quit", .activate = on_quit},
        {.name = "fullscreen", .activate = on_fullscreen},
    };
    static const char *const quit_accels[] = {"<Control>q", NULL};
    static const char *const fullscreen_accels[] = {"F11", NULL};

    g_action_map_add_action_entries(G_ACTION_MAP(app), entries, G_N_ELEMENTS(entries), app);
    gtk_application_set_accels_for_action(app, "app.quit", quit_accels);
    gtk_application_set_accels_for_action(app, "app.fullscreen", fullscreen_accels);
}

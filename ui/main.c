/*
 * main.c — linecert-ui: the GTK4 operator screen of a linecert station.
 *
 *   linecert-ui --config FILE [--fullscreen]
 *
 * Everything is in LcApplication (lc-application.c).
 */
#include "lc-application.h"

int main(int argc, char **argv)
{
    g_autoptr(LcApplication) app = lc_application_new();

    return g_application_run(G_APPLICATION(app), argc, argv);
}

/*
 * lc-application.c — the GtkApplication (see lc-application.h).
 *
 * The configuration is read in handle-local-options, before anything is
 * shown, so that a wrong --config is one line on stderr and exit status 2,
 * as with the station's own commands.  NON_UNIQUE: a kiosk may run one
 * window per station configuration, and nothing here needs D-Bus.
 */
#include "lc-application.h"

#include "lc-actions.h"

struct _LcApplication {
    GtkApplication parent_instance;

    char *config_path; /* --config */
    gboolean fullscreen;
    LcModel *model;
    LcWindow *window; /* owned by GtkApplication's window list */
};

G_DEFINE_FINAL_TYPE(LcApplication, lc_application, GTK_TYPE_APPLICATION)

static const GOptionEntry options[] = {
    {"config", 'c', 0, G_OPTION_ARG_FILENAME, NULL, "Station configuration file", "FILE"},
    {"fullscreen", 'f', 0, G_OPTION_ARG_NONE, NULL, "Start full screen (kiosk)", NULL},
    {"version", 0, 0, G_OPTION_ARG_NONE, NULL, "Print the version and exit", NULL},
    {NULL, 0, 0, 0, NULL, NULL, NULL},
};

static int lc_application_handle_local_options(GApplication *app, GVariantDict *opts)
{
    LcApplication *self = LC_APPLICATION(app);
    g_autofree char *config = NULL;
    g_autoptr(LcConfig) probe = NULL;
    g_autoptr(GError) error = NULL;

    if (g_variant_dict_contains(opts, "version")) {
        g_print("linecert-ui %s\n", LINECERT_VERSION);
        return 0;
    }
    if (!g_variant_dict_lookup(opts, "config", "^ay", &config)) {
        g_printerr("usage: linecert-ui --config FILE [--fullscreen]\n");
        return 2;
    }
    /* Check it now: a bad file is an error message, not an empty window. */
    if ((probe = lc_config_load(config, &error)) == NULL) {
        g_printerr("linecert-ui: %s\n", error->message);
        return 2;
    }
    self->config_path = g_steal_pointer(&config);
    self->fullscreen = g_variant_dict_contains(opts, "fullscreen");
    return -1;
}

static void lc_application_startup(GApplication *app)
{
    g_autoptr(GtkCssProvider) css = gtk_css_provider_new();

    G_APPLICATION_CLASS(lc_application_parent_class)->startup(app);
    gtk_css_provider_load_from_resource(css, "/org/linecert/ui/style.css");
    gtk_style_context_add_provider_for_display(gdk_display_get_default(), GTK_STYLE_PROVIDER(css),
                                               GTK_STYLE_PROVIDER_PRIORITY_APPLICATION);
    lc_actions_install(GTK_APPLICATION(app));
}

static void lc_application_activate(GApplication *app)
{
    LcApplication *self = LC_APPLICATION(app);
    g_autoptr(GError) error = NULL;

    if (self->window != NULL) {
        gtk_window_present(GTK_WINDOW(self->window));
        return;
    }
    if (self->config_path == NULL)
        return;
    if (lc_application_open(self, self->config_path, self->fullscreen, &error) == NULL) {
        g_printerr("linecert-ui: %s\n", error->message);
        g_application_quit(app);
    }
}

static void lc_application_shutdown(GApplication *app)
{
    LcApplication *self = LC_APPLICATION(app);

    if (self->model != NULL)
        lc_model_stop(self->model);
    G_APPLICATION_CLASS(lc_application_parent_class)->shutdown(app);
}

static void lc_application_dispose(GObject *object)
{
    LcApplication *self = LC_APPLICATION(object);

    if (self->model != NULL)
        lc_model_stop(self->model);
    g_clear_object(&self->model);
    self->window = NULL;
    G_OBJECT_CLASS(lc_application_parent_class)->dispose(object);
}

static void lc_application_finalize(GObject *object)
{
    LcApplication *self = LC_APPLICATION(object);

    g_free(self->config_path);
    G_OBJECT_CLASS(lc_application_parent_class)->finalize(object);
}

static void lc_application_class_init(LcApplicationClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);
    GApplicationClass *app_class = G_APPLICATION_CLASS(klass);

    object_class->dispose = lc_application_dispose;
    object_class->finalize = lc_application_finalize;
    app_class->handle_local_options = lc_application_handle_local_options;
    app_class->startup = lc_application_startup;
    app_class->activate = lc_application_activate;
    app_class->shutdown = lc_application_shutdown;
}

static void lc_application_init(LcApplication *self)
{
    g_application_add_main_option_entries(G_APPLICATION(self), options);
    g_application_set_option_context_summary(
        G_APPLICATION(self), "The linecert operator screen: per-line state, counts and faults "
                             "(read-only).");
}

LcApplication *lc_application_new(void)
{
    return g_object_new(LC_TYPE_APPLICATION, "application-id", "org.linecert.Ui", "flags",
                        G_APPLICATION_NON_UNIQUE, NULL);
}

static void on_window_destroy(GtkWidget *widget, gpointer data)
{
    LcApplication *self = data;

    (void)widget;
    if (self->model != NULL)
        lc_model_stop(self->model);
    self->window = NULL;
}

LcWindow *lc_application_open(LcApplication *self, const char *config_path, gboolean fullscreen,
                              GError **error)
{
    LcConfig *config;

    g_return_val_if_fail(LC_IS_APPLICATION(self), NULL);
    g_return_val_if_fail(self->window == NULL, NULL);
    if ((config = lc_config_load(config_path, error)) == NULL)
        return NULL;
    self->model = lc_model_new(config);
    self->window = lc_window_new(GTK_APPLICATION(self), self->model);
    g_signal_connect(self->window, "destroy", G_CALLBACK(on_window_destroy), self);
    if (fullscreen)
        gtk_window_fullscreen(GTK_WINDOW(self->window));
    gtk_window_present(GTK_WINDOW(self->window));
    lc_model_start(self->model);
    return self->window;
}

LcWindow *lc_application_get_window(LcApplication *self)
{
    g_return_val_if_fail(LC_IS_APPLICATION(self), NULL);
    return self->window;
}

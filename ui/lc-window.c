/*
 * lc-window.c — the operator screen (see lc-window.h).
 *
 * The cards are laid out once, from the number of lines: up to 4 lines side
 * by side (tall cards read best on 16:10 and 16:9 panels), more lines in as
 * few rows as fit 4 columns, with a scrollbar only past 3 rows.  Everything
 * is redrawn from the model on its "changed" signal, at most a few times a
 * second.
 */
#include "lc-window.h"

#include "lc-format.h"
#include "lc-status-header.h"

struct _LcWindow {
    GtkApplicationWindow parent_instance;

    LcStatusHeader *header;
    GtkWidget *banner;
    GtkLabel *banner_label;
    GtkLabel *banner_detail;
    GtkGrid *cards;
    LcEventsPane *events;

    LcModel *model;
    GPtrArray *card_list; /* LcLineCard *, not owned (children of cards) */
};

G_DEFINE_FINAL_TYPE(LcWindow, lc_window, GTK_TYPE_APPLICATION_WINDOW)

static void lc_window_dispose(GObject *object)
{
    LcWindow *self = LC_WINDOW(object);

    if (self->model != NULL)
        g_signal_handlers_disconnect_by_data(self->model, self);
    g_clear_object(&self->model);
    g_clear_pointer(&self->card_list, g_ptr_array_unref);
    gtk_widget_dispose_template(GTK_WIDGET(self), LC_TYPE_WINDOW);
    G_OBJECT_CLASS(lc_window_parent_class)->dispose(object);
}

static void lc_window_class_init(LcWindowClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);
    GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);

    object_class->dispose = lc_window_dispose;
    g_type_ensure(LC_TYPE_STATUS_HEADER);
    g_type_ensure(LC_TYPE_EVENTS_PANE);
    gtk_widget_class_set_template_from_resource(widget_class, "/org/linecert/ui/lc-window.ui");
    gtk_widget_class_bind_template_child(widget_class, LcWindow, header);
    gtk_widget_class_bind_template_child(widget_class, LcWindow, banner);
    gtk_widget_class_bind_template_child(widget_class, LcWindow, banner_label);
    gtk_widget_class_bind_template_child(widget_class, LcWindow, banner_detail);
    gtk_widget_class_bind_template_child(widget_class, LcWindow, cards);
    gtk_widget_class_bind_template_child(widget_class, LcWindow, events);
}

static void lc_window_init(LcWindow *self)
{
    gtk_widget_init_template(GTK_WIDGET(self));
    self->card_list = g_ptr_array_new();
}

static void update_banner(LcWindow *self)
{
    const LcDaemonInfo *d = lc_model_get_daemon(self->model);
    g_autofree char *text = NULL, *at = NULL;

    /* Not before the first answer or failure: no banner flash at start. */
    if (d->reachable || lc_model_get_status_rounds(self->model) == 0) {
        gtk_widget_set_visible(self->banner, FALSE);
        return;
    }
    if (d->ever) {
        at = lc_format_clock(d->last_ok_ms);
        text = g_strdup_printf("linecertd not reachable — cards show the last known numbers as "
                               "of %s",
                               at);
    } else {
        text = g_strdup("linecertd not reachable — line states unknown; counts are from the "
                        "audit log");
    }
    gtk_label_set_text(self->banner_label, text);
    gtk_label_set_text(self->banner_detail, d->error);
    gtk_widget_set_visible(self->banner, TRUE);
}

static void on_model_changed(LcModel *model, gpointer data)
{
    LcWindow *self = data;
    const LcDaemonInfo *d = lc_model_get_daemon(model);
    gint64 now = lc_model_get_now_ms(model);

    lc_status_header_update(self->header, model);
    update_banner(self);
    for (guint i = 0; i < self->card_list->len; i++)
        lc_line_card_update(g_ptr_array_index(self->card_list, i), lc_model_get_line(model, i), d,
                            now);
    lc_events_pane_update(self->events);
}

/* Columns for n cards: all in one row up to 4, then rows of at most 4. */
static guint columns_for(guint n)
{
    guint rows;

    if (n <= 4)
        return n > 0 ? n : 1;
    rows = (n + 3) / 4;
    return (n + rows - 1) / rows;
}

LcWindow *lc_window_new(GtkApplication *app, LcModel *model)
{
    LcWindow *self;
    guint n, cols;

    g_return_val_if_fail(GTK_IS_APPLICATION(app), NULL);
    g_return_val_if_fail(LC_IS_MODEL(model), NULL);
    self = g_object_new(LC_TYPE_WINDOW, "application", app, NULL);
    self->model = g_object_ref(model);
    n = lc_model_get_n_lines(model);
    cols = columns_for(n);
    for (guint i = 0; i < n; i++) {
        GtkWidget *card = lc_line_card_new();
        gtk_grid_attach(self->cards, card, (int)(i % cols), (int)(i / cols), 1, 1);
        g_ptr_array_add(self->card_list, card);
    }
    lc_events_pane_set_model(self->events, model);
    g_signal_connect(model, "changed", G_CALLBACK(on_model_changed), self);
    on_model_changed(model, self);
    return self;
}

LcModel *lc_window_get_model(LcWindow *self)
{
    g_return_val_if_fail(LC_IS_WINDOW(self), NULL);
    return self->model;
}

LcLineCard *lc_window_get_card(LcWindow *self, guint index)
{
    g_return_val_if_fail(LC_IS_WINDOW(self), NULL);
    return index < self->card_list->len ? g_ptr_array_index(self->card_list, index) : NULL;
}

GtkWidget *lc_window_get_banner(LcWindow *self)
{
    g_return_val_if_fail(LC_IS_WINDOW(self), NULL);
    return self->banner;
}

LcEventsPane *lc_window_get_events_pane(LcWindow *self)
{
    g_return_val_if_fail(LC_IS_WINDOW(self), NULL);
    return self->events;
}

/*
 * lc-events-pane.c — the refusals and faults list (see lc-events-pane.h).
 *
 * The rows are LcEvent objects in the model's GListStore, shown by a
 * GtkColumnView whose cells are bound to the event's properties in
 * lc-events-pane.ui.  Nothing can be selected or activated: the list is for
 * reading.  Choosing a line in the filter asks the model for that line's own
 * latest 50 (from the store), not a subset of the 50 already shown.
 */
#include "lc-events-pane.h"

#include "lc-event.h"

struct _LcEventsPane {
    GtkBox parent_instance;

    GtkLabel *count_label;
    GtkDropDown *line_filter;
    GtkStack *stack;
    GtkColumnView *view;

    LcModel *model;
};

G_DEFINE_FINAL_TYPE(LcEventsPane, lc_events_pane, GTK_TYPE_BOX)

static void lc_events_pane_dispose(GObject *object)
{
    LcEventsPane *self = LC_EVENTS_PANE(object);

    if (self->model != NULL)
        g_signal_handlers_disconnect_by_data(lc_model_get_events(self->model), self);
    g_clear_object(&self->model);
    gtk_widget_dispose_template(GTK_WIDGET(self), LC_TYPE_EVENTS_PANE);
    G_OBJECT_CLASS(lc_events_pane_parent_class)->dispose(object);
}

static void lc_events_pane_class_init(LcEventsPaneClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);
    GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);

    object_class->dispose = lc_events_pane_dispose;
    g_type_ensure(LC_TYPE_EVENT); /* named in the list item templates */
    gtk_widget_class_set_template_from_resource(widget_class, "/org/linecert/ui/lc-events-pane.ui");
    gtk_widget_class_bind_template_child(widget_class, LcEventsPane, count_label);
    gtk_widget_class_bind_template_child(widget_class, LcEventsPane, line_filter);
    gtk_widget_class_bind_template_child(widget_class, LcEventsPane, stack);
    gtk_widget_class_bind_template_child(widget_class, LcEventsPane, view);
    gtk_widget_class_set_css_name(widget_class, "lc-events-pane");
}

static void lc_events_pane_init(LcEventsPane *self)
{
    gtk_widget_init_template(GTK_WIDGET(self));
}

GtkWidget *lc_events_pane_new(void)
{
    return g_object_new(LC_TYPE_EVENTS_PANE, NULL);
}

void lc_events_pane_update(LcEventsPane *self)
{
    guint n;
    g_autofree char *count = NULL;

    g_return_if_fail(LC_IS_EVENTS_PANE(self));
    if (self->model == NULL)
        return;
    n = g_list_model_get_n_items(lc_model_get_events(self->model));
    gtk_stack_set_visible_child_name(self->stack, n > 0 ? "list" : "empty");
    if (n >= STATS_MAX_EVENTS)
        count = g_strdup_printf("the latest %u, newest first", n);
    else if (n > 1)
        count = g_strdup_printf("%u events, newest first", n);
    else if (n == 1)
        count = g_strdup("1 event");
    else
        count = g_strdup("");
    gtk_label_set_text(self->count_label, count);
}

static void on_items_changed(GListModel *list, guint pos, guint removed, guint added, gpointer data)
{
    (void)list;
    (void)pos;
    (void)removed;
    (void)added;
    lc_events_pane_update(LC_EVENTS_PANE(data));
}

static void on_filter_selected(GtkDropDown *dropdown, GParamSpec *pspec, gpointer data)
{
    LcEventsPane *self = data;
    guint sel = gtk_drop_down_get_selected(dropdown);
    const LcConfig *config;

    (void)pspec;
    if (self->model == NULL)
        return;
    config = lc_model_get_config(self->model);
    if (sel == 0 || sel == GTK_INVALID_LIST_POSITION || sel > config->lines->len) {
        lc_model_set_event_line(self->model, NULL);
    } else {
        const LcLineConfig *l = g_ptr_array_index(config->lines, sel - 1);
        lc_model_set_event_line(self->model, l->id);
    }
}

void lc_events_pane_set_model(LcEventsPane *self, LcModel *model)
{
    g_autoptr(GtkStringList) names = gtk_string_list_new(NULL);
    g_autoptr(GtkNoSelection) selection = NULL;
    const LcConfig *config;

    g_return_if_fail(LC_IS_EVENTS_PANE(self));
    g_return_if_fail(self->model == NULL);
    self->model = g_object_ref(model);
    config = lc_model_get_config(model);
    gtk_string_list_append(names, "All lines");
    for (guint i = 0; i < config->lines->len; i++)
        gtk_string_list_append(names,
                               ((const LcLineConfig *)g_ptr_array_index(config->lines, i))->name);
    gtk_drop_down_set_model(self->line_filter, G_LIST_MODEL(names));
    gtk_drop_down_set_selected(self->line_filter, 0);
    g_signal_connect(self->line_filter, "notify::selected", G_CALLBACK(on_filter_selected), self);

    selection = gtk_no_selection_new(g_object_ref(lc_model_get_events(model)));
    gtk_column_view_set_model(self->view, GTK_SELECTION_MODEL(selection));
    g_signal_connect(lc_model_get_events(model), "items-changed", G_CALLBACK(on_items_changed),
                     self);
    lc_events_pane_update(self);
}

GtkDropDown *lc_events_pane_get_filter(LcEventsPane *self)
{
    g_return_val_if_fail(LC_IS_EVENTS_PANE(self), NULL);
    return self->line_filter;
}

/*
 * lc-event.h — one row of the events pane: a refusal or a fault, as the
 * operator reads it (time, line name, device, kind, reason in words).
 *
 * An immutable GObject so that the pane's list items can bind to its
 * properties (GtkBuilderListItemFactory in lc-events-pane.ui).
 */
#ifndef LC_EVENT_H
#define LC_EVENT_H

#include <glib-object.h>

#include "stats.h"

G_BEGIN_DECLS

#define LC_TYPE_EVENT (lc_event_get_type())
G_DECLARE_FINAL_TYPE(LcEvent, lc_event, LC, EVENT, GObject)

/*
 * A new event from an audit row.  line_name is the line's display name (NULL:
 * the row's line id, or "Station" for a station-wide row); now_ms decides
 * whether the time shows the date too.  Returns a new reference.
 */
LcEvent *lc_event_new(const stats_event_t *row, const char *line_name, gint64 now_ms);

/* The audit row's sequence number. */
gint64 lc_event_get_seq(LcEvent *self);

/* Displayed texts; owned by the event. */
const char *lc_event_get_time(LcEvent *self);
const char *lc_event_get_line(LcEvent *self);
const char *lc_event_get_device(LcEvent *self);
const char *lc_event_get_kind(LcEvent *self);
const char *lc_event_get_reason(LcEvent *self);
const char *lc_event_get_detail(LcEvent *self);

G_END_DECLS

#endif

/*
 * lc-line-card.h — one production line on the operator screen.
 *
 * Top to bottom: the line's name; its state as a word (the largest text)
 * with a coloured block and a glyph beside it, and for a fault the reason in
 * plain words and what to check; certificates this shift, today and per
 * minute; the last hour per minute; the last device with its result and age;
 * refusals and faults this shift.  When linecertd is not reachable the card
 * greys out, says so, and keeps the last numbers it had.
 */
#ifndef LC_LINE_CARD_H
#define LC_LINE_CARD_H

#include <gtk/gtk.h>

#include "lc-model.h"

G_BEGIN_DECLS

#define LC_TYPE_LINE_CARD (lc_line_card_get_type())
G_DECLARE_FINAL_TYPE(LcLineCard, lc_line_card, LC, LINE_CARD, GtkBox)

GtkWidget *lc_line_card_new(void);

/* Shows line as of now_ms; daemon says whether its live state is current. */
void lc_line_card_update(LcLineCard *self, const LcLineInfo *line, const LcDaemonInfo *daemon,
                         gint64 now_ms);

/* The state word shown ("ISSUING", "FAULT", ...), for tests. */
const char *lc_line_card_get_state_word(LcLineCard *self);

G_END_DECLS

#endif

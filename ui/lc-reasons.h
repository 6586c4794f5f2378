/*
 * lc-reasons.h — reason codes in plain words, for the operator.
 *
 * The station writes a stable reason code into every refusal and fault
 * ("cn-mismatch", "jig-timeout": docs/policy.md).  The operator reads the
 * sentence.  The table is a copy of hsm/policy.c's (the UI links only db/);
 * tests/test_ui.c checks that the two agree.
 */
#ifndef LC_REASONS_H
#define LC_REASONS_H

#include <glib.h>

G_BEGIN_DECLS

/* The sentence for a reason code, or NULL if the code is unknown (or NULL/""). */
const char *lc_reason_text(const char *code);

/*
 * What to check, for the faults whose sentence does not already say it
 * ("Check the jig: its power and cable."), or NULL.
 */
const char *lc_reason_hint(const char *code);

/* Every code in the table, NULL-terminated (for tests). */
const char *const *lc_reason_codes(void);

G_END_DECLS

#endif

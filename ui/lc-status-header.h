/*
 * lc-status-header.h — the top of the operator screen: the station (is
 * linecertd running, and in what state), the signer and its HSM, the audit
 * store (size, free disk, head of the hash chain), the shift and the clock.
 */
#ifndef LC_STATUS_HEADER_H
#define LC_STATUS_HEADER_H

#include <gtk/gtk.h>

#include "lc-model.h"

G_BEGIN_DECLS

#define LC_TYPE_STATUS_HEADER (lc_status_header_get_type())
G_DECLARE_FINAL_TYPE(LcStatusHeader, lc_status_header, LC, STATUS_HEADER, GtkBox)

GtkWidget *lc_status_header_new(void);

/* Shows what model holds now. */
void lc_status_header_update(LcStatusHeader *self, LcModel *model);

G_END_DECLS

#endif

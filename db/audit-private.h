/*
 * audit-private.h — for the other files of db/ only: the store's SQLite
 * connection, so that query modules (lifecycle.c) share its handle, locking
 * and busy timeout instead of opening a second connection.  (Also used by the
 * benchmark generator tests/bench/audit-log-gen.c, to give its bulk load a
 * large page cache; nothing of the station's uses it outside db/.)
 */
#ifndef LINECERT_AUDIT_PRIVATE_H
#define LINECERT_AUDIT_PRIVATE_H

#include "audit.h"

#include <sqlite3.h>

/* The connection behind a store handle (NULL for NULL). */
sqlite3 *audit_sqlite(audit_t *a);

#endif

/*
 * lc-format.h — numbers, sizes, ages and times as the operator reads them.
 */
#ifndef LC_FORMAT_H
#define LC_FORMAT_H

#include <glib.h>

G_BEGIN_DECLS

/* 1980 -> "1,980".  Returns a new string. */
char *lc_format_count(gint64 n);

/* Bytes in decimal units as `df -H`: "950 kB", "1.2 GB", "48 GB".  A new string. */
char *lc_format_bytes(gint64 bytes);

/* An age in seconds: "2 s", "5 min", "3 h", "2 d".  A new string. */
char *lc_format_age(double seconds);

/* UTC ms as local "HH:MM:SS".  A new string. */
char *lc_format_clock(gint64 ms);

G_END_DECLS

#endif

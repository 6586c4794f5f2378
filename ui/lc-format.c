/*
 * lc-format.c — see lc-format.h.
 */
#include "lc-format.h"

#include <string.h>

char *lc_format_count(gint64 n)
{
    g_autofree char *digits = g_strdup_printf("%" G_GINT64_FORMAT, n < 0 ? -n : n);
    GString *out = g_string_new(n < 0 ? "-" : "");
    gsize len = strlen(digits);

    for (gsize i = 0; i < len; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            g_string_append_c(out, ',');
        g_string_append_c(out, digits[i]);
    }
    return g_string_free(out, FALSE);
}

char *lc_format_bytes(gint64 bytes)
{
    static const char *const units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
    double v = (double)bytes;
    gsize u = 0;

    if (bytes < 0)
        return g_strdup("?");
    while (v >= 1000 && u + 1 < G_N_ELEMENTS(units)) {
        v /= 1000;
        u++;
    }
    if (u == 0)
        return g_strdup_printf("%" G_GINT64_FORMAT " B", bytes);
    return v < 10 ? g_strdup_printf("%.1f %s", v, units[u])
                  : g_strdup_printf("%.0f %s", v, units[u]);
}

char *lc_format_age(double s)
{
    if (s < 0)
        s = 0;
    if (s < 60)
        return g_strdup_printf("%d s", (int)s);
    if (s < 3600)
        return g_strdup_printf("%d min", (int)(s / 60));
    if (s < 86400)
        return g_strdup_printf("%d h", (int)(s / 3600));
    return g_strdup_printf("%d d", (int)(s / 86400));
}

char *lc_format_clock(gint64 ms)
{
    g_autoptr(GDateTime) t = g_date_time_new_from_unix_local(ms / 1000);

    return t != NULL ? g_date_time_format(t, "%H:%M:%S") : g_strdup("--:--:--");
}

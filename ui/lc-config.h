/*
 * lc-config.h — the part of the station configuration the operator UI needs.
 *
 * The UI reads the same INI file as the station (docs/config.md) but links
 * nothing of station/ (ARCHITECTURE.md: ui -> db only), so it reads the few
 * keys it needs itself with GLib's GKeyFile: [station] audit_db,
 * control_socket and shifts, and the id and name of every [line.<id>].  It
 * never checks the keys the station uses for issuance; the station does.
 */
#ifndef LC_CONFIG_H
#define LC_CONFIG_H

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
    char *id;        /* [line.<id>] */
    char *name;      /* `name`, default "Line <id>" */
    gboolean driven; /* has `plc` and `jig`: the daemon drives it */
} LcLineConfig;

typedef struct {
    char *path;           /* the file, as given */
    char *dir;            /* its folder, absolute: base of relative paths */
    char *audit_db;       /* absolute */
    char *control_socket; /* absolute; default <dir>/linecertd.sock */
    char *shifts;         /* "06:00,14:00,22:00" (validated) */
    GPtrArray *lines;     /* of LcLineConfig *, in file order */
} LcConfig;

/*
 * Reads path.  Returns a new LcConfig (free with lc_config_free()), or NULL
 * with error set (G_KEY_FILE_ERROR or G_FILE_ERROR) naming the file and key.
 */
LcConfig *lc_config_load(const char *path, GError **error);

/* Frees a configuration; NULL is a no-op. */
void lc_config_free(LcConfig *config);

/* The line with this id, or NULL. */
const LcLineConfig *lc_config_find_line(const LcConfig *config, const char *id);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(LcConfig, lc_config_free)

G_END_DECLS

#endif

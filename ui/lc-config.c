/*
 * lc-config.c — reads the keys the UI needs from the station's INI file
 * (see lc-config.h and docs/config.md).
 *
 * GKeyFile's syntax is a little narrower than the station's (libinih): it
 * knows no `;` comments, no `key: value` and no comment after a value.  The
 * text is therefore normalised first, line by line, to what libinih would
 * have read, so that every file the station accepts reads the same here.
 */
#include "lc-config.h"

#include <string.h>

#include "stats.h"

#define DEFAULT_SHIFTS "06:00,14:00,22:00"

static void line_config_free(gpointer p)
{
    LcLineConfig *l = p;

    g_free(l->id);
    g_free(l->name);
    g_free(l);
}

void lc_config_free(LcConfig *config)
{
    if (config == NULL)
        return;
    g_free(config->path);
    g_free(config->dir);
    g_free(config->audit_db);
    g_free(config->control_socket);
    g_free(config->shifts);
    g_clear_pointer(&config->lines, g_ptr_array_unref);
    g_free(config);
}

const LcLineConfig *lc_config_find_line(const LcConfig *config, const char *id)
{
    for (guint i = 0; config != NULL && id != NULL && i < config->lines->len; i++) {
        const LcLineConfig *l = g_ptr_array_index(config->lines, i);
        if (g_strcmp0(l->id, id) == 0)
            return l;
    }
    return NULL;
}

/* The station's INI dialect, rewritten as GKeyFile text (see the file comment). */
static char *normalise(const char *text)
{
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    GString *out = g_string_new(NULL);

    for (char **l = lines; *l != NULL; l++) {
        char *s = g_strstrip(*l); /* also drops a trailing \r */
        char *eq, *colon, *semi;

        if (*s == ';' || *s == '#' || *s == '\0') {
            g_string_append_c(out, '\n'); /* keep line numbers for messages */
            continue;
        }
        /* libinih: a ';' after whitespace starts a comment */
        for (semi = strchr(s, ';'); semi != NULL; semi = strchr(semi + 1, ';'))
            if (semi > s && (semi[-1] == ' ' || semi[-1] == '\t')) {
                *semi = '\0';
                g_strchomp(s);
                break;
            }
        eq = strchr(s, '=');
        colon = strchr(s, ':');
        if (*s != '[' && colon != NULL && (eq == NULL || colon < eq))
            *colon = '=';
        g_string_append(out, s);
        g_string_append_c(out, '\n');
    }
    return g_string_free(out, FALSE);
}

/* A raw (unescaped) value, whitespace-trimmed, or NULL if absent. */
static char *get_raw(GKeyFile *kf, const char *group, const char *key)
{
    char *v = g_key_file_get_value(kf, group, key, NULL);

    return v != NULL ? g_strstrip(v) : NULL;
}

/* A path relative to the configuration folder, made absolute. */
static char *resolve(const char *dir, const char *value)
{
    return g_path_is_absolute(value) ? g_strdup(value) : g_build_filename(dir, value, NULL);
}

LcConfig *lc_config_load(const char *path, GError **error)
{
    g_autoptr(LcConfig) config = g_new0(LcConfig, 1);
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autofree char *text = NULL, *norm = NULL, *dir = NULL, *audit_db = NULL, *sock = NULL;
    g_autofree char *shifts = NULL;
    g_auto(GStrv) groups = NULL;
    g_autoptr(GError) local = NULL;

    if (!g_file_get_contents(path, &text, NULL, &local)) {
        g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    norm = normalise(text);
    if (!g_key_file_load_from_data(kf, norm, (gsize)-1, G_KEY_FILE_NONE, &local)) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE, "%s: %s", path,
                    local->message);
        return NULL;
    }
    config->path = g_strdup(path);
    dir = g_path_get_dirname(path);
    config->dir = g_canonicalize_filename(dir, NULL);
    config->lines = g_ptr_array_new_with_free_func(line_config_free);

    audit_db = get_raw(kf, "station", "audit_db");
    if (audit_db == NULL || *audit_db == '\0') {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND,
                    "%s: [station]: missing required key audit_db", path);
        return NULL;
    }
    config->audit_db = resolve(config->dir, audit_db);
    sock = get_raw(kf, "station", "control_socket");
    config->control_socket = sock != NULL && *sock != '\0'
                                 ? resolve(config->dir, sock)
                                 : g_build_filename(config->dir, "linecertd.sock", NULL);
    shifts = get_raw(kf, "station", "shifts");
    config->shifts = g_strdup(shifts != NULL ? shifts : DEFAULT_SHIFTS);
    if (stats_day_bounds(config->shifts, 0, NULL, NULL) != 0) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "%s: [station] shifts: \"%s\" is not 1 to 8 times HH:MM separated by commas",
                    path, config->shifts);
        return NULL;
    }

    groups = g_key_file_get_groups(kf, NULL);
    for (char **g = groups; *g != NULL; g++) {
        LcLineConfig *l;
        g_autofree char *name = NULL, *plc = NULL, *jig = NULL;

        if (!g_str_has_prefix(*g, "line.") || (*g)[5] == '\0')
            continue;
        l = g_new0(LcLineConfig, 1);
        l->id = g_strdup(*g + 5);
        name = get_raw(kf, *g, "name");
        l->name =
            name != NULL && *name != '\0' ? g_strdup(name) : g_strdup_printf("Line %s", l->id);
        plc = get_raw(kf, *g, "plc");
        jig = get_raw(kf, *g, "jig");
        l->driven = plc != NULL && jig != NULL;
        g_ptr_array_add(config->lines, l);
    }
    if (config->lines->len == 0) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_GROUP_NOT_FOUND,
                    "%s: no [line.<id>] section", path);
        return NULL;
    }
    if (config->lines->len > STATS_MAX_LINES) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "%s: more than %d lines", path, STATS_MAX_LINES);
        return NULL;
    }
    return g_steal_pointer(&config);
}

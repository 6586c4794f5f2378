/*
 * config.h — the station configuration file (INI, docs/config.md).
 *
 * Parsed with libinih.  Every value is checked as it is read, so an error
 * names the file, the line and the key: "station.ini:12: [line.1] ca_key:
 * not a PKCS#11 URI".  Relative paths are resolved against the directory of
 * the configuration file, so a generated PKI folder works wherever it is.
 *
 * Loading also checks what an attacker would change first: the file itself
 * (owned by root or by whoever loads it, not writable by group or others),
 * the PIN file (no permissions for group or others), and the PKCS#11 module
 * (an absolute path whose canonical form is on an allow-list: the signer
 * loads it into the process that holds the PIN).
 */
#ifndef LINECERT_CONFIG_H
#define LINECERT_CONFIG_H

#include <stddef.h>

#define CONFIG_MAX_LINES 64

/* The system-wide PKCS#11 module allow-list (docs/config.md), read if it exists. */
#define CONFIG_PKCS11_ALLOW_FILE "/etc/linecert/pkcs11-modules.allow"
/* Environment variable naming another allow file instead (tests, special installs). */
#define CONFIG_PKCS11_ALLOW_ENV "LINECERT_PKCS11_ALLOW_FILE"

typedef struct lc_line_cfg {
    char *id;          /* the part after "line." */
    char *name;        /* for humans; defaults to "Line <id>" */
    char *ca_key;      /* RFC 7512 URI of the line CA private key */
    char *chain;       /* PEM: line CA, factory CA, root (absolute path) */
    int validity_days; /* leaf validity; default 3650 */
    char *subject_o;   /* optional subject O */
    char *subject_ou;  /* optional subject OU */
    /* daemon (linecertd) */
    char *plc_host; /* from plc = modbus-tcp://HOST:PORT; NULL: no PLC */
    int plc_port;
    int plc_unit;          /* Modbus unit id; default 1 */
    int plc_base;          /* holding-register base; default 0 */
    int poll_ms;           /* PLC poll period; default 20 */
    char *jig;             /* "exec:/path [args]" */
    int jig_timeout_ms;    /* default 5000 */
    char *regid_template;  /* registration_id: default "%s" (the PLC's serial) */
    int revoke_superseded; /* a re-issue also revokes the old certificate (superseded) */
} lc_line_cfg_t;

typedef struct lc_config {
    char *path;                /* the file as given */
    char *dir;                 /* its directory, absolute */
    char *audit_db;            /* absolute path */
    char *pkcs11_module;       /* the PKCS#11 module: canonical path, on the allow-list */
    char *pin_file;            /* absolute path; must not be readable by group/other */
    char *softhsm2_conf;       /* absolute path or NULL */
    char *signer;              /* linecert-signer program, or NULL for the default */
    int signer_threads;        /* signing threads in the signer; default 2 */
    int not_before_skew_s;     /* notBefore = now - skew; default 300 */
    char *control_socket;      /* daemon control socket; default <config dir>/linecertd.sock */
    char *shifts;              /* shift start times, "06:00,14:00,22:00" (UI) */
    char *crl_dir;             /* daemon publishes line-<id>.crl here; NULL = no publication */
    int crl_next_update_hours; /* CRL validity; default 168 (7 days) */
    int checkpoint_every;      /* the signer signs an audit checkpoint every N issuances; 1000 */
    char *operator_group;      /* control socket: may pause/resume; default linecert-operators */
    char *security_group;      /* control socket: may revoke; default linecert-security */
    lc_line_cfg_t lines[CONFIG_MAX_LINES];
    size_t nlines;
} lc_config_t;

/*
 * Reads and validates path.  Returns LC_OK with *out set (free with
 * config_free()), or LC_ERR_CONFIG with a one-line message in err.  The
 * PKCS#11 allow file is $LINECERT_PKCS11_ALLOW_FILE if set (it must then
 * exist), otherwise CONFIG_PKCS11_ALLOW_FILE if it exists.
 */
int config_load(const char *path, lc_config_t **out, char *err, size_t errlen);

/* config_free(NULL) is a no-op. */
void config_free(lc_config_t *cfg);

/* The line with this id, or NULL. */
const lc_line_cfg_t *config_line(const lc_config_t *cfg, const char *id);

#endif

/*
 * cli.h — what the `linecert` subcommand files share: exit codes (a
 * contract for scripts, docs/cli.md) and small helpers defined in cli.c.
 */
#ifndef LINECERT_CLI_H
#define LINECERT_CLI_H

#include "config.h"

#include <stddef.h>

enum {
    EXIT_ISSUED = 0,   /* success */
    EXIT_TAMPERED = 1, /* the audit log does not verify; dps-check: not provisioned */
    EXIT_USAGE = 2,    /* usage or configuration error */
    EXIT_REFUSED = 3,  /* refused by policy */
    EXIT_SIGNER = 4,   /* signer/HSM failure */
    EXIT_AUDIT = 5,    /* audit store failure */
    EXIT_DAEMON = 6,   /* linecertd not running, not answering, or not making sense */
};

/* Prints "linecert: <fmt with arg>" and a hint; returns EXIT_USAGE. */
int usage_error(const char *fmt, const char *arg);

/* Maps an LC_ERR_* code to an exit code. */
int exit_code(int err);

/* The acting Unix user ("alice", "root (sudo: alice)"). */
void actor_name(char *buf, size_t len);

/* Writes data to path: atomically for regular files, in place for devices/FIFOs.  0 or -1. */
int write_out(const char *path, const char *data, size_t len);

/* Loads --config; on error prints it and returns EXIT_USAGE, else 0. */
int load_config(const char *path, lc_config_t **cfg);

/* Subcommands in other files. */
int cmd_revoke(int argc, char **argv);
int cmd_crl(int argc, char **argv);
int cmd_verification_cert(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_bench(int argc, char **argv);

#endif

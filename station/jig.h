/*
 * jig.h — talking to the device in the programming jig (docs/jig.md).
 *
 * A backend fetches the device's CSR and installs the issued chain.  The
 * exec backend runs `PROGRAM [ARGS...] csr SERIAL` and `PROGRAM [ARGS...]
 * install SERIAL` (chain on stdin); everything the jig says is untrusted:
 * output is capped at 64 KiB and every call is bounded by jig_timeout_ms,
 * after which the program's whole process group is killed.
 */
#ifndef LINECERT_JIG_H
#define LINECERT_JIG_H

#include <stddef.h>

#define JIG_MAX_OUTPUT (64 * 1024)

typedef struct jig jig_t;

/*
 * Parses spec ("exec:/path/program [args...]") for the line.  Returns LC_OK
 * or LC_ERR_CONFIG.  Free with jig_free().
 */
int jig_new(const char *spec, const char *line_id, int timeout_ms, jig_t **out, char *err,
            size_t errlen);

/* NULL is a no-op. */
void jig_free(jig_t *j);

/*
 * Asks the jig for the device's CSR.  *csr is malloc'd (caller frees).
 * *ms is the time the jig took.  Returns LC_OK; LC_ERR_TIMEOUT (no answer
 * in time); LC_ERR_IO (could not run or exited non-zero); LC_ERR_PROTOCOL
 * (output empty or over 64 KiB) — each with a message.
 */
int jig_get_csr(jig_t *j, const char *serial, unsigned char **csr, size_t *len, double *ms,
                char *err, size_t errlen);

/* Hands the chain PEM to the jig.  Same returns as jig_get_csr(). */
int jig_install(jig_t *j, const char *serial, const char *chain, size_t len, double *ms, char *err,
                size_t errlen);

#endif

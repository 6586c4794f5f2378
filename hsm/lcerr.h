/*
 * lcerr.h — the one error vocabulary of linecert.
 *
 * Every function that can fail returns LC_OK (0) or a negative LC_ERR_* code
 * and, where the caller gave one, fills a short human message.  Library
 * errors (the OpenSSL error queue, errno, sqlite3_errmsg, libp11) are turned
 * into one of these codes at the call site, so that callers branch on a small
 * closed set and exit codes stay stable.
 *
 * It lives in hsm/ because the policy authority owns the refusal vocabulary;
 * it is built as its own tiny library (lcerr) that links nothing, so db/ can
 * use it without depending on any HSM code.
 */
#ifndef LINECERT_LCERR_H
#define LINECERT_LCERR_H

#include <stddef.h>

enum lc_err {
    LC_OK = 0,
    LC_ERR_USAGE = -1,      /* bad command line */
    LC_ERR_CONFIG = -2,     /* configuration file or a file it names is wrong */
    LC_ERR_NOMEM = -3,      /* allocation failed */
    LC_ERR_IO = -4,         /* read/write/exec failed (errno kept in the message) */
    LC_ERR_REFUSED = -5,    /* the request was refused by policy (see policy.h) */
    LC_ERR_SIGNER = -6,     /* the signer process failed or is gone */
    LC_ERR_HSM = -7,        /* the PKCS#11 token or key is not usable */
    LC_ERR_AUDIT = -8,      /* the audit store cannot be read or written */
    LC_ERR_PROTOCOL = -9,   /* malformed message between our own processes */
    LC_ERR_NOT_FOUND = -10, /* the named object does not exist */
    LC_ERR_EXISTS = -11,    /* the object exists and may not be replaced */
    LC_ERR_TAMPERED = -12,  /* the audit hash chain does not verify */
    LC_ERR_CRYPTO = -13,    /* an OpenSSL operation failed */
    LC_ERR_TIMEOUT = -14,   /* a peer did not answer in time */
    LC_ERR_INTERNAL = -15,  /* a broken invariant; a bug */
};

/* Returns a static, never-NULL English phrase for an lc_err code. */
const char *lc_strerror(int err);

/*
 * Formats a message into buf (NUL-terminated, truncated to len) if buf is
 * not NULL.  Returns err, so that call sites can write
 * `return lc_seterr(LC_ERR_IO, err, errlen, "open %s: %s", path, strerror(errno));`.
 */
int lc_seterr(int err, char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * The one hex encoder (it lives here because everything links lcerr): n
 * bytes into 2n digits, upper case if upper (serials, thumbprints, CSR hashes
 * as the audit log stores them) else lower case (the log's chain hashes), and
 * a NUL; out has room for 2n + 1.
 */
void lc_hex(const unsigned char *b, size_t n, int upper, char *out);

#endif

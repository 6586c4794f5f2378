/*
 * lcerr.c — text for the project error codes.
 */
#include "lcerr.h"

#include <stdarg.h>
#include <stdio.h>

const char *lc_strerror(int err)
{
    switch (err) {
    case LC_OK:
        return "success";
    case LC_ERR_USAGE:
        return "usage error";
    case LC_ERR_CONFIG:
        return "configuration error";
    case LC_ERR_NOMEM:
        return "out of memory";
    case LC_ERR_IO:
        return "input/output error";
    case LC_ERR_REFUSED:
        return "refused by policy";
    case LC_ERR_SIGNER:
        return "signer failure";
    case LC_ERR_HSM:
        return "HSM token or key not usable";
    case LC_ERR_AUDIT:
        return "audit store failure";
    case LC_ERR_PROTOCOL:
        return "protocol error";
    case LC_ERR_NOT_FOUND:
        return "not found";
    case LC_ERR_EXISTS:
        return "already exists";
    case LC_ERR_TAMPERED:
        return "audit log does not verify";
    case LC_ERR_CRYPTO:
        return "cryptographic operation failed";
    case LC_ERR_TIMEOUT:
        return "timed out";
    case LC_ERR_INTERNAL:
        return "internal error";
    }
    return "unknown error";
}

int lc_seterr(int err, char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;

    if (buf != NULL && len > 0) {
        va_start(ap, fmt);
        vsnprintf(buf, len, fmt, ap);
        va_end(ap);
    }
    return err;
}

void lc_hex(const unsigned char *b, size_t n, int upper, char *out)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

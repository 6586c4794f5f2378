/*
 * pki.h — `linecert pki init`: create the demo/test PKI in SoftHSM2.
 */
#ifndef LINECERT_PKI_H
#define LINECERT_PKI_H

#include <stddef.h>

typedef struct pki_opts {
    const char *dir;      /* everything is created inside this folder */
    int lines;            /* 1..64 line CAs */
    const char *key_type; /* ec-p256, ec-p384, rsa-2048, rsa-3072 */
    int force;            /* replace an existing PKI */
    const char *signer;   /* linecert-signer program */
} pki_opts_t;

/*
 * Creates tokens, keys, CA certificates, PIN file and station.ini in o->dir
 * (see docs/cli.md).  Returns LC_OK; LC_ERR_EXISTS when a PKI is there and
 * force is off; LC_ERR_USAGE, LC_ERR_IO, LC_ERR_HSM or LC_ERR_SIGNER with a
 * message in err.
 */
int pki_init(const pki_opts_t *o, char *err, size_t errlen);

#endif

/*
 * p11uri.h — RFC 7512 PKCS#11 URIs, parsed by p11-kit.
 *
 * Kept apart from p11.c so that the station can validate the URIs in its
 * configuration without linking libp11 (only the signer does).
 */
#ifndef LINECERT_P11URI_H
#define LINECERT_P11URI_H

#include <stddef.h>

/*
 * Checks that uri is a well-formed PKCS#11 URI that names an object on a
 * token (it must have a token attribute and an object label or id).
 * Returns LC_OK or LC_ERR_CONFIG with the reason in err.
 */
int p11uri_check(const char *uri, char *err, size_t errlen);

#endif

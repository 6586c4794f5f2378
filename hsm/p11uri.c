/*
 * p11uri.c — PKCS#11 URI validation (see p11uri.h).
 */
#include "p11uri.h"

#include "lcerr.h"

#include <p11-kit/uri.h>

int p11uri_check(const char *uri, char *err, size_t errlen)
{
    P11KitUri *u = p11_kit_uri_new();
    CK_TOKEN_INFO *tok;
    int rc, ret = LC_ERR_CONFIG;

    if (u == NULL)
        return lc_seterr(LC_ERR_NOMEM, err, errlen, "out of memory");
    rc = p11_kit_uri_parse(uri, P11_KIT_URI_FOR_ANY, u);
    if (rc != P11_KIT_URI_OK) {
        lc_seterr(ret, err, errlen, "not a PKCS#11 URI (%s)", p11_kit_uri_message(rc));
        goto out;
    }
    tok = p11_kit_uri_get_token_info(u);
    if (tok == NULL || tok->label[0] == 0) {
        lc_seterr(ret, err, errlen, "PKCS#11 URI names no token (token=...)");
        goto out;
    }
    if (p11_kit_uri_get_attribute(u, CKA_LABEL) == NULL &&
        p11_kit_uri_get_attribute(u, CKA_ID) == NULL) {
        lc_seterr(ret, err, errlen, "PKCS#11 URI names no key (object=... or id=...)");
        goto out;
    }
    ret = LC_OK;
out:
    p11_kit_uri_free(u);
    return ret;
}

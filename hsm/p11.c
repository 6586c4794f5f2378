/*
 * p11.c — libp11 wrapper of the signer: one context, URI lookup, recovery.
 */
#include "p11.h"

#include "lcerr.h"

#include <dlfcn.h>
#include <errno.h>
#include <libp11.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include <p11-kit/uri.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct p11 {
    PKCS11_CTX *ctx;
    PKCS11_SLOT *slots;
    unsigned int nslots;
    char *module;
    char *pin_file;
};

int p11_read_pin(const char *path, char *buf, size_t len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    size_t n;

    if (f == NULL)
        return lc_seterr(LC_ERR_CONFIG, err, errlen, "PIN file %s: %s", path, strerror(errno));
    if (fgets(buf, (int)len, f) == NULL) {
        fclose(f);
        OPENSSL_cleanse(buf, len);
        return lc_seterr(LC_ERR_CONFIG, err, errlen, "PIN file %s is empty", path);
    }
    fclose(f);
    n = strcspn(buf, "\r\n");
    buf[n] = '\0';
    if (n == 0)
        return lc_seterr(LC_ERR_CONFIG, err, errlen, "PIN file %s is empty", path);
    return LC_OK;
}

static int load(p11_t *p, char *err, size_t errlen)
{
    p->ctx = PKCS11_CTX_new();
    if (p->ctx == NULL)
        return lc_seterr(LC_ERR_NOMEM, err, errlen, "PKCS11_CTX_new failed");
    if (PKCS11_CTX_load(p->ctx, p->module) != 0) {
        PKCS11_CTX_free(p->ctx);
        p->ctx = NULL;
        return lc_seterr(LC_ERR_HSM, err, errlen, "cannot load PKCS#11 module %s", p->module);
    }
    if (PKCS11_enumerate_slots(p->ctx, &p->slots, &p->nslots) != 0) {
        PKCS11_CTX_unload(p->ctx);
        PKCS11_CTX_free(p->ctx);
        p->ctx = NULL;
        return lc_seterr(LC_ERR_HSM, err, errlen, "cannot list the module's slots");
    }
    return LC_OK;
}

static void unload(p11_t *p)
{
    if (p->ctx == NULL)
        return;
    if (p->slots != NULL)
        PKCS11_release_all_slots(p->ctx, p->slots, p->nslots);
    p->slots = NULL;
    p->nslots = 0;
    PKCS11_CTX_unload(p->ctx);
    PKCS11_CTX_free(p->ctx);
    p->ctx = NULL;
}

int p11_open(const char *module, const char *softhsm_conf, const char *pin_file, p11_t **out,
             char *err, size_t errlen)
{
    p11_t *p;
    int ret;

    *out = NULL;
    if (softhsm_conf != NULL && *softhsm_conf != '\0')
        setenv("SOFTHSM2_CONF", softhsm_conf, 1);
    p = calloc(1, sizeof *p);
    if (p == NULL)
        return lc_seterr(LC_ERR_NOMEM, err, errlen, "out of memory");
    p->module = strdup(module);
    p->pin_file = strdup(pin_file);
    if (p->module == NULL || p->pin_file == NULL) {
        p11_free(p);
        return lc_seterr(LC_ERR_NOMEM, err, errlen, "out of memory");
    }
    ret = load(p, err, errlen);
    if (ret != LC_OK) {
        p11_free(p);
        return ret;
    }
    *out = p;
    return LC_OK;
}

void p11_free(p11_t *p)
{
    if (p == NULL)
        return;
    unload(p);
    free(p->module);
    free(p->pin_file);
    free(p);
}

int p11_reload(p11_t *p, char *err, size_t errlen)
{
    unload(p);
    return load(p, err, errlen);
}

/* Copies s into a blank-padded fixed field, as CK_TOKEN_INFO holds it. */
static void pad(unsigned char *dst, size_t n, const char *s)
{
    size_t l = s ? strlen(s) : 0;

    memset(dst, ' ', n);
    memcpy(dst, s ? s : "", l < n ? l : n);
}

static PKCS11_SLOT *find_slot(p11_t *p, P11KitUri *uri)
{
    for (unsigned int i = 0; i < p->nslots; i++) {
        PKCS11_TOKEN *t = p->slots[i].token;
        CK_TOKEN_INFO info;
        if (t == NULL || !t->initialized)
            continue;
        memset(&info, 0, sizeof info);
        pad(info.label, sizeof info.label, t->label);
        pad(info.manufacturerID, sizeof info.manufacturerID, t->manufacturer);
        pad(info.model, sizeof info.model, t->model);
        pad(info.serialNumber, sizeof info.serialNumber, t->serialnr);
        if (p11_kit_uri_match_token_info(uri, &info) == 1)
            return &p->slots[i];
    }
    return NULL;
}

static int key_matches(const PKCS11_KEY *k, CK_ATTRIBUTE *label, CK_ATTRIBUTE *id)
{
    if (label != NULL && (k->label == NULL || strlen(k->label) != label->ulValueLen ||
                          memcmp(k->label, label->pValue, label->ulValueLen) != 0))
        return 0;
    if (id != NULL &&
        (k->id_len != id->ulValueLen || memcmp(k->id, id->pValue, id->ulValueLen) != 0))
        return 0;
    return 1;
}

static int login(p11_t *p, PKCS11_SLOT *slot, char *err, size_t errlen)
{
    char pin[256];
    int logged = 0, ret;

    if (PKCS11_is_logged_in(slot, 0, &logged) == 0 && logged)
        return LC_OK;
    ret = p11_read_pin(p->pin_file, pin, sizeof pin, err, errlen);
    if (ret != LC_OK)
        return ret;
    if (PKCS11_open_session(slot, 0) != 0 || PKCS11_login(slot, 0, pin) != 0) {
        OPENSSL_cleanse(pin, sizeof pin);
        return lc_seterr(LC_ERR_HSM, err, errlen, "login to token \"%s\" failed",
                         slot->token ? slot->token->label : "?");
    }
    OPENSSL_cleanse(pin, sizeof pin);
    return LC_OK;
}

int p11_find_key(p11_t *p, const char *uri_s, int want_private, EVP_PKEY **pkey, char *err,
                 size_t errlen)
{
    P11KitUri *uri = p11_kit_uri_new();
    PKCS11_SLOT *slot;
    PKCS11_KEY *keys = NULL;
    unsigned int nkeys = 0;
    CK_ATTRIBUTE *label, *id;
    int ret = LC_ERR_CONFIG, rc;

    *pkey = NULL;
    if (uri == NULL)
        return lc_seterr(LC_ERR_NOMEM, err, errlen, "out of memory");
    if (p->ctx == NULL) {
        ret = lc_seterr(LC_ERR_HSM, err, errlen, "PKCS#11 module not loaded");
        goto out;
    }
    rc = p11_kit_uri_parse(uri_s, P11_KIT_URI_FOR_ANY, uri);
    if (rc != P11_KIT_URI_OK) {
        lc_seterr(ret, err, errlen, "%s: %s", uri_s, p11_kit_uri_message(rc));
        goto out;
    }
    /* A token that was removed and re-inserted shows up only after a fresh slot list. */
    slot = find_slot(p, uri);
    if (slot == NULL) {
        ret = lc_seterr(LC_ERR_HSM, err, errlen, "no token matches %s", uri_s);
        goto out;
    }
    ret = login(p, slot, err, errlen);
    if (ret != LC_OK)
        goto out;
    label = p11_kit_uri_get_attribute(uri, CKA_LABEL);
    id = p11_kit_uri_get_attribute(uri, CKA_ID);
    rc = want_private ? PKCS11_enumerate_keys(slot->token, &keys, &nkeys)
                      : PKCS11_enumerate_public_keys(slot->token, &keys, &nkeys);
    if (rc != 0) {
        ret = lc_seterr(LC_ERR_HSM, err, errlen, "cannot list keys on token \"%s\"",
                        slot->token->label);
        goto out;
    }
    ret = lc_seterr(LC_ERR_NOT_FOUND, err, errlen, "no %s key matches %s",
                    want_private ? "private" : "public", uri_s);
    for (unsigned int i = 0; i < nkeys; i++) {
        if (!key_matches(&keys[i], label, id))
            continue;
        *pkey = want_private ? PKCS11_get_private_key(&keys[i]) : PKCS11_get_public_key(&keys[i]);
        if (*pkey == NULL)
            ret = lc_seterr(LC_ERR_HSM, err, errlen, "cannot use key %s", uri_s);
        else
            ret = LC_OK;
        break;
    }
out:
    ERR_clear_error();
    p11_kit_uri_free(uri);
    return ret;
}

int p11_sign(EVP_PKEY *key, int md_nid, const unsigned char *tbs, size_t tbs_len,
             unsigned char **sig, size_t *sig_len, char *err, size_t errlen)
{
    const EVP_MD *md = md_nid == NID_sha384 ? EVP_sha384() : EVP_sha256();
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;

    *sig = NULL;
    *sig_len = 0;
    if (EVP_Digest(tbs, tbs_len, digest, &dlen, md, NULL) != 1)
        return lc_seterr(LC_ERR_CRYPTO, err, errlen, "digest failed");
    return p11_sign_digest(key, md_nid, digest, dlen, sig, sig_len, err, errlen);
}

int p11_sign_digest(EVP_PKEY *key, int md_nid, const unsigned char *digest, size_t dlen,
                    unsigned char **sig, size_t *sig_len, char *err, size_t errlen)
{
    const EVP_MD *md = md_nid == NID_sha384 ? EVP_sha384() : EVP_sha256();
    EVP_PKEY_CTX *pctx = NULL;
    size_t len = 0;
    int ret = LC_ERR_HSM;

    *sig = NULL;
    *sig_len = 0;
    pctx = EVP_PKEY_CTX_new(key, NULL);
    if (pctx == NULL || EVP_PKEY_sign_init(pctx) <= 0)
        goto fail;
    if (EVP_PKEY_is_a(key, "RSA") && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0 ||
                                      EVP_PKEY_CTX_set_signature_md(pctx, md) <= 0))
        goto fail;
    if (EVP_PKEY_sign(pctx, NULL, &len, digest, dlen) <= 0 || (*sig = malloc(len)) == NULL)
        goto fail;
    if (EVP_PKEY_sign(pctx, *sig, &len, digest, dlen) <= 0) {
        free(*sig);
        *sig = NULL;
        goto fail;
    }
    *sig_len = len;
    ret = LC_OK;
    goto out;
fail : {
    unsigned long e = ERR_peek_last_error();
    char buf[160] = "no detail";
    if (e != 0)
        ERR_error_string_n(e, buf, sizeof buf);
    lc_seterr(LC_ERR_HSM, err, errlen, "HSM signature failed: %s", buf);
}
out:
    ERR_clear_error();
    EVP_PKEY_CTX_free(pctx);
    return ret;
}

int p11_probe(p11_t *p, char *err, size_t errlen)
{
    CK_FUNCTION_LIST_PTR fl = NULL;
    CK_C_GetFunctionList get;
    CK_ULONG n = 0;
    CK_RV rv;
    void *h;

    if (p == NULL || p->ctx == NULL)
        return lc_seterr(LC_ERR_HSM, err, errlen, "PKCS#11 module not loaded");
    /* The module libp11 already loaded and initialised: no second context, no new session. */
    h = dlopen(p->module, RTLD_NOW | RTLD_NOLOAD);
    if (h == NULL)
        return lc_seterr(LC_ERR_HSM, err, errlen, "PKCS#11 module %s not loaded", p->module);
    *(void **)&get = dlsym(h, "C_GetFunctionList");
    if (get == NULL || get(&fl) != CKR_OK || fl == NULL) {
        dlclose(h);
        return lc_seterr(LC_ERR_HSM, err, errlen, "PKCS#11 module has no function list");
    }
    /*
     * SoftHSM2 keeps listing a token whose directory went away; asking for
     * its token info is what fails (CKR_GENERAL_ERROR), and keeps failing
     * after it comes back until the module is reloaded.
     */
    {
        CK_SLOT_ID ids[64];
        CK_TOKEN_INFO ti;
        n = sizeof ids / sizeof ids[0];
        rv = fl->C_GetSlotList(CK_TRUE, ids, &n);
        for (CK_ULONG i = 0; rv == CKR_OK && i < n; i++) {
            rv = fl->C_GetTokenInfo(ids[i], &ti);
            if (rv != CKR_OK) {
                dlclose(h);
                return lc_seterr(LC_ERR_HSM, err, errlen,
                                 "token in slot %lu not reachable (C_GetTokenInfo: 0x%lx)",
                                 (unsigned long)ids[i], (unsigned long)rv);
            }
        }
    }
    dlclose(h);
    if (rv != CKR_OK || n == 0)
        return lc_seterr(LC_ERR_HSM, err, errlen, "no token present (C_GetSlotList: 0x%lx)",
                         (unsigned long)rv);
    return LC_OK;
}

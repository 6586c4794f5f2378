/*
 * p11_shim.c — liblcfault-p11.so, a PKCS#11 module that stands in front of a
 * real one and pulls its token out on demand: the fault suite's "HSM cable
 * pulled" (tests/fault/README.md).
 *
 * C_GetFunctionList dlopen()s the real module named by LC_FAULT_P11_REAL and
 * hands out a function list whose every entry forwards to it.  While the
 * control file LC_FAULT_P11_CTL exists, the token is gone, the way a removed
 * USB HSM looks to an application:
 *
 *   - C_GetSlotList(tokenPresent = TRUE) lists no slot; C_GetSlotInfo clears
 *     CKF_TOKEN_PRESENT;
 *   - token-level calls (C_GetTokenInfo, C_OpenSession, mechanisms, C_InitToken)
 *     return CKR_TOKEN_NOT_PRESENT;
 *   - calls on an open session return CKR_DEVICE_REMOVED, or
 *     CKR_SESSION_HANDLE_INVALID when the control file's first word is
 *     "session-invalid";
 *   - C_Initialize, C_Finalize, C_GetInfo, C_GetFunctionList, C_CloseSession
 *     and C_CloseAllSessions always reach the real module, so the caller can
 *     clean up and reload.
 *
 * Remove the file and the token is back; the caller's stale handles may still
 * fail until it reloads the module, as with real hardware.
 */
#include <dlfcn.h>
#include <p11-kit/pkcs11.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *g_real_handle;
static CK_FUNCTION_LIST_PTR g_real;
static CK_FUNCTION_LIST g_list;

/* Whether the token is "pulled out": the control file exists. */
static int token_gone(void)
{
    const char *ctl = getenv("LC_FAULT_P11_CTL");

    return ctl != NULL && *ctl != '\0' && access(ctl, F_OK) == 0;
}

/* What a call on an open session returns while the token is gone. */
static CK_RV session_error(void)
{
    const char *ctl = getenv("LC_FAULT_P11_CTL");
    char word[32] = "";
    FILE *f = ctl != NULL ? fopen(ctl, "re") : NULL;

    if (f != NULL) {
        if (fscanf(f, "%31s", word) != 1)
            word[0] = '\0';
        fclose(f);
    }
    return strcmp(word, "session-invalid") == 0 ? CKR_SESSION_HANDLE_INVALID : CKR_DEVICE_REMOVED;
}

enum gone { PASS, TOKEN, SESSION };

/* A forwarding wrapper: while the token is gone, `gone` says what it returns. */
#define WRAP(name, gone, params, args)                                                             \
    static CK_RV w_##name params                                                                   \
    {                                                                                              \
        if ((gone) != PASS && token_gone())                                                        \
            return (gone) == TOKEN ? CKR_TOKEN_NOT_PRESENT : session_error();                      \
        return g_real->C_##name args;                                                              \
    }

WRAP(Initialize, PASS, (void *a), (a))
WRAP(Finalize, PASS, (void *r), (r))
WRAP(GetInfo, PASS, (CK_INFO_PTR i), (i))
WRAP(GetTokenInfo, TOKEN, (CK_SLOT_ID s, CK_TOKEN_INFO_PTR i), (s, i))
WRAP(GetMechanismList, TOKEN, (CK_SLOT_ID s, CK_MECHANISM_TYPE_PTR l, CK_ULONG_PTR n), (s, l, n))
WRAP(GetMechanismInfo, TOKEN, (CK_SLOT_ID s, CK_MECHANISM_TYPE t, CK_MECHANISM_INFO_PTR i),
     (s, t, i))
WRAP(InitToken, TOKEN, (CK_SLOT_ID s, CK_UTF8CHAR_PTR p, CK_ULONG n, CK_UTF8CHAR_PTR l),
     (s, p, n, l))
WRAP(InitPIN, SESSION, (CK_SESSION_HANDLE h, CK_UTF8CHAR_PTR p, CK_ULONG n), (h, p, n))
WRAP(SetPIN, SESSION,
     (CK_SESSION_HANDLE h, CK_UTF8CHAR_PTR o, CK_ULONG on, CK_UTF8CHAR_PTR n, CK_ULONG nn),
     (h, o, on, n, nn))
WRAP(OpenSession, TOKEN,
     (CK_SLOT_ID s, CK_FLAGS f, CK_VOID_PTR a, CK_NOTIFY n, CK_SESSION_HANDLE_PTR h),
     (s, f, a, n, h))
WRAP(CloseSession, PASS, (CK_SESSION_HANDLE h), (h))
WRAP(CloseAllSessions, PASS, (CK_SLOT_ID s), (s))
WRAP(GetSessionInfo, SESSION, (CK_SESSION_HANDLE h, CK_SESSION_INFO_PTR i), (h, i))
WRAP(GetOperationState, SESSION, (CK_SESSION_HANDLE h, CK_BYTE_PTR s, CK_ULONG_PTR n), (h, s, n))
WRAP(SetOperationState, SESSION,
     (CK_SESSION_HANDLE h, CK_BYTE_PTR s, CK_ULONG n, CK_OBJECT_HANDLE e, CK_OBJECT_HANDLE a),
     (h, s, n, e, a))
WRAP(Login, SESSION, (CK_SESSION_HANDLE h, CK_USER_TYPE u, CK_UTF8CHAR_PTR p, CK_ULONG n),
     (h, u, p, n))
WRAP(Logout, SESSION, (CK_SESSION_HANDLE h), (h))
WRAP(CreateObject, SESSION,
     (CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR o), (h, t, n, o))
WRAP(CopyObject, SESSION,
     (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR t, CK_ULONG n,
      CK_OBJECT_HANDLE_PTR no),
     (h, o, t, n, no))
WRAP(DestroyObject, SESSION, (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o), (h, o))
WRAP(GetObjectSize, SESSION, (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ULONG_PTR n), (h, o, n))
WRAP(GetAttributeValue, SESSION,
     (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR t, CK_ULONG n), (h, o, t, n))
WRAP(SetAttributeValue, SESSION,
     (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR t, CK_ULONG n), (h, o, t, n))
WRAP(FindObjectsInit, SESSION, (CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR t, CK_ULONG n), (h, t, n))
WRAP(FindObjects, SESSION,
     (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE_PTR o, CK_ULONG m, CK_ULONG_PTR n), (h, o, m, n))
WRAP(FindObjectsFinal, SESSION, (CK_SESSION_HANDLE h), (h))
WRAP(EncryptInit, SESSION, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k), (h, m, k))
WRAP(Encrypt, SESSION,
     (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dn, CK_BYTE_PTR e, CK_ULONG_PTR en),
     (h, d, dn, e, en))
WRAP(EncryptUpdate, SESSION,
     (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dn, CK_BYTE_PTR e, CK_ULONG_PTR en),
     (h, d, dn, e, en))
WRAP(EncryptFinal, SESSION, (CK_SESSION_HANDLE h, CK_BYTE_PTR e, CK_ULONG_PTR en), (h, e, en))
WRAP(DecryptInit, SESSION, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k), (h, m, k))
WRAP(Decrypt, SESSION,
     (CK_SESSION_HANDLE h, CK_BYTE_PTR e, CK_ULONG en, CK_BYTE_PTR d, CK_ULONG_PTR dn),
     (h, e, en, d, dn))
WRAP(DecryptUpdate, SESSION,
     (CK_SESSION_HANDLE h, CK_BYTE_PTR e, CK_ULONG en, CK_BYTE_PTR d, CK_ULONG_PTR dn),
     (h, e, en, d, dn))
WRAP(DecryptFinal, SESSION, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG_PTR dn), (h, d, dn))
WRAP(DigestInit, SESSION, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m), (h, m))
WRAP(Digest, SESSION,
     (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dn, CK_BYTE_PTR g, CK_ULONG_PTR gn),
     (h, d, dn, g, gn))
WRAP(DigestUpdate, SESSION, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dn), (h, d, dn))
WRAP(DigestKey, SESSION, (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE k), (h, k))
WRAP(DigestFinal, SESSION, (CK_SESSION_HANDLE h, CK_BYTE_PTR g, CK_ULONG_PTR gn), (h, g, gn))
WRAP(SignInit, SESSION, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k), (h, m, k))
WRAP(Sign, SESSION,
     (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dn, CK_BYTE_PTR s, CK_ULONG_PTR sn),
     (h, d, dn, s, sn))
WRAP(SignUpdate, SESSION, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dn), (h, d, dn))
WRAP(SignFinal, SESSION, (CK_SESSION_HANDLE h, CK_BYTE_PTR s, CK_ULONG_PTR sn), (h, s, sn))
WRAP(SignRecoverInit, SESSION, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k),
     (h, m, k))
WRAP(SignRecover, SESSION,
     (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dn, CK_BYTE_PTR s, CK_ULONG_PTR sn),
     (h, d, dn, s, sn))
WRAP(VerifyInit, SESSION, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k), (h, m, k))
WRAP(Verify, SESSION, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dn, CK_BYTE_PTR s, CK_ULONG sn),
     (h, d, dn, s, sn))
WRAP(VerifyUpdate, SESSION, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dn), (h, d, dn))
WRAP(VerifyFinal, SESSION, (CK_SESSION_HANDLE h, CK_BYTE_PTR s, CK_ULONG sn), (h, s, sn))
WRAP(VerifyRecoverInit, SESSION, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k),
     (h, m, k))
WRAP(VerifyRecover, SESSION,
     (CK_SESSION_HANDLE h, CK_BYTE_PTR s, CK_ULONG sn, CK_BYTE_PTR d, CK_ULONG_PTR dn),
     (h, s, sn, d, dn))
WRAP(DigestEncryptUpdate, SESSION,
     (CK_SESSION_HANDLE h, CK_BYTE_PTR p, CK_ULONG pn, CK_BYTE_PTR e, CK_ULONG_PTR en),
     (h, p, pn, e, en))
WRAP(DecryptDigestUpdate, SESSION,
     (CK_SESSION_HANDLE h, CK_BYTE_PTR e, CK_ULONG en, CK_BYTE_PTR p, CK_ULONG_PTR pn),
     (h, e, en, p, pn))
WRAP(SignEncryptUpdate, SESSION,
     (CK_SESSION_HANDLE h, CK_BYTE_PTR p, CK_ULONG pn, CK_BYTE_PTR e, CK_ULONG_PTR en),
     (h, p, pn, e, en))
WRAP(DecryptVerifyUpdate, SESSION,
     (CK_SESSION_HANDLE h, CK_BYTE_PTR e, CK_ULONG en, CK_BYTE_PTR p, CK_ULONG_PTR pn),
     (h, e, en, p, pn))
WRAP(GenerateKey, SESSION,
     (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR t, CK_ULONG n,
      CK_OBJECT_HANDLE_PTR k),
     (h, m, t, n, k))
WRAP(GenerateKeyPair, SESSION,
     (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR pt, CK_ULONG pn,
      CK_ATTRIBUTE_PTR st, CK_ULONG sn, CK_OBJECT_HANDLE_PTR pk, CK_OBJECT_HANDLE_PTR sk),
     (h, m, pt, pn, st, sn, pk, sk))
WRAP(WrapKey, SESSION,
     (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE w, CK_OBJECT_HANDLE k,
      CK_BYTE_PTR o, CK_ULONG_PTR on),
     (h, m, w, k, o, on))
WRAP(UnwrapKey, SESSION,
     (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE u, CK_BYTE_PTR w, CK_ULONG wn,
      CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR k),
     (h, m, u, w, wn, t, n, k))
WRAP(DeriveKey, SESSION,
     (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE b, CK_ATTRIBUTE_PTR t, CK_ULONG n,
      CK_OBJECT_HANDLE_PTR k),
     (h, m, b, t, n, k))
WRAP(SeedRandom, SESSION, (CK_SESSION_HANDLE h, CK_BYTE_PTR s, CK_ULONG n), (h, s, n))
WRAP(GenerateRandom, SESSION, (CK_SESSION_HANDLE h, CK_BYTE_PTR r, CK_ULONG n), (h, r, n))
WRAP(GetFunctionStatus, SESSION, (CK_SESSION_HANDLE h), (h))
WRAP(CancelFunction, SESSION, (CK_SESSION_HANDLE h), (h))
WRAP(WaitForSlotEvent, PASS, (CK_FLAGS f, CK_SLOT_ID_PTR s, CK_VOID_PTR r), (f, s, r))

/* No token in any slot while it is gone; the slots themselves stay (a reader without a card). */
static CK_RV w_GetSlotList(CK_BBOOL present, CK_SLOT_ID_PTR list, CK_ULONG_PTR n)
{
    if (present && token_gone()) {
        *n = 0;
        return CKR_OK;
    }
    return g_real->C_GetSlotList(present, list, n);
}

static CK_RV w_GetSlotInfo(CK_SLOT_ID s, CK_SLOT_INFO_PTR info)
{
    CK_RV rv = g_real->C_GetSlotInfo(s, info);

    if (rv == CKR_OK && token_gone())
        info->flags &= ~CKF_TOKEN_PRESENT;
    return rv;
}

static CK_RV w_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out);

static void fill_list(void)
{
    g_list.version.major = 2;
    g_list.version.minor = 40;
#define SET(name) g_list.C_##name = w_##name
    SET(Initialize);
    SET(Finalize);
    SET(GetInfo);
    SET(GetFunctionList);
    SET(GetSlotList);
    SET(GetSlotInfo);
    SET(GetTokenInfo);
    SET(GetMechanismList);
    SET(GetMechanismInfo);
    SET(InitToken);
    SET(InitPIN);
    SET(SetPIN);
    SET(OpenSession);
    SET(CloseSession);
    SET(CloseAllSessions);
    SET(GetSessionInfo);
    SET(GetOperationState);
    SET(SetOperationState);
    SET(Login);
    SET(Logout);
    SET(CreateObject);
    SET(CopyObject);
    SET(DestroyObject);
    SET(GetObjectSize);
    SET(GetAttributeValue);
    SET(SetAttributeValue);
    SET(FindObjectsInit);
    SET(FindObjects);
    SET(FindObjectsFinal);
    SET(EncryptInit);
    SET(Encrypt);
    SET(EncryptUpdate);
    SET(EncryptFinal);
    SET(DecryptInit);
    SET(Decrypt);
    SET(DecryptUpdate);
    SET(DecryptFinal);
    SET(DigestInit);
    SET(Digest);
    SET(DigestUpdate);
    SET(DigestKey);
    SET(DigestFinal);
    SET(SignInit);
    SET(Sign);
    SET(SignUpdate);
    SET(SignFinal);
    SET(SignRecoverInit);
    SET(SignRecover);
    SET(VerifyInit);
    SET(Verify);
    SET(VerifyUpdate);
    SET(VerifyFinal);
    SET(VerifyRecoverInit);
    SET(VerifyRecover);
    SET(DigestEncryptUpdate);
    SET(DecryptDigestUpdate);
    SET(SignEncryptUpdate);
    SET(DecryptVerifyUpdate);
    SET(GenerateKey);
    SET(GenerateKeyPair);
    SET(WrapKey);
    SET(UnwrapKey);
    SET(DeriveKey);
    SET(SeedRandom);
    SET(GenerateRandom);
    SET(GetFunctionStatus);
    SET(CancelFunction);
    SET(WaitForSlotEvent);
#undef SET
}

static CK_RV w_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out)
{
    return C_GetFunctionList(out);
}

/* The module's one exported entry point: loads the real module once, returns the wrappers. */
CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out)
{
    const char *path = getenv("LC_FAULT_P11_REAL");
    CK_C_GetFunctionList get;

    if (out == NULL)
        return CKR_ARGUMENTS_BAD;
    if (g_real == NULL) {
        if (path == NULL || *path == '\0') {
            fprintf(stderr, "p11_shim: LC_FAULT_P11_REAL (the real PKCS#11 module) is not set\n");
            return CKR_GENERAL_ERROR;
        }
        if (g_real_handle == NULL &&
            (g_real_handle = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
            fprintf(stderr, "p11_shim: %s\n", dlerror());
            return CKR_GENERAL_ERROR;
        }
        *(void **)&get = dlsym(g_real_handle, "C_GetFunctionList");
        if (get == NULL || get(&g_real) != CKR_OK || g_real == NULL) {
            fprintf(stderr, "p11_shim: %s has no usable C_GetFunctionList\n", path);
            g_real = NULL;
            return CKR_GENERAL_ERROR;
        }
        fill_list();
    }
    *out = &g_list;
    return CKR_OK;
}

/* When the caller unloads this module, the real one goes with it. */
__attribute__((destructor)) static void p11_shim_fini(void)
{
    if (g_real_handle != NULL)
        dlclose(g_real_handle);
    g_real_handle = NULL;
    g_real = NULL;
}

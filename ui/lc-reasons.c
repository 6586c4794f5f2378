/*
 * lc-reasons.c — the reason sentences (see lc-reasons.h).  Keep in step with
 * REASONS in hsm/policy.c; test_ui fails when they differ.
 */
#include "lc-reasons.h"

struct reason {
    const char *code;
    const char *text;
};

static const struct reason REASONS[] = {
    {"none", "No problem."},
    {"too-large", "The CSR is larger than 16 KiB."},
    {"malformed", "The input is not a well-formed PKCS#10 CSR."},
    {"bad-signature", "The CSR's signature does not verify: no proof the device holds the key."},
    {"weak-hash", "The CSR is signed with a hash weaker than SHA-256."},
    {"signature-algorithm",
     "The CSR's signature algorithm is not supported or does not match its key."},
    {"key-type",
     "The device key type is not allowed (EC P-256/P-384 or RSA 2048-4096 with e=65537)."},
    {"cn-missing", "The CSR has no common name."},
    {"cn-multiple", "The CSR has more than one common name."},
    {"cn-invalid", "The CSR's common name is not a valid registration ID."},
    {"cn-duplicate", "A certificate was already issued for this registration ID."},
    {"cn-mismatch", "The CSR's common name does not match the device serial from the PLC."},
    {"serial-invalid", "The device serial from the PLC is empty or not printable."},
    {"hsm-unavailable", "HSM token not reachable: check the HSM cable/service."},
    {"signer-unavailable", "The signer process is not running: it is being restarted."},
    {"audit-unavailable",
     "The audit log cannot be written: check the disk; nothing is issued until it can."},
    {"jig-timeout", "The jig program did not answer in time."},
    {"jig-failed", "The jig program failed (non-zero exit)."},
    {"jig-output", "The jig program's output was too large or unusable."},
    {"install-failed", "The certificate was issued but the jig could not install it."},
    {"paused", "The line is paused by an operator."},
    {"internal", "Internal error in the station: see the log."},
    /* Not in policy.c: the daemon's own line condition (docs/control.md). */
    {"plc-unreachable", "PLC not answering: check the PLC and its network cable."},
};

const char *lc_reason_text(const char *code)
{
    if (code == NULL || *code == '\0')
        return NULL;
    for (gsize i = 0; i < G_N_ELEMENTS(REASONS); i++)
        if (g_strcmp0(REASONS[i].code, code) == 0)
            return REASONS[i].text;
    return NULL;
}

const char *lc_reason_hint(const char *code)
{
    static const struct reason HINTS[] = {
        {"plc-unreachable", "Check the PLC: its power and network cable."},
        {"jig-timeout", "Check the jig: its power and cable."},
        {"jig-failed", "Check the jig: its power and cable."},
        {"jig-output", "Check the jig program and the device in the jig."},
        {"install-failed", "Check the device in the jig."},
        {"internal", "Call maintenance: see the station log."},
    };

    for (gsize i = 0; code != NULL && i < G_N_ELEMENTS(HINTS); i++)
        if (g_strcmp0(HINTS[i].code, code) == 0)
            return HINTS[i].text;
    return NULL;
}

const char *const *lc_reason_codes(void)
{
    static const char *codes[G_N_ELEMENTS(REASONS) + 1];

    if (codes[0] == NULL)
        for (gsize i = 0; i < G_N_ELEMENTS(REASONS); i++)
            codes[i] = REASONS[i].code;
    return codes;
}

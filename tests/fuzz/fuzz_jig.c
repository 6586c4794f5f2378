/*
 * fuzz_jig.c — what the station does with the bytes a jig program prints
 * for `csr SERIAL` (docs/jig.md), without running a program per input.
 *
 * The path, as station/jig.c, station/line.c and issuer_issue() take it:
 *  1. jig.c collects stdout, at most JIG_MAX_OUTPUT (64 KiB) bytes, and
 *     NUL-terminates it; empty or larger output is a jig-output fault before
 *     anyone parses it;
 *  2. issuer_issue() runs policy_decode_input on it (PEM anywhere in the
 *     first 256 bytes, or raw DER; more than 16 KiB is refused as
 *     too-large) and hashes what it got for the audit row (csr_sha256);
 *  3. policy_csr_parse, then the CN must equal the registration ID the
 *     station made from the PLC's DEVICE_SERIAL (cn-mismatch otherwise);
 *  4. a re-delivery verifies the proof of possession with a fresh context
 *     (policy_csr_verify(NULL, ...)) before the old certificate goes out.
 * A refusal becomes PLC RESULT 3 with the reason's number and an audit row
 * and a log line with its detail, so the checks are: the reason is a
 * refusal with a name, and the detail is printable ASCII.
 */
#include "fuzz_util.h"
#include "issuer.h"
#include "jig.h"
#include "policy.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The registration ID made from the PLC's serial (default template "%s"). */
#define EXPECT_REGID "SN1-000042"

static void check_refusal(const lc_refusal_t *why)
{
    FZ_CHECK(policy_reason_is_refusal(why->reason), "jig output problems are refusals (RESULT 3)");
    FZ_CHECK(strcmp(policy_reason_name(why->reason), "unknown") != 0, "reason has a name");
    FZ_CHECK(memchr(why->detail, '\0', sizeof why->detail) != NULL, "detail NUL-terminated");
    FZ_CHECK(fz_printable(why->detail), "refusal detail is printable ASCII (log, audit, UI)");
}

static void check_hash(const char hex[65])
{
    FZ_CHECK(strlen(hex) == 64 && strspn(hex, "0123456789ABCDEF") == 64,
             "csr_sha256 is 64 uppercase hex digits");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *out, *der = NULL;
    size_t der_len = 0;
    char hash[65];
    lc_csr_t csr;
    lc_refusal_t why;

    if (size == 0 || size > JIG_MAX_OUTPUT)
        return 0;           /* jig.c: "printed nothing" / "output larger than": never parsed */
    out = malloc(size + 1); /* exactly as jig.c hands it over: NUL-terminated */
    FZ_CHECK(out != NULL, "malloc");
    memcpy(out, data, size);
    out[size] = '\0';

    memset(&why, 0, sizeof why);
    if (policy_decode_input(out, size, &der, &der_len, &why) != 0) {
        check_refusal(&why);
        FZ_CHECK(size <= POLICY_MAX_INPUT || why.reason == LC_REASON_TOO_LARGE,
                 "over 16 KiB is too-large, whatever it holds");
        issuer_sha256_hex(out, size, hash); /* a refused input is audited by its own hash */
        check_hash(hash);
        goto out;
    }
    FZ_CHECK(size <= POLICY_MAX_INPUT, "at most 16 KiB is accepted");
    FZ_CHECK(der != NULL && der_len > 0 && der_len <= size, "DER no larger than its input");
    issuer_sha256_hex(der, der_len, hash);
    check_hash(hash);
    memset(&why, 0, sizeof why);
    if (policy_csr_parse(der, der_len, &csr, &why) != 0) {
        check_refusal(&why);
        goto out;
    }
    if (strcmp(csr.cn, EXPECT_REGID) != 0) {
        policy_refuse(&why, LC_REASON_CN_MISMATCH,
                      "CSR CN \"%s\" is not the registration ID \"%s\" of the device in the jig",
                      csr.cn, EXPECT_REGID);
        check_refusal(&why);
        goto out;
    }
    memset(&why, 0, sizeof why);
    if (policy_csr_verify(NULL, &csr, &why) != 0)
        check_refusal(&why);
out:
    free(der);
    free(out);
    return 0;
}

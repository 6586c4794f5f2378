/*
 * csr-verify-bench.c — what the signer's intake spends per request on the
 * CSR: the parse and the proof-of-possession verification (hsm/policy.c).
 *
 *   csr-verify-bench [--iterations K]
 *
 * Makes one CSR for each device key type the policy accepts (EC P-256 with
 * SHA-256, EC P-384 with SHA-384, RSA-2048 with SHA-256), then times K
 * (default 20,000; RSA a tenth of that) parses and verifications of each on
 * one reused policy context, as the signer's intake does, and prints one
 * `name: value` per line, in microseconds per request:
 *
 *   <type>_parse_us        policy_csr_parse
 *   <type>_verify_us       policy_csr_verify (context reused)
 *   <type>_verify_noctx_us policy_csr_verify without a context (the
 *                          re-delivery path), K / 10 times
 *   p256_openssl_us        d2i_X509_REQ + X509_REQ_verify on the same P-256
 *                          request, for comparison (the path the policy
 *                          avoids, ARCHITECTURE.md pitfalls)
 */
#include "policy.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "csr-verify-bench: %s\n", what);
    exit(1);
}

/* A DER CSR with CN=bench-device for a new key of the given type; *len set. */
static unsigned char *make_csr(const char *type, const char *param, const EVP_MD *md, int *len)
{
    EVP_PKEY *k = strcmp(type, "RSA") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
                                           : EVP_PKEY_Q_keygen(NULL, NULL, "EC", param);
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();
    unsigned char *der = NULL;

    if (k == NULL || req == NULL || name == NULL ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"bench-device",
                                   -1, -1, 0) != 1 ||
        X509_REQ_set_subject_name(req, name) != 1 || X509_REQ_set_pubkey(req, k) != 1 ||
        X509_REQ_sign(req, k, md) <= 0 || (*len = i2d_X509_REQ(req, &der)) <= 0)
        die("cannot make a CSR");
    X509_NAME_free(name);
    X509_REQ_free(req);
    EVP_PKEY_free(k);
    return der;
}

static void bench(const char *label, const unsigned char *der, int len, int k, policy_ctx_t *ctx)
{
    lc_csr_t csr;
    lc_refusal_t why;
    double t0;

    t0 = now_s();
    for (int i = 0; i < k; i++)
        if (policy_csr_parse(der, (size_t)len, &csr, &why) != 0)
            die(why.detail);
    printf("%s_parse_us: %.2f\n", label, (now_s() - t0) / k * 1e6);
    t0 = now_s();
    for (int i = 0; i < k; i++)
        if (policy_csr_verify(ctx, &csr, &why) != 0)
            die(why.detail);
    printf("%s_verify_us: %.2f\n", label, (now_s() - t0) / k * 1e6);
    t0 = now_s();
    for (int i = 0; i < k / 10; i++)
        if (policy_csr_verify(NULL, &csr, &why) != 0)
            die(why.detail);
    printf("%s_verify_noctx_us: %.2f\n", label, (now_s() - t0) / (k / 10) * 1e6);
}

int main(int argc, char **argv)
{
    int k = 20000, len[3];
    unsigned char *der[3];
    policy_ctx_t *ctx;
    double t0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--iterations") == 0 && i + 1 < argc && atoi(argv[i + 1]) >= 10)
            k = atoi(argv[++i]);
        else
            die("usage: csr-verify-bench [--iterations K (>= 10)]");
    }
    der[0] = make_csr("EC", "P-256", EVP_sha256(), &len[0]);
    der[1] = make_csr("EC", "P-384", EVP_sha384(), &len[1]);
    der[2] = make_csr("RSA", NULL, EVP_sha256(), &len[2]);
    if ((ctx = policy_ctx_new()) == NULL)
        die("out of memory");
    printf("iterations: %d\n", k);
    bench("p256", der[0], len[0], k, ctx);
    bench("p384", der[1], len[1], k / 4, ctx);
    bench("rsa2048", der[2], len[2], k / 10, ctx);
    t0 = now_s();
    for (int i = 0; i < k / 10; i++) {
        const unsigned char *p = der[0];
        X509_REQ *req = d2i_X509_REQ(NULL, &p, len[0]);
        EVP_PKEY *pub = req != NULL ? X509_REQ_get0_pubkey(req) : NULL;
        if (pub == NULL || X509_REQ_verify(req, pub) != 1)
            die("OpenSSL's own verification failed");
        X509_REQ_free(req);
    }
    printf("p256_openssl_us: %.2f\n", (now_s() - t0) / (k / 10) * 1e6);
    policy_ctx_free(ctx);
    for (int i = 0; i < 3; i++)
        OPENSSL_free(der[i]);
    return 0;
}

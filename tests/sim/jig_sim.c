/*
 * jig_sim.c — linecert-jig-sim, a fake programming jig for the station's
 * exec jig adapter (docs/simulators.md, docs/jig.md).
 *
 * The station runs `PROGRAM [OPTIONS] csr SERIAL` and `PROGRAM [OPTIONS]
 * install SERIAL` (chain PEM on stdin).  This program plays the device: it
 * keeps one private key per serial in a state folder — a device keeps its
 * key, so asking again after a lost ACK yields a CSR for the same key — and
 * on install it checks, as a device should, that the certificate is for its
 * own key and name and that the chain verifies to the trust anchor it was
 * given.  It is also the reference for plant integrators writing their own
 * adapter: stdout carries only the answer, stderr one line on failure, and
 * the exit status says which.  Options inject the faults the station must
 * survive (hang, garbage, failing install, wrong CN, slowness; output that
 * is huge, trickles, never ends, or an answer whose stdout never closes),
 * and --mode-file switches them while the station runs.  --log records
 * every chain the device received, for the fault suite (tests/fault/).
 *
 * Exit status: 0 done; 1 the request failed (message on stderr); 2 usage;
 * 3 install failed on purpose (--fail-install).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_CHAIN     (256 * 1024) /* bytes of chain PEM accepted on stdin */
#define GARBAGE_LEN   (100 * 1024)
#define MAX_SERIAL    200               /* bytes; the PLC can present 32 at most */
#define HUGE_LEN      (8 * 1024 * 1024) /* --huge: far over the station's 64 KiB */
#define SLOW_BYTE_MS  20                /* --slow: one byte of the answer every this */
#define MAX_MODE_FILE 4096              /* bytes of options read from --mode-file */
#define MAX_MODE_ARGS 32

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_INSTALL_FAILED = 3 };

struct options {
    const char *dir;       /* state folder: SERIAL.key, SERIAL.chain.pem */
    const char *ca;        /* trust anchor(s) for install */
    const char *cn_prefix; /* the CN is prefix + SERIAL + suffix */
    const char *cn_suffix;
    const char *key_type; /* ec-p256 | ec-p384 | rsa-2048 */
    int hang, garbage, fail_install;
    int huge, slow, endless, linger;
    long delay_ms;
    long garbage_bytes;    /* --garbage output size */
    const char *log;       /* --log: one line per chain received */
    const char *mode_file; /* --mode-file: more options, read at each run */
    const char *verb;
    const char *serial;
};

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints one line on stderr, with the first OpenSSL error if there is one. */
static void fail(const char *fmt, ...)
{
    unsigned long e = ERR_peek_error();
    va_list ap;

    fputs("linecert-jig-sim: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (e != 0) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        fprintf(stderr, " (%s)", buf);
    }
    fputc('\n', stderr);
    ERR_clear_error();
}

static void usage(FILE *f)
{
    fputs("usage: linecert-jig-sim --dir DIR [--ca ROOT.pem] [--cn-prefix X] [--cn-suffix X]\n"
          "         [--key ec-p256|ec-p384|rsa-2048] [--hang] [--garbage] [--fail-install]\n"
          "         [--delay-ms N] [--garbage-bytes N] [--huge] [--slow] [--endless]\n"
          "         [--linger] [--log FILE] [--mode-file FILE] csr|install SERIAL\n"
          "A fake programming jig for the station's exec adapter; see docs/simulators.md.\n",
          f);
}

/*
 * Parses options from argv[start..argc) up to the first word that is not an
 * option.  Returns the index of that word, or -1 on a bad option.
 */
static int parse_options(int argc, char **argv, int start, struct options *o)
{
    int i;

    for (i = start; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        char *end;

        if (strcmp(a, "--hang") == 0) {
            o->hang = 1;
        } else if (strcmp(a, "--garbage") == 0) {
            o->garbage = 1;
        } else if (strcmp(a, "--fail-install") == 0) {
            o->fail_install = 1;
        } else if (strcmp(a, "--huge") == 0) {
            o->huge = 1;
        } else if (strcmp(a, "--slow") == 0) {
            o->slow = 1;
        } else if (strcmp(a, "--endless") == 0) {
            o->endless = 1;
        } else if (strcmp(a, "--linger") == 0) {
            o->linger = 1;
        } else if (strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(EXIT_OK);
        } else if (val == NULL) {
            fail("%s: unknown option or missing value", a);
            return -1;
        } else {
            i++;
            if (strcmp(a, "--dir") == 0) {
                o->dir = val;
            } else if (strcmp(a, "--ca") == 0) {
                o->ca = val;
            } else if (strcmp(a, "--cn-prefix") == 0) {
                o->cn_prefix = val;
            } else if (strcmp(a, "--cn-suffix") == 0) {
                o->cn_suffix = val;
            } else if (strcmp(a, "--log") == 0) {
                o->log = val;
            } else if (strcmp(a, "--mode-file") == 0) {
                o->mode_file = val;
            } else if (strcmp(a, "--key") == 0) {
                if (strcmp(val, "ec-p256") != 0 && strcmp(val, "ec-p384") != 0 &&
                    strcmp(val, "rsa-2048") != 0) {
                    fail("--key %s: expected ec-p256, ec-p384 or rsa-2048", val);
                    return -1;
                }
                o->key_type = val;
            } else if (strcmp(a, "--delay-ms") == 0 || strcmp(a, "--garbage-bytes") == 0) {
                long v;
                errno = 0;
                v = strtol(val, &end, 10);
                if (errno != 0 || end == val || *end != '\0' || v < 0 || v > 86400000) {
                    fail("%s %s: expected 0 to 86400000", a, val);
                    return -1;
                }
                if (a[2] == 'd')
                    o->delay_ms = v;
                else
                    o->garbage_bytes = v;
            } else {
                fail("%s: unknown option", a);
                return -1;
            }
        }
    }
    return i;
}

/*
 * --mode-file: when the file exists, its words are more options, read at
 * every run, so that a test switches the jig's behaviour while the station
 * runs (the station's jig line is fixed).  A missing file means no more
 * options.  Returns 0, or -1 if the file cannot be read or has a bad option.
 */
static int read_mode_file(struct options *o)
{
    static char text[MAX_MODE_FILE + 1]; /* the options point into it */
    char *argv[MAX_MODE_ARGS + 1], *save = NULL, *tok;
    int argc = 0;
    size_t n;
    FILE *f;

    if (o->mode_file == NULL)
        return 0;
    f = fopen(o->mode_file, "r");
    if (f == NULL) {
        if (errno == ENOENT)
            return 0;
        fail("--mode-file %s: %s", o->mode_file, strerror(errno));
        return -1;
    }
    n = fread(text, 1, MAX_MODE_FILE, f);
    fclose(f);
    text[n] = '\0';
    argv[argc++] = "mode-file";
    for (tok = strtok_r(text, " \t\r\n", &save); tok != NULL && argc <= MAX_MODE_ARGS;
         tok = strtok_r(NULL, " \t\r\n", &save))
        argv[argc++] = tok;
    argv[argc] = NULL;
    if (parse_options(argc, argv, 1, o) != argc) {
        fail("--mode-file %s: only options may be given there", o->mode_file);
        return -1;
    }
    return 0;
}

static int parse_args(int argc, char **argv, struct options *o)
{
    int i;

    memset(o, 0, sizeof *o);
    o->cn_prefix = "";
    o->cn_suffix = "";
    o->key_type = "ec-p256";
    o->garbage_bytes = GARBAGE_LEN;
    i = parse_options(argc, argv, 1, o);
    if (i < 0 || read_mode_file(o) != 0)
        return -1;
    if (argc - i != 2) {
        fail("expected a verb (csr or install) and a SERIAL after the options");
        return -1;
    }
    o->verb = argv[i];
    o->serial = argv[i + 1];
    if (strcmp(o->verb, "csr") != 0 && strcmp(o->verb, "install") != 0) {
        fail("%s: unknown verb (csr or install)", o->verb);
        return -1;
    }
    if (o->dir == NULL) {
        fail("--dir is required");
        return -1;
    }
    if (strcmp(o->verb, "install") == 0 && o->ca == NULL && !o->fail_install) {
        fail("install needs --ca ROOT.pem");
        return -1;
    }
    return 0;
}

/* The serial names files in DIR: it must be a plain, visible file name. */
static int serial_valid(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > MAX_SERIAL || s[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '/' || (unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Writes all of buf to fd.  Returns 0 or -1 (errno set). */
static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/*
 * Writes a memory BIO's contents to stdout: at once, or with --slow one byte
 * every SLOW_BYTE_MS.  With --linger the answer is followed by a child that
 * keeps stdout open and sleeps: the output never ends although the program
 * exits.  Returns 0 or -1.
 */
static int bio_to_stdout(const struct options *o, BIO *mem)
{
    char *data;
    long len = BIO_get_mem_data(mem, &data);

    if (len <= 0) {
        fail("writing to stdout: nothing to write");
        return -1;
    }
    for (long i = 0; o->slow && i < len; i++) {
        if (write_all(STDOUT_FILENO, data + i, 1) != 0) {
            fail("writing to stdout: %s", strerror(errno));
            return -1;
        }
        sleep_ms(SLOW_BYTE_MS);
    }
    if (!o->slow && write_all(STDOUT_FILENO, data, (size_t)len) != 0) {
        fail("writing to stdout: %s", strerror(errno));
        return -1;
    }
    if (o->linger && fork() == 0) {
        for (;;)
            pause(); /* holds stdout, in our process group, until the station kills it */
    }
    return 0;
}

/*
 * Puts a memory BIO's contents in DIR/final through a temporary file: the
 * file appears complete or not at all.  With exclusive set, an existing file
 * is kept and 1 is returned (another run made it first); otherwise it is
 * replaced.  Returns 0 on success, 1 (exclusive, exists), -1 on error.
 */
static int publish(const char *dir, const char *final, BIO *mem, int exclusive)
{
    char tmp[PATH_MAX];
    char *data;
    long len = BIO_get_mem_data(mem, &data);
    int fd, ret = -1;

    if (snprintf(tmp, sizeof tmp, "%s/.%s.XXXXXX", dir, strrchr(final, '/') + 1) >=
        (int)sizeof tmp) {
        fail("%s: path too long", final);
        return -1;
    }
    fd = mkstemp(tmp); /* mode 0600 */
    if (fd < 0) {
        fail("%s: %s", tmp, strerror(errno));
        return -1;
    }
    if (write_all(fd, data, (size_t)len) != 0 || fsync(fd) != 0) {
        fail("%s: %s", tmp, strerror(errno));
        close(fd);
        goto out;
    }
    if (close(fd) != 0) {
        fail("%s: %s", tmp, strerror(errno));
        goto out;
    }
    if (exclusive) {
        /* link() fails if final exists: two concurrent runs keep one key. */
        if (link(tmp, final) == 0) {
            ret = 0;
        } else if (errno == EEXIST) {
            ret = 1;
        } else {
            fail("%s: %s", final, strerror(errno));
        }
    } else if (rename(tmp, final) == 0) {
        ret = 0;
    } else {
        fail("%s: %s", final, strerror(errno));
    }
out:
    unlink(tmp);
    return ret;
}

/* Reads DIR/SERIAL.key.  Returns the key, or NULL (ENOENT: *missing = 1). */
static EVP_PKEY *load_key(const char *path, int *missing)
{
    EVP_PKEY *k = NULL;
    FILE *f = fopen(path, "r");

    *missing = 0;
    if (f == NULL) {
        if (errno == ENOENT)
            *missing = 1;
        else
            fail("%s: %s", path, strerror(errno));
        return NULL;
    }
    k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    if (k == NULL)
        fail("%s: not a PEM private key", path);
    fclose(f);
    return k;
}

static EVP_PKEY *generate_key(const char *type)
{
    EVP_PKEY *k;

    if (strcmp(type, "ec-p256") == 0)
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    else if (strcmp(type, "ec-p384") == 0)
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    else
        k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    if (k == NULL)
        fail("generating a %s key failed", type);
    return k;
}

/*
 * The device's key: DIR/SERIAL.key if it exists, else a new one, stored
 * before it is used.  Returns the key (caller frees) or NULL.
 */
static EVP_PKEY *device_key(const struct options *o, int create)
{
    char path[PATH_MAX];
    EVP_PKEY *k;
    BIO *mem = NULL;
    int missing, rc;

    if (snprintf(path, sizeof path, "%s/%s.key", o->dir, o->serial) >= (int)sizeof path) {
        fail("%s/%s.key: path too long", o->dir, o->serial);
        return NULL;
    }
    k = load_key(path, &missing);
    if (k != NULL || !missing)
        return k;
    if (!create) {
        fail("%s: no such key: this device never made a CSR", path);
        return NULL;
    }
    k = generate_key(o->key_type);
    if (k == NULL)
        return NULL;
    mem = BIO_new(BIO_s_mem());
    if (mem == NULL || PEM_write_bio_PrivateKey(mem, k, NULL, NULL, 0, NULL, NULL) != 1) {
        fail("encoding the private key failed");
        rc = -1;
    } else {
        rc = publish(o->dir, path, mem, 1);
    }
    BIO_free(mem);
    EVP_PKEY_free(k);
    if (rc < 0)
        return NULL;
    /* rc == 1: a concurrent run stored its key first; that one is the device's key. */
    return load_key(path, &missing);
}

/* The CN this device puts in its CSR.  Returns a malloc'd string or NULL. */
static char *device_cn(const struct options *o)
{
    size_t n = strlen(o->cn_prefix) + strlen(o->serial) + strlen(o->cn_suffix) + 1;
    char *cn = malloc(n);

    if (cn != NULL)
        snprintf(cn, n, "%s%s%s", o->cn_prefix, o->serial, o->cn_suffix);
    return cn;
}

static int do_csr(const struct options *o)
{
    EVP_PKEY *key = NULL;
    X509_REQ *req = NULL;
    BIO *mem = NULL;
    char *cn = device_cn(o);
    int ret = EXIT_FAIL;

    if (cn == NULL) {
        fail("out of memory");
        goto out;
    }
    key = device_key(o, 1);
    if (key == NULL)
        goto out;
    req = X509_REQ_new();
    mem = BIO_new(BIO_s_mem());
    if (req == NULL || mem == NULL) {
        fail("out of memory");
        goto out;
    }
    /*
     * The CN is set as a UTF8String without OpenSSL's length limit: a device
     * may present anything, and it is the station that must refuse it.
     */
    if (X509_REQ_set_version(req, 0) != 1 ||
        X509_NAME_add_entry_by_NID(X509_REQ_get_subject_name(req), NID_commonName,
                                   V_ASN1_UTF8STRING, (const unsigned char *)cn, -1, -1, 0) != 1 ||
        X509_REQ_set_pubkey(req, key) != 1) {
        fail("building the CSR failed");
        goto out;
    }
    if (X509_REQ_sign(req, key, EVP_sha256()) <= 0) {
        fail("signing the CSR failed");
        goto out;
    }
    if (PEM_write_bio_X509_REQ(mem, req) != 1) {
        fail("encoding the CSR failed");
        goto out;
    }
    if (bio_to_stdout(o, mem) != 0)
        goto out;
    ret = EXIT_OK;
out:
    BIO_free(mem);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    free(cn);
    return ret;
}

/* --garbage: N bytes of binary junk (the same every time); --endless: junk until killed. */
static int do_garbage(const struct options *o)
{
    static unsigned char buf[GARBAGE_LEN];
    uint32_t x = 0x2545f491u; /* xorshift32 */
    long left = o->garbage_bytes;

    for (size_t i = 0; i < sizeof buf; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (unsigned char)x;
    }
    while (o->endless || left > 0) {
        size_t n = o->endless || left > (long)sizeof buf ? sizeof buf : (size_t)left;
        if (write_all(STDOUT_FILENO, buf, n) != 0) {
            fail("writing to stdout: %s", strerror(errno));
            return EXIT_FAIL;
        }
        left -= (long)n;
    }
    return EXIT_OK;
}

/* --huge: a PEM "CSR" of HUGE_LEN bytes: looks like an answer, is far too big for a station. */
static int do_huge(void)
{
    static char line[65];
    long written = 0;

    memset(line, 'A', 64);
    line[64] = '\n';
    if (write_all(STDOUT_FILENO, "-----BEGIN CERTIFICATE REQUEST-----\n", 36) != 0)
        goto bad;
    for (; written < HUGE_LEN; written += (long)sizeof line)
        if (write_all(STDOUT_FILENO, line, sizeof line) != 0)
            goto bad;
    if (write_all(STDOUT_FILENO, "-----END CERTIFICATE REQUEST-----\n", 34) != 0)
        goto bad;
    return EXIT_OK;
bad:
    fail("writing to stdout: %s", strerror(errno));
    return EXIT_FAIL;
}

/* Reads stdin, at most MAX_CHAIN bytes.  Returns a malloc'd buffer or NULL. */
static char *read_stdin(size_t *len)
{
    char *buf = malloc(MAX_CHAIN + 1);
    size_t n = 0;

    *len = 0;
    if (buf == NULL) {
        fail("out of memory");
        return NULL;
    }
    for (;;) {
        ssize_t r = read(STDIN_FILENO, buf + n, MAX_CHAIN + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fail("reading the chain from stdin: %s", strerror(errno));
            free(buf);
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > MAX_CHAIN) {
            fail("the chain on stdin is larger than %d KiB", MAX_CHAIN / 1024);
            free(buf);
            return NULL;
        }
    }
    *len = n;
    return buf;
}

/* Parses every PEM certificate in buf, in order.  Returns the stack or NULL. */
static STACK_OF(X509) * parse_chain(const char *buf, size_t len)
{
    STACK_OF(X509) *sk = sk_X509_new_null();
    BIO *in = BIO_new_mem_buf(buf, (int)len);
    X509 *x;
    unsigned long e;

    if (sk == NULL || in == NULL) {
        fail("out of memory");
        goto bad;
    }
    ERR_set_mark();
    while ((x = PEM_read_bio_X509(in, NULL, NULL, NULL)) != NULL) {
        if (!sk_X509_push(sk, x)) {
            X509_free(x);
            fail("out of memory");
            goto bad;
        }
    }
    /* The loop ends with "no start line" at the end of input; anything else is damage. */
    e = ERR_peek_last_error();
    if (ERR_GET_LIB(e) != ERR_LIB_PEM || ERR_GET_REASON(e) != PEM_R_NO_START_LINE) {
        fail("the chain on stdin has a malformed certificate (after %d good ones)",
             sk_X509_num(sk));
        goto bad;
    }
    ERR_pop_to_mark();
    if (sk_X509_num(sk) == 0) {
        fail("no PEM certificate on stdin");
        goto bad;
    }
    BIO_free(in);
    return sk;
bad:
    BIO_free(in);
    sk_X509_pop_free(sk, X509_free);
    return NULL;
}

/* The leaf's CN as UTF-8 (caller frees with OPENSSL_free), or NULL. */
static char *leaf_cn(X509 *leaf)
{
    const X509_NAME *name = X509_get_subject_name(leaf);
    int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    unsigned char *utf8 = NULL;

    if (idx < 0)
        return NULL;
    if (ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx))) < 0)
        return NULL;
    return (char *)utf8;
}

/* Verifies leaf + untrusted intermediates to the anchors in ca_file.  Returns 0 or -1. */
static int verify_chain(const char *ca_file, X509 *leaf, STACK_OF(X509) * untrusted)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *vctx = X509_STORE_CTX_new();
    int ret = -1;

    if (store == NULL || vctx == NULL) {
        fail("out of memory");
        goto out;
    }
    if (X509_STORE_load_file(store, ca_file) != 1) {
        fail("--ca %s: cannot load a certificate", ca_file);
        goto out;
    }
    if (X509_STORE_CTX_init(vctx, store, leaf, untrusted) != 1 ||
        X509_STORE_CTX_set_purpose(vctx, X509_PURPOSE_SSL_CLIENT) != 1) {
        fail("setting up verification failed");
        goto out;
    }
    X509_STORE_CTX_set_flags(vctx, X509_V_FLAG_X509_STRICT);
    if (X509_verify_cert(vctx) != 1) {
        int err = X509_STORE_CTX_get_error(vctx);
        X509 *at = X509_STORE_CTX_get_current_cert(vctx);
        char subject[256] = "?";

        if (at != NULL)
            X509_NAME_oneline(X509_get_subject_name(at), subject, sizeof subject);
        ERR_clear_error();
        fail("the chain does not verify to %s: %s (depth %d, %s)", ca_file,
             X509_verify_cert_error_string(err), X509_STORE_CTX_get_error_depth(vctx), subject);
        goto out;
    }
    ret = 0;
out:
    X509_STORE_CTX_free(vctx);
    X509_STORE_free(store);
    return ret;
}

/*
 * --log: appends "install SERIAL THUMBPRINT" (the SHA-256 of the leaf's DER,
 * uppercase hex, as the audit log writes it; "-" if no certificate parses)
 * in one write to an O_APPEND file, so concurrent runs never mix lines.  It
 * is written before the chain is checked: the log is what the device
 * received, whatever it then made of it.  Returns 0 or -1.
 */
static int log_chain(const struct options *o, const char *buf, size_t len)
{
    BIO *in = BIO_new_mem_buf(buf, (int)len);
    X509 *leaf = in != NULL ? PEM_read_bio_X509(in, NULL, NULL, NULL) : NULL;
    unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char tp[2 * EVP_MAX_MD_SIZE + 1] = "-", line[MAX_SERIAL + 200];
    int der_len, fd, n, ret = -1;

    ERR_clear_error();
    if (leaf != NULL && (der_len = i2d_X509(leaf, &der)) > 0 &&
        EVP_Digest(der, (size_t)der_len, md, &mdlen, EVP_sha256(), NULL) == 1) {
        for (unsigned int i = 0; i < mdlen; i++)
            snprintf(tp + 2 * i, 3, "%02X", md[i]);
    }
    n = snprintf(line, sizeof line, "install %s %s\n", o->serial, tp);
    fd = open(o->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0 || write_all(fd, line, (size_t)n) != 0)
        fail("--log %s: %s", o->log, strerror(errno));
    else
        ret = 0;
    if (fd >= 0)
        close(fd);
    OPENSSL_free(der);
    X509_free(leaf);
    BIO_free(in);
    return ret;
}

static int do_install(const struct options *o)
{
    char *buf = NULL, *cn = NULL, *want_cn = NULL;
    size_t len;
    STACK_OF(X509) *chain = NULL;
    EVP_PKEY *key = NULL;
    X509 *leaf;
    BIO *mem = NULL;
    char path[PATH_MAX];
    int ret = EXIT_FAIL;

    buf = read_stdin(&len);
    if (buf == NULL)
        goto out;
    if (o->log != NULL && log_chain(o, buf, len) != 0)
        goto out;
    if (o->fail_install) {
        fail("install of %s failed (--fail-install)", o->serial);
        ret = EXIT_INSTALL_FAILED;
        goto out;
    }
    chain = parse_chain(buf, len);
    if (chain == NULL)
        goto out;
    leaf = sk_X509_value(chain, 0);
    key = device_key(o, 0);
    if (key == NULL)
        goto out;
    if (EVP_PKEY_eq(X509_get0_pubkey(leaf), key) != 1) {
        ERR_clear_error();
        fail("the certificate's public key is not the key of device %s", o->serial);
        goto out;
    }
    cn = leaf_cn(leaf);
    want_cn = device_cn(o);
    if (cn == NULL || want_cn == NULL || strcmp(cn, want_cn) != 0) {
        ERR_clear_error();
        fail("the certificate's CN is '%s', this device is '%s'", cn ? cn : "(none)",
             want_cn ? want_cn : "?");
        goto out;
    }
    /* Everything after the leaf on stdin is an untrusted intermediate; only --ca is trusted. */
    if (verify_chain(o->ca, leaf, chain) != 0)
        goto out;
    mem = BIO_new(BIO_s_mem());
    if (mem == NULL) {
        fail("out of memory");
        goto out;
    }
    for (int i = 0; i < sk_X509_num(chain); i++)
        if (PEM_write_bio_X509(mem, sk_X509_value(chain, i)) != 1) {
            fail("encoding the chain failed");
            goto out;
        }
    if (snprintf(path, sizeof path, "%s/%s.chain.pem", o->dir, o->serial) >= (int)sizeof path) {
        fail("%s/%s.chain.pem: path too long", o->dir, o->serial);
        goto out;
    }
    if (publish(o->dir, path, mem, 0) != 0)
        goto out;
    ret = EXIT_OK;
out:
    BIO_free(mem);
    EVP_PKEY_free(key);
    OPENSSL_free(cn);
    free(want_cn);
    sk_X509_pop_free(chain, X509_free);
    free(buf);
    return ret;
}

int main(int argc, char **argv)
{
    struct options o;
    const char *env_serial = getenv("LINECERT_SERIAL");
    struct stat st;

    /* A station that stops reading must not kill us with SIGPIPE: report it instead. */
    signal(SIGPIPE, SIG_IGN);
    if (parse_args(argc, argv, &o) != 0) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!serial_valid(o.serial)) {
        fail("serial '%s' is not a plain file name (empty, '/', leading '.' or control "
             "characters)",
             o.serial);
        return EXIT_FAIL;
    }
    if (stat(o.dir, &st) != 0) {
        fail("--dir %s: %s", o.dir, strerror(errno));
        return EXIT_FAIL;
    }
    if (!S_ISDIR(st.st_mode)) {
        fail("--dir %s: not a directory", o.dir);
        return EXIT_FAIL;
    }
    if (env_serial != NULL && strcmp(env_serial, o.serial) != 0)
        fprintf(stderr, "linecert-jig-sim: warning: LINECERT_SERIAL '%s' differs from '%s'\n",
                env_serial, o.serial);
    if (o.delay_ms > 0)
        sleep_ms(o.delay_ms);
    while (o.hang)
        pause(); /* until the station kills us */
    if (strcmp(o.verb, "csr") == 0) {
        if (o.huge)
            return do_huge();
        return o.garbage || o.endless ? do_garbage(&o) : do_csr(&o);
    }
    return do_install(&o);
}

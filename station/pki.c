/*
 * pki.c — `linecert pki init`: the demo/test PKI in a SoftHSM2 token.
 *
 * Two tokens inside DIR: "linecert-offline" with the root and factory CA
 * keys (a real plant keeps those offline) and "linecert-lines" with one key
 * per line.  Key pairs are generated inside the tokens by OpenSC's
 * pkcs11-tool and never leave them; the CA certificates are built and
 * signed by linecert-signer in --setup mode, so this process never holds a
 * private key or a PKCS#11 session.
 */
#include "pki.h"

#include "lcerr.h"
#include "profile.h"
#include "signer_client.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TOKEN_OFFLINE "linecert-offline"
#define TOKEN_LINES   "linecert-lines"
#define YEAR          (365LL * 86400)

static const char *MODULE_PATHS[] = {
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
};

struct pki {
    const char *dir;
    const char *module;
    char conf[PATH_MAX];
    char pin[65];
    char so_pin[65];
    const char *keyspec; /* pkcs11-tool --key-type */
    char *err;
    size_t errlen;
};

/* snprintf for paths: returns -1 instead of silently truncating. */
static int pathf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int pathf(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

static const char *find_module(void)
{
    const char *env = getenv("LINECERT_PKCS11_MODULE");

    if (env != NULL && *env != '\0')
        return env;
    for (size_t i = 0; i < sizeof MODULE_PATHS / sizeof MODULE_PATHS[0]; i++)
        if (access(MODULE_PATHS[i], R_OK) == 0)
            return MODULE_PATHS[i];
    return NULL;
}

/* Runs argv with SOFTHSM2_CONF set; on failure puts the tool's last output line in err. */
static int run_tool(struct pki *p, const char *const argv[])
{
    int pipefd[2], status = 0;
    char out[4096];
    size_t used = 0;
    ssize_t n;
    pid_t pid;

    if (pipe2(pipefd, O_CLOEXEC) != 0)
        return lc_seterr(LC_ERR_IO, p->err, p->errlen, "pipe: %s", strerror(errno));
    pid = fork();
    if (pid < 0)
        return lc_seterr(LC_ERR_IO, p->err, p->errlen, "fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(pipefd[1], 1);
        dup2(pipefd[1], 2);
        setenv("SOFTHSM2_CONF", p->conf, 1);
        {
            union {
                const char *const *c;
                char *const *v;
            } u = {argv};
            execvp(u.v[0], u.v);
        }
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(pipefd[1]);
    while ((n = read(pipefd[0], out + used, sizeof out - 1 - used)) > 0) {
        used += (size_t)n;
        if (used == sizeof out - 1)
            used = 0; /* keep the tail: the error is at the end */
    }
    out[used] = '\0';
    close(pipefd[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char *nl;
        while (used > 0 && (out[used - 1] == '\n' || out[used - 1] == ' '))
            out[--used] = '\0';
        nl = strrchr(out, '\n');
        return lc_seterr(LC_ERR_HSM, p->err, p->errlen, "%s failed: %s", argv[0],
                         nl ? nl + 1 : out);
    }
    return LC_OK;
}

static int write_file(struct pki *p, const char *name, const void *data, size_t len, mode_t mode)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    int fd, ok;

    if (pathf(path, sizeof path, "%s/%s", p->dir, name) != 0 ||
        pathf(tmp, sizeof tmp, "%s.tmp", path) != 0)
        return lc_seterr(LC_ERR_IO, p->err, p->errlen, "path too long");
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return lc_seterr(LC_ERR_IO, p->err, p->errlen, "%s: %s", tmp, strerror(errno));
    ok = write(fd, data, len) == (ssize_t)len && fchmod(fd, mode) == 0 && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return lc_seterr(LC_ERR_IO, p->err, p->errlen, "%s: %s", path, strerror(errno));
    }
    return LC_OK;
}

static void random_hex(char *out, size_t bytes)
{
    unsigned char r[32];

    RAND_priv_bytes(r, (int)bytes);
    lc_hex(r, bytes, 0, out);
    OPENSSL_cleanse(r, sizeof r);
}

static int init_token(struct pki *p, const char *label)
{
    const char *argv[] = {"softhsm2-util", "--init-token", "--free",   "--label", label,
                          "--pin",         p->pin,         "--so-pin", p->so_pin, NULL};
    return run_tool(p, argv);
}

static int gen_key(struct pki *p, const char *token, const char *label, const char *id)
{
    const char *argv[] = {"pkcs11-tool",  "--module", p->module, "--token-label", token,
                          "--login",      "--pin",    p->pin,    "--keypairgen",  "--key-type",
                          p->keyspec,     "--label",  label,     "--id",          id,
                          "--usage-sign", NULL};
    return run_tool(p, argv);
}

/* Asks the setup-mode signer for a CA certificate; *out is a new X509. */
static int make_ca(struct pki *p, signer_client_t *sc, const char *issuer_uri, X509 *issuer,
                   const char *subject_uri, const char *cn, int pathlen, int years, X509 **out)
{
    proto_msg_t m = {0}, r = {0};
    signer_result_t res = {0};
    unsigned char serial[PROFILE_SERIAL_LEN], *ider = NULL;
    const unsigned char *cp;
    int64_t now = (int64_t)time(NULL);
    int ilen = 0, ret;

    *out = NULL;
    if (profile_draw_serial(serial) != LC_OK)
        return lc_seterr(LC_ERR_CRYPTO, p->err, p->errlen, "random generator failed");
    proto_init(&m, PROTO_CA_CERT, 0);
    proto_put_str(&m, T_ISSUER_KEY_URI, issuer_uri);
    proto_put_str(&m, T_SUBJECT_KEY_URI, subject_uri);
    proto_put_str(&m, T_SUBJECT_CN, cn);
    proto_put_str(&m, T_SUBJECT_O, "linecert demo");
    proto_put_u32(&m, T_PATHLEN, (uint32_t)pathlen);
    proto_put(&m, T_SERIAL, serial, sizeof serial);
    proto_put_i64(&m, T_NOT_BEFORE, now - 3600);
    proto_put_i64(&m, T_NOT_AFTER, now + years * YEAR);
    if (issuer != NULL) {
        ilen = i2d_X509(issuer, &ider);
        proto_put(&m, T_ISSUER_CERT, ider, ilen > 0 ? (size_t)ilen : 0);
    }
    ret = signer_client_call(sc, &m, &r, p->err, p->errlen);
    if (ret == LC_OK)
        ret = signer_client_result(&r, &res);
    if (ret == LC_OK && res.kind != PROTO_CERT)
        ret = lc_seterr(res.err ? res.err : LC_ERR_SIGNER, p->err, p->errlen, "%s: %s", cn,
                        res.detail);
    if (ret == LC_OK) {
        cp = res.der;
        *out = d2i_X509(NULL, &cp, (long)res.der_len);
        if (*out == NULL)
            ret = lc_seterr(LC_ERR_CRYPTO, p->err, p->errlen, "%s: signer returned bad DER", cn);
    }
    free(res.der);
    OPENSSL_free(ider);
    proto_free(&m);
    proto_free(&r);
    return ret;
}

static int write_pem(struct pki *p, const char *name, X509 *const *certs, int n)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data;
    long len;
    int ret = LC_ERR_NOMEM;

    if (b == NULL)
        return ret;
    for (int i = 0; i < n; i++)
        if (!PEM_write_bio_X509(b, certs[i]))
            goto out;
    len = BIO_get_mem_data(b, &data);
    ret = write_file(p, name, data, (size_t)len, 0644);
out:
    BIO_free(b);
    return ret;
}

static int already_there(const char *dir)
{
    static const char *marks[] = {"station.ini", "tokens", "pin", "root.pem"};
    char path[PATH_MAX];

    for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++) {
        if (pathf(path, sizeof path, "%s/%s", dir, marks[i]) == 0 && access(path, F_OK) == 0)
            return 1;
    }
    return 0;
}

static int remove_old(struct pki *p)
{
    char tokens[PATH_MAX];
    const char *argv[] = {"rm", "-rf", tokens, NULL};

    if (pathf(tokens, sizeof tokens, "%s/tokens", p->dir) != 0)
        return lc_seterr(LC_ERR_IO, p->err, p->errlen, "path too long");
    return run_tool(p, argv);
}

int pki_init(const pki_opts_t *o, char *err, size_t errlen)
{
    struct pki p = {0};
    char dir[PATH_MAX], tokens[PATH_MAX], buf[4096], uri[200], uri2[200], label[32], id[8];
    char cn[64], name[64];
    signer_client_t *sc = NULL;
    signer_conf_t conf;
    X509 *root = NULL, *factory = NULL, *line = NULL;
    int ret, n;

    p.err = err;
    p.errlen = errlen;
    if (o->lines < 1 || o->lines > 64)
        return lc_seterr(LC_ERR_USAGE, err, errlen, "--lines must be 1..64");
    if (strcmp(o->key_type, "ec-p256") == 0)
        p.keyspec = "EC:prime256v1";
    else if (strcmp(o->key_type, "ec-p384") == 0)
        p.keyspec = "EC:secp384r1";
    else if (strcmp(o->key_type, "rsa-2048") == 0)
        p.keyspec = "rsa:2048";
    else if (strcmp(o->key_type, "rsa-3072") == 0)
        p.keyspec = "rsa:3072";
    else
        return lc_seterr(LC_ERR_USAGE, err, errlen,
                         "--key-type must be ec-p256, ec-p384, rsa-2048 or rsa-3072");
    p.module = find_module();
    if (p.module == NULL)
        return lc_seterr(LC_ERR_CONFIG, err, errlen,
                         "SoftHSM2 module not found (install softhsm2, or set "
                         "LINECERT_PKCS11_MODULE)");
    if (mkdir(o->dir, 0700) != 0 && errno != EEXIST)
        return lc_seterr(LC_ERR_IO, err, errlen, "%s: %s", o->dir, strerror(errno));
    if (realpath(o->dir, dir) == NULL)
        return lc_seterr(LC_ERR_IO, err, errlen, "%s: %s", o->dir, strerror(errno));
    p.dir = dir;
    if (already_there(dir) && !o->force)
        return lc_seterr(LC_ERR_EXISTS, err, errlen,
                         "%s already holds a PKI; use --force to replace it", dir);
    if (pathf(p.conf, sizeof p.conf, "%s/softhsm2.conf", dir) != 0 ||
        pathf(tokens, sizeof tokens, "%s/tokens", dir) != 0)
        return lc_seterr(LC_ERR_IO, err, errlen, "%s: path too long", dir);
    if (o->force && (ret = remove_old(&p)) != LC_OK)
        return ret;
    if (mkdir(tokens, 0700) != 0)
        return lc_seterr(LC_ERR_IO, err, errlen, "%s: %s", tokens, strerror(errno));
    n = snprintf(buf, sizeof buf,
                 "# SoftHSM2 configuration of the linecert demo PKI (made by pki init)\n"
                 "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n"
                 "slots.removable = false\n",
                 tokens);
    if ((ret = write_file(&p, "softhsm2.conf", buf, (size_t)n, 0600)) != LC_OK)
        return ret;
    random_hex(p.pin, 16);
    random_hex(p.so_pin, 16);
    n = snprintf(buf, sizeof buf, "%s\n", p.pin);
    if ((ret = write_file(&p, "pin", buf, (size_t)n, 0600)) != LC_OK)
        goto out;
    n = snprintf(buf, sizeof buf, "%s\n", p.so_pin);
    if ((ret = write_file(&p, "so-pin", buf, (size_t)n, 0600)) != LC_OK)
        goto out;
    if ((ret = init_token(&p, TOKEN_OFFLINE)) != LC_OK ||
        (ret = init_token(&p, TOKEN_LINES)) != LC_OK ||
        (ret = gen_key(&p, TOKEN_OFFLINE, "root", "01")) != LC_OK ||
        (ret = gen_key(&p, TOKEN_OFFLINE, "factory", "02")) != LC_OK)
        goto out;
    for (int i = 1; i <= o->lines; i++) {
        pathf(label, sizeof label, "line-%d", i);
        pathf(id, sizeof id, "%02x", 0x10 + i);
        if ((ret = gen_key(&p, TOKEN_LINES, label, id)) != LC_OK)
            goto out;
    }
    /* The CA certificates, signed inside the tokens by the signer in setup mode. */
    ret = signer_client_spawn(o->signer, 1, 1, &sc, err, errlen);
    if (ret != LC_OK)
        goto out;
    conf = (signer_conf_t){p.module, NULL, p.conf, NULL, 0};
    if (pathf(buf, sizeof buf, "%s/pin", dir) != 0) {
        ret = lc_seterr(LC_ERR_IO, err, errlen, "%s: path too long", dir);
        goto out;
    }
    conf.pin_file = buf;
    if ((ret = signer_client_configure(sc, &conf, err, errlen)) != LC_OK)
        goto out;
    snprintf(uri, sizeof uri, "pkcs11:token=%s;object=root", TOKEN_OFFLINE);
    if ((ret = make_ca(&p, sc, uri, NULL, uri, "linecert Demo Root CA", -1, 25, &root)) != LC_OK)
        goto out;
    snprintf(uri2, sizeof uri2, "pkcs11:token=%s;object=factory", TOKEN_OFFLINE);
    if ((ret = make_ca(&p, sc, uri, root, uri2, "linecert Demo Factory CA", 1, 20, &factory)) !=
        LC_OK)
        goto out;
    if ((ret = write_pem(&p, "root.pem", &root, 1)) != LC_OK ||
        (ret = write_pem(&p, "factory.pem", &factory, 1)) != LC_OK)
        goto out;
    for (int i = 1; i <= o->lines; i++) {
        X509 *chain[3];
        snprintf(uri, sizeof uri, "pkcs11:token=%s;object=line-%d", TOKEN_LINES, i);
        snprintf(cn, sizeof cn, "linecert Line %d CA", i);
        if ((ret = make_ca(&p, sc, uri2, factory, uri, cn, 0, 15, &line)) != LC_OK)
            goto out;
        chain[0] = line;
        chain[1] = factory;
        chain[2] = root;
        snprintf(name, sizeof name, "line-%d.pem", i);
        if ((ret = write_pem(&p, name, chain, 1)) != LC_OK)
            goto out;
        snprintf(name, sizeof name, "line-%d-chain.pem", i);
        if ((ret = write_pem(&p, name, chain, 3)) != LC_OK)
            goto out;
        X509_free(line);
        line = NULL;
    }
    /* station.ini: works as it is, paths relative to itself, no environment needed */
    {
        size_t used = 0;
        time_t t = time(NULL);
        char when[32];
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
        used += (size_t)snprintf(buf + used, sizeof buf - used,
                                 "# linecert station configuration, made by `linecert pki init` "
                                 "on %s.\n# Relative paths are relative to this file. Keys: "
                                 "docs/config.md\n\n[station]\naudit_db = audit.db\n"
                                 "pkcs11_module = %s\npin_file = pin\nsofthsm2_conf = "
                                 "softhsm2.conf\n",
                                 when, p.module);
        for (int i = 1; i <= o->lines && used < sizeof buf; i++)
            used += (size_t)snprintf(buf + used, sizeof buf - used,
                                     "\n[line.%d]\nname = Line %d\nca_key = "
                                     "pkcs11:token=%s;object=line-%d;type=private\n"
                                     "chain = line-%d-chain.pem\nvalidity_days = 3650\n"
                                     "subject_o = linecert demo\n",
                                     i, i, TOKEN_LINES, i, i);
        if (used >= sizeof buf) {
            ret = lc_seterr(LC_ERR_INTERNAL, err, errlen, "station.ini too long");
            goto out;
        }
        ret = write_file(&p, "station.ini", buf, used, 0644);
    }
out:
    signer_client_free(sc);
    X509_free(root);
    X509_free(factory);
    X509_free(line);
    OPENSSL_cleanse(p.pin, sizeof p.pin);
    OPENSSL_cleanse(p.so_pin, sizeof p.so_pin);
    return ret;
}

/*
 * cli_bench.c — `linecert bench`: end-to-end issuance against the raw
 * signing rate of the same key (docs/benchmarks.md).
 *
 * Device CSRs are made up front (not timed).  Then the signer signs COUNT
 * digests with the line key on THREADS threads (raw_sign_per_s: the
 * physical limit), and the full pipeline issues COUNT certificates (CSR in
 * -> policy -> signer -> durable audit row -> chain out) with the same
 * number of signing threads (issue_per_s).  With --offered-rate R the
 * requests arrive on a fixed schedule of R per second instead of as fast as
 * possible, and the latency of each is measured from its scheduled arrival.
 * Every figure is one `name: value` line.  The run is audited like any
 * other issuance; its CNs are unique per run (bench-<random>-<n>).
 */
#include "cli.h"
#include "issuer.h"
#include "lcerr.h"

#include <getopt.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

struct csr {
    unsigned char *der;
    int len;
};

struct run {
    issuer_t *is;
    const char *line;
    struct csr *csrs;
    int count;
    double rate; /* offered requests/s, 0 = closed loop */
    double t0;
    atomic_int next;
    atomic_int failed;
    double *lat_ms; /* per request */
    char first_error[600];
    pthread_mutex_t mu;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int make_csrs(struct csr *out, int n, const char *tag)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

    /* One device key for all: the station's cost does not depend on which key it certifies. */
    if (key == NULL)
        return -1;
    for (int i = 0; i < n; i++) {
        X509_REQ *req = X509_REQ_new();
        X509_NAME *name = X509_NAME_new();
        char cn[64];
        snprintf(cn, sizeof cn, "bench-%s-%d", tag, i);
        out[i].der = NULL;
        out[i].len = -1;
        if (req != NULL && name != NULL &&
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                       0) == 1 &&
            X509_REQ_set_subject_name(req, name) == 1 && X509_REQ_set_pubkey(req, key) == 1 &&
            X509_REQ_sign(req, key, EVP_sha256()) > 0)
            out[i].len = i2d_X509_REQ(req, &out[i].der);
        X509_NAME_free(name);
        X509_REQ_free(req);
        if (out[i].len <= 0) {
            EVP_PKEY_free(key);
            return -1;
        }
    }
    EVP_PKEY_free(key);
    return 0;
}

static void *client(void *arg)
{
    struct run *r = arg;
    int i;

    while ((i = atomic_fetch_add(&r->next, 1)) < r->count) {
        issue_req_t req = {0};
        issue_res_t res;
        double start;
        char *pem = NULL;
        size_t pem_len;
        if (r->rate > 0) { /* open loop: wait for this request's arrival time */
            double due = r->t0 + i / r->rate, t = now_s();
            if (due > t) {
                struct timespec ts = {(time_t)(due - t),
                                      (long)((due - t - (time_t)(due - t)) * 1e9)};
                nanosleep(&ts, NULL);
            }
            start = due;
        } else {
            start = now_s();
        }
        req.line = r->line;
        req.input = r->csrs[i].der;
        req.input_len = (size_t)r->csrs[i].len;
        if (issuer_issue(r->is, &req, &res) == LC_OK &&
            issuer_chain_pem(r->is, r->line, res.der, res.der_len, 0, &pem, &pem_len) == LC_OK) {
            r->lat_ms[i] = (now_s() - start) * 1e3;
        } else {
            r->lat_ms[i] = -1;
            if (atomic_fetch_add(&r->failed, 1) == 0) {
                pthread_mutex_lock(&r->mu);
                snprintf(r->first_error, sizeof r->first_error, "%s: %s",
                         res.outcome == LC_ERR_REFUSED ? res.refusal.detail : res.message,
                         lc_strerror(res.outcome));
                pthread_mutex_unlock(&r->mu);
            }
        }
        free(pem);
        issue_res_clear(&res);
    }
    return NULL;
}

/* CPU seconds (user + system) of a process, from /proc. */
static double proc_cpu_s(int pid)
{
    char path[64];
    unsigned long long ut = 0, st = 0;
    FILE *f;
    int ok;

    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    f = fopen(path, "re");
    if (f == NULL)
        return 0;
    /* fields 14 and 15; the command name (field 2) has no spaces here */
    ok = fscanf(f, "%*d %*s %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st);
    fclose(f);
    return ok == 2 ? (double)(ut + st) / (double)sysconf(_SC_CLK_TCK) : 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static long vm_hwm_kb(int pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/status", pid);
    f = fopen(path, "re");
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmHWM: %ld", &kb) == 1)
            break;
    if (f != NULL)
        fclose(f);
    return kb;
}

int cmd_bench(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"line", required_argument, NULL, 'l'},
                                         {"count", required_argument, NULL, 'n'},
                                         {"threads", required_argument, NULL, 't'},
                                         {"offered-rate", required_argument, NULL, 'r'},
                                         {"clients", required_argument, NULL, 'C'},
                                         {NULL, 0, NULL, 0}};
    const char *config = NULL, *line = NULL;
    int count = 2000, threads = 1, clients = 0, c, ret = EXIT_USAGE;
    double rate = 0, raw_s = 0, t1, elapsed, *sorted = NULL;
    lc_config_t *cfg = NULL;
    struct run r;
    pthread_t *th = NULL;
    unsigned char rnd[4];
    char tag[16], err[512], actor[160], user[128];
    int64_t raw_ns = 0;
    long long rows0 = 0, txns0 = 0, rows1 = 0, txns1 = 0;
    int signer_pid = 0, hsm_ok = 0;
    uint64_t sigs = 0;
    unsigned restarts = 0;
    struct rusage ru;
    int ok_n = 0;
    double cpu_station0 = 0, cpu_station1 = 0, cpu_signer0 = 0, cpu_signer1 = 0;

    memset(&r, 0, sizeof r);
    optind = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'l':
            line = optarg;
            break;
        case 'n':
            count = atoi(optarg);
            break;
        case 't':
            threads = atoi(optarg);
            break;
        case 'r':
            rate = atof(optarg);
            break;
        case 'C':
            clients = atoi(optarg);
            break;
        default:
            return EXIT_USAGE;
        }
    }
    if (optind != argc || line == NULL || count < 1 || count > 10000000 || threads < 1 ||
        threads > 64 || rate < 0 || clients < 0 || clients > 1024)
        return usage_error("%s", "bench: --config FILE --line ID [--count N] [--threads 1..64] "
                                 "[--offered-rate R] [--clients C]");
    if ((ret = load_config(config, &cfg)) != 0)
        return ret;
    cfg->signer_threads = threads;
    /*
     * Enough requests in flight to keep both processes busy: with 16 per
     * signing thread the pipeline waited on its own round trips (about 1.4 of
     * the 2 cores used, EC P-256); 64 per thread saturates it.  Latency at
     * saturation is queueing; --offered-rate measures latency under a load.
     */
    if (clients == 0)
        clients = rate > 0 ? 256 : 64 * threads;
    RAND_bytes(rnd, sizeof rnd);
    snprintf(tag, sizeof tag, "%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3]);
    r.csrs = calloc((size_t)count, sizeof *r.csrs);
    r.lat_ms = calloc((size_t)count, sizeof *r.lat_ms);
    sorted = calloc((size_t)count, sizeof *sorted);
    th = calloc((size_t)clients, sizeof *th);
    if (r.csrs == NULL || r.lat_ms == NULL || sorted == NULL || th == NULL ||
        make_csrs(r.csrs, count, tag) != 0) {
        fprintf(stderr, "linecert: bench: cannot prepare %d CSRs\n", count);
        ret = EXIT_USAGE;
        goto out;
    }
    actor_name(user, sizeof user);
    snprintf(actor, sizeof actor, "bench (%s)", user);
    ret = issuer_open(cfg, line, actor, 0, &r.is, err, sizeof err);
    if (ret == LC_OK)
        ret = issuer_bench_sign(r.is, line, (uint32_t)count, &raw_ns, err, sizeof err);
    if (ret != LC_OK) {
        fprintf(stderr, "linecert: bench: %s\n", err);
        ret = exit_code(ret);
        goto out;
    }
    raw_s = raw_ns / 1e9;
    r.line = line;
    r.count = count;
    r.rate = rate;
    pthread_mutex_init(&r.mu, NULL);
    issuer_write_stats(r.is, &rows0, &txns0);
    issuer_probe(r.is, &hsm_ok, &sigs, &restarts, &signer_pid, err, sizeof err);
    cpu_station0 = proc_cpu_s((int)getpid());
    cpu_signer0 = proc_cpu_s(signer_pid);
    r.t0 = now_s();
    for (int i = 0; i < clients; i++)
        pthread_create(&th[i], NULL, client, &r);
    for (int i = 0; i < clients; i++)
        pthread_join(th[i], NULL);
    t1 = now_s();
    elapsed = t1 - r.t0;
    cpu_station1 = proc_cpu_s((int)getpid());
    cpu_signer1 = proc_cpu_s(signer_pid);
    issuer_write_stats(r.is, &rows1, &txns1);
    issuer_probe(r.is, &hsm_ok, &sigs, &restarts, &signer_pid, err, sizeof err);
    for (int i = 0; i < count; i++)
        if (r.lat_ms[i] >= 0)
            sorted[ok_n++] = r.lat_ms[i];
    qsort(sorted, (size_t)ok_n, sizeof *sorted, cmp_double);
    getrusage(RUSAGE_SELF, &ru);
    printf("key_type: %s\n", issuer_line_key_type(r.is, line));
    printf("count: %d\n", count);
    printf("threads: %d\n", threads);
    printf("clients: %d\n", clients);
    if (rate > 0)
        printf("offered_rate_per_s: %.0f\n", rate);
    printf("raw_sign_per_s: %.0f\n", count / raw_s);
    printf("issue_per_s: %.0f\n", ok_n / elapsed);
    printf("ratio: %.2f\n", (ok_n / elapsed) / (count / raw_s));
    printf("p50_ms: %.2f\n", ok_n ? sorted[ok_n / 2] : 0);
    printf("p99_ms: %.2f\n", ok_n ? sorted[(int)((ok_n - 1) * 0.99)] : 0);
    printf("max_ms: %.2f\n", ok_n ? sorted[ok_n - 1] : 0);
    printf("failed: %d\n", atomic_load(&r.failed));
    printf("station_cpu_us_per_cert: %.0f\n", (cpu_station1 - cpu_station0) * 1e6 / count);
    printf("signer_cpu_us_per_cert: %.0f\n", (cpu_signer1 - cpu_signer0) * 1e6 / count);
    printf("rows_per_commit: %.1f\n",
           txns1 > txns0 ? (double)(rows1 - rows0) / (double)(txns1 - txns0) : 0);
    printf("max_rss_kb: %ld\n", ru.ru_maxrss);
    printf("signer_max_rss_kb: %ld\n", signer_pid > 0 ? vm_hwm_kb(signer_pid) : -1L);
    if (atomic_load(&r.failed) > 0)
        fprintf(stderr, "linecert: bench: %d requests failed; first: %s\n", atomic_load(&r.failed),
                r.first_error);
    ret = atomic_load(&r.failed) > 0 ? EXIT_SIGNER : 0;
out:
    issuer_free(r.is);
    for (int i = 0; r.csrs != NULL && i < count; i++)
        OPENSSL_free(r.csrs[i].der);
    free(r.csrs);
    free(r.lat_ms);
    free(sorted);
    free(th);
    config_free(cfg);
    return ret;
}

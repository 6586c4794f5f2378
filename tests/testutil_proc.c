/*
 * testutil_proc.c — see testutil_proc.h.
 */
#include "testutil_proc.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROCS 16

static pid_t procs[MAX_PROCS];
static int nprocs;

double tu_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void tu_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void tu_track(pid_t pid)
{
    ck_assert_int_lt(nprocs, MAX_PROCS);
    procs[nprocs++] = pid;
}

int tu_tracked(pid_t pid)
{
    for (int i = 0; i < nprocs; i++)
        if (procs[i] == pid)
            return 1;
    return 0;
}

void tu_untrack(pid_t pid)
{
    for (int i = 0; i < nprocs; i++) {
        if (procs[i] == pid) {
            procs[i] = procs[--nprocs];
            return;
        }
    }
}

void tu_kill_tracked(void)
{
    while (nprocs > 0)
        tu_kill_group(procs[nprocs - 1]);
}

void tu_forget_tracked(void)
{
    nprocs = 0;
}

int tu_wait_exit(pid_t pid, double timeout_s, int *status)
{
    double until = tu_now_s() + timeout_s;

    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR)) {
            if (r < 0)
                *status = -1;
            tu_untrack(pid);
            return 1;
        }
        if (tu_now_s() >= until)
            return 0;
        tu_sleep_ms(10);
    }
}

void tu_kill_group(pid_t pid)
{
    int status;

    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    tu_untrack(pid);
}

int tu_proc_stat(pid_t pid, pid_t *ppid, char *state, char comm[32])
{
    char path[64], buf[1024], *lp, *rp;
    FILE *f;
    size_t n;
    int p = 0;

    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    lp = strchr(buf, '(');
    rp = strrchr(buf, ')');
    if (lp == NULL || rp == NULL || sscanf(rp + 2, "%c %d", state, &p) != 2)
        return 0;
    *ppid = (pid_t)p;
    if (comm != NULL)
        snprintf(comm, 32, "%.*s", (int)(rp - lp - 1), lp + 1);
    return 1;
}

/* The next process in an opendir("/proc") listing; 0 at its end. */
static pid_t next_pid(DIR *d)
{
    struct dirent *e;

    while (d != NULL && (e = readdir(d)) != NULL)
        if (atoi(e->d_name) > 0)
            return (pid_t)atoi(e->d_name);
    return 0;
}

int tu_orphans(pid_t *out, int cap, int alive_only, const char *name)
{
    DIR *d = opendir("/proc");
    pid_t pid;
    int n = 0;

    while ((pid = next_pid(d)) > 0) {
        pid_t ppid = 0;
        char state = 0, comm[32];
        if (tu_tracked(pid) || !tu_proc_stat(pid, &ppid, &state, comm) || ppid != getpid())
            continue;
        if ((alive_only && state == 'Z') || (name != NULL && strcmp(comm, name) != 0))
            continue;
        if (n < cap)
            out[n] = pid;
        n++;
    }
    if (d != NULL)
        closedir(d);
    return n;
}

void tu_reap_orphans(int kill_them)
{
    pid_t pids[256];
    int n = tu_orphans(pids, 256, 0, NULL);

    for (int i = 0; i < n && i < 256; i++) {
        pid_t ppid;
        char state = 0;
        if (kill_them)
            kill(pids[i], SIGKILL);
        if (kill_them || (tu_proc_stat(pids[i], &ppid, &state, NULL) && state == 'Z'))
            waitpid(pids[i], NULL, 0);
    }
}

int tu_jget(const char *b, const char *e, const char *key, char *out, size_t n)
{
    char pat[64];
    size_t pl, i = 0;
    const char *p;

    snprintf(pat, sizeof pat, "\"%s\"", key);
    pl = strlen(pat);
    for (p = b; p + pl <= e && memcmp(p, pat, pl) != 0; p++)
        ;
    if (p + pl > e)
        return -1;
    for (p += pl; p < e && (*p == ' ' || *p == '\n' || *p == '\t'); p++)
        ;
    if (p >= e || *p != ':')
        return -1;
    for (p++; p < e && (*p == ' ' || *p == '\n' || *p == '\t'); p++)
        ;
    if (p < e && *p == '"')
        for (p++; p < e && *p != '"' && i + 1 < n; p++)
            out[i++] = *p;
    else
        for (; p < e && strchr(",}] \n\r\t", *p) == NULL && i + 1 < n; p++)
            out[i++] = *p;
    out[i] = '\0';
    return 0;
}

int tu_count_procs_with(const char *a, const char *b)
{
    DIR *d = opendir("/proc");
    pid_t pid;
    int n = 0;

    while ((pid = next_pid(d)) > 0) {
        char path[64], buf[4096], state = 0;
        pid_t ppid;
        size_t len;
        FILE *f;
        if (tu_proc_stat(pid, &ppid, &state, NULL) && state == 'Z')
            continue;
        snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
        if ((f = fopen(path, "r")) == NULL)
            continue;
        len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        for (size_t i = 0; i < len; i++)
            if (buf[i] == '\0')
                buf[i] = ' ';
        buf[len] = '\0';
        if (strstr(buf, a) != NULL && strstr(buf, b) != NULL)
            n++;
    }
    if (d != NULL)
        closedir(d);
    return n;
}

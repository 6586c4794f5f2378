/*
 * testutil_proc.h — the child processes of the integration suites (daemon,
 * fault): a list of tracked children that teardown kills, bounded waits,
 * process-group kills, and the orphans a killed daemon leaves (its signer and
 * jig programs, re-parented to the test process as a child subreaper).  Plus
 * the clock, and reading one value out of the flat JSON the programs print.
 */
#ifndef LINECERT_TESTUTIL_PROC_H
#define LINECERT_TESTUTIL_PROC_H

#include <stddef.h>
#include <sys/types.h>

double tu_now_s(void);    /* CLOCK_MONOTONIC, seconds */
void tu_sleep_ms(int ms); /* resumes after signals */

/* Children to kill in teardown (at most 16 at a time; fails the test beyond). */
void tu_track(pid_t pid);
void tu_untrack(pid_t pid);
int tu_tracked(pid_t pid);
void tu_kill_tracked(void);   /* tu_kill_group on each, newest first */
void tu_forget_tracked(void); /* a new test case starts with none */

/* Waits at most timeout_s for a child to exit: 1 with its wait status (-1 if not ours), or 0. */
int tu_wait_exit(pid_t pid, double timeout_s, int *status);

/* SIGKILL to a child's whole process group and the child, then reaps and untracks it. */
void tu_kill_group(pid_t pid);

/* Parent, state and (if comm) name of a process from /proc; 0 if it is gone. */
int tu_proc_stat(pid_t pid, pid_t *ppid, char *state, char comm[32]);

/*
 * Our untracked children (re-parented orphans included), zombies too unless
 * alive_only, named name if not NULL: up to cap pids into out; returns how many there are.
 */
int tu_orphans(pid_t *out, int cap, int alive_only, const char *name);

/* Reaps the zombies among our untracked children; with kill_them, kills and reaps them all. */
void tu_reap_orphans(int kill_them);

/* Live (not zombie) processes whose command line contains both a and b. */
int tu_count_procs_with(const char *a, const char *b);

/* "key": value inside [b, e): a string's contents or a bare token into out; -1 if absent. */
int tu_jget(const char *b, const char *e, const char *key, char *out, size_t n);

#endif

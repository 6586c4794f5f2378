# shellcheck shell=bash
# soak-common.sh — shared by the memory soaks (soak-16.sh, soak-pipeline.sh).
# Sourced, not run.  Reads a process's memory from /proc and summarises a
# sample file of lines "t_s issued a_rss_kb a_anon_kb b_rss_kb b_anon_kb",
# where a is the issuing process (linecertd or linecert bench) and b its
# linecert-signer.
#
# VmRSS is what the "RSS under 50 MB" means.  RssAnon is the part
# that a leak would grow: it leaves out the mapped program and libraries and
# the audit store's WAL index (shared memory), which SQLite maps and whose
# resident pages follow the WAL's size, not the number of issuances.

# proc_kb PID FIELD: FIELD (VmRSS, RssAnon, VmHWM) of PID in kB; 0 if PID is gone.
proc_kb() {
    awk -v f="$2:" '$1 == f { print $2; found = 1; exit } END { if (!found) print 0 }' \
        "/proc/$1/status" 2>/dev/null || echo 0
}

# soak_summary FILE A_NAME B_NAME [FROM_ISSUED]: prints `name: value` lines for
# the samples in FILE with issued >= FROM_ISSUED (default 0): first, peak and
# last of each column, the growth of each per 100,000 issuances (least-squares
# slope over the samples from 10 % of the issuances on, and from 50 % on, so
# that start-up allocations and one-time steps do not count as growth: first,
# peak and last show those), then about ten samples spread over the run.
soak_summary() {
    awk -v a="$2" -v b="$3" -v from="${4:-0}" '
        $2 >= from { n++; t[n] = $1; iss[n] = $2; for (c = 3; c <= 6; c++) v[n, c] = $c }
        END {
            if (n == 0) { print "samples: 0"; exit }
            split(a "_rss_kb " a "_anon_kb " b "_rss_kb " b "_anon_kb", name, " ")
            print "samples: " n
            for (c = 3; c <= 6; c++) {
                peak = 0
                for (i = 1; i <= n; i++) if (v[i, c] > peak) peak = v[i, c]
                printf "%s first/peak/last: %d / %d / %d\n", name[c - 2], v[1, c], peak, v[n, c]
            }
            for (h = 1; h <= 2; h++) for (c = 3; c <= 6; c++) {
                lo = iss[1] + (iss[n] - iss[1]) * (h == 1 ? 0.1 : 0.5)
                sx = sy = sxx = sxy = m = 0
                for (i = 1; i <= n; i++) if (iss[i] >= lo) {
                    m++; sx += iss[i]; sy += v[i, c]; sxx += iss[i] * iss[i]; sxy += iss[i] * v[i, c]
                }
                d = m * sxx - sx * sx
                if (m >= 3 && d > 0)
                    printf "%s growth per 100k issuances (from %d issued on, %d samples): %.0f kB\n",
                        name[c - 2], lo, m, (m * sxy - sx * sy) / d * 100000
            }
            printf "%-9s %-9s %-12s %-12s %-12s %-12s\n", "t_s", "issued", name[1], name[2], name[3], name[4]
            step = (n - 1) / 10; if (step < 1) step = 1
            for (k = 1; k <= n + step - 1; k += step) {
                i = int(k + 0.5); if (i > n) i = n
                if (i == last) continue
                last = i
                printf "%-9.0f %-9d %-12d %-12d %-12d %-12d\n", t[i], iss[i], v[i, 3], v[i, 4], v[i, 5], v[i, 6]
            }
        }' "$1"
}

/*
 * bench_rng.h — reproducible synthetic data for the benchmark generators
 * (audit-log-gen, ui-query-bench): xorshift64*, without libc's rand() state.
 */
#ifndef LINECERT_BENCH_RNG_H
#define LINECERT_BENCH_RNG_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

/* digits random upper-case hex digits and a NUL. */
static inline void rand_hex(uint64_t *rng, char *out, size_t digits)
{
    static const char d[] = "0123456789ABCDEF";

    for (size_t i = 0; i < digits; i++)
        out[i] = d[rng_next(rng) & 15];
    out[digits] = '\0';
}

#endif

/*
 * der.c — strict DER reading and simple DER writing (see der.h).
 */
#include "der.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

int der_next(der_cur_t *c, der_tlv_t *t)
{
    const unsigned char *p = c->p;
    size_t left = c->len, len, hdr = 2;

    if (left < 2)
        return -1;
    if ((p[0] & 0x1f) == 0x1f) /* multi-byte tags: not used by any structure we read */
        return -1;
    if (p[1] < 0x80) {
        len = p[1];
    } else {
        size_t n = p[1] & 0x7f;
        if (n == 0 || n > 3 || left < 2 + n || p[2] == 0)
            return -1; /* indefinite, too long, or non-minimal */
        len = 0;
        for (size_t i = 0; i < n; i++)
            len = (len << 8) | p[2 + i];
        if (len < 0x80)
            return -1; /* long form where short form was required */
        hdr += n;
    }
    if (len > left - hdr)
        return -1;
    t->tag = p[0];
    t->raw = p;
    t->raw_len = hdr + len;
    t->val = p + hdr;
    t->val_len = len;
    c->p += t->raw_len;
    c->len -= t->raw_len;
    return 0;
}

int der_expect(der_cur_t *c, unsigned tag, der_tlv_t *t)
{
    der_cur_t save = *c;

    if (der_next(c, t) != 0 || t->tag != tag) {
        *c = save;
        return -1;
    }
    return 0;
}

der_cur_t der_inside(const der_tlv_t *t)
{
    der_cur_t c = {t->val, t->val_len};
    return c;
}

int der_oid_eq(const der_tlv_t *t, const unsigned char *oid, size_t oid_len)
{
    return t->tag == DER_OID && t->val_len == oid_len && memcmp(t->val, oid, oid_len) == 0;
}

void der_buf_free(der_buf_t *b)
{
    if (b == NULL)
        return;
    free(b->p);
    memset(b, 0, sizeof *b);
}

static int reserve(der_buf_t *b, size_t n)
{
    if (b->failed)
        return -1;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 512;
        unsigned char *np;
        while (cap < b->len + n)
            cap *= 2;
        np = realloc(b->p, cap);
        if (np == NULL) {
            b->failed = 1;
            return -1;
        }
        b->p = np;
        b->cap = cap;
    }
    return 0;
}

void der_put_raw(der_buf_t *b, const void *p, size_t n)
{
    if (reserve(b, n) != 0)
        return;
    if (n > 0)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

/*
 * Encodes an identifier octet and a minimal definite length into h (at most
 * 5 bytes).  Returns the header length, or 0 for lengths of 2^24 and more,
 * which der_next() would not read back.
 */
static size_t encode_header(unsigned char h[5], unsigned tag, size_t n)
{
    size_t hl = 0;

    if (n >= 0x1000000)
        return 0;
    h[hl++] = (unsigned char)tag;
    if (n >= 0x10000)
        h[hl++] = 0x83;
    else if (n >= 0x100)
        h[hl++] = 0x82;
    else if (n >= 0x80)
        h[hl++] = 0x81;
    if (n >= 0x10000)
        h[hl++] = (unsigned char)(n >> 16);
    if (n >= 0x100)
        h[hl++] = (unsigned char)(n >> 8);
    h[hl++] = (unsigned char)n;
    return hl;
}

static void put_header(der_buf_t *b, unsigned tag, size_t n)
{
    unsigned char h[5];
    size_t hl = encode_header(h, tag, n);

    if (hl == 0) {
        b->failed = 1;
        return;
    }
    der_put_raw(b, h, hl);
}

void der_put_tlv(der_buf_t *b, unsigned tag, const void *val, size_t n)
{
    put_header(b, tag, n);
    der_put_raw(b, val, n);
}

void der_begin(der_buf_t *b, unsigned tag)
{
    if (b->depth >= (int)(sizeof b->stack / sizeof b->stack[0])) {
        b->failed = 1;
        return;
    }
    /* Reserve the longest header we emit (tag + 0x83 + 3 length bytes). */
    b->stack[b->depth++] = b->len;
    if (reserve(b, 5) != 0)
        return;
    b->p[b->len] = (unsigned char)tag;
    b->len += 5;
}

void der_end(der_buf_t *b)
{
    size_t start, body, n, hl;
    unsigned char h[5];

    if (b->failed || b->depth == 0) {
        b->failed = 1;
        return;
    }
    start = b->stack[--b->depth];
    body = start + 5;
    n = b->len - body;
    hl = encode_header(h, b->p[start], n);
    if (hl == 0) {
        b->failed = 1;
        return;
    }
    memcpy(b->p + start, h, hl);
    memmove(b->p + start + hl, b->p + body, n);
    b->len = start + hl + n;
}

void der_put_uint(der_buf_t *b, const unsigned char *mag, size_t n)
{
    while (n > 1 && mag[0] == 0) {
        mag++;
        n--;
    }
    if (n == 0) {
        static const unsigned char zero = 0;
        der_put_tlv(b, DER_INTEGER, &zero, 1);
        return;
    }
    if (mag[0] & 0x80) {
        put_header(b, DER_INTEGER, n + 1);
        der_put_raw(b, "\0", 1);
        der_put_raw(b, mag, n);
    } else {
        der_put_tlv(b, DER_INTEGER, mag, n);
    }
}

void der_put_small_int(der_buf_t *b, long v)
{
    unsigned char m[sizeof(long)];
    size_t n = sizeof m;

    for (size_t i = 0; i < n; i++)
        m[n - 1 - i] = (unsigned char)((unsigned long)v >> (8 * i));
    der_put_uint(b, m, n);
}

void der_put_oid(der_buf_t *b, const unsigned char *oid, size_t n)
{
    der_put_tlv(b, DER_OID, oid, n);
}

void der_put_time(der_buf_t *b, int64_t unix_seconds)
{
    time_t t = (time_t)unix_seconds;
    struct tm tm;
    char s[20];

    if (gmtime_r(&t, &tm) == NULL) {
        b->failed = 1;
        return;
    }
    if (tm.tm_year + 1900 < 2050 && tm.tm_year + 1900 >= 1950) {
        strftime(s, sizeof s, "%y%m%d%H%M%SZ", &tm);
        der_put_tlv(b, DER_UTCTIME, s, 13);
    } else {
        strftime(s, sizeof s, "%Y%m%d%H%M%SZ", &tm);
        der_put_tlv(b, DER_GENERALIZEDTIME, s, 15);
    }
}

void der_put_bits(der_buf_t *b, const void *bytes, size_t n)
{
    put_header(b, DER_BIT_STRING, n + 1);
    der_put_raw(b, "\0", 1);
    der_put_raw(b, bytes, n);
}

/*
 * der.h — a minimal, strict DER reader and an append-only DER writer.
 *
 * linecert parses untrusted CSRs and builds certificates from a fixed
 * profile.  OpenSSL 3.0's generic d2i/encoder machinery spends most of an
 * issuance in decoder setup (ARCHITECTURE.md, pitfalls), so the hot path
 * walks DER directly: the reader only ever returns views into the caller's
 * buffer and accepts definite, minimal lengths only; the writer appends to a
 * growable buffer and patches lengths when a constructed value is closed.
 */
#ifndef LINECERT_DER_H
#define LINECERT_DER_H

#include <stddef.h>
#include <stdint.h>

/* Universal tags used by linecert. */
#define DER_BOOLEAN         0x01
#define DER_INTEGER         0x02
#define DER_BIT_STRING      0x03
#define DER_OCTET_STRING    0x04
#define DER_NULL            0x05
#define DER_OID             0x06
#define DER_UTF8STRING      0x0c
#define DER_PRINTABLESTRING 0x13
#define DER_T61STRING       0x14
#define DER_IA5STRING       0x16
#define DER_UTCTIME         0x17
#define DER_GENERALIZEDTIME 0x18
#define DER_BMPSTRING       0x1e
#define DER_SEQUENCE        0x30
#define DER_SET             0x31
#define DER_CTX(n)          (0xa0 | (n)) /* [n] constructed, context-specific */

/* A read cursor over a byte range. */
typedef struct der_cur {
    const unsigned char *p;
    size_t len;
} der_cur_t;

/* One TLV as read: its tag, its contents and the whole encoding. */
typedef struct der_tlv {
    unsigned tag;             /* the single identifier octet */
    const unsigned char *val; /* contents */
    size_t val_len;
    const unsigned char *raw; /* identifier + length + contents */
    size_t raw_len;
} der_tlv_t;

/*
 * Reads the next TLV from c and advances c past it.  Only single-byte tags,
 * definite minimal lengths (< 2^24) are accepted.  Returns 0 on success, -1 on
 * malformed input or end of data.
 */
int der_next(der_cur_t *c, der_tlv_t *t);

/* Like der_next() but also requires the tag to equal `tag`. */
int der_expect(der_cur_t *c, unsigned tag, der_tlv_t *t);

/* A cursor over the contents of t. */
der_cur_t der_inside(const der_tlv_t *t);

/* 1 if the OID contents in t equal the given encoded OID body. */
int der_oid_eq(const der_tlv_t *t, const unsigned char *oid, size_t oid_len);

/* A growable output buffer; zero-initialise, release with der_buf_free(). */
typedef struct der_buf {
    unsigned char *p;
    size_t len;
    size_t cap;
    int failed;      /* sticky: an allocation failed; check once at the end */
    size_t stack[8]; /* offsets of open constructed values */
    int depth;
} der_buf_t;

void der_buf_free(der_buf_t *b);
void der_put_raw(der_buf_t *b, const void *p, size_t n);
/* Appends a complete primitive TLV. */
void der_put_tlv(der_buf_t *b, unsigned tag, const void *val, size_t n);
/* Opens a constructed value (SEQUENCE, SET, [n]); close with der_end(). */
void der_begin(der_buf_t *b, unsigned tag);
void der_end(der_buf_t *b);
/* INTEGER from unsigned big-endian magnitude (leading zeros trimmed, sign octet added). */
void der_put_uint(der_buf_t *b, const unsigned char *mag, size_t n);
void der_put_small_int(der_buf_t *b, long v);
/* OID from its encoded body. */
void der_put_oid(der_buf_t *b, const unsigned char *oid, size_t n);
/* UTCTime before 2050, GeneralizedTime from 2050 (RFC 5280 4.1.2.5). */
void der_put_time(der_buf_t *b, int64_t unix_seconds);
/* BIT STRING with zero unused bits. */
void der_put_bits(der_buf_t *b, const void *bytes, size_t n);

#endif

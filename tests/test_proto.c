/*
 * test_proto.c — the station <-> signer framing (hsm/proto.c) over a real
 * socketpair: what is sent is what is received, field by field, and every
 * malformed frame (oversize, reserved bits set, a field overrunning the body,
 * a peer that goes away) is an error value, never a crash or a short read
 * taken for a message.
 */
#include "lcerr.h"
#include "proto.h"
#include "signer_client.h"
#include "testutil.h"
#include "testutil_proc.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <semaphore.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <unistd.h>

static int sv[2] = {-1, -1}; /* sv[0] sends, sv[1] receives */
static proto_reader_t rd;    /* the buffered reader on sv[1] */

static void setup(void)
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    proto_reader_init(&rd, sv[1]);
}

static void teardown(void)
{
    if (sv[0] >= 0)
        close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
    sv[0] = sv[1] = -1;
}

static void write_all(int fd, const void *p, size_t n)
{
    const unsigned char *b = p;

    while (n > 0) {
        ssize_t w = write(fd, b, n);
        ck_assert_int_gt(w, 0);
        b += w;
        n -= (size_t)w;
    }
}

/* A 12-byte header: body length, type, reserved, id (big-endian). */
static void header(unsigned char h[PROTO_HEADER], uint32_t body, uint16_t type, uint16_t reserved,
                   uint32_t id)
{
    h[0] = (unsigned char)(body >> 24);
    h[1] = (unsigned char)(body >> 16);
    h[2] = (unsigned char)(body >> 8);
    h[3] = (unsigned char)body;
    h[4] = (unsigned char)(type >> 8);
    h[5] = (unsigned char)type;
    h[6] = (unsigned char)(reserved >> 8);
    h[7] = (unsigned char)reserved;
    h[8] = (unsigned char)(id >> 24);
    h[9] = (unsigned char)(id >> 16);
    h[10] = (unsigned char)(id >> 8);
    h[11] = (unsigned char)id;
}

static void close_sender(void)
{
    close(sv[0]);
    sv[0] = -1;
}

START_TEST(test_round_trip_fields)
{
    static const unsigned char bin[] = {0x00, 0x01, 0xff, 0x00, 0x80};
    proto_msg_t m = {0}, r = {0};
    proto_field_t f;
    size_t pos = 0;
    uint32_t u = 0;
    int64_t v = 0;
    char *str;

    proto_init(&m, PROTO_ISSUE, 0xdeadbeef);
    proto_put_str(&m, T_LINE, "L1");
    proto_put_u32(&m, T_MAX_DAYS, 3650);
    proto_put_i64(&m, T_NOT_BEFORE, -1234567890123LL);
    proto_put(&m, T_CSR, bin, sizeof bin);
    proto_put(&m, T_DETAIL, NULL, 0);
    proto_put_i64(&m, T_NOT_AFTER, INT64_MAX);
    ck_assert_int_eq(proto_send(sv[0], &m), LC_OK);
    ck_assert_int_eq(proto_read(&rd, &r), LC_OK);
    ck_assert_uint_eq(r.type, PROTO_ISSUE);
    ck_assert_uint_eq(r.id, 0xdeadbeef);
    ck_assert_uint_eq(r.len, m.len);

    ck_assert_int_eq(proto_next(&r, &pos, &f), 1);
    ck_assert_uint_eq(f.tag, T_LINE);
    str = proto_get_str(&f);
    ck_assert_str_eq(str, "L1");
    free(str);
    ck_assert_int_eq(proto_next(&r, &pos, &f), 1);
    ck_assert_uint_eq(f.tag, T_MAX_DAYS);
    ck_assert_int_eq(proto_get_u32(&f, &u), 0);
    ck_assert_uint_eq(u, 3650);
    ck_assert_int_eq(proto_next(&r, &pos, &f), 1);
    ck_assert_uint_eq(f.tag, T_NOT_BEFORE);
    ck_assert_int_eq(proto_get_i64(&f, &v), 0);
    ck_assert_int_eq(v, -1234567890123LL);
    ck_assert_int_eq(proto_next(&r, &pos, &f), 1);
    ck_assert_uint_eq(f.tag, T_CSR);
    ck_assert_uint_eq(f.len, sizeof bin);
    ck_assert_mem_eq(f.val, bin, sizeof bin);
    ck_assert_int_eq(proto_next(&r, &pos, &f), 1);
    ck_assert_uint_eq(f.tag, T_DETAIL);
    ck_assert_uint_eq(f.len, 0);
    ck_assert_int_eq(proto_next(&r, &pos, &f), 1);
    ck_assert_uint_eq(f.tag, T_NOT_AFTER);
    ck_assert_int_eq(proto_get_i64(&f, &v), 0);
    ck_assert_int_eq(v, INT64_MAX);
    ck_assert_int_eq(proto_next(&r, &pos, &f), 0);
    ck_assert_int_eq(proto_next(&r, &pos, &f), 0); /* stays at the end */
    proto_free(&m);
    proto_free(&r);
}
END_TEST

START_TEST(test_wire_format)
{
    static const unsigned char want[] = {
        0x00, 0x00, 0x00, 0x10,                                     /* body length 16 */
        0x00, 0x83,                                                 /* PROTO_REFUSED */
        0x00, 0x00,                                                 /* reserved */
        0x01, 0x02, 0x03, 0x04,                                     /* request id */
        0x00, 0x1f, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x09, /* T_REASON u32 9 */
        0x00, 0x20, 0x00, 0x00, 0x00, 0x00,                         /* T_DETAIL "" */
    };
    proto_msg_t m = {0};
    unsigned char got[sizeof want];
    size_t off = 0;

    proto_init(&m, PROTO_REFUSED, 0x01020304);
    proto_put_u32(&m, T_REASON, 9);
    proto_put_str(&m, T_DETAIL, "");
    ck_assert_int_eq(proto_send(sv[0], &m), LC_OK);
    close_sender();
    while (off < sizeof got) {
        ssize_t n = read(sv[1], got + off, sizeof got - off);
        ck_assert_int_gt(n, 0);
        off += (size_t)n;
    }
    ck_assert_mem_eq(got, want, sizeof want);
    ck_assert_int_eq(read(sv[1], got, 1), 0); /* nothing more */
    proto_free(&m);
}
END_TEST

START_TEST(test_empty_message)
{
    proto_msg_t m = {0}, r = {0};
    proto_field_t f;
    size_t pos = 0;

    proto_init(&m, PROTO_STATUS, 7);
    ck_assert_int_eq(proto_send(sv[0], &m), LC_OK);
    ck_assert_int_eq(proto_read(&rd, &r), LC_OK);
    ck_assert_uint_eq(r.type, PROTO_STATUS);
    ck_assert_uint_eq(r.id, 7);
    ck_assert_uint_eq(r.len, PROTO_HEADER);
    ck_assert_int_eq(proto_next(&r, &pos, &f), 0);
    proto_free(&m);
    proto_free(&r);
}
END_TEST

START_TEST(test_back_to_back_messages_keep_boundaries)
{
    proto_msg_t m = {0}, r = {0};
    proto_field_t f;
    size_t pos;
    uint32_t u;

    for (uint32_t i = 1; i <= 3; i++) {
        proto_init(&m, PROTO_OK, i);
        for (uint32_t k = 0; k < i; k++)
            proto_put_u32(&m, T_REASON, i * 100 + k);
        ck_assert_int_eq(proto_send(sv[0], &m), LC_OK);
    }
    for (uint32_t i = 1; i <= 3; i++) {
        uint32_t k = 0;
        ck_assert_int_eq(proto_read(&rd, &r), LC_OK); /* reuses r's buffer */
        ck_assert_uint_eq(r.id, i);
        pos = 0;
        while (proto_next(&r, &pos, &f) == 1) {
            ck_assert_int_eq(proto_get_u32(&f, &u), 0);
            ck_assert_uint_eq(u, i * 100 + k);
            k++;
        }
        ck_assert_uint_eq(k, i);
    }
    proto_free(&m);
    proto_free(&r);
}
END_TEST

struct big_send {
    proto_msg_t *m;
    int rc;
};

static void *sender(void *arg)
{
    struct big_send *bs = arg;
    bs->rc = proto_send(sv[0], bs->m);
    return NULL;
}

START_TEST(test_largest_frame_round_trips)
{
    size_t n = PROTO_MAX_FRAME - PROTO_HEADER - 6; /* one field filling the frame */
    unsigned char *big = malloc(n);
    proto_msg_t m = {0}, r = {0};
    struct big_send bs = {&m, -1};
    proto_field_t f;
    size_t pos = 0;
    pthread_t th;

    ck_assert_ptr_nonnull(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (unsigned char)(i * 13);
    proto_init(&m, PROTO_CERT, 99);
    proto_put(&m, T_CERT, big, n);
    ck_assert_int_eq(m.failed, 0);
    ck_assert_uint_eq(m.len, PROTO_MAX_FRAME);
    ck_assert_int_eq(pthread_create(&th, NULL, sender, &bs), 0);
    ck_assert_int_eq(proto_read(&rd, &r), LC_OK);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(bs.rc, LC_OK);
    ck_assert_int_eq(proto_next(&r, &pos, &f), 1);
    ck_assert_uint_eq(f.len, n);
    ck_assert_mem_eq(f.val, big, n);
    ck_assert_int_eq(proto_next(&r, &pos, &f), 0);
    proto_free(&m);
    proto_free(&r);
    free(big);
}
END_TEST

/* Frame k of the stream test: its body length and the byte at position i. */
static size_t stream_len(uint32_t k)
{
    static const size_t sizes[] = {0, 1, 5, 300, 700, 4090, 65530, 65536, 65537, 150000};
    return k % 7 == 0 ? sizes[(k / 7) % 10] : (k * 37) % 900;
}

static unsigned char stream_byte(uint32_t k, size_t i)
{
    return (unsigned char)(k * 31 + i * 7);
}

/* Writes frames 1..400 as one byte stream cut at odd places (1 byte to 100 KiB a write). */
static void *stream_writer(void *arg)
{
    unsigned char *all = NULL;
    size_t len = 0, cap = 0, off = 0, cut = 1;
    proto_msg_t m = {0};

    for (uint32_t k = 1; k <= 400; k++) {
        size_t n = stream_len(k);
        unsigned char *body = malloc(n + 1);
        for (size_t i = 0; i < n; i++)
            body[i] = stream_byte(k, i);
        proto_init(&m, PROTO_CERT, k);
        proto_put(&m, T_CERT, body, n);
        header(m.buf, (uint32_t)(m.len - PROTO_HEADER), PROTO_CERT, 0, k); /* as proto_send */
        if (len + m.len > cap) {
            cap = (len + m.len) * 2;
            all = realloc(all, cap);
        }
        memcpy(all + len, m.buf, m.len);
        len += m.len;
        free(body);
    }
    while (off < len) {
        size_t n = cut < len - off ? cut : len - off;
        ssize_t w = write(sv[0], all + off, n);
        if (w <= 0)
            break;
        off += (size_t)w;
        cut = (cut * 7 + 3) % 100000 + 1;
    }
    close(sv[0]);
    sv[0] = -1;
    proto_free(&m);
    free(all);
    (void)arg;
    return NULL;
}

/*
 * The buffered reader over a stream whose frames straddle its buffer and its
 * reads in every way: small frames many to a read, frames larger than the
 * buffer, a header split over two reads.  Every frame comes out whole and in
 * order, then EOF.
 */
START_TEST(test_buffered_reader_keeps_frames_whole)
{
    proto_msg_t r = {0};
    proto_field_t f;
    pthread_t th;

    ck_assert_int_eq(pthread_create(&th, NULL, stream_writer, NULL), 0);
    for (uint32_t k = 1; k <= 400; k++) {
        size_t pos = 0, n = stream_len(k);
        ck_assert_int_eq(proto_read(&rd, &r), LC_OK);
        ck_assert_uint_eq(r.id, k);
        ck_assert_int_eq(proto_next(&r, &pos, &f), 1);
        ck_assert_uint_eq(f.len, n);
        for (size_t i = 0; i < n; i++)
            if (f.val[i] != stream_byte(k, i))
                ck_abort_msg("frame %u byte %zu differs", k, i);
    }
    errno = EINVAL;
    ck_assert_int_eq(proto_read(&rd, &r), LC_ERR_IO);
    ck_assert_int_eq(errno, 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    proto_free(&r);
}
END_TEST

/*
 * proto_reader_idle(): 1 only when proto_read() would have to wait — nothing
 * buffered and nothing arrived, or only part of a frame; 0 with a whole frame
 * buffered or newly arrived, and at EOF (proto_read() then reports it).
 */
START_TEST(test_reader_idle_only_when_a_read_would_wait)
{
    /* a CERT frame with id 7 and a 10-octet body, and two more with ids 8 and 9 */
    unsigned char f[PROTO_HEADER + 10] = {0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 7};
    unsigned char two[2 * sizeof f];
    proto_msg_t r = {0};

    f[4] = PROTO_CERT >> 8;
    f[5] = PROTO_CERT & 0xff;
    memcpy(f + PROTO_HEADER, "0123456789", 10);
    ck_assert_int_eq(proto_reader_idle(&rd), 1);
    /* part of a frame: still idle, and the part is kept */
    write_all(sv[0], f, 5);
    ck_assert_int_eq(proto_reader_idle(&rd), 1);
    write_all(sv[0], f + 5, sizeof f - 5);
    ck_assert_int_eq(proto_reader_idle(&rd), 0);
    ck_assert_int_eq(proto_read(&rd, &r), LC_OK);
    ck_assert_uint_eq(r.id, 7);
    ck_assert_uint_eq(r.type, PROTO_CERT);
    ck_assert_uint_eq(r.len, sizeof f);
    ck_assert_mem_eq(r.buf + PROTO_HEADER, "0123456789", 10);
    ck_assert_int_eq(proto_reader_idle(&rd), 1);
    /* two frames in one write: the second is buffered after the first is read */
    memcpy(two, f, sizeof f);
    memcpy(two + sizeof f, f, sizeof f);
    two[11] = 8;
    two[sizeof f + 11] = 9;
    write_all(sv[0], two, sizeof two);
    ck_assert_int_eq(proto_reader_idle(&rd), 0);
    ck_assert_int_eq(proto_read(&rd, &r), LC_OK);
    ck_assert_uint_eq(r.id, 8);
    ck_assert_int_eq(proto_reader_idle(&rd), 0);
    ck_assert_int_eq(proto_read(&rd, &r), LC_OK);
    ck_assert_uint_eq(r.id, 9);
    ck_assert_int_eq(proto_reader_idle(&rd), 1);
    /* EOF is not idle: the next read returns at once with it */
    close(sv[0]);
    sv[0] = -1;
    ck_assert_int_eq(proto_reader_idle(&rd), 0);
    ck_assert_int_eq(proto_read(&rd, &r), LC_ERR_IO);
    proto_free(&r);
}
END_TEST

/* A stream that is not a socket (a pipe) counts as idle whenever no whole frame is buffered. */
START_TEST(test_reader_idle_on_a_pipe)
{
    int p[2];
    proto_reader_t pr;

    ck_assert_int_eq(pipe(p), 0);
    proto_reader_init(&pr, p[0]);
    write_all(p[1], "x", 1);
    ck_assert_int_eq(proto_reader_idle(&pr), 1);
    close(p[0]);
    close(p[1]);
}
END_TEST

START_TEST(test_oversize_message_is_not_sent)
{
    size_t n = PROTO_MAX_FRAME - PROTO_HEADER - 6 + 1;
    unsigned char *big = calloc(1, n);
    proto_msg_t m = {0};

    ck_assert_ptr_nonnull(big);
    proto_init(&m, PROTO_CERT, 1);
    proto_put(&m, T_CERT, big, n);
    ck_assert_int_eq(m.failed, 1);
    ck_assert_int_eq(proto_send(sv[0], &m), LC_ERR_NOMEM);
    proto_free(&m);
    free(big);
}
END_TEST

START_TEST(test_oversize_header_is_protocol_error)
{
    unsigned char h[PROTO_HEADER];
    proto_msg_t r = {0};

    header(h, PROTO_MAX_FRAME - PROTO_HEADER + 1, PROTO_CERT, 0, 1);
    write_all(sv[0], h, sizeof h);
    ck_assert_int_eq(proto_read(&rd, &r), LC_ERR_PROTOCOL);
    proto_reader_init(&rd, sv[1]); /* a refused header is not consumed: start a new stream */
    header(h, 0xffffffffu, PROTO_CERT, 0, 2);
    write_all(sv[0], h, sizeof h);
    ck_assert_int_eq(proto_read(&rd, &r), LC_ERR_PROTOCOL);
    proto_free(&r);
}
END_TEST

START_TEST(test_reserved_bytes_are_protocol_error)
{
    static const uint16_t reserved[] = {0x0001, 0x0100, 0x8000, 0xffff};
    unsigned char h[PROTO_HEADER];
    proto_msg_t r = {0};

    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
        proto_reader_init(&rd, sv[1]); /* a refused header is not consumed: a new stream each */
        header(h, 0, PROTO_OK, reserved[i], 1);
        write_all(sv[0], h, sizeof h);
        ck_assert_int_eq(proto_read(&rd, &r), LC_ERR_PROTOCOL);
    }
    proto_free(&r);
}
END_TEST

START_TEST(test_eof_is_io_error_with_errno_0)
{
    proto_msg_t r = {0};

    close_sender();
    errno = EINVAL;
    ck_assert_int_eq(proto_read(&rd, &r), LC_ERR_IO);
    ck_assert_int_eq(errno, 0);
    proto_free(&r);
}
END_TEST

START_TEST(test_eof_inside_header_is_io_error)
{
    static const unsigned char part[5] = {0, 0, 0, 4, 0};
    proto_msg_t r = {0};

    write_all(sv[0], part, sizeof part);
    close_sender();
    errno = EINVAL;
    ck_assert_int_eq(proto_read(&rd, &r), LC_ERR_IO);
    ck_assert_int_eq(errno, 0);
    proto_free(&r);
}
END_TEST

START_TEST(test_eof_inside_body_is_io_error)
{
    unsigned char h[PROTO_HEADER];
    proto_msg_t r = {0};

    header(h, 100, PROTO_CERT, 0, 5);
    write_all(sv[0], h, sizeof h);
    write_all(sv[0], "0123456789", 10);
    close_sender();
    errno = EINVAL;
    ck_assert_int_eq(proto_read(&rd, &r), LC_ERR_IO);
    ck_assert_int_eq(errno, 0);
    proto_free(&r);
}
END_TEST

START_TEST(test_field_overrunning_body)
{
    /* one field claiming 10 octets with 4 in the body */
    static const unsigned char body[] = {0x00, 0x14, 0x00, 0x00, 0x00, 0x0a, 'a', 'b', 'c', 'd'};
    unsigned char h[PROTO_HEADER];
    proto_msg_t r = {0};
    proto_field_t f;
    size_t pos = 0;

    header(h, sizeof body, PROTO_ISSUE, 0, 1);
    write_all(sv[0], h, sizeof h);
    write_all(sv[0], body, sizeof body);
    ck_assert_int_eq(proto_read(&rd, &r), LC_OK);
    ck_assert_int_eq(proto_next(&r, &pos, &f), -1);
    proto_free(&r);
}
END_TEST

START_TEST(test_field_overrun_after_good_field)
{
    static const unsigned char body[] = {
        0x00, 0x0a, 0x00, 0x00, 0x00, 0x02, 'L', '1', /* T_LINE "L1" */
        0x00, 0x14, 0xff, 0xff, 0xff, 0xff, 'x',      /* T_CSR, 4 GiB claimed */
    };
    unsigned char h[PROTO_HEADER];
    proto_msg_t r = {0};
    proto_field_t f;
    size_t pos = 0;

    header(h, sizeof body, PROTO_ISSUE, 0, 1);
    write_all(sv[0], h, sizeof h);
    write_all(sv[0], body, sizeof body);
    ck_assert_int_eq(proto_read(&rd, &r), LC_OK);
    ck_assert_int_eq(proto_next(&r, &pos, &f), 1);
    ck_assert_uint_eq(f.tag, T_LINE);
    ck_assert_int_eq(proto_next(&r, &pos, &f), -1);
    proto_free(&r);
}
END_TEST

START_TEST(test_truncated_field_header)
{
    static const unsigned char body[] = {0x00, 0x0a, 0x00}; /* 3 of the 6 header octets */
    unsigned char h[PROTO_HEADER];
    proto_msg_t r = {0};
    proto_field_t f;
    size_t pos = 0;

    header(h, sizeof body, PROTO_ISSUE, 0, 1);
    write_all(sv[0], h, sizeof h);
    write_all(sv[0], body, sizeof body);
    ck_assert_int_eq(proto_read(&rd, &r), LC_OK);
    ck_assert_int_eq(proto_next(&r, &pos, &f), -1);
    proto_free(&r);
}
END_TEST

static proto_field_t field(const void *val, uint32_t len)
{
    proto_field_t f = {T_DETAIL, val, len};
    return f;
}

START_TEST(test_get_str_refuses_embedded_nul)
{
    proto_field_t f = field("ab\0cd", 5), tail = field("abc\0", 4);

    ck_assert_ptr_null(proto_get_str(&f));
    ck_assert_ptr_null(proto_get_str(&tail));
}
END_TEST

START_TEST(test_get_str_copies_and_terminates)
{
    proto_field_t f = field("abcdef", 3), empty = field("", 0);
    char *s = proto_get_str(&f), *e = proto_get_str(&empty);

    ck_assert_str_eq(s, "abc");
    ck_assert_str_eq(e, "");
    free(s);
    free(e);
}
END_TEST

START_TEST(test_get_u32_i64_need_exact_size)
{
    static const unsigned char b[9] = {0, 0, 0, 0, 0, 0, 0, 1, 2};
    proto_field_t f3 = field(b, 3), f5 = field(b, 5), f7 = field(b, 7), f9 = field(b, 9),
                  f8 = field(b, 8), f4 = field(b + 4, 4);
    uint32_t u = 42;
    int64_t v = 42;

    ck_assert_int_eq(proto_get_u32(&f3, &u), -1);
    ck_assert_int_eq(proto_get_u32(&f5, &u), -1);
    ck_assert_uint_eq(u, 42);
    ck_assert_int_eq(proto_get_i64(&f7, &v), -1);
    ck_assert_int_eq(proto_get_i64(&f9, &v), -1);
    ck_assert_int_eq(v, 42);
    ck_assert_int_eq(proto_get_u32(&f4, &u), 0);
    ck_assert_uint_eq(u, 1);
    ck_assert_int_eq(proto_get_i64(&f8, &v), 0);
    ck_assert_int_eq(v, 1);
}
END_TEST

START_TEST(test_put_str_null_adds_nothing)
{
    proto_msg_t m = {0};

    proto_init(&m, PROTO_OK, 1);
    proto_put_str(&m, T_DETAIL, NULL);
    ck_assert_uint_eq(m.len, PROTO_HEADER);
    proto_free(&m);
}
END_TEST

START_TEST(test_free_resets_and_null_is_noop)
{
    proto_msg_t m = {0};

    proto_init(&m, PROTO_OK, 1);
    proto_put_str(&m, T_DETAIL, "x");
    proto_free(&m);
    ck_assert_ptr_null(m.buf);
    ck_assert_uint_eq(m.len, 0);
    ck_assert_uint_eq(m.cap, 0);
    proto_free(NULL);
}
END_TEST

START_TEST(test_send_to_closed_peer_is_io_error)
{
    proto_msg_t m = {0};

    close(sv[1]);
    sv[1] = -1;
    proto_init(&m, PROTO_OK, 1);
    proto_put_str(&m, T_DETAIL, "nobody listens");
    ck_assert_int_eq(proto_send(sv[0], &m), LC_ERR_IO); /* SIGPIPE ignored in main() */
    proto_free(&m);
}
END_TEST

/*
 * The daemon blocks SIGTERM, SIGINT and SIGHUP in all its threads and holds
 * many descriptors; the signer it starts gets neither: every signal
 * unblocked, and only 0-2 plus the request socket on 3.
 */
START_TEST(test_signer_starts_with_clean_signals_and_fds)
{
    char *program = tu_build_path("linecert-signer"), path[64], link[PATH_MAX], err[300];
    char *status, *blk;
    signer_client_t *c = NULL;
    sigset_t set, old;
    /* a descriptor without close-on-exec, recognisable by its name */
    int stray = memfd_create("lc-stray-fd", 0), sock3 = 0;
    DIR *d;
    struct dirent *e;

    ck_assert_int_ge(stray, 0);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    ck_assert_int_eq(signer_client_spawn(program, 0, 1, &c, err, sizeof err), LC_OK);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    snprintf(path, sizeof path, "/proc/%d/status", (int)signer_client_pid(c));
    /*
     * glibc's pthread_create blocks every signal in the creating thread for a
     * moment: the signer starting its workers shows that mask briefly.  An
     * inherited mask would stay, so look until it is empty, for up to 2 s.
     */
    for (int tries = 0;; tries++) {
        status = tu_slurp(path, NULL);
        ck_assert_ptr_nonnull(status);
        blk = strstr(status, "SigBlk:");
        ck_assert_ptr_nonnull(blk);
        if (strncmp(blk, "SigBlk:\t0000000000000000", 24) == 0)
            break;
        ck_assert_msg(tries < 200, "%.40s", blk);
        free(status);
        tu_sleep_ms(10);
    }
    /*
     * The signer is already running when posix_spawn returns and may have
     * opened files of its own: what matters is that ours did not get in, and
     * that the request socket is on 3.
     */
    snprintf(path, sizeof path, "/proc/%d/fd", (int)signer_client_pid(c));
    d = opendir(path);
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL) {
        char fdpath[sizeof path + 260];
        ssize_t n;
        if (e->d_name[0] == '.')
            continue;
        snprintf(fdpath, sizeof fdpath, "%s/%s", path, e->d_name);
        n = readlink(fdpath, link, sizeof link - 1);
        if (n < 0)
            continue; /* closed meanwhile */
        link[n] = '\0';
        ck_assert_msg(strstr(link, "lc-stray-fd") == NULL, "the signer has our fd as %s",
                      e->d_name);
        if (strcmp(e->d_name, "3") == 0)
            sock3 = strncmp(link, "socket:", 7) == 0;
    }
    closedir(d);
    ck_assert_msg(sock3, "fd 3 of the signer is not the request socket");
    signer_client_free(c);
    close(stray);
    free(status);
    free(program);
}
END_TEST

/*
 * A stand-in signer (perl: it only needs to speak the framing) that answers
 * every request by its T_LINE: "cert" with a CERT, "refuse" with REFUSED
 * (reason 7), anything else with a CERT whose field overruns the frame.
 */
static char *fake_signer(const char *dir)
{
    static const char script[] =
        "#!/usr/bin/perl\n"
        "use strict; use warnings;\n"
        "open(my $s, '+<&=', 3) or die \"fd 3: $!\"; binmode $s;\n"
        "sub rd { my ($n) = @_; my $b = '';\n"
        "  while (length($b) < $n) { my $r = sysread($s, $b, $n - length($b), length($b));\n"
        "    return undef unless $r; } return $b; }\n"
        "while (defined(my $h = rd(12))) {\n"
        "  my ($len, $type, $rsv, $id) = unpack('N n n N', $h);\n"
        "  my $body = $len ? rd($len) : ''; my $line = '';\n"
        "  for (my $p = 0; $p + 6 <= length($body);) {\n"
        "    my ($tag, $l) = unpack('n N', substr($body, $p, 6));\n"
        "    $line = substr($body, $p + 6, $l) if $tag == %d; $p += 6 + $l; }\n"
        "  my ($t, $f);\n"
        "  if ($line eq 'cert') { $t = %d; $f = pack('n N', %d, 4) . 'DER!'; }\n"
        "  elsif ($line eq 'refuse') { $t = %d; $f = pack('n N N', %d, 4, 7); }\n"
        "  else { $t = %d; $f = pack('n N', %d, 100) . 'short'; }\n"
        "  syswrite($s, pack('N n n N', length($f), $t, 0, $id) . $f);\n"
        "}\n";
    char *path = NULL;
    FILE *f;

    ck_assert_int_gt(asprintf(&path, "%s/fake-signer", dir), 0);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, script, T_LINE, PROTO_CERT, T_CERT, PROTO_REFUSED, T_REASON, PROTO_CERT, T_CERT);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(chmod(path, 0755), 0);
    return path;
}

/* What the hook saw, and the thread that finishes the work it took over. */
struct then_probe {
    pthread_t caller;
    int calls, kind, elsewhere, finished;
    sem_t *done; /* taken from the reader */
    sem_t taken;
};

static int probe_then(void *ctx, signer_result_t *res, sem_t *done)
{
    struct then_probe *p = ctx;

    p->calls++;
    p->kind = res->kind;
    p->elsewhere = !pthread_equal(pthread_self(), p->caller);
    if (res->kind != PROTO_CERT)
        return 0;
    p->done = done;
    sem_post(&p->taken);
    return 1;
}

static void *finish_later(void *arg)
{
    struct then_probe *p = arg;

    while (sem_wait(&p->taken) != 0)
        ;
    usleep(200 * 1000);
    p->finished = 1;
    sem_post(p->done);
    return NULL;
}

/*
 * signer_client_issue(): the hook runs on the reader thread with the
 * parsed reply; when it takes `done`, the caller wakes only when the thread
 * it handed the work to posts it; a refusal wakes the caller at once; a
 * malformed reply never reaches the hook and is the signer's fault.
 */
START_TEST(test_issue_hook_hands_the_wake_over)
{
    char *dir = tu_mkdtemp("proto"), *program, err[300];
    static const unsigned char serial[16] = {1};
    struct then_probe p;
    signer_client_t *c = NULL;
    signer_result_t res;
    pthread_t th;
    double t0;

    ck_assert_ptr_nonnull(dir);
    program = fake_signer(dir);
    ck_assert_int_eq(signer_client_spawn(program, 0, 1, &c, err, sizeof err), LC_OK);

    memset(&p, 0, sizeof p);
    p.caller = pthread_self();
    sem_init(&p.taken, 0, 0);
    ck_assert_int_eq(pthread_create(&th, NULL, finish_later, &p), 0);
    t0 = tu_now_s();
    ck_assert_int_eq(signer_client_issue(c, "cert", serial, 1, serial, 0, 1, &res, probe_then, &p),
                     LC_OK);
    ck_assert_msg(p.finished, "woken before the work the hook handed over was done");
    ck_assert_double_ge(tu_now_s() - t0, 0.15);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(p.calls, 1);
    ck_assert(p.elsewhere);
    ck_assert_int_eq(res.kind, PROTO_CERT);
    ck_assert_uint_eq(res.der_len, 4);
    ck_assert_mem_eq(res.der, "DER!", 4);
    free(res.der);

    memset(&p, 0, sizeof p);
    p.caller = pthread_self();
    sem_init(&p.taken, 0, 0);
    ck_assert_int_eq(
        signer_client_issue(c, "refuse", serial, 1, serial, 0, 1, &res, probe_then, &p), LC_OK);
    ck_assert_int_eq(p.calls, 1);
    ck_assert_int_eq(res.kind, PROTO_REFUSED);
    ck_assert_int_eq(res.reason, 7);

    memset(&p, 0, sizeof p);
    ck_assert_int_eq(
        signer_client_issue(c, "garble", serial, 1, serial, 0, 1, &res, probe_then, &p),
        LC_ERR_SIGNER);
    ck_assert_int_eq(p.calls, 0);
    ck_assert_int_eq(res.kind, PROTO_ERROR);
    ck_assert_ptr_null(res.der);
    ck_assert_msg(strstr(res.detail, "malformed") != NULL, "%s", res.detail);

    signer_client_free(c);
    tu_rmtree(dir);
    free(dir);
    free(program);
}
END_TEST

/* An idle hook that finishes the work probe_then() took: counts its calls. */
struct idle_probe {
    struct then_probe *then;
    int calls, posted;
};

static void probe_idle(void *ctx)
{
    struct idle_probe *ip = ctx;

    ip->calls++;
    if (ip->then->done != NULL && !ip->then->finished) {
        ip->then->finished = 1;
        ip->posted++;
        sem_post(ip->then->done);
    }
}

/*
 * signer_client_on_idle(): the reader calls the hook once it has read every
 * reply, so work a then-hook queued (taking `done`) without waking anyone is
 * finished there; without that call the caller below would never wake.
 */
START_TEST(test_idle_hook_runs_after_the_replies)
{
    char *dir = tu_mkdtemp("proto"), *program, err[300];
    static const unsigned char serial[16] = {1};
    struct then_probe p;
    struct idle_probe ip;
    signer_client_t *c = NULL;
    signer_result_t res;

    ck_assert_ptr_nonnull(dir);
    program = fake_signer(dir);
    ck_assert_int_eq(signer_client_spawn(program, 0, 1, &c, err, sizeof err), LC_OK);
    memset(&p, 0, sizeof p);
    memset(&ip, 0, sizeof ip);
    ip.then = &p;
    p.caller = pthread_self();
    sem_init(&p.taken, 0, 0);
    signer_client_on_idle(c, probe_idle, &ip);
    for (int i = 0; i < 3; i++) {
        p.done = NULL;
        p.finished = 0;
        ck_assert_int_eq(
            signer_client_issue(c, "cert", serial, 1, serial, 0, 1, &res, probe_then, &p), LC_OK);
        ck_assert(p.finished);
        ck_assert_int_eq(res.kind, PROTO_CERT);
        free(res.der);
    }
    ck_assert_int_eq(p.calls, 3);
    signer_client_free(c); /* joins the reader; the hook runs once more as it ends */
    ck_assert_int_eq(ip.posted, 3);
    ck_assert_int_ge(ip.calls, 4);
    sem_destroy(&p.taken);
    tu_rmtree(dir);
    free(dir);
    free(program);
}
END_TEST

static Suite *proto_suite(void)
{
    Suite *s = suite_create("proto");
    TCase *tc;

    tc = tcase_create("frames");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_round_trip_fields);
    tcase_add_test(tc, test_wire_format);
    tcase_add_test(tc, test_empty_message);
    tcase_add_test(tc, test_back_to_back_messages_keep_boundaries);
    tcase_add_test(tc, test_largest_frame_round_trips);
    tcase_add_test(tc, test_oversize_message_is_not_sent);
    tcase_add_test(tc, test_oversize_header_is_protocol_error);
    tcase_add_test(tc, test_reserved_bytes_are_protocol_error);
    tcase_add_test(tc, test_eof_is_io_error_with_errno_0);
    tcase_add_test(tc, test_eof_inside_header_is_io_error);
    tcase_add_test(tc, test_eof_inside_body_is_io_error);
    tcase_add_test(tc, test_send_to_closed_peer_is_io_error);
    tcase_add_test(tc, test_buffered_reader_keeps_frames_whole);
    tcase_add_test(tc, test_reader_idle_only_when_a_read_would_wait);
    tcase_add_test(tc, test_reader_idle_on_a_pipe);
    suite_add_tcase(s, tc);

    tc = tcase_create("fields");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_field_overrunning_body);
    tcase_add_test(tc, test_field_overrun_after_good_field);
    tcase_add_test(tc, test_truncated_field_header);
    tcase_add_test(tc, test_get_str_refuses_embedded_nul);
    tcase_add_test(tc, test_get_str_copies_and_terminates);
    tcase_add_test(tc, test_get_u32_i64_need_exact_size);
    tcase_add_test(tc, test_put_str_null_adds_nothing);
    tcase_add_test(tc, test_free_resets_and_null_is_noop);
    suite_add_tcase(s, tc);

    tc = tcase_create("spawn");
    tcase_add_test(tc, test_signer_starts_with_clean_signals_and_fds);
    tcase_add_test(tc, test_issue_hook_hands_the_wake_over);
    tcase_add_test(tc, test_idle_hook_runs_after_the_replies);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr;
    int failed;

    signal(SIGPIPE, SIG_IGN);
    sr = srunner_create(proto_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

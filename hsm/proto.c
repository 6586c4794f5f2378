/*
 * proto.c — framing for the station <-> signer messages (see proto.h).
 */
#include "proto.h"

#include "lcerr.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void put_be(unsigned char *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (unsigned char)v;
        v >>= 8;
    }
}

static uint64_t get_be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

static int grow(proto_msg_t *m, size_t n)
{
    if (m->failed)
        return -1;
    if (m->len + n > PROTO_MAX_FRAME) {
        m->failed = 1;
        return -1;
    }
    if (m->len + n > m->cap) {
        size_t cap = m->cap ? m->cap : 1024;
        unsigned char *nb;
        while (cap < m->len + n)
            cap *= 2;
        nb = realloc(m->buf, cap);
        if (nb == NULL) {
            m->failed = 1;
            return -1;
        }
        m->buf = nb;
        m->cap = cap;
    }
    return 0;
}

void proto_init(proto_msg_t *m, uint16_t type, uint32_t id)
{
    m->type = type;
    m->id = id;
    m->len = 0;
    m->failed = 0;
    if (grow(m, PROTO_HEADER) == 0) {
        memset(m->buf, 0, PROTO_HEADER);
        m->len = PROTO_HEADER;
    }
}

void proto_free(proto_msg_t *m)
{
    if (m == NULL)
        return;
    if (m->buf != NULL)
        memset(m->buf, 0, m->cap); /* frames may carry paths and keys' URIs: keep it tidy */
    free(m->buf);
    memset(m, 0, sizeof *m);
}

void proto_put(proto_msg_t *m, uint16_t tag, const void *val, size_t len)
{
    if (len > PROTO_MAX_FRAME || grow(m, 6 + len) != 0)
        return;
    put_be(m->buf + m->len, tag, 2);
    put_be(m->buf + m->len + 2, len, 4);
    if (len > 0)
        memcpy(m->buf + m->len + 6, val, len);
    m->len += 6 + len;
}

void proto_put_str(proto_msg_t *m, uint16_t tag, const char *s)
{
    if (s != NULL)
        proto_put(m, tag, s, strlen(s));
}

void proto_put_u32(proto_msg_t *m, uint16_t tag, uint32_t v)
{
    unsigned char b[4];
    put_be(b, v, 4);
    proto_put(m, tag, b, 4);
}

void proto_put_i64(proto_msg_t *m, uint16_t tag, int64_t v)
{
    unsigned char b[8];
    put_be(b, (uint64_t)v, 8);
    proto_put(m, tag, b, 8);
}

int proto_send(int fd, proto_msg_t *m)
{
    size_t off = 0;

    if (m->failed || m->buf == NULL)
        return LC_ERR_NOMEM;
    put_be(m->buf, m->len - PROTO_HEADER, 4);
    put_be(m->buf + 4, m->type, 2);
    put_be(m->buf + 6, 0, 2);
    put_be(m->buf + 8, m->id, 4);
    while (off < m->len) {
        ssize_t n = write(fd, m->buf + off, m->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return LC_ERR_IO;
        off += (size_t)n;
    }
    return LC_OK;
}

static int read_full(int fd, unsigned char *p, size_t n)
{
    size_t off = 0;

    while (off < n) {
        ssize_t r = read(fd, p + off, n - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            errno = 0;
        if (r <= 0)
            return -1;
        off += (size_t)r;
    }
    return 0;
}

/* Checks a frame header and starts m with its type and id; *body is its body length. */
static int start_frame(const unsigned char h[PROTO_HEADER], proto_msg_t *m, size_t *body)
{
    uint64_t n = get_be(h, 4);

    if (n > PROTO_MAX_FRAME - PROTO_HEADER || get_be(h + 6, 2) != 0)
        return LC_ERR_PROTOCOL;
    proto_init(m, (uint16_t)get_be(h + 4, 2), (uint32_t)get_be(h + 8, 4));
    if (grow(m, (size_t)n) != 0)
        return LC_ERR_NOMEM;
    *body = (size_t)n;
    return LC_OK;
}

void proto_reader_init(proto_reader_t *r, int fd)
{
    r->fd = fd;
    r->start = r->end = 0;
}

/* Makes at least n bytes available at r->buf + r->start.  -1 at EOF (errno 0) or error. */
static int fill(proto_reader_t *r, size_t n)
{
    if (r->end - r->start >= n)
        return 0;
    memmove(r->buf, r->buf + r->start, r->end - r->start);
    r->end -= r->start;
    r->start = 0;
    while (r->end < n) {
        ssize_t got = read(r->fd, r->buf + r->end, sizeof r->buf - r->end);
        if (got < 0 && errno == EINTR)
            continue;
        if (got == 0)
            errno = 0;
        if (got <= 0)
            return -1;
        r->end += (size_t)got;
    }
    return 0;
}

int proto_reader_idle(proto_reader_t *r)
{
    for (;;) {
        size_t have = r->end - r->start, body;
        ssize_t got;
        if (have >= PROTO_HEADER) {
            body = (size_t)get_be(r->buf + r->start, 4);
            if (have - PROTO_HEADER >= body || body > sizeof r->buf)
                return 0; /* whole, or read past the buffer anyway: proto_read() goes on */
        }
        memmove(r->buf, r->buf + r->start, have);
        r->start = 0;
        r->end = have;
        do
            got = recv(r->fd, r->buf + r->end, sizeof r->buf - r->end, MSG_DONTWAIT);
        while (got < 0 && errno == EINTR);
        if (got <= 0)
            return got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOTSOCK);
        r->end += (size_t)got;
    }
}

int proto_read(proto_reader_t *r, proto_msg_t *m)
{
    size_t body, have;
    int ret;

    if (fill(r, PROTO_HEADER) != 0)
        return LC_ERR_IO;
    if ((ret = start_frame(r->buf + r->start, m, &body)) != LC_OK)
        return ret;
    r->start += PROTO_HEADER;
    /* A body that fits the buffer is read with the frames after it; a larger one directly. */
    if (body <= sizeof r->buf && fill(r, body) != 0)
        return LC_ERR_IO;
    have = r->end - r->start < body ? r->end - r->start : body;
    memcpy(m->buf + PROTO_HEADER, r->buf + r->start, have);
    r->start += have;
    if (have < body && read_full(r->fd, m->buf + PROTO_HEADER + have, body - have) != 0)
        return LC_ERR_IO;
    m->len = PROTO_HEADER + body;
    return LC_OK;
}

int proto_next(const proto_msg_t *m, size_t *pos, proto_field_t *f)
{
    size_t p = *pos < PROTO_HEADER ? PROTO_HEADER : *pos;
    uint64_t len;

    if (p == m->len)
        return 0;
    if (m->len - p < 6)
        return -1;
    len = get_be(m->buf + p + 2, 4);
    if (len > m->len - p - 6)
        return -1;
    f->tag = (uint16_t)get_be(m->buf + p, 2);
    f->len = (uint32_t)len;
    f->val = m->buf + p + 6;
    *pos = p + 6 + (size_t)len;
    return 1;
}

int proto_get_u32(const proto_field_t *f, uint32_t *v)
{
    if (f->len != 4)
        return -1;
    *v = (uint32_t)get_be(f->val, 4);
    return 0;
}

int proto_get_i64(const proto_field_t *f, int64_t *v)
{
    if (f->len != 8)
        return -1;
    *v = (int64_t)get_be(f->val, 8);
    return 0;
}

char *proto_get_str(const proto_field_t *f)
{
    char *s;

    if (memchr(f->val, '\0', f->len) != NULL)
        return NULL;
    s = malloc((size_t)f->len + 1);
    if (s == NULL)
        return NULL;
    memcpy(s, f->val, f->len);
    s[f->len] = '\0';
    return s;
}

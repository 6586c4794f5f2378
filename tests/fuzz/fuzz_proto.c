/*
 * fuzz_proto.c — the station <-> signer message decoder (hsm/proto.c) and
 * the station's decoding of the signer's replies (signer_client_result).
 *
 * Input: a byte stream as it arrives on the socket, whole frames with their
 * 12-byte headers, one after the other.  It is read with proto_read from a
 * memfd (the same read path as the socket, no process per input) until the
 * stream ends or a frame is refused.  For every frame the target walks its
 * fields with proto_next and every accessor, then decodes it as a reply.
 *
 * Beyond "no crash, leak or undefined behaviour":
 *  - a received frame is at most PROTO_MAX_FRAME bytes;
 *  - proto_get_str returns a string exactly when the field holds no NUL;
 *  - a frame whose fields all parse re-encodes (proto_put*, proto_send) to
 *    exactly the bytes received: decoder and encoder agree;
 *  - signer_client_result accepts only CERT/REFUSED/ERROR, a CERT always
 *    carries a certificate, an ERROR always a non-zero error, and nothing
 *    is allocated when it fails.
 */
#include "fuzz_util.h"
#include "lcerr.h"
#include "proto.h"
#include "signer_client.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int g_in = -1;  /* the received stream */
static int g_out = -1; /* what proto_send writes when re-encoding */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    g_in = memfd_create("fuzz-proto-in", MFD_CLOEXEC);
    g_out = memfd_create("fuzz-proto-out", MFD_CLOEXEC);
    FZ_CHECK(g_in >= 0 && g_out >= 0, "memfd_create");
    return 0;
}

static void reset(int fd, const void *data, size_t size)
{
    const unsigned char *p = data;
    off_t off = 0;

    FZ_CHECK(ftruncate(fd, 0) == 0, "ftruncate");
    while ((size_t)off < size) {
        ssize_t n = pwrite(fd, p + off, size - (size_t)off, off);
        FZ_CHECK(n > 0, "pwrite");
        off += n;
    }
    FZ_CHECK(lseek(fd, 0, SEEK_SET) == 0, "lseek");
}

/* Walks every field; re-encodes the frame and compares when all of them parse. */
static void check_fields(const proto_msg_t *m, const unsigned char *wire)
{
    proto_msg_t copy = {0};
    proto_field_t f;
    size_t pos = 0;
    int rc;

    proto_init(&copy, m->type, m->id);
    while ((rc = proto_next(m, &pos, &f)) == 1) {
        uint32_t u;
        int64_t i;
        char *s;
        FZ_CHECK(f.val >= m->buf + PROTO_HEADER && f.val + f.len <= m->buf + m->len,
                 "field inside the frame");
        FZ_CHECK((proto_get_u32(&f, &u) == 0) == (f.len == 4), "u32 iff 4 bytes");
        FZ_CHECK((proto_get_i64(&f, &i) == 0) == (f.len == 8), "i64 iff 8 bytes");
        s = proto_get_str(&f);
        FZ_CHECK((s != NULL) == (memchr(f.val, '\0', f.len) == NULL), "string iff no NUL");
        FZ_CHECK(s == NULL || (strlen(s) == f.len && memcmp(s, f.val, f.len) == 0),
                 "string holds the field");
        free(s);
        proto_put(&copy, f.tag, f.val, f.len);
    }
    FZ_CHECK(rc == 0 || rc == -1, "proto_next returns 1, 0 or -1");
    if (rc == 0) {
        unsigned char *sent = malloc(m->len);
        FZ_CHECK(sent != NULL, "malloc");
        reset(g_out, NULL, 0);
        FZ_CHECK(proto_send(g_out, &copy) == LC_OK, "proto_send of a re-encoded frame");
        FZ_CHECK(copy.len == m->len, "re-encoded frame has the received length");
        FZ_CHECK(pread(g_out, sent, m->len, 0) == (ssize_t)m->len, "pread");
        FZ_CHECK(memcmp(sent, wire, m->len) == 0, "re-encoded frame is byte-identical");
        free(sent);
    }
    proto_free(&copy);
}

static void check_result(const proto_msg_t *m)
{
    signer_result_t res;
    int ret = signer_client_result(m, &res);

    if (ret == LC_OK) {
        FZ_CHECK(m->type == PROTO_CERT || m->type == PROTO_REFUSED || m->type == PROTO_ERROR,
                 "a result is CERT, REFUSED or ERROR");
        FZ_CHECK(res.kind == m->type, "kind is the frame type");
        FZ_CHECK(m->type != PROTO_CERT || res.der != NULL, "a CERT carries a certificate");
        FZ_CHECK(m->type != PROTO_ERROR || res.err != 0, "an ERROR carries an error");
    } else {
        FZ_CHECK(ret == LC_ERR_SIGNER || ret == LC_ERR_NOMEM, "failure is LC_ERR_SIGNER");
        FZ_CHECK(res.der == NULL, "nothing allocated on failure");
    }
    FZ_CHECK(memchr(res.detail, '\0', sizeof res.detail) != NULL, "detail NUL-terminated");
    FZ_CHECK(memchr(res.instance, '\0', sizeof res.instance) != NULL, "instance NUL-terminated");
    free(res.der);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static proto_reader_t in; /* 64 KiB: not on the stack */
    proto_msg_t m = {0};
    size_t off = 0;
    int ret;

    reset(g_in, data, size);
    proto_reader_init(&in, g_in);
    while ((ret = proto_read(&in, &m)) == LC_OK) {
        FZ_CHECK(m.len >= PROTO_HEADER && m.len <= PROTO_MAX_FRAME, "frame size within limits");
        FZ_CHECK(off + m.len <= size, "frame within the stream");
        FZ_CHECK(memcmp(m.buf + PROTO_HEADER, data + off + PROTO_HEADER, m.len - PROTO_HEADER) == 0,
                 "body as received");
        check_fields(&m, data + off);
        check_result(&m);
        off += m.len;
    }
    FZ_CHECK(ret == LC_ERR_IO || ret == LC_ERR_PROTOCOL, "a stream ends in IO or PROTOCOL");
    proto_free(&m);
    return 0;
}

/*
 * proto.h — the typed, size-checked messages between the station and
 * linecert-signer (docs/signer-protocol.md).
 *
 * A frame is a 12-byte header — u32 body length, u16 type, u16 zero, u32
 * request id, all big-endian — followed by the body: a sequence of fields,
 * each u16 tag, u32 length, bytes.  Frames are at most PROTO_MAX_FRAME bytes;
 * anything else is a protocol error.  Request ids let several requests be in
 * flight at once; every response carries the id of its request.
 */
#ifndef LINECERT_PROTO_H
#define LINECERT_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_VERSION   1
#define PROTO_HEADER    12
#define PROTO_MAX_FRAME (256 * 1024)
/* Entries in a CHECKPOINT's pending or withheld list: far more than ever in flight, and
 * small enough that both lists in the signed reply stay well inside PROTO_MAX_FRAME. */
#define CHECKPOINT_MAX_LIST 2048

enum proto_type {
    /* requests: station -> signer */
    PROTO_CONFIGURE = 1,   /* module, PIN file, lines; answered OK or ERROR */
    PROTO_ISSUE = 2,       /* leaf certificate for one CSR; CERT, REFUSED or ERROR */
    PROTO_STATUS = 3,      /* signature counter and token state; STATUS */
    PROTO_CA_CERT = 4,     /* setup mode only (pki init): a CA certificate; CERT or ERROR */
    PROTO_CRL = 6,         /* a line's CRL; CERT (T_CERT holds the CRL DER) or ERROR */
    PROTO_VERIFY_CERT = 7, /* DPS proof-of-possession certificate; CERT, REFUSED or ERROR */
    PROTO_BENCH_SIGN = 8,  /* raw signing rate of a line key; STATUS_REPLY or ERROR */
    PROTO_CHECKPOINT = 9,  /* signed audit checkpoint of a line key; CERT (signature) or ERROR */
    /* responses: signer -> station */
    PROTO_OK = 0x81,
    PROTO_CERT = 0x82,
    PROTO_REFUSED = 0x83,
    PROTO_ERROR = 0x84,
    PROTO_STATUS_REPLY = 0x85,
};

enum proto_tag {
    T_VERSION = 1,          /* u32 */
    T_MODULE = 2,           /* string: PKCS#11 module path */
    T_PIN_FILE = 3,         /* string */
    T_SOFTHSM_CONF = 4,     /* string, optional */
    T_LINE = 10,            /* string: line id; in CONFIGURE it starts a line's fields */
    T_KEY_URI = 11,         /* string: PKCS#11 URI of the line CA key */
    T_ISSUER_CERT = 12,     /* DER of the line CA certificate */
    T_SUBJECT_O = 13,       /* string */
    T_SUBJECT_OU = 14,      /* string */
    T_MAX_DAYS = 15,        /* u32: longest validity the signer will grant */
    T_CSR = 20,             /* DER */
    T_SERIAL = 21,          /* 16 bytes */
    T_NOT_BEFORE = 22,      /* i64 */
    T_NOT_AFTER = 23,       /* i64 */
    T_CERT = 30,            /* DER */
    T_REASON = 31,          /* u32 enum lc_reason */
    T_DETAIL = 32,          /* string */
    T_ERROR = 33,           /* i32 lc_err */
    T_SIGNATURES = 34,      /* u64: signatures made since start */
    T_HSM_OK = 35,          /* u32: 1 token usable, 0 not */
    T_ISSUER_KEY_URI = 40,  /* CA_CERT: signing key */
    T_SUBJECT_KEY_URI = 41, /* CA_CERT: certified key */
    T_SUBJECT_CN = 42,
    T_PATHLEN = 43,     /* i32, -1 = none */
    T_CRL_NUMBER = 50,  /* i64 */
    T_THIS_UPDATE = 51, /* i64 */
    T_NEXT_UPDATE = 52, /* i64 */
    T_CRL_ENTRY = 53,   /* i64 revocation time, u8 reason, serial magnitude (1..64 bytes) */
    T_CODE = 54,        /* string: the DPS verification code */
    T_COUNT = 55,       /* u32: signatures to make (BENCH_SIGN) */
    T_ELAPSED_NS = 56,  /* i64: how long they took */
    T_SIG_NO = 57,      /* u64: number of this signature among the line key's (1-based) */
    T_INSTANCE = 58,    /* string: 16 hex digits naming this signer's numbering */
    T_ROWS = 59,        /* i64: CHECKPOINT: audit rows committed */
    T_HEAD = 60,        /* string: CHECKPOINT: hash of the last committed row (64 hex) */
    T_PENDING = 61,     /* string: CHECKPOINT: "INSTANCE:N" returned, not committed yet */
    T_WITHHELD = 62,    /* string: CHECKPOINT: "INSTANCE:N" discarded unreleased */
    T_FINAL = 63,       /* u32: CHECKPOINT: 1 at shutdown (nothing in flight) */
};

/* A message being built or parsed. */
typedef struct proto_msg {
    uint16_t type;
    uint32_t id;
    unsigned char *buf; /* whole frame: header + body */
    size_t len;
    size_t cap;
    int failed; /* sticky allocation failure */
} proto_msg_t;

/* A field view into a parsed message. */
typedef struct proto_field {
    uint16_t tag;
    const unsigned char *val;
    uint32_t len;
} proto_field_t;

/* Starts a message (resets m, keeps its buffer). */
void proto_init(proto_msg_t *m, uint16_t type, uint32_t id);
void proto_free(proto_msg_t *m);
void proto_put(proto_msg_t *m, uint16_t tag, const void *val, size_t len);
void proto_put_str(proto_msg_t *m, uint16_t tag, const char *s);
void proto_put_u32(proto_msg_t *m, uint16_t tag, uint32_t v);
void proto_put_i64(proto_msg_t *m, uint16_t tag, int64_t v);

/*
 * Writes the whole frame to fd (retrying short writes and EINTR).
 * Returns LC_OK, LC_ERR_NOMEM (the message failed to build) or LC_ERR_IO.
 */
int proto_send(int fd, proto_msg_t *m);

/*
 * The frame reader of a stream that only it reads: one read() takes in
 * every frame the peer has written so far, not two read()s per frame.
 * Embed it (no allocation); there is nothing to free.
 */
typedef struct proto_reader {
    int fd;
    size_t start, end;            /* unread bytes are buf[start..end) */
    unsigned char buf[64 * 1024]; /* a larger frame's body is read past it */
} proto_reader_t;

void proto_reader_init(proto_reader_t *r, int fd);

/*
 * Reads the next frame into m (reusing m's buffer).  Returns LC_OK, LC_ERR_IO
 * (EOF or read error; EOF sets errno to 0) or LC_ERR_PROTOCOL (bad header or
 * oversize; the stream cannot be resynchronised).
 */
int proto_read(proto_reader_t *r, proto_msg_t *m);

/*
 * 1 when the next proto_read() would wait for the peer: no whole frame is
 * buffered, and non-blocking reads take in what has arrived without
 * completing one.  0 when a whole frame, EOF or an error is there to be read.
 * A stream that is not a socket counts as idle.
 */
int proto_reader_idle(proto_reader_t *r);

/*
 * Iterates the fields of a received message: *pos starts at 0.  Returns 1
 * with *f filled, 0 at the end, -1 if a field overruns the body.
 */
int proto_next(const proto_msg_t *m, size_t *pos, proto_field_t *f);

/* Field accessors: return 0 on success, -1 if the field has the wrong size. */
int proto_get_u32(const proto_field_t *f, uint32_t *v);
int proto_get_i64(const proto_field_t *f, int64_t *v);
/* Copies a string field into a malloc'd NUL-terminated string; NULL if it holds a NUL. */
char *proto_get_str(const proto_field_t *f);

#endif

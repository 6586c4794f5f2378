/*
 * fuzz_plc.c — the PLC register decoder (station/plc.h, docs/plc.md).
 *
 * Input: the register values of one poll as they travel in the Modbus
 * response, big-endian 16-bit words for REQ_SEQ .. ACK_SEQ (missing bytes
 * are zero).  plc_snapshot_decode turns them into what the line worker acts
 * on; the DEVICE_SERIAL registers become a string that names the device in
 * the jig program's arguments, the registration ID, the audit log and the
 * log, so it must be printable ASCII or refused, never partial.
 *
 * Checks, against an independent reading of the documented map (ASCII, two
 * characters per register, high byte first, NUL-padded, 0x21..0x7E only):
 *  - REQ_SEQ, ACK_SEQ and the raw serial registers are what was read;
 *  - serial_len is the documented length, or -1 exactly when the map says
 *    the serial is not acceptable; serial is then "";
 *  - a decoded serial encodes back (plc_encode_serial) to the registers
 *    read, and any bytes after the poll block, taken as a string, survive
 *    plc_encode_serial + plc_decode_serial when they are printable.
 */
#include "fuzz_util.h"
#include "plc.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The documented rule, written from docs/plc.md, not from plcmap.h. */
static int reference_serial_len(const uint16_t *regs)
{
    unsigned char b[PLC_SERIAL_MAX];
    int len = PLC_SERIAL_MAX;

    for (int i = 0; i < PLC_SERIAL_REGS; i++) {
        b[2 * i] = (unsigned char)(regs[i] >> 8);
        b[2 * i + 1] = (unsigned char)regs[i];
    }
    for (int i = 0; i < PLC_SERIAL_MAX; i++) {
        if (b[i] == 0) {
            len = i;
            break;
        }
        if (b[i] < 0x21 || b[i] > 0x7e)
            return -1;
    }
    for (int i = len; i < PLC_SERIAL_MAX; i++)
        if (b[i] != 0)
            return -1; /* NUL padding must run to the end */
    return len;
}

static void check_string_roundtrip(const uint8_t *data, size_t size)
{
    char in[PLC_SERIAL_MAX + 9], out[PLC_SERIAL_MAX + 1];
    uint16_t regs[PLC_SERIAL_REGS];
    size_t n = size < sizeof in - 1 ? size : sizeof in - 1;
    int printable = 1, len;

    memcpy(in, data, n);
    in[n] = '\0';
    n = strlen(in); /* plc_encode_serial takes a C string */
    for (size_t i = 0; i < n && i < PLC_SERIAL_MAX; i++)
        printable = printable && (unsigned char)in[i] >= 0x21 && (unsigned char)in[i] <= 0x7e;
    plc_encode_serial(in, regs);
    len = plc_decode_serial(regs, out);
    FZ_CHECK(len >= -1 && len <= PLC_SERIAL_MAX, "decode length range");
    if (printable) {
        size_t want = n < PLC_SERIAL_MAX ? n : PLC_SERIAL_MAX;
        FZ_CHECK(len == (int)want, "a printable serial survives encode + decode");
        FZ_CHECK(memcmp(out, in, want) == 0 && out[want] == '\0', "same characters");
    } else {
        FZ_CHECK(len == -1, "a non-printable serial is refused");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint16_t regs[PLC_POLL_REGS] = {0}, back[PLC_SERIAL_REGS];
    const size_t block = 2 * PLC_POLL_REGS;
    plc_snapshot_t snap;
    int want;

    for (size_t i = 0; i < PLC_POLL_REGS && 2 * i < size; i++)
        regs[i] = (uint16_t)(data[2 * i] << 8 | (2 * i + 1 < size ? data[2 * i + 1] : 0));
    memset(&snap, 0x5a, sizeof snap); /* the decoder must set every field */
    plc_snapshot_decode(regs, &snap);

    FZ_CHECK(snap.req_seq == regs[PLC_REQ_SEQ], "REQ_SEQ as read");
    FZ_CHECK(snap.ack_seq == regs[PLC_ACK_SEQ], "ACK_SEQ as read");
    FZ_CHECK(memcmp(snap.serial_regs, regs + PLC_SERIAL, sizeof snap.serial_regs) == 0,
             "serial registers as read");
    want = reference_serial_len(regs + PLC_SERIAL);
    FZ_CHECK(snap.serial_len == want, "serial length as the register map defines it");
    FZ_CHECK(memchr(snap.serial, '\0', sizeof snap.serial) != NULL, "serial NUL-terminated");
    FZ_CHECK((int)strlen(snap.serial) == (want > 0 ? want : 0), "serial string length");
    for (const char *p = snap.serial; *p != '\0'; p++)
        FZ_CHECK(*p >= 0x21 && *p <= 0x7e, "serial is printable ASCII without spaces");
    if (want >= 0) {
        plc_encode_serial(snap.serial, back);
        FZ_CHECK(memcmp(back, snap.serial_regs, sizeof back) == 0, "serial encodes back");
    }
    if (size > block)
        check_string_roundtrip(data + block, size - block);
    return 0;
}

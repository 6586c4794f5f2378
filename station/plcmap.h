/*
 * plcmap.h — the PLC handshake register map (docs/plc.md).  A contract with
 * PLC programs: offsets and values never change meaning; extend only.
 *
 * Holding registers relative to the line's plc_base.  The PLC writes
 * REQ_SEQ and DEVICE_SERIAL; the station writes everything from ACK_SEQ on.
 * ACK_SEQ, RESULT and REASON are always written together in one Modbus
 * write (function 16), so the PLC never sees an ACK with a stale result.
 */
#ifndef LINECERT_PLCMAP_H
#define LINECERT_PLCMAP_H

#include <stddef.h>
#include <stdint.h>

enum plc_reg {
    PLC_REQ_SEQ = 0, /* PLC: 1..65535; != ACK_SEQ means a new request */
    PLC_SERIAL = 1,  /* PLC: 16 registers, ASCII, high byte first, NUL-padded */
    PLC_SERIAL_REGS = 16,
    PLC_ACK_SEQ = 32,   /* station: REQ_SEQ of the finished request */
    PLC_RESULT = 33,    /* station: enum plc_result */
    PLC_REASON = 34,    /* station: enum lc_reason (policy.h) */
    PLC_HEARTBEAT = 35, /* station: +1 at least once per second */
    PLC_ISSUED_HI = 36, /* station: certificates issued on this line, u32 high word */
    PLC_ISSUED_LO = 37,
    PLC_STATION_STATE = 38, /* station: enum plc_state */
    PLC_BLOCK = 39,         /* registers in one line's block */
};

enum plc_result {
    PLC_RESULT_NONE = 0,
    PLC_RESULT_BUSY = 1,
    PLC_RESULT_ISSUED = 2,
    PLC_RESULT_REFUSED = 3,
    PLC_RESULT_FAULT = 4,
};

enum plc_state {
    PLC_STATE_OK = 0,
    PLC_STATE_PAUSED = 1,
    PLC_STATE_HSM_FAULT = 2,
    PLC_STATE_AUDIT_FAULT = 3,
    PLC_STATE_JIG_FAULT = 4,
};

#define PLC_SERIAL_MAX (PLC_SERIAL_REGS * 2)

/*
 * Decodes DEVICE_SERIAL (regs[0..15]) into out (PLC_SERIAL_MAX + 1 bytes):
 * two ASCII bytes per register, high byte first, ending at the first NUL.
 * Returns the length, or -1 if a byte is not printable ASCII (0x21..0x7e) or
 * a non-NUL byte follows a NUL.
 */
static inline int plc_decode_serial(const uint16_t *regs, char *out)
{
    int len = 0, ended = 0;

    for (int i = 0; i < PLC_SERIAL_REGS; i++) {
        unsigned char b[2] = {(unsigned char)(regs[i] >> 8), (unsigned char)(regs[i] & 0xff)};
        for (int j = 0; j < 2; j++) {
            if (b[j] == 0) {
                ended = 1;
            } else if (ended || b[j] < 0x21 || b[j] > 0x7e) {
                out[len] = '\0';
                return -1;
            } else {
                out[len++] = (char)b[j];
            }
        }
    }
    out[len] = '\0';
    return len;
}

/* Encodes a serial (at most PLC_SERIAL_MAX bytes) into 16 registers. */
static inline void plc_encode_serial(const char *s, uint16_t *regs)
{
    size_t n = 0;

    while (s[n] != '\0' && n < PLC_SERIAL_MAX)
        n++;
    for (int i = 0; i < PLC_SERIAL_REGS; i++) {
        unsigned hi = (size_t)(2 * i) < n ? (unsigned char)s[2 * i] : 0;
        unsigned lo = (size_t)(2 * i + 1) < n ? (unsigned char)s[2 * i + 1] : 0;
        regs[i] = (uint16_t)(hi << 8 | lo);
    }
}

#endif

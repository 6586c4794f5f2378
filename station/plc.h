/*
 * plc.h — one line's PLC connection (Modbus TCP client, libmodbus).
 *
 * The station polls the line's register block (plcmap.h) and answers in it.
 * A connection that fails is closed; plc_poll() reconnects with backoff so
 * that a PLC that goes away and comes back is picked up without a restart.
 */
#ifndef LINECERT_PLC_H
#define LINECERT_PLC_H

#include "plcmap.h"

#include <stddef.h>
#include <stdint.h>

typedef struct plc plc_t;

/* One poll reads the registers REQ_SEQ .. ACK_SEQ in a single request. */
#define PLC_POLL_REGS (PLC_ACK_SEQ + 1)

/* What one poll read. */
typedef struct plc_snapshot {
    uint16_t req_seq;
    uint16_t ack_seq;
    uint16_t serial_regs[PLC_SERIAL_REGS]; /* as read: the request's identity (lost-ACK check) */
    int serial_len;                  /* plc_decode_serial(): length, 0 empty, -1 not printable */
    char serial[PLC_SERIAL_MAX + 1]; /* the decoded serial; "" unless serial_len > 0 */
} plc_snapshot_t;

/*
 * Prepares a client for host:port, Modbus unit, register base.  Does not
 * connect.  Returns LC_OK or LC_ERR_NOMEM.  Free with plc_free().
 */
int plc_new(const char *host, int port, int unit, int base, plc_t **out);

/* Closes and frees.  NULL is a no-op. */
void plc_free(plc_t *p);

/*
 * Decodes one poll's registers (regs[0..PLC_POLL_REGS-1], offsets from the
 * line's plc_base, values as libmodbus returns them) into *snap, including
 * the DEVICE_SERIAL string.  Pure: no I/O, any register values are
 * accepted; a serial with a byte outside 0x21..0x7e (or a byte after the
 * NUL padding) gives serial_len -1 and serial "", never a partial string.
 */
void plc_snapshot_decode(const uint16_t *regs, plc_snapshot_t *snap);

/*
 * Reads REQ_SEQ, DEVICE_SERIAL and ACK_SEQ, connecting first if needed
 * (at most one attempt per backoff period, 250 ms doubling to 5 s).
 * Returns LC_OK, or LC_ERR_IO with a message ("127.0.0.1:1502: Connection
 * refused") when the PLC is not reachable or the exchange failed.
 */
int plc_poll(plc_t *p, plc_snapshot_t *snap, char *err, size_t errlen);

/* Writes RESULT = busy.  Returns LC_OK or LC_ERR_IO. */
int plc_set_busy(plc_t *p, char *err, size_t errlen);

/* Writes ACK_SEQ, RESULT, REASON in ONE Modbus write.  Returns LC_OK or LC_ERR_IO. */
int plc_finish(plc_t *p, uint16_t ack_seq, int result, int reason, char *err, size_t errlen);

/* Writes HEARTBEAT, ISSUED_COUNT and STATION_STATE in one write.  Returns LC_OK or LC_ERR_IO. */
int plc_status(plc_t *p, uint16_t heartbeat, uint32_t issued, int state, char *err, size_t errlen);

/* 1 while connected. */
int plc_connected(const plc_t *p);

/* "host:port" for messages. */
const char *plc_address(const plc_t *p);

#endif

/*
 * testutil_modbus.h — a plain Modbus TCP client for the suites that play the
 * PLC against linecert-plc-sim (unit 1 on 127.0.0.1), with no libmodbus in
 * between: what goes on the wire is exactly what the test wrote.
 */
#ifndef LINECERT_TESTUTIL_MODBUS_H
#define LINECERT_TESTUTIL_MODBUS_H

#include <stddef.h>
#include <stdint.h>

/*
 * One request PDU in its own connection (2 s timeouts); returns the response
 * PDU's length in resp, or -1 (no connection, short or mismatched answer).
 */
int tu_mb_call(int port, const uint8_t *pdu, size_t len, uint8_t *resp, size_t cap);

/* Reads n holding registers at addr (function 3); fails the test if it cannot. */
void tu_mb_read(int port, int addr, int n, uint16_t *v);

/* Writes n <= 32 holding registers at addr in one request (function 16); fails the test if it
 * cannot. */
void tu_mb_write(int port, int addr, int n, const uint16_t *v);

/* DEVICE_SERIAL's 16 registers for serial: two ASCII bytes each, high byte first, NUL-padded. */
void tu_plc_serial_regs(const char *serial, uint16_t regs[16]);

#endif

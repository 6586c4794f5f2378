/*
 * plc.c — Modbus TCP client for one line (see plc.h).
 */
#include "plc.h"

#include "lcerr.h"

#include <errno.h>
#include <modbus.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct plc {
    modbus_t *mb;
    char address[300];
    int base;
    int connected;
    double next_try; /* monotonic seconds: no reconnect before this */
    double backoff;  /* seconds */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int plc_new(const char *host, int port, int unit, int base, plc_t **out)
{
    plc_t *p = calloc(1, sizeof *p);
    char service[16];

    *out = NULL;
    if (p == NULL)
        return LC_ERR_NOMEM;
    snprintf(service, sizeof service, "%d", port);
    p->mb = modbus_new_tcp_pi(host, service);
    if (p->mb == NULL) {
        free(p);
        return LC_ERR_NOMEM;
    }
    modbus_set_slave(p->mb, unit);
    /* A PLC on the line's LAN answers in milliseconds; a stuck one must not stall the line. */
    modbus_set_response_timeout(p->mb, 0, 500000);
    modbus_set_byte_timeout(p->mb, 0, 200000);
    snprintf(p->address, sizeof p->address, "%s:%d", host, port);
    p->base = base;
    p->backoff = 0.25;
    *out = p;
    return LC_OK;
}

void plc_free(plc_t *p)
{
    if (p == NULL)
        return;
    modbus_close(p->mb);
    modbus_free(p->mb);
    free(p);
}

int plc_connected(const plc_t *p)
{
    return p->connected;
}

const char *plc_address(const plc_t *p)
{
    return p->address;
}

static int broken(plc_t *p, const char *what, char *err, size_t errlen)
{
    int e = errno;

    modbus_close(p->mb);
    p->connected = 0;
    p->next_try = now_s() + p->backoff;
    return lc_seterr(LC_ERR_IO, err, errlen, "PLC %s %s: %s", p->address, what, modbus_strerror(e));
}

static int ensure(plc_t *p, char *err, size_t errlen)
{
    double t;
    int ret;

    if (p->connected)
        return LC_OK;
    t = now_s();
    if (t < p->next_try)
        return lc_seterr(LC_ERR_IO, err, errlen, "PLC %s not answering (retry in %.1f s)",
                         p->address, p->next_try - t);
    if (modbus_connect(p->mb) != 0) {
        ret = broken(p, "not answering", err, errlen);
        p->backoff = p->backoff * 2 > 5.0 ? 5.0 : p->backoff * 2;
        return ret;
    }
    p->connected = 1;
    p->backoff = 0.25;
    return LC_OK;
}

void plc_snapshot_decode(const uint16_t *regs, plc_snapshot_t *snap)
{
    memset(snap, 0, sizeof *snap);
    snap->req_seq = regs[PLC_REQ_SEQ];
    snap->ack_seq = regs[PLC_ACK_SEQ];
    memcpy(snap->serial_regs, regs + PLC_SERIAL, sizeof snap->serial_regs);
    snap->serial_len = plc_decode_serial(snap->serial_regs, snap->serial);
    if (snap->serial_len <= 0) /* plc_decode_serial leaves the printable prefix: drop it */
        snap->serial[0] = '\0';
}

int plc_poll(plc_t *p, plc_snapshot_t *snap, char *err, size_t errlen)
{
    uint16_t regs[PLC_POLL_REGS];
    int ret = ensure(p, err, errlen);

    memset(snap, 0, sizeof *snap);
    if (ret != LC_OK)
        return ret;
    /* One read covers REQ_SEQ .. ACK_SEQ: a consistent snapshot of the request. */
    if (modbus_read_registers(p->mb, p->base, PLC_POLL_REGS, regs) != PLC_POLL_REGS)
        return broken(p, "read failed", err, errlen);
    plc_snapshot_decode(regs, snap);
    return LC_OK;
}

int plc_set_busy(plc_t *p, char *err, size_t errlen)
{
    int ret = ensure(p, err, errlen);

    if (ret != LC_OK)
        return ret;
    if (modbus_write_register(p->mb, p->base + PLC_RESULT, PLC_RESULT_BUSY) != 1)
        return broken(p, "write failed", err, errlen);
    return LC_OK;
}

int plc_finish(plc_t *p, uint16_t ack_seq, int result, int reason, char *err, size_t errlen)
{
    uint16_t regs[3] = {ack_seq, (uint16_t)result, (uint16_t)reason};
    int ret = ensure(p, err, errlen);

    if (ret != LC_OK)
        return ret;
    if (modbus_write_registers(p->mb, p->base + PLC_ACK_SEQ, 3, regs) != 3)
        return broken(p, "write failed", err, errlen);
    return LC_OK;
}

int plc_status(plc_t *p, uint16_t heartbeat, uint32_t issued, int state, char *err, size_t errlen)
{
    uint16_t regs[4] = {heartbeat, (uint16_t)(issued >> 16), (uint16_t)(issued & 0xffff),
                        (uint16_t)state};
    int ret = ensure(p, err, errlen);

    if (ret != LC_OK)
        return ret;
    if (modbus_write_registers(p->mb, p->base + PLC_HEARTBEAT, 4, regs) != 4)
        return broken(p, "write failed", err, errlen);
    return LC_OK;
}

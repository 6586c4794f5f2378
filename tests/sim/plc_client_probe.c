/*
 * plc_client_probe.c — a minimal stand-in for the station's PLC side, used
 * to test linecert-plc-sim on its own (tests/sim/selftest.sh) and to check a
 * real PLC program's register block before a station is connected.
 *
 * For one line it does what linecertd's line worker does on the wire: poll
 * REQ_SEQ..ACK_SEQ in one read, answer a new request with ACK_SEQ, RESULT and
 * REASON in one write (function 16), and write HEARTBEAT, ISSUED_COUNT and
 * STATION_STATE every 250 ms.  It issues nothing: the answers come from
 * --pattern.  See docs/simulators.md.
 */
#include "plcmap.h"

#include <errno.h>
#include <modbus.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_PATTERN 32

struct answer {
    int result; /* enum plc_result */
    int reason; /* enum lc_reason */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void)
{
    fputs("usage: plc-client-probe --connect HOST:PORT [--base B] [--unit U] [--count C]\n"
          "         [--pattern RESULT[:REASON],...] [--poll-ms P] [--delay-ms D]\n"
          "         [--reconnect-every K] [--no-heartbeat]\n",
          stderr);
}

/* "2,3:9,4:23" -> {2,0},{3,9},{4,23}.  Returns the number of answers or -1. */
static int parse_pattern(const char *s, struct answer *a)
{
    int n = 0;

    while (*s != '\0' && n < MAX_PATTERN) {
        char *end;
        long r = strtol(s, &end, 10), why = 0;

        if (end == s || r < 0 || r > 65535)
            return -1;
        s = end;
        if (*s == ':') {
            why = strtol(s + 1, &end, 10);
            if (end == s + 1 || why < 0 || why > 65535)
                return -1;
            s = end;
        }
        a[n].result = (int)r;
        a[n].reason = (int)why;
        n++;
        if (*s == ',')
            s++;
        else if (*s != '\0')
            return -1;
    }
    return n > 0 ? n : -1;
}

int main(int argc, char **argv)
{
    char host[256] = "", port[16] = "";
    int base = 0, unit = 1, poll_ms = 5, delay_ms = 0, reconnect_every = 0, heartbeat = 1;
    long count = 0, handled = 0;
    uint32_t issued = 0;
    uint16_t hb = 0, last_req = 0, last_answer[3] = {0, 0, 0};
    struct answer pat[MAX_PATTERN] = {{PLC_RESULT_ISSUED, 0}};
    int npat = 1, connected = 0, reconnects = 0, ret = 1;
    double next_hb = 0;
    modbus_t *mb = NULL;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--no-heartbeat") == 0) {
            heartbeat = 0;
            continue;
        }
        if (v == NULL) {
            usage();
            return 2;
        }
        i++;
        if (strcmp(a, "--connect") == 0) {
            const char *c = strrchr(v, ':');
            if (c == NULL || (size_t)(c - v) >= sizeof host || strlen(c + 1) >= sizeof port) {
                usage();
                return 2;
            }
            memcpy(host, v, (size_t)(c - v));
            host[c - v] = '\0';
            strcpy(port, c + 1);
        } else if (strcmp(a, "--base") == 0) {
            base = atoi(v);
        } else if (strcmp(a, "--unit") == 0) {
            unit = atoi(v);
        } else if (strcmp(a, "--count") == 0) {
            count = atol(v);
        } else if (strcmp(a, "--poll-ms") == 0) {
            poll_ms = atoi(v);
        } else if (strcmp(a, "--delay-ms") == 0) {
            delay_ms = atoi(v);
        } else if (strcmp(a, "--reconnect-every") == 0) {
            reconnect_every = atoi(v);
        } else if (strcmp(a, "--pattern") == 0) {
            npat = parse_pattern(v, pat);
            if (npat < 0) {
                usage();
                return 2;
            }
        } else {
            usage();
            return 2;
        }
    }
    if (host[0] == '\0') {
        usage();
        return 2;
    }
    mb = modbus_new_tcp_pi(host, port);
    if (mb == NULL) {
        fprintf(stderr, "plc-client-probe: %s\n", modbus_strerror(errno));
        return 1;
    }
    modbus_set_slave(mb, unit);
    modbus_set_response_timeout(mb, 0, 500000);

    while (count == 0 || handled < count) {
        uint16_t regs[PLC_ACK_SEQ + 1];
        double t = now_s();

        if (!connected) {
            if (modbus_connect(mb) != 0) {
                fprintf(stderr, "plc-client-probe: connect %s:%s: %s\n", host, port,
                        modbus_strerror(errno));
                usleep(100000);
                continue;
            }
            connected = 1;
        }
        if (heartbeat && t >= next_hb) {
            uint16_t st[4] = {++hb, (uint16_t)(issued >> 16), (uint16_t)(issued & 0xffff),
                              PLC_STATE_OK};
            if (modbus_write_registers(mb, base + PLC_HEARTBEAT, 4, st) != 4)
                goto broken;
            next_hb = t + 0.25;
        }
        if (modbus_read_registers(mb, base, PLC_ACK_SEQ + 1, regs) != PLC_ACK_SEQ + 1)
            goto broken;
        if (regs[PLC_REQ_SEQ] != 0 && regs[PLC_REQ_SEQ] != regs[PLC_ACK_SEQ] &&
            regs[PLC_REQ_SEQ] == last_req) {
            /* Our ACK was lost (the PLC restarted, or the write failed): answer again. */
            if (modbus_write_registers(mb, base + PLC_ACK_SEQ, 3, last_answer) != 3)
                goto broken;
            continue;
        }
        if (regs[PLC_REQ_SEQ] != 0 && regs[PLC_REQ_SEQ] != regs[PLC_ACK_SEQ]) {
            const struct answer *an = &pat[handled % npat];
            uint16_t w[3] = {regs[PLC_REQ_SEQ], (uint16_t)an->result, (uint16_t)an->reason};
            char serial[PLC_SERIAL_MAX + 1];

            if (plc_decode_serial(regs + PLC_SERIAL, serial) < 0)
                fprintf(stderr, "plc-client-probe: seq %u: serial not printable ASCII\n",
                        regs[PLC_REQ_SEQ]);
            if (delay_ms > 0)
                usleep((useconds_t)delay_ms * 1000);
            if (modbus_write_registers(mb, base + PLC_ACK_SEQ, 3, w) != 3)
                goto broken;
            if (an->result == PLC_RESULT_ISSUED)
                issued++;
            last_req = regs[PLC_REQ_SEQ];
            memcpy(last_answer, w, sizeof w);
            handled++;
            printf("seq %u serial %s result %d reason %d\n", w[0], serial, an->result, an->reason);
            fflush(stdout);
            if (reconnect_every > 0 && handled % reconnect_every == 0) {
                modbus_close(mb);
                connected = 0;
                reconnects++;
            }
            continue;
        }
        usleep((useconds_t)poll_ms * 1000);
        continue;
    broken:
        fprintf(stderr, "plc-client-probe: %s\n", modbus_strerror(errno));
        modbus_close(mb);
        connected = 0;
        usleep(100000);
    }
    /* One last status write so that ISSUED_COUNT is current. */
    if (connected && heartbeat) {
        uint16_t st[4] = {++hb, (uint16_t)(issued >> 16), (uint16_t)(issued & 0xffff),
                          PLC_STATE_OK};
        if (modbus_write_registers(mb, base + PLC_HEARTBEAT, 4, st) != 4)
            fprintf(stderr, "plc-client-probe: %s\n", modbus_strerror(errno));
    }
    printf("handled %ld issued %u reconnects %d\n", handled, issued, reconnects);
    ret = 0;
    modbus_close(mb);
    modbus_free(mb);
    return ret;
}

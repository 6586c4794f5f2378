/*
 * testutil_modbus.c — see testutil_modbus.h.
 */
#include "testutil_modbus.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static int read_full(int fd, uint8_t *buf, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = recv(fd, buf + got, n - got, 0);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

int tu_mb_call(int port, const uint8_t *pdu, size_t len, uint8_t *resp, size_t cap)
{
    static uint16_t tid;
    struct sockaddr_in a;
    struct timeval tv = {2, 0};
    uint8_t adu[300], hdr[7];
    size_t rlen;
    int fd, ret = -1;

    if (len > sizeof adu - 7)
        return -1;
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        goto out;
    tid++;
    adu[0] = (uint8_t)(tid >> 8);
    adu[1] = (uint8_t)tid;
    adu[2] = adu[3] = 0;
    adu[4] = (uint8_t)((len + 1) >> 8);
    adu[5] = (uint8_t)(len + 1);
    adu[6] = 1;
    memcpy(adu + 7, pdu, len);
    if (send(fd, adu, len + 7, MSG_NOSIGNAL) != (ssize_t)(len + 7) || read_full(fd, hdr, 7) != 0)
        goto out;
    rlen = ((size_t)hdr[4] << 8 | hdr[5]);
    if (rlen < 2 || rlen - 1 > cap || hdr[0] != adu[0] || hdr[1] != adu[1] ||
        read_full(fd, resp, rlen - 1) != 0)
        goto out;
    ret = (int)(rlen - 1);
out:
    close(fd);
    return ret;
}

void tu_mb_read(int port, int addr, int n, uint16_t *v)
{
    uint8_t pdu[5] = {3, (uint8_t)(addr >> 8), (uint8_t)addr, (uint8_t)(n >> 8), (uint8_t)n};
    uint8_t resp[260];
    int r = tu_mb_call(port, pdu, sizeof pdu, resp, sizeof resp);

    ck_assert_msg(r == 2 + 2 * n && resp[0] == 3 && resp[1] == 2 * n,
                  "Modbus read of %d registers at %d failed (%d)", n, addr, r);
    for (int i = 0; i < n; i++)
        v[i] = (uint16_t)(resp[2 + 2 * i] << 8 | resp[3 + 2 * i]);
}

void tu_mb_write(int port, int addr, int n, const uint16_t *v)
{
    uint8_t pdu[6 + 2 * 32], resp[16];
    int r;

    ck_assert_int_le(n, 32);
    pdu[0] = 16;
    pdu[1] = (uint8_t)(addr >> 8);
    pdu[2] = (uint8_t)addr;
    pdu[3] = 0;
    pdu[4] = (uint8_t)n;
    pdu[5] = (uint8_t)(2 * n);
    for (int i = 0; i < n; i++) {
        pdu[6 + 2 * i] = (uint8_t)(v[i] >> 8);
        pdu[7 + 2 * i] = (uint8_t)v[i];
    }
    r = tu_mb_call(port, pdu, (size_t)(6 + 2 * n), resp, sizeof resp);
    ck_assert_msg(r == 5 && resp[0] == 16, "Modbus write of %d registers at %d failed (%d)", n,
                  addr, r);
}

void tu_plc_serial_regs(const char *serial, uint16_t regs[16])
{
    size_t len = strlen(serial);

    memset(regs, 0, 16 * sizeof *regs);
    for (size_t i = 0; i < len && i < 32; i++)
        regs[i / 2] |= (uint16_t)((unsigned char)serial[i] << (i % 2 ? 0 : 8));
}

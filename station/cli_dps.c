/*
 * cli_dps.c — `linecert dps-check`: would Azure IoT DPS provision the device
 * that presents this chain, given these enrollments?  (docs/dps.md)
 *
 * It is built into the lcstation library, not only into the linecert
 * program, so that tests/test_dps.c can run it in-process; it therefore uses
 * nothing of cli.c but the exit codes declared in cli.h.
 */
#include "cli.h"
#include "dps.h"
#include "lcerr.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* The shared exit codes, named for what they mean to this command. */
enum {
    DPS_EXIT_PROVISIONED = EXIT_ISSUED,
    DPS_EXIT_NOT_PROVISIONED = EXIT_TAMPERED,
    DPS_EXIT_INPUT = EXIT_USAGE,
};

static const char DPS_USAGE[] =
    "usage: linecert dps-check --enrollments FILE --chain CHAIN.pem\n"
    "\n"
    "Decides as Azure IoT DPS does whether the device presenting CHAIN.pem (PEM,\n"
    "leaf first) is provisioned under the enrollments in FILE (one per line):\n"
    "  individual enabled|disabled PATH\n"
    "  group enabled|disabled PATH\n"
    "  verified PATH\n"
    "Exit codes: 0 provisioned, 1 not provisioned, 2 usage or input error.\n"
    "See docs/dps.md.\n";

int cmd_dps_check(int argc, char **argv)
{
    static const struct option opts[] = {{"enrollments", required_argument, NULL, 'e'},
                                         {"chain", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *enrollments = NULL, *chain = NULL;
    dps_enrollments_t *e = NULL;
    dps_result_t res;
    char err[1024];
    int c, help = 0, ret = DPS_EXIT_INPUT;

    optind = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'e':
            enrollments = optarg;
            break;
        case 'c':
            chain = optarg;
            break;
        case 'h':
            help = 1;
            break;
        default:
            goto out; /* getopt has said what was wrong */
        }
    }
    if (help) {
        fputs(DPS_USAGE, stdout);
        ret = fflush(stdout) == 0 ? 0 : DPS_EXIT_INPUT;
        goto out;
    }
    if (optind != argc || enrollments == NULL || chain == NULL) {
        if (optind != argc)
            fprintf(stderr, "linecert: dps-check: unexpected argument %s\n", argv[optind]);
        else
            fprintf(stderr,
                    "linecert: dps-check: --enrollments FILE and --chain CHAIN.pem are required\n");
        fprintf(stderr, "(run `linecert dps-check --help` for usage)\n");
        goto out;
    }
    if (dps_enrollments_load(enrollments, &e, err, sizeof err) != LC_OK ||
        dps_check_chain(e, chain, time(NULL), &res, err, sizeof err) != LC_OK) {
        fprintf(stderr, "linecert: dps-check: %s\n", err);
        goto out;
    }
    printf("%s\nentry: %s\nregistration-id: %s\nwhy: %s\nreason: %s\n",
           res.provisioned ? "provisioned" : "not-provisioned",
           res.entry[0] != '\0' ? res.entry : "none",
           res.registration_id[0] != '\0' ? res.registration_id : "(invalid)", res.why,
           dps_reason_name(res.reason));
    if (fflush(stdout) != 0) {
        fprintf(stderr, "linecert: dps-check: cannot write to stdout: %s\n", strerror(errno));
        goto out;
    }
    ret = res.provisioned ? DPS_EXIT_PROVISIONED : DPS_EXIT_NOT_PROVISIONED;
out:
    dps_enrollments_free(e);
    return ret;
}

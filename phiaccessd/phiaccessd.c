/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <getopt.h>
#include <stdio.h>

#include "phi/macro.h"

#define DEFAULT_CONFIG "/etc/phi/phiaccessd.conf"

static void usage(FILE *f) {
        fprintf(f,
                "Usage: phiaccessd [OPTION]...\n"
                "The phi access daemon: directory identities, TOTP verification, elevation\n"
                "grants and the audit store, served on /run/phiaccessd/socket.\n"
                "\n"
                "  -c, --config FILE   configuration file (default " DEFAULT_CONFIG ")\n"
                "  -f, --foreground    stay in the foreground (the only mode; systemd runs it so)\n"
                "      --check-config  validate the configuration and exit\n"
                "  -h, --help          show this help and exit\n"
                "      --version       show the version and exit\n"
                "\n"
                "This build has no service yet: it parses its options and exits 1.\n");
}

int main(int argc, char **argv) {
        enum { OPT_CHECK = 256, OPT_VERSION };
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "foreground", no_argument, NULL, 'f' },
                { "check-config", no_argument, NULL, OPT_CHECK },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, OPT_VERSION },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "c:fh", options, NULL)) != -1) {
                switch (c) {
                case 'c':
                case 'f':
                case OPT_CHECK:
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                case OPT_VERSION:
                        puts("phiaccessd " PHI_VERSION);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "phiaccessd: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }
        fprintf(stderr, "phiaccessd: no service in this build yet\n");
        return 1;
}

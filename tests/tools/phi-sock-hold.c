/* SPDX-License-Identifier: GPL-2.0-or-later */
/* phi-sock-hold PATH N: opens N connections to the Unix socket PATH, prints
 * "held N" once they are all connected, and keeps them open until it is
 * killed. The TOTP test uses it, as an unprivileged user, to fill
 * the request socket's connection limit and check that logins, on the PAM
 * socket, are not held up by it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        long n;

        if (argc != 3 || strlen(argv[1]) >= sizeof(sa.sun_path) || (n = strtol(argv[2], NULL, 10)) < 1 ||
            n > 4096) {
                fputs("usage: phi-sock-hold PATH N (1..4096)\n", stderr);
                return 2;
        }
        memcpy(sa.sun_path, argv[1], strlen(argv[1]));
        for (long i = 0; i < n; i++) {
                int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                        fprintf(stderr, "phi-sock-hold: connection %ld: %s\n", i + 1, strerror(errno));
                        return 1;
                }
        }
        printf("held %ld\n", n);
        fflush(stdout);
        for (;;)
                pause();
}

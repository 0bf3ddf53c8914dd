/* SPDX-License-Identifier: GPL-2.0-or-later */
/* phi-impostor PATH: listens on the Unix socket PATH and answers OK to every
 * request, as a process pretending to be phiaccessd would. The TOTP test runs
 * it as an unprivileged user to check that pam_phi and phictl refuse a socket
 * not served by root, and as root to show that its answer would otherwise be
 * taken. Prints "listening" once ready; runs until killed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "phi/client.h"

int main(int argc, char **argv) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int lfd;

        if (argc != 2 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
                fputs("usage: phi-impostor PATH\n", stderr);
                return 2;
        }
        memcpy(sa.sun_path, argv[1], strlen(argv[1]));
        (void) unlink(argv[1]);
        lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (lfd < 0 || bind(lfd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(lfd, 16) < 0) {
                fprintf(stderr, "phi-impostor: %s: %s\n", argv[1], strerror(errno));
                return 1;
        }
        printf("listening\n");
        fflush(stdout);
        for (;;) {
                int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                phi_msg *req = NULL, *ok = phi_msg_new(PHI_MSG_OK);
                uint8_t *frame = NULL;
                size_t len = 0;

                if (fd < 0)
                        continue;
                if (ok && phi_wire_read_msg(fd, phi_now_ms() + 5000, &req) == 0 &&
                    phi_msg_encode(ok, &frame, &len) == 0 &&
                    phi_wire_write_frame(fd, frame, len, phi_now_ms() + 5000) < 0)
                        fputs("phi-impostor: could not answer\n", stderr);
                free(frame);
                phi_msg_free(req);
                phi_msg_free(ok);
                close(fd);
        }
}

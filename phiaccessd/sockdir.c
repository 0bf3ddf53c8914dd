/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "phi/macro.h"
#include "sockdir.h"

int phi_sockdir_check(const char *socket_path, char *problem, size_t len) {
        _cleanup_free_ char *dir = NULL, *real = NULL;
        struct stat st;
        char *slash;
        int r = 1;

        problem[0] = 0;
        if (stat(socket_path, &st) < 0)
                return -errno;
        if (!(st.st_mode & S_IWOTH)) {
                snprintf(problem, len, "the socket %s is not writable by others (mode %04o); "
                         "fix: chmod 0666 %s (SocketMode=0666 in phiaccessd.socket)",
                         socket_path, (unsigned) (st.st_mode & 07777), socket_path);
                return 0;
        }
        dir = strdup(socket_path);
        if (!dir)
                return -ENOMEM;
        slash = strrchr(dir, '/');
        if (!slash)
                return 1;   /* relative, in the working directory: nothing to say */
        slash[slash == dir ? 1 : 0] = 0;
        /* The directories the kernel walks: those of the resolved path. */
        real = realpath(dir, NULL);
        if (!real)
                return -errno;
        /* From the socket's directory up: the nearest culprit is the one to fix. */
        for (;;) {
                if (stat(real, &st) < 0) {
                        r = -errno;
                        break;
                }
                if (!(st.st_mode & S_IXOTH)) {
                        snprintf(problem, len, "the directory %s is not searchable by others (mode %04o); "
                                 "fix: chmod o+x %s (for /run/phiaccessd: DirectoryMode=0755 in phiaccessd.socket "
                                 "and RuntimeDirectoryMode=0755 in phiaccessd.service)",
                                 real, (unsigned) (st.st_mode & 07777), real);
                        r = 0;
                        break;
                }
                slash = strrchr(real, '/');
                if (!slash || strcmp(real, "/") == 0)
                        break;
                slash[slash == real ? 1 : 0] = 0;
        }
        return r;
}

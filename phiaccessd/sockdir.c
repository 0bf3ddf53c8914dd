/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "phi/macro.h"
#include "sockdir.h"

/* The directories first (the kernel walks them before it looks at the
 * socket), from the socket's own up; then the socket's mode. The first
 * problem found is reported. */
static int check_path(const char *socket_path, char *problem, size_t len) {
        _cleanup_free_ char *dir = strdup(socket_path), *real = NULL;
        struct stat st;
        char *slash;
        int r = 1;

        if (!dir)
                return -ENOMEM;
        slash = strrchr(dir, '/');
        if (slash) {
                slash[slash == dir ? 1 : 0] = 0;
                /* Those of the resolved path: a symlink's own mode does not count. */
                real = realpath(dir, NULL);
                if (!real)
                        return -errno;
        }
        while (real && r == 1) {
                if (stat(real, &st) < 0)
                        r = -errno;
                else if (!(st.st_mode & S_IXOTH)) {
                        snprintf(problem, len, "the directory %s is not searchable by others (mode %04o); "
                                 "fix: chmod o+x %s (for /run/phiaccessd: DirectoryMode=0755 in phiaccessd.socket "
                                 "and RuntimeDirectoryMode=0755 in phiaccessd.service)",
                                 real, (unsigned) (st.st_mode & 07777), real);
                        r = 0;
                } else if (strcmp(real, "/") == 0)
                        break;
                else {
                        slash = strrchr(real, '/');
                        slash[slash == real ? 1 : 0] = 0;
                }
        }
        if (r == 1) {
                if (stat(socket_path, &st) < 0)
                        r = -errno;
                else if (!(st.st_mode & S_IWOTH)) {
                        snprintf(problem, len, "the socket %s is not writable by others (mode %04o); "
                                 "fix: chmod 0666 %s (SocketMode=0666 in phiaccessd.socket)",
                                 socket_path, (unsigned) (st.st_mode & 07777), socket_path);
                        r = 0;
                }
        }
        return r;
}

int phi_sockdir_check(int fd, const char *socket_path, char *problem, size_t len) {
        struct sockaddr_un sa = { 0 };
        char bound[sizeof(sa.sun_path) + 1];
        socklen_t sl = sizeof(sa);
        size_t n;

        problem[0] = 0;
        if (fd < 0)
                return check_path(socket_path, problem, len);
        if (getsockname(fd, (struct sockaddr *) &sa, &sl) < 0)
                return -errno;
        if (sa.sun_family != AF_UNIX || sl <= offsetof(struct sockaddr_un, sun_path) || sa.sun_path[0] == 0)
                return 1;   /* unnamed or abstract: no directory to walk */
        n = sl - offsetof(struct sockaddr_un, sun_path);
        memcpy(bound, sa.sun_path, n);
        bound[n] = 0;
        return check_path(bound, problem, len);
}

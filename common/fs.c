/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "phi/fs.h"
#include "phi/macro.h"

int phi_fs_fsync_dir(const char *dir) {
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (fd < 0 || fsync(fd) < 0)
                return phi_negative_errno();
        return 0;
}

int phi_fs_fsync_parent(const char *path) {
        const char *slash = strrchr(path, '/');
        _cleanup_free_ char *dir = NULL;

        if (!slash)
                return phi_fs_fsync_dir(".");
        if (slash == path)
                return phi_fs_fsync_dir("/");
        dir = strndup(path, (size_t) (slash - path));
        if (!dir)
                return -ENOMEM;
        return phi_fs_fsync_dir(dir);
}

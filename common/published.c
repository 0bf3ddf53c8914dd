/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Atomic publication and read-only mapping of the files phiaccessd publishes
 * (see phi/published.h). The writer half runs in phiaccessd only; the reader
 * half runs inside every process that resolves a name: no allocation there. */

#include <endian.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "phi/fs.h"
#include "phi/published.h"

static int write_all(int fd, const uint8_t *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return phi_negative_errno();
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

/* The file being replaced, opened before the rename so that it can be marked
 * afterwards; only a regular file that already carries the format's magic is
 * marked (never scribble into whatever else sits at the path). -1 if none. */
static int open_old(const char *path, const struct phi_published_format *f) {
        _cleanup_close_ int fd = -1;
        uint8_t magic[32];
        struct stat sb;

        if (f->magic_size > sizeof(magic))
                return -1;
        fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
        if (fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) ||
            (size_t) sb.st_size < f->header_size ||
            pread(fd, magic, f->magic_size, 0) != (ssize_t) f->magic_size ||
            memcmp(magic, f->magic, f->magic_size) != 0)
                return -1;
        return PHI_TAKE_FD(fd);
}

int phi_published_write(const char *path, const void *data, size_t size,
                        const struct phi_published_format *f) {
        _cleanup_free_ char *dir = NULL, *tmp = NULL;
        _cleanup_close_ int fd = -1, old = -1;
        const char *slash = strrchr(path, '/');
        const uint32_t one = htole32(1);
        int r = 0;

        if (f->superseded_offset + sizeof(one) > f->header_size)
                return -EINVAL;
        if (!slash)
                dir = strdup(".");
        else if (slash == path)
                dir = strdup("/");
        else
                dir = strndup(path, (size_t) (slash - path));
        if (!dir || asprintf(&tmp, "%s/.%s.XXXXXX", slash == path ? "" : dir,
                             slash ? slash + 1 : path) < 0) {
                tmp = NULL;
                return -ENOMEM;
        }
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return phi_negative_errno();
        if (fchmod(fd, 0644) < 0 || (r = write_all(fd, data, size)) < 0 || fsync(fd) < 0) {
                r = r < 0 ? r : phi_negative_errno();
                goto fail;
        }
        old = open_old(path, f);
        if (rename(tmp, path) < 0) {
                r = phi_negative_errno();
                goto fail;
        }
        /* Durability of the rename; the new file is in place either way, so a
         * failure here is reported but readers are already switched. */
        r = phi_fs_fsync_dir(dir);
        /* Readers holding the old file mapped switch on their next lookup. If this
         * fails they notice the new inode within a second anyway. */
        if (old >= 0 && pwrite(old, &one, sizeof(one), (off_t) f->superseded_offset) < 0) {
                /* Nothing to undo; see above. */
        }
        return r;
fail:
        (void) unlink(tmp);
        return r;
}

int phi_published_remove(const char *path, const struct phi_published_format *f) {
        _cleanup_close_ int old = open_old(path, f);
        const uint32_t one = htole32(1);
        int r;

        if (old < 0)
                return 0;   /* nothing of ours there */
        if (unlink(path) < 0)
                return errno == ENOENT ? 0 : phi_negative_errno();
        r = phi_fs_fsync_parent(path);
        if (pwrite(old, &one, sizeof(one), (off_t) f->superseded_offset) < 0) {
                /* Readers notice the missing file within a second anyway. */
        }
        return r;
}

int phi_published_map(const char *path, size_t min_size, uint64_t max_size,
                      const uint8_t **ret_data, size_t *ret_size, dev_t *ret_dev, ino_t *ret_ino) {
        _cleanup_close_ int fd = -1;
        struct stat sb;
        void *p;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
        if (fd < 0 || fstat(fd, &sb) < 0)
                return phi_negative_errno();
        /* Whoever may write this file decides who every process on the host is:
         * only root (or the reading user itself, who gains nothing by fooling
         * itself), and nobody else through the group or world bits. */
        if (!S_ISREG(sb.st_mode) || (sb.st_mode & (S_IWGRP | S_IWOTH)) != 0 ||
            (sb.st_uid != 0 && sb.st_uid != geteuid()))
                return -EPERM;
        if ((uint64_t) sb.st_size > max_size)
                return -EFBIG;
        if ((size_t) sb.st_size < min_size || sb.st_size == 0)
                return -EBADMSG;
        p = mmap(NULL, (size_t) sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
                return phi_negative_errno();
        *ret_data = p;
        *ret_size = (size_t) sb.st_size;
        if (ret_dev)
                *ret_dev = sb.st_dev;
        if (ret_ino)
                *ret_ino = sb.st_ino;
        return 0;
}

void phi_published_unmap(const uint8_t *data, size_t size) {
        if (data)
                (void) munmap((void *) (uintptr_t) data, size);
}

bool phi_published_superseded(const uint8_t *data, size_t offset) {
        const uint8_t *p = data + offset;
        uint32_t v;

        /* Another process writes this word while we read it: an atomic load keeps
         * the compiler from caching it across calls. Mappings and malloc()ed
         * buffers are aligned; anything else gets a plain copy. */
        if ((uintptr_t) p % _Alignof(uint32_t) == 0)
                v = __atomic_load_n((const uint32_t *) (const void *) p, __ATOMIC_RELAXED);
        else
                memcpy(&v, p, sizeof(v));
        return le32toh(v) != 0;
}

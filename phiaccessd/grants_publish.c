/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The daemon's side of the grants snapshot (see grants_publish.h). */

#include <grp.h>
#include <limits.h>
#include <stdio.h>

#include "grants_publish.h"

int phi_grants_publish_path(const struct phi_config *c, char *buf, size_t size) {
        return phi_grants_path_for(c->snapshot_path ? c->snapshot_path : PHI_SNAPSHOT_PATH, buf, size);
}

int phi_grants_publish(const struct phi_config *c, const struct phi_grant_entry *grants, size_t n,
                       uint64_t generation) {
        char path[PATH_MAX];
        int r;

        if (n > 0 && !grants)
                return -EINVAL;
        if (c->min_gid == 0 || c->min_gid >= UINT32_MAX)
                return -EINVAL;
        if ((r = phi_grants_publish_path(c, path, sizeof(path))) < 0)
                return r;
        return phi_grants_write(path, grants, n, (gid_t) c->min_gid, generation);
}

int phi_grants_local_gid(const struct phi_config *c, const char *group, gid_t *ret_gid) {
        FILE *f = fopen(c->group_file ? c->group_file : "/etc/group", "re");
        _cleanup_free_ char *buf = NULL;
        size_t size = 4096;
        struct group g, *res;
        int r = -ENOENT, e;

        if (!f)
                return errno == ENOENT ? -ENOENT : phi_negative_errno();
        buf = malloc(size);
        if (!buf) {
                fclose(f);
                return -ENOMEM;
        }
        /* fgetgrent_r() parses the file and nothing else: never NSS from inside
         * the daemon that feeds it (see localfiles.h); and the daemon has
         * threads, so not fgetgrent(). A line longer than the buffer is read
         * again with a larger one (a group of many members). */
        for (;;) {
                long pos = ftell(f);
                e = fgetgrent_r(f, &g, buf, size, &res);
                if (e == ERANGE && size < (16u << 20) && pos >= 0) {
                        char *p = realloc(buf, size * 2);
                        if (!p || fseek(f, pos, SEEK_SET) < 0) {
                                r = p ? phi_negative_errno() : -ENOMEM;
                                if (p)
                                        buf = p;
                                break;
                        }
                        buf = p;
                        size *= 2;
                        continue;
                }
                if (e != 0)
                        break;   /* ENOENT: the end; any other error: not found */
                if (strcmp(g.gr_name, group) == 0) {
                        *ret_gid = g.gr_gid;
                        r = 0;
                        break;
                }
        }
        fclose(f);
        return r;
}

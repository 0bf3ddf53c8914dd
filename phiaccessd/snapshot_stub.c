/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Placeholder for common/snapshot.c (nss_phi's issue) so that phiaccessd links
 * before the real writer lands: every call fails with -EOPNOTSUPP, so the daemon
 * reports "snapshot not published" instead of pretending. CMake leaves this file
 * out as soon as common/snapshot.c exists. */

#include "phi/snapshot.h"

struct phi_snapshot_builder {
        int unused;
};

int phi_snapshot_builder_new(phi_snapshot_builder **ret) {
        (void) ret;
        return -EOPNOTSUPP;
}

void phi_snapshot_builder_free(phi_snapshot_builder *b) {
        free(b);
}

int phi_snapshot_add_user(phi_snapshot_builder *b, const char *name, uid_t uid, gid_t gid,
                          const char *gecos, const char *home, const char *shell) {
        (void) b, (void) name, (void) uid, (void) gid, (void) gecos, (void) home, (void) shell;
        return -EOPNOTSUPP;
}

int phi_snapshot_add_group(phi_snapshot_builder *b, const char *name, gid_t gid) {
        (void) b, (void) name, (void) gid;
        return -EOPNOTSUPP;
}

int phi_snapshot_add_member(phi_snapshot_builder *b, const char *group, const char *user,
                            uint64_t expires) {
        (void) b, (void) group, (void) user, (void) expires;
        return -EOPNOTSUPP;
}

int phi_snapshot_write(phi_snapshot_builder *b, const char *path, uint64_t generation) {
        (void) b, (void) path, (void) generation;
        return -EOPNOTSUPP;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The grants snapshot: the active elevation grants, published by phiaccessd
 * beside the identity snapshot and mapped by nss_phi, which adds each grant's
 * user to the grant's group until the grant expires (format:
 * phi/grants_format.h). This header is the API both sides use.
 *
 * Writer (phiaccessd): phi_grants_write() takes the whole list of grants that
 * should be in force, encodes it, and replaces the file as the identity
 * snapshot is replaced (temp file, fsync, rename, fsync of the directory, the
 * old file marked superseded: phi/published.h). The daemon calls it whenever
 * a grant starts or ends, and once at start-up (with no grants if there are
 * none), so that readers always have a file mapped whose mark tells them of
 * the next one.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "phi/grants_format.h"
#include "phi/macro.h"
#include "phi/snapshot.h"

/* The file name in the identity snapshot's directory; the default path. */
#define PHI_GRANTS_FILE_NAME "grants.snapshot"
#define PHI_GRANTS_PATH "/var/lib/phiaccessd/" PHI_GRANTS_FILE_NAME

/* The grants snapshot that goes with the identity snapshot at snapshot_path:
 * PHI_GRANTS_FILE_NAME in the same directory. Writes at most size bytes;
 * -ENAMETOOLONG if it does not fit, -EINVAL for an empty path. */
int phi_grants_path_for(const char *snapshot_path, char *buf, size_t size) _phi_warn_unused_
        _phi_nonnull_;

/* One grant: user is a member of group (gid) until expires (Unix seconds).
 * request_id is the daemon's id of the elevation request, for tools (NSS does
 * not use it): phiaccessd's ids are 12 hex digits (48 bits), stored as their
 * value and printed back with "%012" PRIx64. */
struct phi_grant_entry {
        const char *group;
        gid_t gid;
        const char *user;
        uint64_t expires;
        uint64_t request_id;
};

/*
 * Encodes n grants into a new buffer (free() it): tests, tools, the fuzzer's
 * seeds. The order of entries does not matter. Refused:
 *   -EINVAL  a name that is not a valid user or group name, or is "root"; a
 *            gid of 0, (gid_t) -1 or below min_gid; expires 0; min_gid 0; one
 *            group name with two gids or one gid with two names
 *   -EEXIST  the same (group, user, request id) twice
 *   -E2BIG   more than PHI_GRANTS_MAX entries
 *   -ENOMEM
 * Grants whose expiry has passed are kept: readers leave them out.
 */
int phi_grants_encode(const struct phi_grant_entry *entries, size_t n, gid_t min_gid,
                      uint64_t generation, uint64_t created, uint8_t **ret_data, size_t *ret_size)
        _phi_warn_unused_ _phi_nonnull_args_(6, 7);

/* Encodes (created = now) and atomically replaces path (mode 0644), then marks
 * the file it replaced as superseded. Errors of phi_grants_encode(), or the
 * errno of a failed file operation (the old file then stays in place). */
int phi_grants_write(const char *path, const struct phi_grant_entry *entries, size_t n,
                     gid_t min_gid, uint64_t generation) _phi_warn_unused_ _phi_nonnull_args_(1);

/* Removes the grants file at path and marks it superseded: readers serve no
 * grant from their next lookup. For a daemon that cannot publish a new list
 * (a full disk) and must not leave a revoked grant in force. */
int phi_grants_remove(const char *path) _phi_warn_unused_ _phi_nonnull_;

/*
 * Reader. phi_grants_open_buffer() verifies a whole encoded file held in memory
 * (it stays valid and unchanged but for the superseded word while in use):
 *   -EBADMSG          malformed in any way
 *   -EPROTONOSUPPORT  another format version
 * Lookups never allocate and never make a system call; -ENOENT for no such
 * entry, -EBADMSG for a record that no longer checks out.
 */
typedef struct phi_grants {
        const uint8_t *data;
        size_t size;
        uint64_t generation, created;
        uint32_t min_gid, n_grants, n_groups, n_users;
        uint64_t off[PHI_GRANTS_SECTION_COUNT], len[PHI_GRANTS_SECTION_COUNT];
} phi_grants;

struct phi_grants_group_view {
        uint32_t index;
        gid_t gid;
        struct phi_snapshot_str name;
        uint32_t first, count;
};

struct phi_grants_user_view {
        uint32_t index;
        struct phi_snapshot_str name;
        uint32_t first, count;
};

struct phi_grant_view {
        uint32_t index, group;            /* grant and group indexes */
        struct phi_snapshot_str user;
        uint64_t expires, request_id;
};

int phi_grants_open_buffer(phi_grants *g, const void *data, size_t size) _phi_warn_unused_
        _phi_nonnull_args_(1);
bool phi_grants_superseded(const phi_grants *g) _phi_nonnull_;

/* index < n_groups, in name order (enumeration). */
int phi_grants_group_at(const phi_grants *g, uint32_t index, struct phi_grants_group_view *ret)
        _phi_warn_unused_ _phi_nonnull_;
int phi_grants_group_by_name(const phi_grants *g, const char *name,
                             struct phi_grants_group_view *ret) _phi_warn_unused_ _phi_nonnull_;
int phi_grants_group_by_gid(const phi_grants *g, gid_t gid, struct phi_grants_group_view *ret)
        _phi_warn_unused_ _phi_nonnull_;
/* The i-th grant of group gr, i < gr->count, ascending by user name. */
int phi_grants_group_grant(const phi_grants *g, const struct phi_grants_group_view *gr, uint32_t i,
                           struct phi_grant_view *ret) _phi_warn_unused_ _phi_nonnull_;

int phi_grants_user_by_name(const phi_grants *g, const char *name, struct phi_grants_user_view *ret)
        _phi_warn_unused_ _phi_nonnull_;
/* The i-th grant of user u, i < u->count. */
int phi_grants_user_grant(const phi_grants *g, const struct phi_grants_user_view *u, uint32_t i,
                          struct phi_grant_view *ret) _phi_warn_unused_ _phi_nonnull_;

/* True while a grant with this expiry is in force at Unix time now. */
static inline bool phi_grant_live(uint64_t expires, uint64_t now) {
        return expires != 0 && now < expires;
}

/* Maps path (phi_published_map(): root-owned, not group/world-writable) and
 * verifies it; the caller owns the mapping: phi_grants_unmap(). -ENOENT when
 * there is no file (no grants). */
int phi_grants_map(const char *path, phi_grants *ret, dev_t *ret_dev, ino_t *ret_ino)
        _phi_warn_unused_ _phi_nonnull_args_(1, 2);
void phi_grants_unmap(phi_grants *g);

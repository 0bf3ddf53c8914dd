/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The NSS snapshot: an immutable file phiaccessd publishes and nss_phi maps
 * read-only. The on-disk format is described in snapshot_format.h; this header is
 * the API both sides use.
 *
 * Writer (phiaccessd): collect users, groups and memberships in a builder, then
 * phi_snapshot_write() encodes, writes a temp file beside the target, fsyncs it,
 * rename()s it into place and fsyncs the directory. Readers never see a partial
 * file.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "phi/macro.h"
#include "phi/snapshot_format.h"

#define PHI_SNAPSHOT_PATH "/var/lib/phiaccessd/nss.snapshot"

typedef struct phi_snapshot_builder phi_snapshot_builder;

int phi_snapshot_builder_new(phi_snapshot_builder **ret) _phi_warn_unused_ _phi_nonnull_;
void phi_snapshot_builder_free(phi_snapshot_builder *b);
PHI_DEFINE_TRIVIAL_CLEANUP_FUNC(phi_snapshot_builder *, phi_snapshot_builder_free);
#define _cleanup_snapshot_builder_ _cleanup_(phi_snapshot_builder_freep)

/* -EINVAL for an invalid name or a field with ':' or '\n' (it would corrupt
 * getent's output), -EEXIST for a duplicate name or id. */
int phi_snapshot_add_user(phi_snapshot_builder *b, const char *name, uid_t uid, gid_t gid,
                          const char *gecos, const char *home, const char *shell)
        _phi_warn_unused_ _phi_nonnull_;
int phi_snapshot_add_group(phi_snapshot_builder *b, const char *name, gid_t gid)
        _phi_warn_unused_ _phi_nonnull_;
/* Membership of user in group (both by name, both added before or after). expires is
 * Unix seconds after which readers must leave the membership out (a JIT grant), or
 * 0 for a permanent membership. A member name not among the users is kept (groups
 * may list users from the local files). */
int phi_snapshot_add_member(phi_snapshot_builder *b, const char *group, const char *user,
                            uint64_t expires) _phi_warn_unused_ _phi_nonnull_;

/* Encodes and atomically replaces path (mode 0644), then marks the file it
 * replaced as superseded so that mapped readers switch on their next lookup.
 * Errors: -ENOENT a membership names a group never added, -E2BIG over a format
 * bound, -ENOMEM, or the errno of a failed file operation (the old file then
 * stays in place and the temp file is removed). */
int phi_snapshot_write(phi_snapshot_builder *b, const char *path, uint64_t generation)
        _phi_warn_unused_ _phi_nonnull_;

/* Added after the API above; the defaults are PHI_SNAPSHOT_MIN_ID_DEFAULT.
 * Readers do not serve users with uid < min_uid or groups with gid < min_gid
 * (the daemon filters them out as well; the module checks again). 0 is refused
 * (-EINVAL): uid and gid 0 are never served. */
#define PHI_SNAPSHOT_MIN_ID_DEFAULT 1000u
int phi_snapshot_builder_set_min_ids(phi_snapshot_builder *b, uid_t min_uid, gid_t min_gid)
        _phi_warn_unused_ _phi_nonnull_;
/* The gids below min_gid that users may still have as their primary group
 * (none by default). At most PHI_SNAP_MAX_PRIMARY_GIDS distinct gids, none 0 or
 * (gid_t) -1 (-EINVAL; -E2BIG for too many). Set the bounds before adding users:
 * phi_snapshot_add_user() refuses (-EINVAL) a user whose gid is below min_gid
 * and not listed, and encoding refuses (-EINVAL) a builder holding one, or
 * listing a gid that is not below min_gid. */
int phi_snapshot_builder_set_primary_gids(phi_snapshot_builder *b, const gid_t *gids, size_t n)
        _phi_warn_unused_ _phi_nonnull_args_(1);

/* Encodes into a new buffer (free() it) without touching the file system: for
 * tests, tools and the fuzzer's seeds. created is Unix seconds. Same errors as
 * phi_snapshot_write() minus the file ones. */
int phi_snapshot_encode(phi_snapshot_builder *b, uint64_t generation, uint64_t created,
                        uint8_t **ret_data, size_t *ret_size) _phi_warn_unused_ _phi_nonnull_;

/*
 * Reader. phi_snapshot_open_buffer() checks the header and the section table of
 * an encoded snapshot held in memory (a mapping or a buffer) and fills a
 * phi_snapshot describing it; the memory must stay valid and unchanged (except
 * for the superseded word) while the phi_snapshot is used. Lookups never
 * allocate, never make a system call, and check every offset, index and length
 * they read before using it.
 *
 * Errors common to all reader calls:
 *   -EBADMSG          malformed: bad magic, checksum, size, offset, index or string
 *   -EPROTONOSUPPORT  another format version
 *   -ENOENT           (lookups) no such entry
 */
typedef struct phi_snapshot {
        const uint8_t *data;
        size_t size;
        uint64_t generation, created;
        uint32_t min_uid, min_gid, hash_seed;
        uint32_t n_users, n_groups, n_members, n_memberof, n_grouplist;
        uint32_t n_primary_gids, primary_gids[PHI_SNAP_MAX_PRIMARY_GIDS];
        /* Byte ranges of the sections, checked against size. */
        uint64_t off[PHI_SNAP_SECTION_COUNT], len[PHI_SNAP_SECTION_COUNT];
} phi_snapshot;

/* Pointers into the snapshot's memory; every string is NUL-terminated at its length. */
struct phi_snapshot_str {
        const char *s;
        size_t len;
};

struct phi_snapshot_user {
        uint32_t index;
        uid_t uid;
        gid_t gid;
        struct phi_snapshot_str name, gecos, home, shell;
};

struct phi_snapshot_group {
        uint32_t index;
        gid_t gid;
        struct phi_snapshot_str name;
        uint32_t first_member, n_members;
};

/* The groups a name is a member of (initgroups). */
struct phi_snapshot_memberof {
        uint32_t first, count;
};

int phi_snapshot_open_buffer(phi_snapshot *s, const void *data, size_t size) _phi_warn_unused_
        _phi_nonnull_args_(1);
/* Walks every record, string and index and checks body_checksum: the full check
 * for tools and tests (O(size)); lookups do not need it to be safe. */
int phi_snapshot_verify(const phi_snapshot *s) _phi_warn_unused_ _phi_nonnull_;
/* True once the writer marked this file as replaced (read live from memory). */
bool phi_snapshot_superseded(const phi_snapshot *s) _phi_nonnull_;
/* Whether the file's bounds let a user have gid as its primary group: never 0
 * or (gid_t) -1; at or above min_gid, or one of the listed low gids. */
bool phi_snapshot_primary_gid_allowed(const phi_snapshot *s, gid_t gid) _phi_nonnull_;

int phi_snapshot_user_by_name(const phi_snapshot *s, const char *name,
                              struct phi_snapshot_user *ret) _phi_warn_unused_ _phi_nonnull_;
int phi_snapshot_user_by_uid(const phi_snapshot *s, uid_t uid, struct phi_snapshot_user *ret)
        _phi_warn_unused_ _phi_nonnull_;
/* index < n_users, for enumeration. */
int phi_snapshot_user_at(const phi_snapshot *s, uint32_t index, struct phi_snapshot_user *ret)
        _phi_warn_unused_ _phi_nonnull_;

int phi_snapshot_group_by_name(const phi_snapshot *s, const char *name,
                               struct phi_snapshot_group *ret) _phi_warn_unused_ _phi_nonnull_;
int phi_snapshot_group_by_gid(const phi_snapshot *s, gid_t gid, struct phi_snapshot_group *ret)
        _phi_warn_unused_ _phi_nonnull_;
int phi_snapshot_group_at(const phi_snapshot *s, uint32_t index, struct phi_snapshot_group *ret)
        _phi_warn_unused_ _phi_nonnull_;
/* i < g->n_members. */
int phi_snapshot_group_member(const phi_snapshot *s, const struct phi_snapshot_group *g, uint32_t i,
                              struct phi_snapshot_str *ret_name, uint64_t *ret_expires)
        _phi_warn_unused_ _phi_nonnull_;

int phi_snapshot_memberof_by_name(const phi_snapshot *s, const char *name,
                                  struct phi_snapshot_memberof *ret) _phi_warn_unused_
        _phi_nonnull_;
/* i < m->count. */
int phi_snapshot_memberof_at(const phi_snapshot *s, const struct phi_snapshot_memberof *m,
                             uint32_t i, gid_t *ret_gid, uint64_t *ret_expires)
        _phi_warn_unused_ _phi_nonnull_;

/* True when a membership with this expiry is in force at Unix time now. */
static inline bool phi_snapshot_membership_live(uint64_t expires, uint64_t now) {
        return expires == 0 || now < expires;
}

/* Maps path read-only (MAP_SHARED, so the superseded word stays live) and opens it.
 * Refuses anything but a regular file that only its owner may write
 * (-EPERM), and files over the format's size bound (-EFBIG). On success the
 * caller owns the mapping: phi_snapshot_unmap(). ret_dev/ret_ino identify the file. */
int phi_snapshot_map(const char *path, phi_snapshot *ret, dev_t *ret_dev, ino_t *ret_ino)
        _phi_warn_unused_ _phi_nonnull_args_(1, 2);
void phi_snapshot_unmap(phi_snapshot *s);

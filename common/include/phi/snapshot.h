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

#include <stdint.h>
#include <sys/types.h>

#include "phi/macro.h"

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

/* Encodes and atomically replaces path (mode 0644). */
int phi_snapshot_write(phi_snapshot_builder *b, const char *path, uint64_t generation)
        _phi_warn_unused_ _phi_nonnull_;

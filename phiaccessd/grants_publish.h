/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Publishing the grants snapshot: how an elevation grant becomes a group
 * membership in NSS without rewriting the identity snapshot.
 *
 * The lifecycle code keeps the list of grants in force and, after every change
 * to it has been committed (a grant approved or started, expired, revoked) and
 * once at start-up, calls
 *
 *     struct phi_grant_entry g[] = {
 *             { .group = "phi-dba", .gid = 30000, .user = "alice",
 *               .expires = approved_at + duration, .request_id = 42 },
 *     };
 *     r = phi_grants_publish(config, g, 1, ++generation);
 *
 * with ALL the grants that should be in force (an empty list once there are
 * none: the file is then replaced by an empty one). The file is written beside
 * the identity snapshot (phi_grants_publish_path()), atomically, and every
 * process's nss_phi sees it on its next lookup: getgrnam("phi-dba") lists alice
 * and initgroups("alice") adds 30000 until `expires`, also with the daemon
 * stopped, since nss_phi compares expires with the clock on every lookup.
 * Publishing on expiry is still needed, for the group's member list to
 * shrink in the file and for tools reading it; NSS does not wait for it.
 *
 * Or, from the verifier after a round whose result says grants_changed, and
 * once at start-up, with the round's context:
 *
 *     struct phi_grants_publish_stats st;
 *     r = phi_grants_publish_active(config, &ctx, &st);
 *
 * which reads the active grants from the store itself (see below).
 *
 * Calling at start-up, even with no grants, matters: a process that has a
 * grants file mapped learns of the next one from its superseded mark at once,
 * where a process with no file looks for one at most once a second.
 *
 * Rules the writer enforces (-EINVAL): valid user and group names, never
 * root; gid >= the configured min_gid (so a role's group is never a system
 * group such as sudo or adm: give it a gid >= min_gid, e.g. groupadd -g 30000
 * phi-dba); one gid per group name and one name per gid; expires != 0.
 * Expired entries may be passed; readers ignore them. At most
 * PHI_GRANTS_MAX entries (-E2BIG).
 *
 * generation must grow with every call (a counter kept with the grants, or
 * the time in nanoseconds); readers do not rely on it, tools print it.
 * Returns 0 or a negative errno. On failure the file in place (which may
 * still list a grant that was just revoked) is removed, so that NSS serves no
 * grant until a publication succeeds: fail closed. The caller journals the
 * failure and retries. (A failed fsync of the directory after the rename is
 * reported too, but then the new file is in place and stays.)
 */

#include "config.h"
#include "elevation.h"
#include "phi/grants.h"

int phi_grants_publish(const struct phi_config *c, const struct phi_grant_entry *grants, size_t n,
                       uint64_t generation) _phi_warn_unused_ _phi_nonnull_args_(1);

/* Where phi_grants_publish() writes: PHI_GRANTS_FILE_NAME in the directory of
 * the configured identity snapshot ([daemon] snapshot). */
int phi_grants_publish_path(const struct phi_config *c, char *buf, size_t size) _phi_warn_unused_
        _phi_nonnull_;

/* The gid of the group named group in the host's group file (the configured
 * group_file, /etc/group): a role's group is normally a local one. -ENOENT if
 * it has none. */
int phi_grants_local_gid(const struct phi_config *c, const char *group, gid_t *ret_gid)
        _phi_warn_unused_ _phi_nonnull_;

/* What phi_grants_publish_active() did. */
struct phi_grants_publish_stats {
        size_t published;       /* grants in the file */
        size_t no_gid;          /* left out: the role's group has no gid here */
        size_t refused;         /* left out: a gid below min_gid (a system group), a gid
                                 * another role's group has, or a name the writer
                                 * refuses */
        size_t over;            /* left out: past PHI_GRANTS_MAX */
        uint64_t generation;
};

/*
 * Publishes every grant of the store (ctx->store) that is in force on this
 * host at ctx->now: requests in PHI_ELEV_ACTIVE whose expiry is after now and
 * whose role (ctx->policy) still exists and covers ctx->host, what
 * phi_elev_user_has_grant() counts. Each becomes group = the request's
 * grant_group, user = its requester, expires, and request_id = the value of
 * its hex id (PHI_REQUEST_ID_LEN digits, 48 bits: print it back with
 * "%012" PRIx64). The group's gid comes from the host's group file
 * (ctx->group_file, else the configured one; a role's group is normally
 * local), else from the identity snapshot the daemon published (a directory
 * group, whose members the grant then joins). A grant whose group has no gid
 * here, or whose gid is below min_gid, is left out and counted (the others are
 * still published: one bad role must not keep revoked grants in force). The
 * generation is the daemon's own: it grows with each call (at least the
 * CLOCK_REALTIME nanoseconds). Reads the store in the caller's transaction or
 * outside one; errors as phi_grants_publish() or the store's.
 */
int phi_grants_publish_active(const struct phi_config *c, const struct phi_elev_ctx *ctx,
                              struct phi_grants_publish_stats *ret_stats) _phi_warn_unused_
        _phi_nonnull_args_(1, 2);
/* The same for a caller without the configuration (the verifier thread):
 * snapshot_path is the identity snapshot's ([daemon] snapshot; the grants file
 * goes beside it), min_gid the configured one. ctx->group_file NULL or "":
 * /etc/group. */
int phi_grants_publish_active_at(const char *snapshot_path, uint64_t min_gid, const struct phi_elev_ctx *ctx,
                                 struct phi_grants_publish_stats *ret_stats) _phi_warn_unused_
        _phi_nonnull_args_(1, 3);

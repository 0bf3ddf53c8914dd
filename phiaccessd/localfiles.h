/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The host's own /etc/passwd and /etc/group, read as files. phiaccessd never
 * calls getpwnam() and friends: with "passwd: files phi" in nsswitch.conf a
 * lookup could reach nss_phi, which reads the snapshot this daemon writes (and
 * a misconfigured NSS could reach LDAP or block). fgetpwent() on a FILE we open
 * parses the file format and nothing else. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "identity.h"
#include "phi/macro.h"

struct phi_local_db {
        char **names;       /* sorted */
        size_t n_names;
        uint32_t *ids;      /* sorted */
        size_t n_ids;
};

/* Names and uids of every account in a passwd-format file (or names and gids of
 * a group file). A missing file is an empty set. */
int phi_local_users_load(const char *path, struct phi_local_db *ret) _phi_warn_unused_ _phi_nonnull_;
int phi_local_groups_load(const char *path, struct phi_local_db *ret) _phi_warn_unused_ _phi_nonnull_;
void phi_local_db_clear(struct phi_local_db *db);
bool phi_local_db_has_name(const struct phi_local_db *db, const char *name) _phi_nonnull_;
bool phi_local_db_has_id(const struct phi_local_db *db, uint32_t id) _phi_nonnull_;

/* The lookups below parse each file once and again only when it changes
 * (localfiles.c says how a change is seen); this forgets every parse. */
void phi_local_cache_drop(void);

/* The local account with this uid: its name and primary gid. -ENOENT if none. */
int phi_local_user_by_uid(const char *path, uid_t uid, char **ret_name, gid_t *ret_gid)
        _phi_warn_unused_ _phi_nonnull_;
/* The local account named name: name, uid, gid, gecos, home and shell (key
 * and dn stay NULL); the caller clears it. -ENOENT if none. */
int phi_local_user_get(const char *path, const char *name, struct phi_user *ret)
        _phi_warn_unused_ _phi_nonnull_;
/* The uid of the local account named name. -ENOENT if none. */
int phi_local_user_by_name(const char *path, const char *name, uid_t *ret_uid) _phi_warn_unused_ _phi_nonnull_;
/* Whether user (with primary gid) belongs to the local group named group. */
bool phi_local_group_has_member(const char *path, const char *group, const char *user, gid_t gid)
        _phi_nonnull_;

/* Appends to *names (n of cap) the name of every local group that user
 * belongs to: listed as a member, or gid as the group's own. */
int phi_local_groups_of(const char *path, const char *user, gid_t gid, char ***names, size_t *n,
                        size_t *cap) _phi_warn_unused_ _phi_nonnull_;

/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Users and groups as phiaccessd keeps them, and the resolution of nested group
 * membership. Every string here has passed ldap_entry.c's validation. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "phi/macro.h"

struct phi_user {
        char *key;          /* entryUUID, or "dn:" + DN when the server has none */
        char *dn;           /* normalised, lower case: compared with member values */
        char *name;
        uint32_t uid, gid;
        char *gecos, *home, *shell;
};

struct phi_group {
        char *key;
        char *dn;
        char *name;
        uint32_t gid;
        char **member_uids;     /* memberUid values: user names */
        size_t n_member_uids;
        char **member_dns;      /* member values, normalised: users or nested groups */
        size_t n_member_dns;
};

void phi_user_clear(struct phi_user *u);
void phi_group_clear(struct phi_group *g);
int phi_user_copy(const struct phi_user *src, struct phi_user *dst) _phi_warn_unused_ _phi_nonnull_;
int phi_group_copy(const struct phi_group *src, struct phi_group *dst) _phi_warn_unused_ _phi_nonnull_;

/* A whole directory view: what a full refresh produces and what the resolver
 * and the snapshot writer read. */
struct phi_identities {
        struct phi_user *users;
        size_t n_users, cap_users;
        struct phi_group *groups;
        size_t n_groups, cap_groups;
};

void phi_identities_clear(struct phi_identities *ids);
/* Takes ownership of *u / *g (left zeroed) on success. */
int phi_identities_add_user(struct phi_identities *ids, struct phi_user *u) _phi_warn_unused_ _phi_nonnull_;
int phi_identities_add_group(struct phi_identities *ids, struct phi_group *g) _phi_warn_unused_ _phi_nonnull_;

/* Drops entries whose name, id or key repeats one seen earlier (a directory can
 * hold two entries with the same uid; neither may silently win). Returns how many
 * were dropped; *ret_example names one, for the log. */
size_t phi_identities_dedup(struct phi_identities *ids, char *ret_example, size_t example_len)
        _phi_nonnull_;

/* Effective membership after nesting: group index -> sorted, unique user names. */
struct phi_group_members {
        const char **names;     /* point into the identities */
        size_t n;
};

struct phi_resolved {
        struct phi_group_members *groups;   /* parallel to ids->groups */
        size_t n_groups;
        size_t n_pairs;
        size_t n_cycles;                    /* back edges found in the nesting graph */
        char cycle_example[256];            /* "grpA -> grpB -> grpA" for the log */
};

enum phi_resolve_flags {
        PHI_RESOLVE_MEMBER_UID = 1 << 0,    /* count memberUid values */
        PHI_RESOLVE_MEMBER_DN = 1 << 1,     /* count member DNs (users and nested groups) */
};

/* Resolves nested groups: a group's members are its direct users plus the members
 * of every group reachable through member DNs. Cycles are legal in directories
 * (and common by mistake): each group is visited once per walk, so they end the
 * walk instead of looping, and they are counted for the log. */
int phi_identities_resolve(const struct phi_identities *ids, unsigned flags,
                           struct phi_resolved *ret) _phi_warn_unused_ _phi_nonnull_;
void phi_resolved_clear(struct phi_resolved *r);

/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Turns one directory entry into a user or group, or refuses it with a reason.
 * Everything a directory says is untrusted input: names must pass
 * phi_name_valid(), ids must be in range, text fields must be valid UTF-8
 * without ':' or newlines (they end up in getent's colon-separated lines), and
 * every length is bounded. A refused entry changes nothing; the caller logs it.
 *
 * The entry is described without libldap types so that the validation can be
 * fuzzed on its own. */

#include <stddef.h>

#include "config.h"
#include "identity.h"

#define PHI_LDAP_DN_MAX 1024
#define PHI_LDAP_TEXT_MAX 256
#define PHI_LDAP_PATH_MAX 1024
#define PHI_LDAP_UUID_MAX 64
#define PHI_LDAP_MEMBERS_MAX 200000

struct phi_ldap_value {
        const char *data;       /* not NUL-terminated */
        size_t len;
};

struct phi_ldap_attr {
        const char *name;
        const struct phi_ldap_value *values;
        size_t n_values;
};

struct phi_ldap_entry {
        const char *dn;
        const char *uuid;       /* entryUUID or NULL */
        const struct phi_ldap_attr *attrs;
        size_t n_attrs;
};

enum phi_entry_kind {
        PHI_ENTRY_NONE,
        PHI_ENTRY_USER,
        PHI_ENTRY_GROUP,
};

/* Normalised bases, computed once per configuration. */
struct phi_ldap_scope {
        char *user_base;
        char *group_base;
};
int phi_ldap_scope_init(const struct phi_config *c, struct phi_ldap_scope *ret) _phi_warn_unused_
        _phi_nonnull_;
void phi_ldap_scope_clear(struct phi_ldap_scope *s);

/* DN in one canonical spelling (libldap's normal form, ASCII lower case), so that
 * a member value matches the entry it names whatever its spacing or case. */
int phi_ldap_dn_normalize(const char *dn, char **ret) _phi_warn_unused_ _phi_nonnull_;

enum phi_entry_kind phi_ldap_entry_classify(const struct phi_ldap_entry *e, const struct phi_config *c,
                                            const struct phi_ldap_scope *scope) _phi_nonnull_;

/* 0 and *ret filled, or -EINVAL with *ret_reason (static text) for a refused entry.
 * *ret_skipped counts member values dropped for bad syntax (the group is kept). */
int phi_ldap_entry_to_user(const struct phi_ldap_entry *e, const struct phi_config *c,
                           struct phi_user *ret, const char **ret_reason) _phi_warn_unused_
        _phi_nonnull_;
int phi_ldap_entry_to_group(const struct phi_ldap_entry *e, const struct phi_config *c,
                            struct phi_group *ret, size_t *ret_skipped, const char **ret_reason)
        _phi_warn_unused_ _phi_nonnull_;

/* The key a user or group is stored under: entryUUID, else "dn:" + normalised DN. */
int phi_ldap_entry_key(const char *uuid, const char *ndn, char **ret) _phi_warn_unused_
        _phi_nonnull_args_(2, 3);

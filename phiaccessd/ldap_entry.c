/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <ldap.h>
#include <strings.h>

#include "ldap_entry.h"
#include "phi/parse.h"

#define ID_MAX UINT64_C(4294967294)     /* (uid_t) -1 means "no change" to chown() */
#define ID_NOBODY UINT64_C(65534)

int phi_ldap_dn_normalize(const char *dn, char **ret) {
        char *out = NULL, *copy;
        size_t len = strlen(dn);

        if (len == 0 || len > PHI_LDAP_DN_MAX || !phi_utf8_valid(dn, len))
                return -EINVAL;
        if (ldap_dn_normalize(dn, LDAP_DN_FORMAT_LDAPV3, &out, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS ||
            !out)
                return -EINVAL;
        /* Attribute types and the values of the naming attributes used here (uid,
         * cn, ou, dc) compare case-insensitively; folding ASCII is enough. */
        copy = strdup(out);
        ldap_memfree(out);
        if (!copy)
                return -ENOMEM;
        for (char *p = copy; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                        *p = (char) (*p - 'A' + 'a');
        *ret = copy;
        return 0;
}

int phi_ldap_scope_init(const struct phi_config *c, struct phi_ldap_scope *ret) {
        struct phi_ldap_scope s = { 0 };
        int r;

        if ((r = phi_ldap_dn_normalize(c->user_base ? c->user_base : c->base, &s.user_base)) < 0 ||
            (r = phi_ldap_dn_normalize(c->group_base ? c->group_base : c->base, &s.group_base)) < 0) {
                phi_ldap_scope_clear(&s);
                return r;
        }
        *ret = s;
        return 0;
}

void phi_ldap_scope_clear(struct phi_ldap_scope *s) {
        free(s->user_base);
        free(s->group_base);
        *s = (struct phi_ldap_scope){ 0 };
}

static bool dn_under(const char *ndn, const char *nbase) {
        size_t l = strlen(ndn), b = strlen(nbase);

        if (l == b)
                return strcmp(ndn, nbase) == 0;
        return l > b && strcmp(ndn + l - b, nbase) == 0 && ndn[l - b - 1] == ',';
}

static const struct phi_ldap_attr *attr_find(const struct phi_ldap_entry *e, const char *name) {
        for (size_t i = 0; i < e->n_attrs; i++)
                if (e->attrs[i].name && strcasecmp(e->attrs[i].name, name) == 0)
                        return &e->attrs[i];
        return NULL;
}

enum phi_entry_kind phi_ldap_entry_classify(const struct phi_ldap_entry *e, const struct phi_config *c,
                                            const struct phi_ldap_scope *scope) {
        _cleanup_free_ char *ndn = NULL;
        bool user_attrs, group_attrs;

        if (!e->dn || phi_ldap_dn_normalize(e->dn, &ndn) < 0)
                return PHI_ENTRY_NONE;
        user_attrs = attr_find(e, c->attrs.uid) && attr_find(e, c->attrs.uid_number);
        group_attrs = attr_find(e, c->attrs.group_name) && attr_find(e, c->attrs.gid_number) &&
                      !attr_find(e, c->attrs.uid_number);
        if (user_attrs && dn_under(ndn, scope->user_base))
                return PHI_ENTRY_USER;
        if (group_attrs && dn_under(ndn, scope->group_base))
                return PHI_ENTRY_GROUP;
        return PHI_ENTRY_NONE;
}

/* Copies a value as a C string if it is valid UTF-8 without NUL, at most max bytes. */
static char *value_dup(const struct phi_ldap_value *v, size_t max) {
        char *s;

        if (!v->data || v->len > max || memchr(v->data, 0, v->len) ||
            !phi_utf8_valid(v->data, v->len))
                return NULL;
        s = malloc(v->len + 1);
        if (!s)
                return NULL;
        memcpy(s, v->data, v->len);
        s[v->len] = 0;
        return s;
}

/* getent prints fields separated by ':' and entries by '\n'; control characters
 * would garble terminals and logs. */
static bool text_clean(const char *s) {
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (*p == ':' || *p < 0x20 || *p == 0x7f)
                        return false;
        return true;
}

/* The naming value of an attribute: its only value, or, when it has several
 * (cn often does), the one the entry's RDN uses. */
static int single_value(const struct phi_ldap_entry *e, const char *name, size_t max, char **ret) {
        const struct phi_ldap_attr *a = attr_find(e, name);
        LDAPDN dn = NULL;
        int r = -EINVAL;

        if (!a || a->n_values == 0)
                return -ENOENT;
        if (a->n_values == 1) {
                *ret = value_dup(&a->values[0], max);
                return *ret ? 0 : -EINVAL;
        }
        if (ldap_str2dn(e->dn, &dn, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS || !dn || !dn[0])
                goto out;
        for (LDAPAVA **rdn = dn[0]; *rdn; rdn++) {
                if ((*rdn)->la_attr.bv_len != strlen(name) ||
                    strncasecmp((*rdn)->la_attr.bv_val, name, strlen(name)) != 0)
                        continue;
                for (size_t i = 0; i < a->n_values; i++)
                        if (a->values[i].len == (*rdn)->la_value.bv_len &&
                            (a->values[i].len == 0 ||
                             memcmp(a->values[i].data, (*rdn)->la_value.bv_val, a->values[i].len) == 0)) {
                                *ret = value_dup(&a->values[i], max);
                                r = *ret ? 0 : -EINVAL;
                                goto out;
                        }
        }
out:
        if (dn)
                ldap_dnfree(dn);
        return r;
}

static int id_value(const struct phi_ldap_entry *e, const char *name, uint64_t min, uint64_t *ret) {
        const struct phi_ldap_attr *a = attr_find(e, name);
        _cleanup_free_ char *s = NULL;
        uint64_t v;

        if (!a || a->n_values != 1)
                return -EINVAL;
        s = value_dup(&a->values[0], 10);
        if (!s || phi_parse_u64(s, min, ID_MAX, &v) < 0 || v == ID_NOBODY)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int optional_text(const struct phi_ldap_entry *e, const char *name, size_t max,
                         const char *fallback, bool path, char **ret) {
        char *s = NULL;
        int r = single_value(e, name, max, &s);

        if (r == -ENOENT) {
                s = strdup(fallback);
                if (!s)
                        return -ENOMEM;
        } else if (r < 0)
                return r;
        if (!text_clean(s) || (path && s[0] != '/')) {
                free(s);
                return -EINVAL;
        }
        *ret = s;
        return 0;
}

int phi_ldap_entry_key(const char *uuid, const char *ndn, char **ret) {
        char *k;

        if (uuid && *uuid) {
                size_t len = strlen(uuid);
                if (len > PHI_LDAP_UUID_MAX)
                        return -EINVAL;
                for (size_t i = 0; i < len; i++)
                        if (!((uuid[i] >= '0' && uuid[i] <= '9') || (uuid[i] >= 'a' && uuid[i] <= 'f') ||
                              (uuid[i] >= 'A' && uuid[i] <= 'F') || uuid[i] == '-'))
                                return -EINVAL;
                k = strdup(uuid);
        } else if (asprintf(&k, "dn:%s", ndn) < 0)
                k = NULL;
        if (!k)
                return -ENOMEM;
        *ret = k;
        return 0;
}

int phi_ldap_entry_to_user(const struct phi_ldap_entry *e, const struct phi_config *c,
                           struct phi_user *ret, const char **ret_reason) {
        struct phi_user u = { 0 };
        uint64_t uid = 0, gid = 0;
        int r;

        *ret_reason = NULL;
        if (!e->dn || phi_ldap_dn_normalize(e->dn, &u.dn) < 0) {
                *ret_reason = "DN is not valid";
                r = -EINVAL;
                goto fail;
        }
        if ((r = phi_ldap_entry_key(e->uuid, u.dn, &u.key)) < 0) {
                *ret_reason = "entryUUID is not valid";
                goto fail;
        }
        r = single_value(e, c->attrs.uid, PHI_NAME_MAX, &u.name);
        if (r < 0 || !phi_name_valid(u.name)) {
                *ret_reason = "user name is missing, ambiguous or not a valid name";
                r = -EINVAL;
                goto fail;
        }
        if (id_value(e, c->attrs.uid_number, c->min_uid, &uid) < 0) {
                *ret_reason = "uidNumber is missing, repeated, below min_uid or out of range";
                r = -EINVAL;
                goto fail;
        }
        if (id_value(e, c->attrs.gid_number, 1, &gid) < 0) {
                *ret_reason = "gidNumber is missing, repeated, 0 or out of range";
                r = -EINVAL;
                goto fail;
        }
        /* A primary group is a group too: below min_gid it would hand every
         * login of this user a local system group (sudo 27, shadow 42, disk 6). */
        if (!phi_config_primary_gid_allowed(c, gid)) {
                *ret_reason = "gidNumber (primary group) is below min_gid and not in primary_gids_allowed";
                r = -EINVAL;
                goto fail;
        }
        u.uid = (uint32_t) uid;
        u.gid = (uint32_t) gid;
        if (optional_text(e, c->attrs.gecos, PHI_LDAP_TEXT_MAX, "", false, &u.gecos) < 0) {
                *ret_reason = "gecos is too long, ambiguous or holds ':' or control characters";
                r = -EINVAL;
                goto fail;
        }
        r = single_value(e, c->attrs.home, PHI_LDAP_PATH_MAX, &u.home);
        if (r < 0 || !text_clean(u.home) || u.home[0] != '/') {
                *ret_reason = "homeDirectory is missing or not a clean absolute path";
                r = -EINVAL;
                goto fail;
        }
        if (optional_text(e, c->attrs.shell, PHI_LDAP_PATH_MAX, "/bin/sh", true, &u.shell) < 0) {
                *ret_reason = "loginShell is not a clean absolute path";
                r = -EINVAL;
                goto fail;
        }
        *ret = u;
        return 0;
fail:
        phi_user_clear(&u);
        return r == -ENOMEM ? -ENOMEM : -EINVAL;
}

int phi_ldap_entry_to_group(const struct phi_ldap_entry *e, const struct phi_config *c,
                            struct phi_group *ret, size_t *ret_skipped, const char **ret_reason) {
        struct phi_group g = { 0 };
        const struct phi_ldap_attr *a;
        uint64_t gid = 0;
        size_t skipped = 0;
        int r;

        *ret_reason = NULL;
        if (!e->dn || phi_ldap_dn_normalize(e->dn, &g.dn) < 0) {
                *ret_reason = "DN is not valid";
                r = -EINVAL;
                goto fail;
        }
        if ((r = phi_ldap_entry_key(e->uuid, g.dn, &g.key)) < 0) {
                *ret_reason = "entryUUID is not valid";
                goto fail;
        }
        r = single_value(e, c->attrs.group_name, PHI_NAME_MAX, &g.name);
        if (r < 0 || !phi_name_valid(g.name)) {
                *ret_reason = "group name is missing, ambiguous or not a valid name";
                r = -EINVAL;
                goto fail;
        }
        if (id_value(e, c->attrs.gid_number, c->min_gid, &gid) < 0) {
                *ret_reason = "gidNumber is missing, repeated, below min_gid or out of range";
                r = -EINVAL;
                goto fail;
        }
        g.gid = (uint32_t) gid;

        if (c->membership != PHI_MEMBERSHIP_MEMBER && (a = attr_find(e, c->attrs.member_uid))) {
                if (a->n_values > PHI_LDAP_MEMBERS_MAX) {
                        *ret_reason = "too many memberUid values";
                        r = -EINVAL;
                        goto fail;
                }
                g.member_uids = calloc(a->n_values + 1, sizeof(char *));
                if (!g.member_uids) {
                        r = -ENOMEM;
                        goto fail;
                }
                for (size_t i = 0; i < a->n_values; i++) {
                        char *s = value_dup(&a->values[i], PHI_NAME_MAX);
                        if (!s || !phi_name_valid(s)) {
                                free(s);
                                skipped++;
                                continue;
                        }
                        g.member_uids[g.n_member_uids++] = s;
                }
        }
        if (c->membership != PHI_MEMBERSHIP_MEMBERUID && (a = attr_find(e, c->attrs.member))) {
                if (a->n_values > PHI_LDAP_MEMBERS_MAX) {
                        *ret_reason = "too many member values";
                        r = -EINVAL;
                        goto fail;
                }
                g.member_dns = calloc(a->n_values + 1, sizeof(char *));
                if (!g.member_dns) {
                        r = -ENOMEM;
                        goto fail;
                }
                for (size_t i = 0; i < a->n_values; i++) {
                        _cleanup_free_ char *s = value_dup(&a->values[i], PHI_LDAP_DN_MAX);
                        char *n = NULL;
                        if (!s || phi_ldap_dn_normalize(s, &n) < 0) {
                                skipped++;
                                continue;
                        }
                        g.member_dns[g.n_member_dns++] = n;
                }
        }
        *ret = g;
        *ret_skipped = skipped;
        return 0;
fail:
        phi_group_clear(&g);
        return r == -ENOMEM ? -ENOMEM : -EINVAL;
}

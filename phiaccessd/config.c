/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Parses phiaccessd.conf with inih and validates every value. The file is
 * trusted only when root owns it and nobody else can write it (sudo's
 * secure_path rule), checked with fstat() on the descriptor that is read, so a
 * swap between check and read cannot sneak another file in. */

#include <fcntl.h>
#include <ini.h>
#include <ldap.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "config.h"
#include "store_pg_conninfo.h"
#include "phi/client.h"
#include "phi/parse.h"
#include "phi/secret.h"

#define VALUE_MAX 1024           /* longest value of any key; filters and DNs fit */

enum key_kind {
        K_STR,      /* free text up to VALUE_MAX */
        K_DN,       /* distinguished name, checked with ldap_str2dn() */
        K_FILTER,   /* search filter: parenthesised and balanced */
        K_ATTR,     /* attribute description */
        K_PATH,     /* absolute path */
        K_GROUP,    /* group name (phi_name_valid) */
        K_URIS,     /* one or more ldap:// or ldaps:// URIs */
        K_GIDS,     /* a list of gids (primary_gids_allowed) */
        K_U64,
        K_PERCENT,
        K_DURATION,
        K_BOOL,
        K_TLS,
        K_SYNC,
        K_MEMBERSHIP,
        K_BACKEND,
        K_SYNC_COMMIT,
        K_TOTP_ALGORITHM,
};

struct key_spec {
        const char *section;
        const char *name;
        enum key_kind kind;
        size_t offset;
        uint64_t min, max;      /* for K_U64 / K_DURATION */
};

#define OFF(f) offsetof(struct phi_config, f)
static const struct key_spec keys[] = {
        { "ldap", "uri", K_URIS, 0, 0, 0 },
        { "ldap", "base", K_DN, OFF(base), 0, 0 },
        { "ldap", "user_base", K_DN, OFF(user_base), 0, 0 },
        { "ldap", "group_base", K_DN, OFF(group_base), 0, 0 },
        { "ldap", "user_filter", K_FILTER, OFF(user_filter), 0, 0 },
        { "ldap", "group_filter", K_FILTER, OFF(group_filter), 0, 0 },
        { "ldap", "bind_dn", K_DN, OFF(bind_dn), 0, 0 },
        { "ldap", "bind_password_file", K_PATH, OFF(bind_password_file), 0, 0 },
        { "ldap", "tls", K_TLS, OFF(tls), 0, 0 },
        { "ldap", "allow_insecure", K_BOOL, OFF(allow_insecure), 0, 0 },
        { "ldap", "ca_file", K_PATH, OFF(ca_file), 0, 0 },
        { "ldap", "attr_uid", K_ATTR, OFF(attrs.uid), 0, 0 },
        { "ldap", "attr_uid_number", K_ATTR, OFF(attrs.uid_number), 0, 0 },
        { "ldap", "attr_gid_number", K_ATTR, OFF(attrs.gid_number), 0, 0 },
        { "ldap", "attr_gecos", K_ATTR, OFF(attrs.gecos), 0, 0 },
        { "ldap", "attr_home_directory", K_ATTR, OFF(attrs.home), 0, 0 },
        { "ldap", "attr_login_shell", K_ATTR, OFF(attrs.shell), 0, 0 },
        { "ldap", "attr_group_name", K_ATTR, OFF(attrs.group_name), 0, 0 },
        { "ldap", "attr_member_uid", K_ATTR, OFF(attrs.member_uid), 0, 0 },
        { "ldap", "attr_member", K_ATTR, OFF(attrs.member), 0, 0 },
        { "ldap", "membership", K_MEMBERSHIP, OFF(membership), 0, 0 },
        { "ldap", "sync", K_SYNC, OFF(sync_mode), 0, 0 },
        /* 0..999 are system accounts on Debian; a directory must never shadow them. */
        { "ldap", "min_uid", K_U64, OFF(min_uid), 1, UINT32_MAX - 1 },
        { "ldap", "min_gid", K_U64, OFF(min_gid), 1, UINT32_MAX - 1 },
        { "ldap", "primary_gids_allowed", K_GIDS, 0, 1, UINT32_MAX - 1 },
        { "ldap", "refresh_interval", K_DURATION, OFF(refresh_interval), 10, 7 * 86400 },
        { "ldap", "shrink_threshold", K_PERCENT, OFF(shrink_threshold), 0, 100 },
        { "ldap", "network_timeout", K_DURATION, OFF(network_timeout), 1, 600 },
        { "ldap", "page_size", K_U64, OFF(page_size), 10, 100000 },
        { "store", "backend", K_BACKEND, OFF(store_backend), 0, 0 },
        { "store", "path", K_PATH, OFF(store_path), 0, 0 },
        /* A libpq connection string: checked as a whole in validate(). */
        { "store", "uri", K_STR, OFF(store_uri), 0, 0 },
        { "store", "synchronous_commit", K_SYNC_COMMIT, OFF(store_synchronous_commit), 0, 0 },
        { "daemon", "socket", K_PATH, OFF(socket_path), 0, 0 },
        { "daemon", "pam_socket", K_PATH, OFF(pam_socket_path), 0, 0 },
        { "daemon", "snapshot", K_PATH, OFF(snapshot_path), 0, 0 },
        { "daemon", "policy", K_PATH, OFF(policy_path), 0, 0 },
        { "daemon", "admin_group", K_GROUP, OFF(admin_group), 0, 0 },
        { "daemon", "approver_group", K_GROUP, OFF(approver_group), 0, 0 },
        { "daemon", "auditor_group", K_GROUP, OFF(auditor_group), 0, 0 },
        { "daemon", "passwd_file", K_PATH, OFF(passwd_file), 0, 0 },
        { "daemon", "group_file", K_PATH, OFF(group_file), 0, 0 },
        { "totp", "master_key", K_PATH, OFF(totp_master_key), 0, 0 },
        { "totp", "create_master_key", K_BOOL, OFF(totp_create_master_key), 0, 0 },
        { "totp", "issuer", K_STR, OFF(totp_issuer), 0, 0 },
        { "totp", "algorithm", K_TOTP_ALGORITHM, OFF(totp_algorithm), 0, 0 },
        { "totp", "digits", K_U64, OFF(totp_digits), 6, 8 },
        { "totp", "window", K_U64, OFF(totp_window), 0, PHI_TOTP_MAX_WINDOW },
        { "totp", "max_failures", K_U64, OFF(totp_max_failures), 1, 1000 },
        { "totp", "host_max_failures", K_U64, OFF(totp_host_max_failures), 1, 1000000 },
        { "totp", "failure_window", K_DURATION, OFF(totp_failure_window), 60, 7 * 86400 },
        { "totp", "lockout", K_DURATION, OFF(totp_lockout), 60, 7 * 86400 },
        { "totp", "ticket_lifetime", K_DURATION, OFF(totp_ticket_lifetime), 300, 30 * 86400 },
        { "totp", "enroll_at_login", K_BOOL, OFF(totp_enroll_at_login), 0, 0 },
        { "notify", "command", K_PATH, OFF(notify_command), 0, 0 },
        { "notify", "timeout", K_DURATION, OFF(notify_timeout), 1, 300 },
        { "audit", "key", K_PATH, OFF(audit_key), 0, 0 },
        { "audit", "origin", K_STR, OFF(audit_origin), 0, 0 },
        { "audit", "trusted_keys", K_PATH, OFF(audit_trusted_keys), 0, 0 },
        { "audit", "checkpoint_records", K_U64, OFF(audit_checkpoint_records), 1, 1000000 },
        { "audit", "checkpoint_interval", K_DURATION, OFF(audit_checkpoint_interval), 1, 86400 },
};

static const char *const sections[] = { "ldap", "store", "daemon", "totp", "notify", "audit" };

struct parse_state {
        struct phi_config *config;
        struct phi_config_errors *errors;
        const char *file;
        unsigned line;             /* line the reader last returned */
        unsigned section_line[PHI_ELEMENTSOF(sections)];
        bool seen[PHI_ELEMENTSOF(keys)];
        unsigned key_line[PHI_ELEMENTSOF(keys)];
        /* reader state */
        FILE *f;
        const char *text;
        size_t text_pos, text_len;
        bool long_line;
};

static void errors_add(struct phi_config_errors *e, const char *file, unsigned line,
                       const char *fmt, ...) _phi_printf_(4, 5);
static void errors_add(struct phi_config_errors *e, const char *file, unsigned line,
                       const char *fmt, ...) {
        struct phi_config_error *item;
        char *msg = NULL;
        va_list ap;
        int n;

        if (e->n >= PHI_CONFIG_MAX_ERRORS) {
                e->dropped++;
                return;
        }
        va_start(ap, fmt);
        n = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (n < 0) {
                e->dropped++;
                return;
        }
        item = &e->items[e->n];
        item->file = strdup(file);
        if (!item->file) {
                free(msg);
                e->dropped++;
                return;
        }
        item->line = line;
        item->message = msg;
        e->n++;
}

void phi_config_errors_clear(struct phi_config_errors *e) {
        for (size_t i = 0; i < e->n; i++) {
                free(e->items[i].file);
                free(e->items[i].message);
        }
        e->n = 0;
        e->dropped = 0;
}

void phi_config_errors_print(const struct phi_config_errors *e, FILE *f) {
        for (size_t i = 0; i < e->n; i++)
                fprintf(f, "%s:%u: %s\n", e->items[i].file, e->items[i].line, e->items[i].message);
        if (e->dropped > 0)
                fprintf(f, "(%zu more errors not shown)\n", e->dropped);
}

const char *phi_tls_mode_name(enum phi_tls_mode m) {
        switch (m) {
        case PHI_TLS_STARTTLS: return "starttls";
        case PHI_TLS_LDAPS: return "ldaps";
        case PHI_TLS_NONE: return "none";
        }
        return "?";
}

static struct phi_config *config_new_defaults(const char *path) {
        struct phi_config *c = calloc(1, sizeof(*c));
        bool ok = true;

        if (!c)
                return NULL;
        c->refcount = 1;
        c->tls = PHI_TLS_STARTTLS;
        c->membership = PHI_MEMBERSHIP_BOTH;
        c->sync_mode = PHI_SYNC_AUTO;
        c->min_uid = 1000;
        c->min_gid = 1000;
        c->refresh_interval = 15 * 60;
        c->shrink_threshold = 50;
        c->network_timeout = 10;
        c->page_size = 1000;
#define DEF(f, v) ok = ok && ((c->f = strdup(v)) != NULL)
        DEF(path, path);
        DEF(user_filter, "(objectClass=posixAccount)");
        DEF(group_filter, "(objectClass=posixGroup)");
        DEF(attrs.uid, "uid");
        DEF(attrs.uid_number, "uidNumber");
        DEF(attrs.gid_number, "gidNumber");
        DEF(attrs.gecos, "gecos");
        DEF(attrs.home, "homeDirectory");
        DEF(attrs.shell, "loginShell");
        DEF(attrs.group_name, "cn");
        DEF(attrs.member_uid, "memberUid");
        DEF(attrs.member, "member");
        DEF(store_backend, "sqlite");
        DEF(store_path, "/var/lib/phiaccessd/phi.db");
        DEF(store_uri, "");
        DEF(store_synchronous_commit, "on");
        DEF(socket_path, PHI_SOCKET_PATH);
        DEF(pam_socket_path, PHI_PAM_SOCKET_PATH);
        DEF(snapshot_path, "/var/lib/phiaccessd/nss.snapshot");
        DEF(policy_path, "/etc/phi/policy.conf");
        DEF(admin_group, "phi-admins");
        DEF(approver_group, "phi-approvers");
        DEF(auditor_group, "phi-auditors");
        DEF(passwd_file, "/etc/passwd");
        DEF(group_file, "/etc/group");
        DEF(totp_master_key, "/etc/phi/master.key");
        DEF(totp_issuer, "phi");
        c->totp_algorithm = PHI_TOTP_SHA1;   /* the one every authenticator app reads */
        c->totp_digits = 6;
        c->totp_window = PHI_TOTP_DEFAULT_WINDOW;
        c->totp_max_failures = 5;
        c->totp_host_max_failures = 20;
        c->totp_failure_window = 15 * 60;
        c->totp_lockout = 15 * 60;
        c->totp_ticket_lifetime = 7 * 86400;
        DEF(notify_command, "");
        c->notify_timeout = 10;
        DEF(audit_key, "");      /* "": audit.key beside the store */
        DEF(audit_origin, "");
        DEF(audit_trusted_keys, "");  /* "": only this daemon's own key */
        c->audit_checkpoint_records = 1000;
        c->audit_checkpoint_interval = 60;
#undef DEF
        if (!ok) {
                phi_config_unref(c);
                return NULL;
        }
        return c;
}

struct phi_config *phi_config_ref(struct phi_config *c) {
        if (c)
                __atomic_add_fetch(&c->refcount, 1, __ATOMIC_SEQ_CST);
        return c;
}

void phi_config_unref(struct phi_config *c) {
        if (!c || __atomic_sub_fetch(&c->refcount, 1, __ATOMIC_SEQ_CST) > 0)
                return;
        free(c->path);
        for (size_t i = 0; i < c->n_uris; i++)
                free(c->uris[i]);
        char **strs[] = {
                &c->base, &c->user_base, &c->group_base, &c->user_filter, &c->group_filter,
                &c->bind_dn, &c->bind_password_file, &c->ca_file, &c->attrs.uid,
                &c->attrs.uid_number, &c->attrs.gid_number, &c->attrs.gecos, &c->attrs.home,
                &c->attrs.shell, &c->attrs.group_name, &c->attrs.member_uid, &c->attrs.member,
                &c->store_backend, &c->store_uri, &c->store_synchronous_commit,
                &c->store_path, &c->socket_path, &c->pam_socket_path, &c->snapshot_path, &c->policy_path,
                &c->admin_group, &c->approver_group, &c->auditor_group, &c->passwd_file,
                &c->group_file, &c->totp_master_key, &c->totp_issuer, &c->audit_key, &c->audit_origin, &c->notify_command,
                &c->audit_trusted_keys,
        };
        for (size_t i = 0; i < PHI_ELEMENTSOF(strs); i++)
                free(*strs[i]);
        free(c);
}

bool phi_config_uri_is_loopback(const char *uri) {
        LDAPURLDesc *lud = NULL;
        bool local = false;

        if (ldap_url_parse(uri, &lud) != LDAP_URL_SUCCESS)
                return false;
        if (lud->lud_host &&
            (strcmp(lud->lud_host, "127.0.0.1") == 0 || strcmp(lud->lud_host, "::1") == 0 ||
             strcmp(lud->lud_host, "localhost") == 0))
                local = true;
        /* ldapi:// is a local socket as well, but phiaccessd does not speak it. */
        ldap_free_urldesc(lud);
        return local;
}

/* A URI names only a server: scheme, host, optional port. Anything else (a DN,
 * attributes, a filter) would be silently ignored by libldap, so it is refused. */
static const char *uri_problem(const char *uri) {
        LDAPURLDesc *lud = NULL;
        const char *problem = NULL;

        if (strncmp(uri, "ldap://", 7) != 0 && strncmp(uri, "ldaps://", 8) != 0)
                return "must start with ldap:// or ldaps://";
        if (ldap_url_parse(uri, &lud) != LDAP_URL_SUCCESS)
                return "is not a valid LDAP URI";
        if (!lud->lud_host || !*lud->lud_host)
                problem = "names no host";
        else if ((lud->lud_dn && *lud->lud_dn) || lud->lud_attrs || lud->lud_filter ||
                 lud->lud_exts)
                problem = "may name only a host and port (put the DN in base=)";
        ldap_free_urldesc(lud);
        return problem;
}

static bool dn_valid(const char *s) {
        LDAPDN dn = NULL;
        bool ok;

        /* ldap_str2dn wants a mutable-looking pointer but does not write through it. */
        ok = ldap_str2dn(s, &dn, LDAP_DN_FORMAT_LDAPV3) == LDAP_SUCCESS && dn != NULL;
        if (dn)
                ldap_dnfree(dn);
        return ok;
}

/* A filter is sent to the server as is; checked here only for shape, so that a
 * typo is reported at its line instead of as a failing search later. */
static bool filter_valid(const char *s) {
        size_t len = strlen(s);
        int depth = 0;

        if (len < 3 || s[0] != '(' || s[len - 1] != ')')
                return false;
        for (size_t i = 0; i < len; i++) {
                if (s[i] == '(')
                        depth++;
                else if (s[i] == ')' && --depth < 0)
                        return false;
                if (depth == 0 && i != len - 1)
                        return false;
        }
        return depth == 0;
}

static bool attr_valid(const char *s) {
        size_t len = strlen(s);

        if (len == 0 || len > 64 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
                return false;
        for (size_t i = 0; i < len; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                      (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
                        return false;
        return true;
}

static int set_string(char **field, const char *value) {
        char *copy = strdup(value);

        if (!copy)
                return -ENOMEM;
        free(*field);
        *field = copy;
        return 0;
}

static int add_uris(struct parse_state *st, const char *value) {
        struct phi_config *c = st->config;
        _cleanup_free_ char *copy = strdup(value);
        char *save = NULL;
        int n = 0;

        if (!copy)
                return -ENOMEM;
        /* The key may be given once with a list or repeated; both append, in order. */
        for (char *tok = strtok_r(copy, " \t,", &save); tok; tok = strtok_r(NULL, " \t,", &save)) {
                const char *problem = uri_problem(tok);
                n++;
                if (problem) {
                        errors_add(st->errors, st->file, st->line, "uri '%s' %s", tok, problem);
                        continue;
                }
                if (c->n_uris >= PHI_CONFIG_MAX_URIS) {
                        errors_add(st->errors, st->file, st->line, "more than %d URIs",
                                   PHI_CONFIG_MAX_URIS);
                        break;
                }
                c->uris[c->n_uris] = strdup(tok);
                if (!c->uris[c->n_uris])
                        return -ENOMEM;
                c->n_uris++;
        }
        if (n == 0)
                errors_add(st->errors, st->file, st->line, "uri needs at least one URI");
        return 0;
}

bool phi_config_primary_gid_allowed(const struct phi_config *c, uint64_t gid) {
        if (gid == 0 || gid >= UINT32_MAX)
                return false;
        if (gid >= c->min_gid)
                return true;
        for (size_t i = 0; i < c->n_primary_gids_allowed; i++)
                if (c->primary_gids_allowed[i] == gid)
                        return true;
        return false;
}

/* primary_gids_allowed = 100, 50: each a gid, listed once. Whether each is
 * below min_gid is checked once the whole file is read (validate()). */
static int add_gids(struct parse_state *st, const struct key_spec *k, const char *value) {
        struct phi_config *c = st->config;
        _cleanup_free_ char *copy = strdup(value);
        char *save = NULL;
        int n = 0;

        if (!copy)
                return -ENOMEM;
        for (char *tok = strtok_r(copy, " \t,", &save); tok; tok = strtok_r(NULL, " \t,", &save)) {
                uint64_t v;
                bool dup = false;

                n++;

                if (strcmp(tok, "0") == 0) {
                        errors_add(st->errors, st->file, st->line,
                                   "%s: gid 0 is root's group and is never a directory user's primary group",
                                   k->name);
                        continue;
                }
                if (phi_parse_u64(tok, k->min, k->max, &v) < 0) {
                        errors_add(st->errors, st->file, st->line,
                                   "%s: '%s' is not a gid from %llu to %llu", k->name, tok,
                                   (unsigned long long) k->min, (unsigned long long) k->max);
                        continue;
                }
                for (size_t i = 0; i < c->n_primary_gids_allowed; i++)
                        dup = dup || c->primary_gids_allowed[i] == v;
                if (dup) {
                        errors_add(st->errors, st->file, st->line, "%s: gid %s is listed twice",
                                   k->name, tok);
                        continue;
                }
                if (c->n_primary_gids_allowed >= PHI_CONFIG_MAX_PRIMARY_GIDS) {
                        errors_add(st->errors, st->file, st->line, "%s: more than %u gids", k->name,
                                   (unsigned) PHI_CONFIG_MAX_PRIMARY_GIDS);
                        break;
                }
                c->primary_gids_allowed[c->n_primary_gids_allowed++] = (uint32_t) v;
        }
        if (n == 0)
                errors_add(st->errors, st->file, st->line, "%s needs at least one gid", k->name);
        return 0;
}

static int set_value(struct parse_state *st, const struct key_spec *k, const char *value) {
        void *field = (char *) st->config + k->offset;
        uint64_t v;
        bool b;
        int r;

#define BAD(...) do { errors_add(st->errors, st->file, st->line, __VA_ARGS__); return 0; } while (0)
        switch (k->kind) {
        case K_URIS:
                return add_uris(st, value);
        case K_GIDS:
                return add_gids(st, k, value);
        case K_DN:
                if (!dn_valid(value))
                        BAD("%s '%s' is not a valid distinguished name", k->name, value);
                return set_string(field, value);
        case K_FILTER:
                if (!filter_valid(value))
                        BAD("%s '%s' is not a parenthesised LDAP filter", k->name, value);
                return set_string(field, value);
        case K_ATTR:
                if (!attr_valid(value))
                        BAD("%s '%s' is not an attribute name", k->name, value);
                return set_string(field, value);
        case K_PATH:
                if (value[0] != '/' || strlen(value) >= 4096)
                        BAD("%s must be an absolute path, got '%s'", k->name, value);
                return set_string(field, value);
        case K_GROUP:
                if (!phi_name_valid(value))
                        BAD("%s '%s' is not a valid group name", k->name, value);
                return set_string(field, value);
        case K_STR:
                return set_string(field, value);
        case K_U64:
                r = phi_parse_u64(value, k->min, k->max, &v);
                if (r < 0)
                        BAD("%s must be a whole number from %llu to %llu, got '%s'", k->name,
                            (unsigned long long) k->min, (unsigned long long) k->max, value);
                *(uint64_t *) field = v;
                return 0;
        case K_PERCENT: {
                char digits[8];
                size_t len = strlen(value);
                if (len > 1 && len < sizeof(digits) && value[len - 1] == '%') {
                        memcpy(digits, value, len - 1);
                        digits[len - 1] = 0;
                        value = digits;
                }
                if (phi_parse_u64(value, 0, 100, &v) < 0)
                        BAD("%s must be a percentage from 0 to 100, got '%s'", k->name, value);
                *(uint64_t *) field = v;
                return 0;
        }
        case K_DURATION:
                r = phi_parse_duration(value, k->min, k->max, &v);
                if (r < 0)
                        BAD("%s must be a duration like 90s, 15m or 4h between %llus and %llus, got '%s'",
                            k->name, (unsigned long long) k->min, (unsigned long long) k->max,
                            value);
                *(uint64_t *) field = v;
                return 0;
        case K_BOOL:
                if (phi_parse_bool(value, &b) < 0)
                        BAD("%s must be yes or no, got '%s'", k->name, value);
                *(bool *) field = b;
                return 0;
        case K_TLS:
                if (strcmp(value, "starttls") == 0)
                        *(enum phi_tls_mode *) field = PHI_TLS_STARTTLS;
                else if (strcmp(value, "ldaps") == 0)
                        *(enum phi_tls_mode *) field = PHI_TLS_LDAPS;
                else if (strcmp(value, "none") == 0)
                        *(enum phi_tls_mode *) field = PHI_TLS_NONE;
                else
                        BAD("tls must be starttls, ldaps or none, got '%s'", value);
                return 0;
        case K_SYNC:
                if (strcmp(value, "auto") == 0)
                        *(enum phi_sync_mode *) field = PHI_SYNC_AUTO;
                else if (strcmp(value, "syncrepl") == 0)
                        *(enum phi_sync_mode *) field = PHI_SYNC_SYNCREPL;
                else if (strcmp(value, "paged") == 0)
                        *(enum phi_sync_mode *) field = PHI_SYNC_PAGED;
                else
                        BAD("sync must be auto, syncrepl or paged, got '%s'", value);
                return 0;
        case K_MEMBERSHIP:
                if (strcmp(value, "both") == 0)
                        *(enum phi_membership *) field = PHI_MEMBERSHIP_BOTH;
                else if (strcmp(value, "memberUid") == 0 || strcmp(value, "memberuid") == 0)
                        *(enum phi_membership *) field = PHI_MEMBERSHIP_MEMBERUID;
                else if (strcmp(value, "member") == 0)
                        *(enum phi_membership *) field = PHI_MEMBERSHIP_MEMBER;
                else
                        BAD("membership must be both, memberUid or member, got '%s'", value);
                return 0;
        case K_TOTP_ALGORITHM:
                /* Spelled out rather than phi_totp_algorithm_from_name(): the
                 * parser stays free of liboath (its fuzz target links it alone). */
                if (strcasecmp(value, "SHA1") == 0)
                        *(enum phi_totp_algorithm *) field = PHI_TOTP_SHA1;
                else if (strcasecmp(value, "SHA256") == 0)
                        *(enum phi_totp_algorithm *) field = PHI_TOTP_SHA256;
                else if (strcasecmp(value, "SHA512") == 0)
                        *(enum phi_totp_algorithm *) field = PHI_TOTP_SHA512;
                else
                        BAD("algorithm must be SHA1, SHA256 or SHA512, got '%s'", value);
                return 0;
        case K_BACKEND:
                if (strcmp(value, "sqlite") != 0 && strcmp(value, "postgresql") != 0)
                        BAD("backend '%s' is not available (this build has: sqlite, postgresql)", value);
                return set_string(field, value) < 0 ? -ENOMEM : 0;
        case K_SYNC_COMMIT:
                /* off (and its alias false) would acknowledge a login that a
                 * crash of the database takes back: its code usable again. */
                if (strcmp(value, "on") != 0 && strcmp(value, "remote_write") != 0 &&
                    strcmp(value, "remote_apply") != 0 && strcmp(value, "local") != 0)
                        BAD("synchronous_commit must be on, remote_write, remote_apply or local, got '%s' "
                            "(off is refused: an acknowledged login must survive a crash)",
                            value);
                return set_string(field, value) < 0 ? -ENOMEM : 0;
        }
#undef BAD
        return 0;
}

static int handler(void *user, const char *section, const char *name, const char *value) {
        struct parse_state *st = user;
        bool section_known = false;
        size_t si = 0;

        for (size_t i = 0; i < PHI_ELEMENTSOF(sections); i++)
                if (strcmp(section, sections[i]) == 0) {
                        section_known = true;
                        si = i;
                }
        if (!section_known) {
                errors_add(st->errors, st->file, st->line, "%s%s%s is not a known section",
                           *section ? "[" : "", *section ? section : "key outside any section",
                           *section ? "]" : "");
                return 1;
        }
        if (st->section_line[si] == 0)
                st->section_line[si] = st->line;
        if (strlen(value) > VALUE_MAX) {
                errors_add(st->errors, st->file, st->line, "value of %s is longer than %d bytes",
                           name, VALUE_MAX);
                return 1;
        }
        if (!phi_utf8_valid(value, strlen(value))) {
                errors_add(st->errors, st->file, st->line, "value of %s is not valid UTF-8", name);
                return 1;
        }
        for (size_t i = 0; i < PHI_ELEMENTSOF(keys); i++) {
                if (strcmp(keys[i].section, section) != 0 || strcmp(keys[i].name, name) != 0)
                        continue;
                if (st->seen[i] && keys[i].kind != K_URIS)
                        errors_add(st->errors, st->file, st->line,
                                   "%s is set twice (first on line %u)", name, st->key_line[i]);
                st->seen[i] = true;
                if (st->key_line[i] == 0)
                        st->key_line[i] = st->line;
                if (*value == 0) {
                        errors_add(st->errors, st->file, st->line, "%s has an empty value", name);
                        return 1;
                }
                /* inih's handler contract: nonzero = keep going; our own errors are
                 * collected, so only an allocation failure stops the parse. */
                return set_value(st, &keys[i], value) < 0 ? 0 : 1;
        }
        errors_add(st->errors, st->file, st->line, "unknown key '%s' in [%s]", name, section);
        return 1;
}

/* One line per call, so the line counter matches inih's; a line longer than the
 * limit is reported and skipped whole rather than cut into two lines. */
static char *reader(char *str, int num, void *stream) {
        struct parse_state *st = stream;
        size_t n = 0;

        if (num <= 1)
                return NULL;
        for (;;) {
                int ch;
                if (st->f)
                        ch = getc(st->f);
                else
                        ch = st->text_pos < st->text_len ? (unsigned char) st->text[st->text_pos++] : EOF;
                if (ch == EOF) {
                        if (n == 0 && !st->long_line)
                                return NULL;
                        break;
                }
                if (ch == 0)
                        ch = '\x7f';     /* a NUL would end the line early in inih */
                if (ch == '\n')
                        break;
                if (n + 2 < (size_t) num)
                        str[n++] = (char) ch;
                else
                        st->long_line = true;
        }
        st->line++;
        /* inih gives no callback for a section header; note its line here so a
         * missing key can be reported at the section it belongs to. */
        {
                size_t i = 0;
                while (i < n && (str[i] == ' ' || str[i] == '\t'))
                        i++;
                if (i < n && str[i] == '[')
                        for (size_t k = 0; k < PHI_ELEMENTSOF(sections); k++) {
                                size_t len = strlen(sections[k]);
                                if (n - i > len + 1 && memcmp(str + i + 1, sections[k], len) == 0 &&
                                    str[i + 1 + len] == ']' && st->section_line[k] == 0)
                                        st->section_line[k] = st->line;
                        }
        }
        if (st->long_line) {
                errors_add(st->errors, st->file, st->line, "line is longer than %d bytes",
                           PHI_CONFIG_MAX_LINE);
                st->long_line = false;
                n = 0;   /* parse the line as empty */
        }
        str[n] = 0;
        return str;
}

static unsigned key_line(const struct parse_state *st, const char *section, const char *name) {
        for (size_t i = 0; i < PHI_ELEMENTSOF(keys); i++)
                if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0)
                        return st->seen[i] ? st->key_line[i] : 0;
        return 0;
}

/* [store]: a PostgreSQL store needs its connection string, and one that
 * cannot be read by anyone on the way (TLS that checks the server, or a
 * local socket); uri means nothing to SQLite. */
static void store_validate(struct parse_state *st) {
        const struct phi_config *c = st->config;
        unsigned section = st->section_line[1], uri_line = key_line(st, "store", "uri");
        char why[512];

        if (strcmp(c->store_backend, "postgresql") != 0) {
                if (uri_line)
                        errors_add(st->errors, st->file, uri_line,
                                   "uri is for backend = postgresql (the backend is %s)", c->store_backend);
                if (key_line(st, "store", "synchronous_commit"))
                        errors_add(st->errors, st->file, key_line(st, "store", "synchronous_commit"),
                                   "synchronous_commit is for backend = postgresql (SQLite always syncs)");
                return;
        }
        if (!uri_line) {
                errors_add(st->errors, st->file, section,
                           "backend = postgresql needs uri = (a libpq connection string, e.g. "
                           "host=db.example.org dbname=phi sslmode=verify-full)");
                return;
        }
        if (phi_pg_conninfo_check(c->store_uri, why, sizeof(why)) < 0)
                errors_add(st->errors, st->file, uri_line, "uri: %s", why);
}

static void validate(struct parse_state *st) {
        struct phi_config *c = st->config;
        unsigned ldap_line = st->section_line[0];

        if (c->n_uris == 0)
                errors_add(st->errors, st->file, ldap_line, "[ldap] needs uri=");
        if (!c->base)
                errors_add(st->errors, st->file, ldap_line, "[ldap] needs base= (the directory's base DN)");
        for (size_t i = 0; i < PHI_ELEMENTSOF(keys); i++) {
                if (keys[i].kind != K_GIDS || !st->seen[i])
                        continue;
                for (size_t k = 0; k < c->n_primary_gids_allowed; k++)
                        if (c->primary_gids_allowed[k] >= c->min_gid)
                                errors_add(st->errors, st->file, st->key_line[i],
                                           "%s: gid %u is not below min_gid (%llu); only gids below "
                                           "it need listing",
                                           keys[i].name, (unsigned) c->primary_gids_allowed[k],
                                           (unsigned long long) c->min_gid);
        }
        if (c->bind_dn && !c->bind_password_file)
                errors_add(st->errors, st->file, ldap_line,
                           "bind_dn is set but bind_password_file is not");
        for (size_t i = 0; i < PHI_ELEMENTSOF(keys); i++) {
                const char *reason = NULL;
                int fd;
                if (!st->seen[i] || strcmp(keys[i].name, "bind_password_file") != 0 ||
                    !c->bind_password_file)
                        continue;
                fd = phi_config_open_trusted(c->bind_password_file, true, &reason);
                if (fd < 0)
                        errors_add(st->errors, st->file, st->key_line[i], "bind_password_file %s: %s",
                                   c->bind_password_file, reason ? reason : phi_errno_text(fd));
                else
                        (void) phi_close_safe(fd);
        }
        /* Plain LDAP sends the bind password and every identity in clear; it is
         * accepted only where it cannot leave the host, or when the admin says so. */
        if (c->tls == PHI_TLS_NONE && !c->allow_insecure)
                for (size_t i = 0; i < c->n_uris; i++)
                        if (!phi_config_uri_is_loopback(c->uris[i]))
                                errors_add(st->errors, st->file, ldap_line,
                                           "tls = none with non-local uri %s: use starttls or ldaps, "
                                           "or set allow_insecure = yes",
                                           c->uris[i]);
        if (c->tls == PHI_TLS_LDAPS)
                for (size_t i = 0; i < c->n_uris; i++)
                        if (strncmp(c->uris[i], "ldaps://", 8) != 0)
                                errors_add(st->errors, st->file, ldap_line,
                                           "tls = ldaps but uri %s is not ldaps://", c->uris[i]);
        if (c->tls == PHI_TLS_STARTTLS)
                for (size_t i = 0; i < c->n_uris; i++)
                        if (strncmp(c->uris[i], "ldaps://", 8) == 0)
                                errors_add(st->errors, st->file, ldap_line,
                                           "tls = starttls but uri %s is ldaps:// (use tls = ldaps)",
                                           c->uris[i]);
        if (c->base) {
                if (!c->user_base && set_string(&c->user_base, c->base) < 0)
                        errors_add(st->errors, st->file, 0, "out of memory");
                if (!c->group_base && set_string(&c->group_base, c->base) < 0)
                        errors_add(st->errors, st->file, 0, "out of memory");
        }
        store_validate(st);
        /* [totp]: the URI label must fit phi_totp_uri(); 7 digits no app shows. */
        if (c->totp_digits == 7)
                errors_add(st->errors, st->file, st->section_line[PHI_ELEMENTSOF(sections) - 1],
                           "[totp] digits must be 6 or 8");
        if (!c->totp_issuer || !*c->totp_issuer || strlen(c->totp_issuer) > 64)
                errors_add(st->errors, st->file, st->section_line[PHI_ELEMENTSOF(sections) - 1],
                           "[totp] issuer must be 1 to 64 bytes");
}

static int parse(struct parse_state *st, struct phi_config **ret) {
        int r;

        /* Debian's inih takes its limits at run time; these make a line one
         * physical line (no continuation) of up to PHI_CONFIG_MAX_LINE bytes. */
        ini_use_stack = false;
        ini_allow_realloc = false;
        /* Without realloc the heap buffer stays at its first size, 200 bytes
         * by default: every longer line was refused as over the limit. */
        ini_initial_alloc = PHI_CONFIG_MAX_LINE + 3;
        ini_max_line = PHI_CONFIG_MAX_LINE + 3;
        ini_allow_multiline = false;
        ini_allow_no_value = false;
        ini_stop_on_first_error = false;

        r = ini_parse_stream(reader, st, handler, st);
        if (r == -2) {
                errors_add(st->errors, st->file, 0, "out of memory");
                return -ENOMEM;
        }
        if (r > 0)
                errors_add(st->errors, st->file, (unsigned) r,
                           "syntax error: expected [section] or key = value");
        if (r == 0 || r > 0)
                validate(st);
        if (st->errors->n > 0 || st->errors->dropped > 0)
                return -EINVAL;
        *ret = PHI_TAKE_PTR(st->config);
        return 0;
}

int phi_config_load_string(const char *name, const char *text, struct phi_config **ret,
                           struct phi_config_errors *errors) {
        struct parse_state st = {
                .errors = errors, .file = name, .text = text, .text_len = strlen(text),
        };
        int r;

        st.config = config_new_defaults(name);
        if (!st.config)
                return -ENOMEM;
        r = parse(&st, ret);
        phi_config_unref(st.config);
        return r;
}

int phi_config_open_trusted(const char *path, bool secret, const char **ret_reason) {
        _cleanup_close_ int fd = -1;
        struct stat st;

        *ret_reason = NULL;
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                if (errno == ELOOP)
                        *ret_reason = "is a symbolic link; refusing to follow it";
                return phi_negative_errno();
        }
        if (fstat(fd, &st) < 0)
                return phi_negative_errno();
        if (!S_ISREG(st.st_mode)) {
                *ret_reason = "is not a regular file";
                return -EPERM;
        }
        if (st.st_uid != 0) {
                *ret_reason = "is not owned by root; refusing to trust it";
                return -EPERM;
        }
        if (st.st_mode & (S_IWGRP | S_IWOTH)) {
                *ret_reason = "is writable by group or others; refusing to trust it (chmod go-w)";
                return -EPERM;
        }
        if (secret && (st.st_mode & S_IROTH)) {
                *ret_reason = "holds a secret but is readable by others (chmod o-r)";
                return -EPERM;
        }
        /* O_NONBLOCK was only for open() (a FIFO must not hang us); reads block. */
        if (fcntl(fd, F_SETFL, 0) < 0)
                return phi_negative_errno();
        return PHI_TAKE_FD(fd);
}

int phi_config_load(const char *path, struct phi_config **ret, struct phi_config_errors *errors) {
        struct parse_state st = { .errors = errors, .file = path };
        const char *reason = NULL;
        FILE *f;
        int fd, r;

        fd = phi_config_open_trusted(path, false, &reason);
        if (fd < 0) {
                errors_add(errors, path, 0, "%s", reason ? reason : phi_errno_text(fd));
                return fd == -ENOMEM ? -ENOMEM : -EINVAL;
        }
        f = fdopen(fd, "re");
        if (!f) {
                r = phi_negative_errno();
                (void) phi_close_safe(fd);
                return r;
        }
        st.f = f;
        st.config = config_new_defaults(path);
        if (!st.config) {
                fclose(f);
                return -ENOMEM;
        }
        r = parse(&st, ret);
        if (r == 0 && ferror(f)) {
                errors_add(errors, path, 0, "read error");
                phi_config_unref(*ret);
                *ret = NULL;
                r = -EIO;
        }
        phi_config_unref(st.config);
        fclose(f);
        return r;
}

int phi_config_read_password(const char *path, char **ret) {
        const char *reason = NULL;
        char buf[512];
        ssize_t n;
        size_t len = 0;
        int fd, r = 0;

        fd = phi_config_open_trusted(path, true, &reason);
        if (fd < 0)
                return fd;
        while (len < sizeof(buf)) {
                n = read(fd, buf + len, sizeof(buf) - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = phi_negative_errno();
                        break;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        (void) phi_close_safe(fd);
        if (r == 0 && len == sizeof(buf))
                r = -E2BIG;
        if (r == 0) {
                char *nl = memchr(buf, '\n', len);
                if (nl)
                        len = (size_t) (nl - buf);
                if (len == 0 || memchr(buf, 0, len))
                        r = -EINVAL;
        }
        if (r == 0) {
                char *s = malloc(len + 1);
                if (!s)
                        r = -ENOMEM;
                else {
                        memcpy(s, buf, len);
                        s[len] = 0;
                        *ret = s;
                }
        }
        phi_secret_wipe(buf, sizeof(buf));
        return r;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Parses policy text into a new, immutable struct phi_policy. inih splits the
 * key = value lines; the reader in front of it sees every physical line first,
 * so that section headers (which inih reports to nobody), overlong lines, NUL
 * bytes, bad UTF-8 and lines that are no INI at all are reported at their own
 * line number, every one of them, rather than only the first that inih would
 * return. A line found bad is handed to inih as an empty line. */

#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "policy_internal.h"

enum section_kind { SEC_NONE, SEC_BAD, SEC_ACCESS, SEC_ROLE };

/* Keys of each section kind, by index into key_line[] (set-twice and
 * required-key checks). */
enum access_key { A_ACTION, A_USERS, A_GROUPS, A_UIDS, A_SERVICES, A_HOSTS, A_FROM, A_UNTIL, A_DESC, A_MAX };
static const char *const access_keys[A_MAX] = {
        "action", "users", "groups", "uids", "services", "hosts", "valid_from", "valid_until", "description",
};
enum role_key {
        R_GRANT, R_ELIGIBLE, R_APPROVERS, R_APPROVALS, R_MAX_DURATION, R_PENDING, R_REASON, R_TOTP,
        R_HOSTS, R_BREAKGLASS, R_BREAKGLASS_MAX, R_DESC, R_MAX
};
static const char *const role_keys[R_MAX] = {
        "grant_group", "eligible_groups", "approver_groups", "approvals", "max_duration",
        "pending_lifetime", "reason_required", "approver_totp", "hosts", "breakglass",
        "breakglass_max", "description",
};

/* Durations a role may set, and their defaults. */
#define ROLE_MAX_DURATION_DEFAULT 3600u
#define ROLE_MAX_DURATION_MIN 60u
#define ROLE_MAX_DURATION_MAX (30u * 86400u)
#define ROLE_PENDING_DEFAULT 86400u
#define ROLE_PENDING_MIN 60u
#define ROLE_PENDING_MAX (30u * 86400u)
#define ROLE_BREAKGLASS_DEFAULT 3600u
#define ROLE_BREAKGLASS_MIN 60u
#define ROLE_BREAKGLASS_MAX 86400u

struct parse_state {
        struct phi_policy *policy;
        struct phi_policy_errors *errors;
        const char *file;
        const char *text;
        size_t len, pos;
        unsigned line;
        char *buf;                      /* the line handed to inih */
        enum section_kind kind;
        struct policy_rule *rule;       /* current [access:...] */
        struct policy_role *role;       /* current [role:...] */
        unsigned key_line[(int) A_MAX > (int) R_MAX ? (int) A_MAX : (int) R_MAX];
        size_t entries;                 /* list entries in the whole file */
        bool rules_full, roles_full, entries_full;
        bool oom;
};

static void errors_add(struct parse_state *st, unsigned line, const char *fmt, ...) _phi_printf_(3, 4);
static void errors_add(struct parse_state *st, unsigned line, const char *fmt, ...) {
        struct phi_policy_errors *e = st->errors;
        struct phi_policy_error *item;
        char *msg = NULL;
        va_list ap;
        int n;

        if (e->n >= PHI_POLICY_MAX_ERRORS) {
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
        item->file = strdup(st->file);
        if (!item->file) {
                free(msg);
                e->dropped++;
                return;
        }
        item->line = line;
        item->message = msg;
        e->n++;
}

void phi_policy_errors_clear(struct phi_policy_errors *e) {
        for (size_t i = 0; i < e->n; i++) {
                free(e->items[i].file);
                free(e->items[i].message);
        }
        e->n = 0;
        e->dropped = 0;
}

void phi_policy_errors_print(const struct phi_policy_errors *e, FILE *f) {
        for (size_t i = 0; i < e->n; i++)
                fprintf(f, "%s:%u: %s\n", e->items[i].file, e->items[i].line, e->items[i].message);
        if (e->dropped > 0)
                fprintf(f, "(%zu more errors not shown)\n", e->dropped);
}

static void strv_free(char **v, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

static void rule_free(struct policy_rule *r) {
        if (!r)
                return;
        free(r->name);
        free(r->description);
        strv_free(r->users, r->n_users);
        strv_free(r->groups, r->n_groups);
        free(r->uids);
        strv_free(r->services, r->n_services);
        strv_free(r->hosts, r->n_hosts);
        free(r);
}

PHI_DEFINE_TRIVIAL_CLEANUP_FUNC(struct policy_rule *, rule_free);

static void role_free(struct policy_role *r) {
        if (!r)
                return;
        free(r->name);
        free(r->description);
        free(r->grant_group);
        strv_free(r->eligible_groups, r->pub.n_eligible_groups);
        strv_free(r->approver_groups, r->pub.n_approver_groups);
        strv_free(r->hosts, r->pub.n_hosts);
        free(r);
}

PHI_DEFINE_TRIVIAL_CLEANUP_FUNC(struct policy_role *, role_free);

struct phi_policy *phi_policy_ref(struct phi_policy *p) {
        if (p)
                __atomic_add_fetch(&p->refcount, 1, __ATOMIC_SEQ_CST);
        return p;
}

void phi_policy_unref(struct phi_policy *p) {
        if (!p || __atomic_sub_fetch(&p->refcount, 1, __ATOMIC_SEQ_CST) > 0)
                return;
        for (size_t i = 0; i < p->n_rules; i++)
                rule_free(p->rules[i]);
        free(p->rules);
        for (size_t i = 0; i < p->n_roles; i++)
                role_free(p->roles[i]);
        free(p->roles);
        policy_index_free(p);
        free(p);
}

size_t phi_policy_n_rules(const struct phi_policy *p) {
        return p->n_rules;
}

size_t phi_policy_n_roles(const struct phi_policy *p) {
        return p->n_roles;
}

/* ---- shapes of names ---- */

static bool name_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
               c == '_' || c == '-';
}

/* Section names: what a person types and reads back in the journal as PHI_RULE. */
static bool section_name_valid(const char *s, size_t len) {
        if (len == 0 || len > PHI_POLICY_NAME_MAX || s[0] == '.' || s[0] == '-')
                return false;
        for (size_t i = 0; i < len; i++)
                if (!name_char(s[i]))
                        return false;
        return true;
}

bool policy_service_valid(const char *s) {
        size_t len = strnlen(s, PHI_POLICY_SERVICE_MAX + 1);

        if (len == 0 || len > PHI_POLICY_SERVICE_MAX || s[0] == '.' || s[0] == '-')
                return false;
        for (size_t i = 0; i < len; i++)
                if (!name_char(s[i]))
                        return false;
        return true;
}

static bool host_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
               c == '-' || c == '_';
}

bool policy_host_valid(const char *s) {
        size_t len = strnlen(s, PHI_POLICY_HOST_MAX + 1);

        if (len == 0 || len > PHI_POLICY_HOST_MAX || s[0] == '.' || s[0] == '-')
                return false;
        for (size_t i = 0; i < len; i++)
                if (!host_char(s[i]))
                        return false;
        return true;
}

/* Host characters plus the shell's * ? and closed [...] / [!...] classes (with
 * a-b ranges); no backslash, so a pattern means the same to a reader as to
 * fnmatch(3), which policy_host_match() follows. */
bool policy_host_pattern_valid(const char *s) {
        size_t len = strnlen(s, PHI_POLICY_HOST_MAX + 1);

        if (len == 0 || len > PHI_POLICY_HOST_MAX)
                return false;
        for (size_t i = 0; i < len; i++) {
                if (s[i] == '[') {
                        size_t j = i + 1;
                        if (j < len && s[j] == '!')
                                j++;
                        if (j >= len || s[j] == ']')
                                return false;      /* empty class */
                        for (; j < len && s[j] != ']'; j++)
                                if (!host_char(s[j]))
                                        return false;
                        if (j >= len)
                                return false;      /* unclosed */
                        i = j;
                } else if (!host_char(s[i]) && s[i] != '*' && s[i] != '?')
                        return false;
        }
        return true;
}

/* ---- values ---- */

/* days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil), so that no time zone or libc state enters. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
        int64_t era;
        unsigned yoe, doy, doe;

        y -= m <= 2;
        era = (y >= 0 ? y : y - 399) / 400;
        yoe = (unsigned) (y - era * 400);
        doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + (int64_t) doe - 719468;
}

static bool digits(const char *s, size_t n, unsigned *ret) {
        unsigned v = 0;

        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return false;
                v = v * 10 + (unsigned) (s[i] - '0');
        }
        *ret = v;
        return true;
}

/* "2027-03-31" (midnight UTC) or "2027-03-31T18:00:00Z". */
static int parse_timestamp(const char *s, int64_t *ret) {
        static const unsigned mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        size_t len = strlen(s);
        unsigned y, mo, d, h = 0, mi = 0, sec = 0;
        bool leap;

        if (len != 10 && len != 20)
                return -EINVAL;
        if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
            !digits(s + 8, 2, &d))
                return -EINVAL;
        if (len == 20 && (s[10] != 'T' || !digits(s + 11, 2, &h) || s[13] != ':' ||
                          !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &sec) ||
                          s[19] != 'Z'))
                return -EINVAL;
        leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) ||
            h > 23 || mi > 59 || sec > 59)
                return -EINVAL;
        *ret = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
        return 0;
}

static bool text_valid(const char *s) {
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
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

enum list_kind { L_USERS, L_GROUPS, L_SERVICES, L_HOSTS };

static const char *list_problem(enum list_kind kind, const char *tok) {
        switch (kind) {
        case L_USERS:
                return phi_name_valid(tok) ? NULL : "is not a valid user name";
        case L_GROUPS:
                if (strcmp(tok, "*") == 0)
                        return "is not a group (users = * names every user)";
                return phi_name_valid(tok) ? NULL : "is not a valid group name";
        case L_SERVICES:
                return policy_service_valid(tok) ? NULL : "is not a valid PAM service name";
        case L_HOSTS:
                return policy_host_pattern_valid(tok) ? NULL
                                                      : "is not a host name pattern (letters, digits, . - _, "
                                                        "* ? and closed [...] classes)";
        }
        return "?";
}

/* Appends the space- or comma-separated entries of value to *list; a key may
 * be repeated to continue a list. "*" is kept out of the list and reported
 * through *ret_star where the key allows it. */
static int add_list(struct parse_state *st, const char *key, const char *value, enum list_kind kind,
                    char ***list, size_t *n, bool *ret_star) {
        _cleanup_free_ char *copy = strdup(value);
        char *save = NULL;
        unsigned count = 0;

        if (!copy)
                return -ENOMEM;
        for (char *tok = strtok_r(copy, " \t,", &save); tok; tok = strtok_r(NULL, " \t,", &save)) {
                const char *problem;
                char **grown;

                count++;
                if (ret_star && strcmp(tok, "*") == 0) {
                        *ret_star = true;
                        continue;
                }
                problem = list_problem(kind, tok);
                if (problem) {
                        errors_add(st, st->line, "%s: '%.*s' %s", key, PHI_POLICY_HOST_MAX, tok, problem);
                        continue;
                }
                if (*n >= PHI_POLICY_MAX_LIST) {
                        errors_add(st, st->line, "%s: more than %d entries in one section", key,
                                   PHI_POLICY_MAX_LIST);
                        break;
                }
                if (st->entries >= PHI_POLICY_MAX_ENTRIES) {
                        if (!st->entries_full)
                                errors_add(st, st->line, "more than %d list entries in the policy",
                                           PHI_POLICY_MAX_ENTRIES);
                        st->entries_full = true;
                        break;
                }
                grown = reallocarray(*list, *n + 1, sizeof(char *));
                if (!grown)
                        return -ENOMEM;
                *list = grown;
                if (!(grown[*n] = strdup(tok)))
                        return -ENOMEM;
                (*n)++;
                st->entries++;
        }
        if (count == 0)
                errors_add(st, st->line, "%s has no entries", key);
        return 0;
}

static int add_uids(struct parse_state *st, const char *value, struct policy_rule *r) {
        _cleanup_free_ char *copy = strdup(value);
        char *save = NULL;

        if (!copy)
                return -ENOMEM;
        for (char *tok = strtok_r(copy, " \t,", &save); tok; tok = strtok_r(NULL, " \t,", &save)) {
                char *dash = strchr(tok, '-');
                uint64_t lo, hi;
                struct uid_range *grown;
                bool ok;

                if (dash) {
                        *dash = 0;
                        ok = phi_parse_u64(tok, 0, UINT32_MAX - 1, &lo) == 0 &&
                             phi_parse_u64(dash + 1, 0, UINT32_MAX - 1, &hi) == 0 && lo <= hi;
                        *dash = '-';
                } else {
                        ok = phi_parse_u64(tok, 0, UINT32_MAX - 1, &lo) == 0;
                        hi = lo;
                }
                if (!ok) {
                        errors_add(st, st->line,
                                   "uids: '%.64s' is not a uid or a range LOW-HIGH of uids (0 to %u)", tok,
                                   UINT32_MAX - 1);
                        continue;
                }
                if (r->n_uids >= PHI_POLICY_MAX_LIST || st->entries >= PHI_POLICY_MAX_ENTRIES) {
                        errors_add(st, st->line, "uids: too many entries");
                        break;
                }
                grown = reallocarray(r->uids, r->n_uids + 1, sizeof(*grown));
                if (!grown)
                        return -ENOMEM;
                r->uids = grown;
                r->uids[r->n_uids++] = (struct uid_range){ (uint32_t) lo, (uint32_t) hi };
                st->entries++;
        }
        return 0;
}

static int find_key(const char *const *keys, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(keys[i], name) == 0)
                        return (int) i;
        return -1;
}

/* Keys that hold one value; the list keys may be repeated to continue. */
static bool access_key_scalar(int k) {
        return k == A_ACTION || k == A_FROM || k == A_UNTIL || k == A_DESC;
}

static int access_value(struct parse_state *st, int k, const char *name, const char *value) {
        struct policy_rule *r = st->rule;
        int64_t t;

        switch ((enum access_key) k) {
        case A_ACTION:
                if (strcmp(value, "allow") == 0)
                        r->deny = false;
                else if (strcmp(value, "deny") == 0)
                        r->deny = true;
                else
                        errors_add(st, st->line, "action must be allow or deny, got '%s'", value);
                return 0;
        case A_USERS:
                return add_list(st, name, value, L_USERS, &r->users, &r->n_users, &r->every_user);
        case A_GROUPS:
                return add_list(st, name, value, L_GROUPS, &r->groups, &r->n_groups, NULL);
        case A_UIDS:
                return add_uids(st, value, r);
        case A_SERVICES:
                return add_list(st, name, value, L_SERVICES, &r->services, &r->n_services, &r->every_service);
        case A_HOSTS:
                return add_list(st, name, value, L_HOSTS, &r->hosts, &r->n_hosts, NULL);
        case A_FROM:
        case A_UNTIL:
                if (parse_timestamp(value, &t) < 0) {
                        errors_add(st, st->line,
                                   "%s must be a UTC date like 2027-03-31 or 2027-03-31T18:00:00Z, got '%s'",
                                   name, value);
                        return 0;
                }
                if (k == A_FROM) {
                        r->has_from = true;
                        r->valid_from = t;
                } else {
                        r->has_until = true;
                        r->valid_until = t;
                }
                return 0;
        case A_DESC:
                if (strlen(value) > PHI_POLICY_TEXT_MAX || !text_valid(value)) {
                        errors_add(st, st->line, "description must be at most %d bytes of text",
                                   PHI_POLICY_TEXT_MAX);
                        return 0;
                }
                return set_string(&r->description, value);
        case A_MAX:
                break;
        }
        return 0;
}

static bool role_key_scalar(int k) {
        return k != R_ELIGIBLE && k != R_APPROVERS && k != R_HOSTS;
}

static int role_duration(struct parse_state *st, const char *name, const char *value, uint64_t min,
                         uint64_t max, uint64_t *field) {
        char lo[24], hi[24];
        uint64_t v;

        if (phi_parse_duration(value, min, max, &v) < 0) {
                errors_add(st, st->line, "%s must be a duration like 90s, 30m, 4h or 7d from %s to %s, got '%s'",
                           name, phi_format_duration(min, lo), phi_format_duration(max, hi), value);
                return 0;
        }
        *field = v;
        return 0;
}

static int role_bool(struct parse_state *st, const char *name, const char *value, bool *field) {
        if (phi_parse_bool(value, field) < 0)
                errors_add(st, st->line, "%s must be yes or no, got '%s'", name, value);
        return 0;
}

static int role_value(struct parse_state *st, int k, const char *name, const char *value) {
        struct policy_role *r = st->role;
        uint64_t v;

        switch ((enum role_key) k) {
        case R_GRANT:
                if (!phi_name_valid(value)) {
                        errors_add(st, st->line, "grant_group: '%s' is not a valid group name", value);
                        return 0;
                }
                return set_string(&r->grant_group, value);
        case R_ELIGIBLE:
                return add_list(st, name, value, L_GROUPS, &r->eligible_groups, &r->pub.n_eligible_groups, NULL);
        case R_APPROVERS:
                return add_list(st, name, value, L_GROUPS, &r->approver_groups, &r->pub.n_approver_groups, NULL);
        case R_HOSTS:
                return add_list(st, name, value, L_HOSTS, &r->hosts, &r->pub.n_hosts, NULL);
        case R_APPROVALS:
                if (phi_parse_u64(value, 1, PHI_POLICY_MAX_APPROVALS, &v) < 0)
                        errors_add(st, st->line, "approvals must be a whole number from 1 to %d, got '%s'",
                                   PHI_POLICY_MAX_APPROVALS, value);
                else
                        r->pub.approvals = (unsigned) v;
                return 0;
        case R_MAX_DURATION:
                return role_duration(st, name, value, ROLE_MAX_DURATION_MIN, ROLE_MAX_DURATION_MAX,
                                     &r->pub.max_duration);
        case R_PENDING:
                return role_duration(st, name, value, ROLE_PENDING_MIN, ROLE_PENDING_MAX,
                                     &r->pub.pending_lifetime);
        case R_BREAKGLASS_MAX:
                return role_duration(st, name, value, ROLE_BREAKGLASS_MIN, ROLE_BREAKGLASS_MAX,
                                     &r->pub.breakglass_max);
        case R_REASON:
                return role_bool(st, name, value, &r->pub.reason_required);
        case R_TOTP:
                return role_bool(st, name, value, &r->pub.approver_totp);
        case R_BREAKGLASS:
                return role_bool(st, name, value, &r->pub.breakglass);
        case R_DESC:
                if (strlen(value) > PHI_POLICY_TEXT_MAX || !text_valid(value)) {
                        errors_add(st, st->line, "description must be at most %d bytes of text",
                                   PHI_POLICY_TEXT_MAX);
                        return 0;
                }
                return set_string(&r->description, value);
        case R_MAX:
                break;
        }
        return 0;
}

static int handler(void *user, const char *section, const char *name, const char *value) {
        struct parse_state *st = user;
        const char *const *keys;
        size_t n_keys;
        bool scalar;
        int k, r;

        (void) section;   /* the reader tracks sections itself; inih only sees key lines */
        if (st->kind == SEC_BAD)
                return 1;   /* reported at the header; its keys would only add noise */
        if (st->kind == SEC_NONE) {
                errors_add(st, st->line, "'%s' is outside any section ([access:NAME] or [role:NAME])", name);
                return 1;
        }
        keys = st->kind == SEC_ACCESS ? access_keys : role_keys;
        n_keys = st->kind == SEC_ACCESS ? A_MAX : R_MAX;
        k = find_key(keys, n_keys, name);
        if (k < 0) {
                errors_add(st, st->line, "unknown key '%s' in [%s:%s]", name,
                           st->kind == SEC_ACCESS ? "access" : "role",
                           st->kind == SEC_ACCESS ? st->rule->name : st->role->name);
                return 1;
        }
        scalar = st->kind == SEC_ACCESS ? access_key_scalar(k) : role_key_scalar(k);
        if (scalar && st->key_line[k] != 0) {
                errors_add(st, st->line, "%s is set twice (first on line %u)", name, st->key_line[k]);
                return 1;
        }
        if (st->key_line[k] == 0)
                st->key_line[k] = st->line;
        if (*value == 0) {
                errors_add(st, st->line, "%s has an empty value", name);
                return 1;
        }
        r = st->kind == SEC_ACCESS ? access_value(st, k, name, value) : role_value(st, k, name, value);
        if (r < 0) {
                st->oom = true;
                return 0;   /* inih: stop */
        }
        return 1;
}

/* ---- per-section checks, run when the next section starts or the file ends ---- */

static bool strv_contains(char *const *v, size_t n, const char *s) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(v[i], s) == 0)
                        return true;
        return false;
}

static void access_finish(struct parse_state *st) {
        struct policy_rule *r = st->rule;
        unsigned at = r->line;

        if (st->key_line[A_ACTION] == 0)
                errors_add(st, at, "[access:%s] needs action = allow or action = deny", r->name);
        if (st->key_line[A_USERS] == 0 && st->key_line[A_GROUPS] == 0 && st->key_line[A_UIDS] == 0)
                errors_add(st, at, "[access:%s] names nobody: set users =, groups = or uids =", r->name);
        if (st->key_line[A_SERVICES] == 0)
                errors_add(st, at, "[access:%s] needs services = (PAM service names, or * for every one)",
                           r->name);
        if (st->key_line[A_HOSTS] == 0)
                errors_add(st, at, "[access:%s] needs hosts = (host name patterns, or * for every host)",
                           r->name);
        if (r->has_from && r->has_until && r->valid_from >= r->valid_until)
                errors_add(st, st->key_line[A_UNTIL], "valid_until must be later than valid_from (line %u)",
                           st->key_line[A_FROM]);
}

static void role_finish(struct parse_state *st) {
        struct policy_role *r = st->role;
        unsigned at = r->pub.line;

        if (st->key_line[R_GRANT] == 0)
                errors_add(st, at, "[role:%s] needs grant_group = (the group the grant confers)", r->name);
        if (st->key_line[R_ELIGIBLE] == 0)
                errors_add(st, at, "[role:%s] needs eligible_groups = (who may ask for it)", r->name);
        if (st->key_line[R_APPROVERS] == 0)
                errors_add(st, at, "[role:%s] needs approver_groups = (who may approve it)", r->name);
        if (st->key_line[R_HOSTS] == 0)
                errors_add(st, at, "[role:%s] needs hosts = (host name patterns, or * for every host)",
                           r->name);
        if (r->grant_group && strv_contains(r->eligible_groups, r->pub.n_eligible_groups, r->grant_group))
                errors_add(st, st->key_line[R_GRANT],
                           "grant_group %s is also in eligible_groups: its members would already hold it",
                           r->grant_group);
        if (st->key_line[R_BREAKGLASS_MAX] != 0 && !r->pub.breakglass)
                errors_add(st, st->key_line[R_BREAKGLASS_MAX],
                           "breakglass_max is set but breakglass is not yes");
        if (r->pub.breakglass && r->pub.breakglass_max > r->pub.max_duration)
                errors_add(st, st->key_line[R_BREAKGLASS_MAX] ? st->key_line[R_BREAKGLASS_MAX] : at,
                           "breakglass_max is longer than max_duration");
        if (!r->pub.breakglass)
                r->pub.breakglass_max = 0;
        for (size_t i = 0; i + 1 < st->policy->n_roles; i++) {
                const struct policy_role *o = st->policy->roles[i];
                if (r->grant_group && o->grant_group && strcmp(o->grant_group, r->grant_group) == 0) {
                        errors_add(st, st->key_line[R_GRANT],
                                   "grant_group %s is already granted by [role:%s] (line %u)", r->grant_group,
                                   o->name, o->pub.line);
                        break;
                }
        }
}

static void section_finish(struct parse_state *st) {
        if (st->kind == SEC_ACCESS)
                access_finish(st);
        else if (st->kind == SEC_ROLE)
                role_finish(st);
        st->kind = SEC_NONE;
        st->rule = NULL;
        st->role = NULL;
        memset(st->key_line, 0, sizeof(st->key_line));
}

static int rule_new(struct parse_state *st, const char *name, size_t len) {
        struct phi_policy *p = st->policy;
        _cleanup_(rule_freep) struct policy_rule *r = NULL;
        struct policy_rule **grown;

        for (size_t i = 0; i < p->n_rules; i++)
                if (strlen(p->rules[i]->name) == len && memcmp(p->rules[i]->name, name, len) == 0) {
                        errors_add(st, st->line, "[access:%.*s] is defined twice (first on line %u)", (int) len,
                                   name, p->rules[i]->line);
                        st->kind = SEC_BAD;
                        return 0;
                }
        if (p->n_rules >= PHI_POLICY_MAX_RULES) {
                if (!st->rules_full)
                        errors_add(st, st->line, "more than %d [access:...] sections", PHI_POLICY_MAX_RULES);
                st->rules_full = true;
                st->kind = SEC_BAD;
                return 0;
        }
        r = calloc(1, sizeof(*r));
        if (!r || !(r->name = strndup(name, len)))
                return -ENOMEM;
        r->line = st->line;
        grown = reallocarray(p->rules, p->n_rules + 1, sizeof(*grown));
        if (!grown)
                return -ENOMEM;
        p->rules = grown;
        st->rule = p->rules[p->n_rules++] = PHI_TAKE_PTR(r);
        st->kind = SEC_ACCESS;
        return 0;
}

static int role_new(struct parse_state *st, const char *name, size_t len) {
        struct phi_policy *p = st->policy;
        _cleanup_(role_freep) struct policy_role *r = NULL;
        struct policy_role **grown;

        for (size_t i = 0; i < p->n_roles; i++)
                if (strlen(p->roles[i]->name) == len && memcmp(p->roles[i]->name, name, len) == 0) {
                        errors_add(st, st->line, "[role:%.*s] is defined twice (first on line %u)", (int) len, name,
                                   p->roles[i]->pub.line);
                        st->kind = SEC_BAD;
                        return 0;
                }
        if (p->n_roles >= PHI_POLICY_MAX_ROLES) {
                if (!st->roles_full)
                        errors_add(st, st->line, "more than %d [role:...] sections", PHI_POLICY_MAX_ROLES);
                st->roles_full = true;
                st->kind = SEC_BAD;
                return 0;
        }
        r = calloc(1, sizeof(*r));
        if (!r || !(r->name = strndup(name, len)))
                return -ENOMEM;
        r->pub.line = st->line;
        r->pub.approvals = 1;
        r->pub.max_duration = ROLE_MAX_DURATION_DEFAULT;
        r->pub.pending_lifetime = ROLE_PENDING_DEFAULT;
        r->pub.reason_required = true;
        r->pub.approver_totp = true;
        r->pub.breakglass_max = ROLE_BREAKGLASS_DEFAULT;
        grown = reallocarray(p->roles, p->n_roles + 1, sizeof(*grown));
        if (!grown)
                return -ENOMEM;
        p->roles = grown;
        st->role = p->roles[p->n_roles++] = PHI_TAKE_PTR(r);
        st->kind = SEC_ROLE;
        return 0;
}

static bool is_blank(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* A "[kind:name]" line (s is past leading blanks). Anything but blanks or a
 * comment after the ']' is refused: inih would drop it without a word. */
static int section_header(struct parse_state *st, const char *s, size_t n) {
        const char *close = memchr(s, ']', n), *name;
        size_t len, rest;

        section_finish(st);
        if (!close) {
                errors_add(st, st->line, "section header has no closing ']'");
                st->kind = SEC_BAD;
                return 0;
        }
        rest = n - (size_t) (close + 1 - s);
        for (const char *q = close + 1; rest > 0; q++, rest--) {
                if (*q == '#' || *q == ';')
                        break;
                if (!is_blank(*q)) {
                        errors_add(st, st->line, "text after the section header's ']'");
                        st->kind = SEC_BAD;
                        return 0;
                }
        }
        len = (size_t) (close - s - 1);
        if ((len == 7 + strlen(PHI_POLICY_DEFAULT_RULE) &&
             memcmp(s + 1, "access:" PHI_POLICY_DEFAULT_RULE, len) == 0) ||
            (len == 5 + strlen(PHI_POLICY_DEFAULT_RULE) && memcmp(s + 1, "role:" PHI_POLICY_DEFAULT_RULE, len) == 0)) {
                errors_add(st, st->line, "section name '%s' is reserved: decisions that no section makes carry it",
                           PHI_POLICY_DEFAULT_RULE);
                st->kind = SEC_BAD;
                return 0;
        }
        if (len >= 7 && memcmp(s + 1, "access:", 7) == 0) {
                name = s + 8;
                len -= 7;
                if (!section_name_valid(name, len))
                        goto bad_name;
                return rule_new(st, name, len);
        }
        if (len >= 5 && memcmp(s + 1, "role:", 5) == 0) {
                name = s + 6;
                len -= 5;
                if (!section_name_valid(name, len))
                        goto bad_name;
                return role_new(st, name, len);
        }
        errors_add(st, st->line, "[%.*s] is not a known section (expected [access:NAME] or [role:NAME])",
                   (int) (len > 64 ? 64 : len), s + 1);
        st->kind = SEC_BAD;
        return 0;
bad_name:
        errors_add(st, st->line,
                   "section name '%.*s' must be 1 to %d letters, digits, '.', '_' or '-', not starting "
                   "with '.' or '-'",
                   (int) (len > 64 ? 64 : len), name, PHI_POLICY_NAME_MAX);
        st->kind = SEC_BAD;
        return 0;
}

/* Mirrors inih's test for a key line: '=' or ':' before any inline comment
 * (';' after a blank). */
static bool has_key_separator(const char *s, size_t n) {
        bool was_blank = false;

        for (size_t i = 0; i < n; i++) {
                if (s[i] == '=' || s[i] == ':')
                        return true;
                if (was_blank && s[i] == ';')
                        return false;
                was_blank = is_blank(s[i]);
        }
        return false;
}

/* inih's reader: one physical line per call, checked before inih sees it. */
static char *reader(char *str, int num, void *stream) {
        struct parse_state *st = stream;
        const char *line, *nl, *s;
        size_t n, skip = 0;
        bool bad = false;
        int r;

        if (st->oom || st->pos >= st->len)
                return NULL;
        if (num < PHI_POLICY_MAX_LINE + 3) {
                /* inih's options were not what phi_policy_parse() set: refuse
                 * rather than read a file in pieces. */
                errors_add(st, 0, "internal error: inih gives a line buffer of %d bytes", num);
                st->pos = st->len;
                return NULL;
        }
        line = st->text + st->pos;
        nl = memchr(line, '\n', st->len - st->pos);
        n = nl ? (size_t) (nl - line) : st->len - st->pos;
        st->pos += n + (nl ? 1 : 0);
        st->line++;
        if (st->line == 1 && n >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0) {
                line += 3;   /* a UTF-8 byte order mark */
                n -= 3;
        }
        if (n > PHI_POLICY_MAX_LINE) {
                errors_add(st, st->line, "line is longer than %d bytes", PHI_POLICY_MAX_LINE);
                bad = true;
        } else if (memchr(line, 0, n)) {
                errors_add(st, st->line, "line contains a NUL byte");
                bad = true;
        } else if (!phi_utf8_valid(line, n)) {
                errors_add(st, st->line, "line is not valid UTF-8");
                bad = true;
        }
        while (!bad && skip < n && is_blank(line[skip]))
                skip++;
        s = line + skip;
        if (bad || skip == n || *s == '#' || *s == ';') {
                n = 0;   /* blank, comment, or reported above */
        } else if (*s == '[') {
                r = section_header(st, s, n - skip);
                if (r < 0) {
                        st->oom = true;
                        return NULL;
                }
                n = 0;   /* inih needs no section: the state holds it */
        } else if (!has_key_separator(s, n - skip)) {
                errors_add(st, st->line, "syntax error: expected [section], key = value or a # comment");
                n = 0;
        }
        memcpy(str, line, n);
        str[n] = 0;
        return str;
}

/* Errors in line order, whichever check found them (stable: insertion sort). */
static void errors_sort(struct phi_policy_errors *e, size_t from) {
        for (size_t i = from + 1; i < e->n; i++) {
                struct phi_policy_error item = e->items[i];
                size_t j = i;
                while (j > from && e->items[j - 1].line > item.line) {
                        e->items[j] = e->items[j - 1];
                        j--;
                }
                e->items[j] = item;
        }
}

static void publish_roles(struct phi_policy *p) {
        for (size_t i = 0; i < p->n_roles; i++) {
                struct policy_role *r = p->roles[i];
                r->pub.name = r->name;
                r->pub.description = r->description;
                r->pub.grant_group = r->grant_group;
                r->pub.eligible_groups = (const char *const *) r->eligible_groups;
                r->pub.approver_groups = (const char *const *) r->approver_groups;
                r->pub.hosts = (const char *const *) r->hosts;
        }
}

/* Where a value's comment starts (after a blank); has_key_separator() agrees. */
static char inline_comment_prefixes[] = ";";

struct ini_options {
        bool use_stack, allow_realloc;
        int initial_alloc, max_line;
        bool allow_multiline, allow_no_value, allow_bom, stop_on_first_error, allow_inline_comments;
        char *inline_comment_prefixes;
};

int phi_policy_parse(const char *text, size_t len, const char *filename, struct phi_policy **ret,
                     struct phi_policy_errors *errors) {
        struct parse_state st = { .errors = errors, .file = filename, .text = text, .len = len };
        size_t first_error = errors->n, dropped = errors->dropped;
        _cleanup_policy_ struct phi_policy *p = NULL;
        struct ini_options saved;
        int r = 0;

        if (len > PHI_POLICY_MAX_SIZE) {
                errors_add(&st, 0, "policy is larger than %u bytes", PHI_POLICY_MAX_SIZE);
                return -EINVAL;
        }
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->refcount = 1;
        st.policy = p;

        /* Debian's inih takes these at run time, process-wide: set every one this
         * parser relies on, and put them back afterwards so that another inih
         * user in the process (the daemon's config) sees what it saw before.
         * One physical line per call (no continuation lines), a heap buffer
         * big enough for the longest line the reader passes. */
        saved = (struct ini_options){ ini_use_stack, ini_allow_realloc, ini_initial_alloc, ini_max_line,
                                      ini_allow_multiline, ini_allow_no_value, ini_allow_bom,
                                      ini_stop_on_first_error, ini_allow_inline_comments,
                                      ini_inline_comment_prefixes };
        ini_use_stack = false;
        ini_allow_realloc = false;
        ini_initial_alloc = PHI_POLICY_MAX_LINE + 3;
        ini_max_line = PHI_POLICY_MAX_LINE + 3;
        ini_allow_multiline = false;
        ini_allow_no_value = false;
        ini_allow_bom = false;          /* the reader strips it */
        ini_stop_on_first_error = false;
        ini_allow_inline_comments = true;
        ini_inline_comment_prefixes = inline_comment_prefixes;

        r = ini_parse_stream(reader, &st, handler, &st);
        ini_use_stack = saved.use_stack;
        ini_allow_realloc = saved.allow_realloc;
        ini_initial_alloc = saved.initial_alloc;
        ini_max_line = saved.max_line;
        ini_allow_multiline = saved.allow_multiline;
        ini_allow_no_value = saved.allow_no_value;
        ini_allow_bom = saved.allow_bom;
        ini_stop_on_first_error = saved.stop_on_first_error;
        ini_allow_inline_comments = saved.allow_inline_comments;
        ini_inline_comment_prefixes = saved.inline_comment_prefixes;
        if (r == -2 || st.oom) {
                errors_add(&st, 0, "out of memory");
                return -ENOMEM;
        }
        if (r > 0)   /* the reader lets no such line through; kept for safety */
                errors_add(&st, (unsigned) r, "syntax error");
        section_finish(&st);
        errors_sort(errors, first_error);
        if (errors->n > first_error || errors->dropped > dropped)
                return -EINVAL;
        publish_roles(p);
        r = policy_index_build(p);
        if (r < 0) {
                errors_add(&st, 0, "out of memory");
                return r;
        }
        *ret = PHI_TAKE_PTR(p);
        return 0;
}

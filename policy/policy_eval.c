/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Decisions: from a parsed policy and the caller's question to an answer with
 * the deciding section and a reason. Reads the policy, writes only *ret. */

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "policy_internal.h"

#define MAX_GROUPS 65536   /* NGROUPS_MAX on Linux */

static char ascii_lower(char c) {
        return c >= 'A' && c <= 'Z' ? (char) (c - 'A' + 'a') : c;
}

/* A [...] or [!...] class at p (on the '['): whether c is in it; *ret_end is
 * past the ']'. The parser accepted only closed, non-empty classes. */
static bool class_match(const char *p, char c, const char **ret_end) {
        bool neg = p[1] == '!', in = false;
        const char *q = p + 1 + neg;

        c = ascii_lower(c);
        for (; *q && *q != ']'; q++) {
                /* a '-' first or last in the class is itself */
                if (q[1] == '-' && q[2] && q[2] != ']') {
                        char lo = ascii_lower(q[0]), hi = ascii_lower(q[2]);
                        in = in || (c >= lo && c <= hi);
                        q += 2;
                } else
                        in = in || ascii_lower(*q) == c;
        }
        *ret_end = *q ? q + 1 : q;
        return in != neg;
}

/* fnmatch(pattern, host, FNM_CASEFOLD) for the patterns the parser accepts,
 * without the locale: host names are ASCII and case-insensitive (RFC 4343),
 * and a Turkish locale must not change what "I" matches. '*' crosses dots.
 * Backtracks only to the last '*', so the cost is linear in most patterns and
 * at worst pattern length times host length (both at most 253). */
bool policy_host_match(const char *pattern, const char *host) {
        const char *p = pattern, *s = host, *star_p = NULL, *star_s = NULL, *end;

        while (*s) {
                if (*p == '*') {
                        star_p = ++p;
                        star_s = s;
                        continue;
                }
                if (*p == '?') {
                        p++;
                        s++;
                        continue;
                }
                if (*p == '[') {
                        if (class_match(p, *s, &end)) {
                                p = end;
                                s++;
                                continue;
                        }
                } else if (*p && ascii_lower(*p) == ascii_lower(*s)) {
                        p++;
                        s++;
                        continue;
                }
                if (!star_p)
                        return false;
                p = star_p;
                s = ++star_s;
        }
        while (*p == '*')
                p++;
        return *p == 0;
}

const char *phi_policy_refusal_name(enum phi_policy_refusal r) {
        switch (r) {
        case PHI_POLICY_OK: return "allowed";
        case PHI_POLICY_NO_RULE: return "no-rule";
        case PHI_POLICY_DENY_RULE: return "deny-rule";
        case PHI_POLICY_NOT_YET_VALID: return "not-yet-valid";
        case PHI_POLICY_EXPIRED: return "expired";
        case PHI_POLICY_UNKNOWN_USER: return "unknown-user";
        case PHI_POLICY_BAD_INPUT: return "bad-input";
        case PHI_POLICY_UNKNOWN_ROLE: return "unknown-role";
        case PHI_POLICY_NOT_ELIGIBLE: return "not-eligible";
        case PHI_POLICY_HOST_NOT_COVERED: return "host-not-covered";
        case PHI_POLICY_TOO_LONG: return "too-long";
        case PHI_POLICY_REASON_MISSING: return "reason-missing";
        case PHI_POLICY_NO_BREAKGLASS: return "no-breakglass";
        case PHI_POLICY_NOT_APPROVER: return "not-approver";
        case PHI_POLICY_SELF_APPROVAL: return "self-approval";
        }
        return "?";
}

/* ---- building a decision ---- */

static void reason_append(struct phi_policy_decision *d, const char *fmt, ...) _phi_printf_(2, 3);
static void reason_append(struct phi_policy_decision *d, const char *fmt, ...) {
        size_t len = strnlen(d->reason, sizeof(d->reason));
        va_list ap;

        if (len + 1 >= sizeof(d->reason))
                return;
        va_start(ap, fmt);
        (void) vsnprintf(d->reason + len, sizeof(d->reason) - len, fmt, ap);
        va_end(ap);
}

static void decide(struct phi_policy_decision *d, enum phi_policy_refusal refusal, const char *rule) {
        *d = (struct phi_policy_decision){ .allowed = refusal == PHI_POLICY_OK, .refusal = refusal };
        (void) snprintf(d->rule, sizeof(d->rule), "%s", rule ? rule : PHI_POLICY_DEFAULT_RULE);
}

static void format_time(int64_t t, char buf[static 32]) {
        struct tm tm;
        time_t tt = (time_t) t;

        if (!gmtime_r(&tt, &tm) || strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                (void) snprintf(buf, 32, "@%lld", (long long) t);
}

/* Refuses a question that cannot be about a real user, service or host. The
 * caller validates too; this is the library's own fail-closed check. */
static int subject_check(const struct phi_policy_subject *who, struct phi_policy_decision *ret) {
        if (!who->user || !phi_name_valid(who->user)) {
                decide(ret, PHI_POLICY_BAD_INPUT, NULL);
                reason_append(ret, "'%.*s' is not a valid user name", PHI_NAME_MAX,
                              who->user ? who->user : "(none)");
                return -EINVAL;
        }
        if (who->n_groups > MAX_GROUPS || (who->n_groups > 0 && !who->groups)) {
                decide(ret, PHI_POLICY_BAD_INPUT, NULL);
                reason_append(ret, "%s has more groups than a user can have", who->user);
                return -EINVAL;
        }
        for (size_t i = 0; i < who->n_groups; i++)
                if (!who->groups[i] || !phi_name_valid(who->groups[i])) {
                        decide(ret, PHI_POLICY_BAD_INPUT, NULL);
                        reason_append(ret, "'%.*s' is not a valid group name", PHI_NAME_MAX,
                                      who->groups[i] ? who->groups[i] : "(none)");
                        return -EINVAL;
                }
        return 0;
}

static int host_check(const char *host, struct phi_policy_decision *ret) {
        if (!policy_host_valid(host)) {
                decide(ret, PHI_POLICY_BAD_INPUT, NULL);
                reason_append(ret, "'%.*s' is not a valid host name", PHI_POLICY_HOST_MAX, host);
                return -EINVAL;
        }
        return 0;
}

/* ---- access rules ---- */

enum who_match { MATCH_NONE, MATCH_NAME, MATCH_UID, MATCH_GROUP, MATCH_EVERY };

/* How the rule names the user, the most specific way first. */
static enum who_match user_in_rule(const struct policy_rule *r, const struct phi_policy_subject *who,
                                   const char **ret_group, const struct uid_range **ret_uids) {
        for (size_t i = 0; i < r->n_users; i++)
                if (strcmp(r->users[i], who->user) == 0)
                        return MATCH_NAME;
        for (size_t i = 0; i < r->n_uids; i++)
                if (who->uid >= r->uids[i].lo && who->uid <= r->uids[i].hi) {
                        *ret_uids = &r->uids[i];
                        return MATCH_UID;
                }
        for (size_t g = 0; g < who->n_groups; g++)
                for (size_t i = 0; i < r->n_groups; i++)
                        if (strcmp(r->groups[i], who->groups[g]) == 0) {
                                *ret_group = who->groups[g];
                                return MATCH_GROUP;
                        }
        return r->every_user ? MATCH_EVERY : MATCH_NONE;
}

static bool service_in_rule(const struct policy_rule *r, const char *service) {
        if (r->every_service)
                return true;
        for (size_t i = 0; i < r->n_services; i++)
                if (strcmp(r->services[i], service) == 0)
                        return true;
        return false;
}

static const char *host_in_rule(const struct policy_rule *r, const char *host) {
        for (size_t i = 0; i < r->n_hosts; i++)
                if (policy_host_match(r->hosts[i], host))
                        return r->hosts[i];
        return NULL;
}

/* The lowest-numbered (first in the file) rule of each outcome among the
 * candidates; a rule may be offered more than once. */
struct verdict {
        uint32_t deny, allow, timed;
        const char *service, *host;
        int64_t now;
        uint64_t service_bit;
};

#define NONE UINT32_MAX

static void consider(const struct phi_policy *p, struct verdict *v, uint32_t i) {
        const struct rule_hot *h = &p->hot[i];
        const struct policy_rule *r;
        bool in_time;

        /* Cheapest tests first; only a rule that could change the answer is matched. */
        if (h->deny ? i >= v->deny : (i >= v->allow || v->deny != NONE))
                return;
        if (p->service_bits && !(h->services & v->service_bit))
                return;
        r = p->rules[i];
        if ((!p->service_bits && !service_in_rule(r, v->service)) || !host_in_rule(r, v->host))
                return;
        in_time = (!r->has_from || v->now >= r->valid_from) && (!r->has_until || v->now < r->valid_until);
        if (r->deny) {
                if (in_time)
                        v->deny = i;
        } else if (in_time)
                v->allow = i;
        else if (i < v->timed)
                v->timed = i;
}

static void consider_run(const struct phi_policy *p, struct verdict *v, const uint32_t *ids, size_t n) {
        for (size_t i = 0; i < n; i++)
                consider(p, v, ids[i]);
}

static void access_answer(const struct phi_policy *p, const struct phi_policy_subject *who,
                          const struct verdict *v, struct phi_policy_decision *ret) {
        uint32_t i = v->deny != NONE ? v->deny : v->allow;
        const struct uid_range *uids = NULL;
        const struct policy_rule *r;
        const char *group = NULL, *pattern;
        char when[32];

        if (i == NONE) {
                if (v->timed == NONE) {
                        decide(ret, PHI_POLICY_NO_RULE, NULL);
                        reason_append(ret, "no rule allows %s on %s via %s", who->user, v->host, v->service);
                        return;
                }
                r = p->rules[v->timed];
                if (r->has_from && v->now < r->valid_from) {
                        decide(ret, PHI_POLICY_NOT_YET_VALID, r->name);
                        format_time(r->valid_from, when);
                        reason_append(ret, "no rule allows %s on %s via %s now: rule '%s' starts at %s",
                                      who->user, v->host, v->service, r->name, when);
                } else {
                        decide(ret, PHI_POLICY_EXPIRED, r->name);
                        format_time(r->valid_until, when);
                        reason_append(ret, "no rule allows %s on %s via %s now: rule '%s' ended at %s",
                                      who->user, v->host, v->service, r->name, when);
                }
                return;
        }
        r = p->rules[i];
        decide(ret, r->deny ? PHI_POLICY_DENY_RULE : PHI_POLICY_OK, r->name);
        reason_append(ret, "rule '%s' %s %s", r->name, r->deny ? "denies" : "allows", who->user);
        switch (user_in_rule(r, who, &group, &uids)) {
        case MATCH_GROUP:
                reason_append(ret, " (group %s)", group);
                break;
        case MATCH_UID:
                if (uids->lo == uids->hi)
                        reason_append(ret, " (uid %u)", who->uid);
                else
                        reason_append(ret, " (uid %u in %u-%u)", who->uid, uids->lo, uids->hi);
                break;
        case MATCH_EVERY:
                reason_append(ret, " (every user)");
                break;
        case MATCH_NAME:
        case MATCH_NONE:   /* cannot be: the rule was chosen for this user */
                break;
        }
        pattern = host_in_rule(r, v->host);
        reason_append(ret, " on %s", v->host);
        if (pattern && strcmp(pattern, v->host) != 0)
                reason_append(ret, " (hosts %s)", pattern);
        reason_append(ret, " via %s", v->service);
}

static int access_prepare(const struct phi_policy_subject *who, const char *service, const char *host,
                          struct phi_policy_decision *ret) {
        int r;

        if ((r = subject_check(who, ret)) < 0)
                return r;
        if (!policy_service_valid(service)) {
                decide(ret, PHI_POLICY_BAD_INPUT, NULL);
                reason_append(ret, "'%.*s' is not a valid PAM service name", PHI_POLICY_SERVICE_MAX, service);
                return -EINVAL;
        }
        if ((r = host_check(host, ret)) < 0)
                return r;
        return 0;
}

int phi_policy_check_access(const struct phi_policy *p, const struct phi_policy_subject *who,
                            const char *service, const char *host, int64_t now,
                            struct phi_policy_decision *ret) {
        struct verdict v = { NONE, NONE, NONE, service, host, now, 0 };
        const uint32_t *ids;
        size_t n;
        int r;

        if ((r = access_prepare(who, service, host, ret)) < 0)
                return r;
        if (who->uid == PHI_POLICY_UID_UNKNOWN) {
                decide(ret, PHI_POLICY_UNKNOWN_USER, NULL);
                reason_append(ret, "%s is not a known user", who->user);
                return 0;
        }
        v.service_bit = policy_service_bit(p, service);
        ids = policy_index_lookup(&p->by_user, who->user, &n);
        consider_run(p, &v, ids, n);
        for (size_t g = 0; g < who->n_groups; g++) {
                ids = policy_index_lookup(&p->by_group, who->groups[g], &n);
                consider_run(p, &v, ids, n);
        }
        for (size_t i = 0; i < p->n_by_uid; i++)
                if (who->uid >= p->by_uid[i].range.lo && who->uid <= p->by_uid[i].range.hi)
                        consider(p, &v, p->by_uid[i].rule);
        consider_run(p, &v, p->every_user_rules, p->n_every_user_rules);
        access_answer(p, who, &v, ret);
        return 0;
}

int phi_policy_check_access_linear(const struct phi_policy *p, const struct phi_policy_subject *who,
                                   const char *service, const char *host, int64_t now,
                                   struct phi_policy_decision *ret) {
        struct verdict v = { NONE, NONE, NONE, service, host, now, 0 };
        const struct uid_range *uids;
        const char *group;
        int r;

        if ((r = access_prepare(who, service, host, ret)) < 0)
                return r;
        if (who->uid == PHI_POLICY_UID_UNKNOWN) {
                decide(ret, PHI_POLICY_UNKNOWN_USER, NULL);
                reason_append(ret, "%s is not a known user", who->user);
                return 0;
        }
        v.service_bit = policy_service_bit(p, service);
        for (size_t i = 0; i < p->n_rules; i++)
                if (user_in_rule(p->rules[i], who, &group, &uids) != MATCH_NONE)
                        consider(p, &v, (uint32_t) i);
        access_answer(p, who, &v, ret);
        return 0;
}

/* ---- roles ---- */

const struct phi_policy_role *phi_policy_role_find(const struct phi_policy *p, const char *name) {
        for (size_t i = 0; i < p->n_roles; i++)
                if (strcmp(p->roles[i]->name, name) == 0)
                        return &p->roles[i]->pub;
        return NULL;
}

size_t phi_policy_role_count(const struct phi_policy *p) {
        return p->n_roles;
}

const struct phi_policy_role *phi_policy_role_at(const struct phi_policy *p, size_t i) {
        return i < p->n_roles ? &p->roles[i]->pub : NULL;
}

/* The first of the user's groups that is in v, or NULL. */
static const char *common_group(const struct phi_policy_subject *who, const char *const *v, size_t n) {
        for (size_t g = 0; g < who->n_groups; g++)
                for (size_t i = 0; i < n; i++)
                        if (strcmp(v[i], who->groups[g]) == 0)
                                return who->groups[g];
        return NULL;
}

static void append_cstrv(struct phi_policy_decision *d, const char *const *v, size_t n) {
        for (size_t i = 0; i < n; i++)
                reason_append(d, "%s%s", i ? ", " : "", v[i]);
}

/* Role lookup plus the checks every role question starts with. */
static int role_prepare(const struct phi_policy *p, const char *role, const struct phi_policy_subject *who,
                        const struct phi_policy_role **ret_role, struct phi_policy_decision *ret) {
        const struct phi_policy_role *r;
        int e;

        if ((e = subject_check(who, ret)) < 0)
                return e;
        r = phi_policy_role_find(p, role);
        if (!r) {
                decide(ret, PHI_POLICY_UNKNOWN_ROLE, NULL);
                reason_append(ret, "no role '%.*s' in the policy", PHI_POLICY_NAME_MAX, role);
                return 1;
        }
        if (who->uid == PHI_POLICY_UID_UNKNOWN) {
                decide(ret, PHI_POLICY_UNKNOWN_USER, r->name);
                reason_append(ret, "%s is not a known user", who->user);
                return 1;
        }
        *ret_role = r;
        return 0;
}

/* 0: eligible (*ret_group set), 1: answered no, <0: bad input. */
static int role_eligible(const struct phi_policy *p, const char *role, const struct phi_policy_subject *who,
                         const char *host, const struct phi_policy_role **ret_role, const char **ret_group,
                         struct phi_policy_decision *ret) {
        const struct phi_policy_role *r = NULL;
        bool covered = false;
        int e;

        if ((e = host_check(host, ret)) < 0 || (e = role_prepare(p, role, who, &r, ret)) != 0)
                return e;
        *ret_group = common_group(who, r->eligible_groups, r->n_eligible_groups);
        if (!*ret_group) {
                decide(ret, PHI_POLICY_NOT_ELIGIBLE, r->name);
                reason_append(ret, "%s is in none of the groups that may request role '%s' (", who->user,
                              r->name);
                append_cstrv(ret, r->eligible_groups, r->n_eligible_groups);
                reason_append(ret, ")");
                return 1;
        }
        for (size_t i = 0; i < r->n_hosts && !covered; i++)
                covered = policy_host_match(r->hosts[i], host);
        if (!covered) {
                decide(ret, PHI_POLICY_HOST_NOT_COVERED, r->name);
                reason_append(ret, "role '%s' does not cover host %s (hosts ", r->name, host);
                append_cstrv(ret, r->hosts, r->n_hosts);
                reason_append(ret, ")");
                return 1;
        }
        *ret_role = r;
        return 0;
}

bool phi_policy_role_covers_host(const struct phi_policy_role *r, const char *host) {
        for (size_t i = 0; i < r->n_hosts; i++)
                if (policy_host_match(r->hosts[i], host))
                        return true;
        return false;
}

int phi_policy_role_eligible(const struct phi_policy *p, const char *role, const struct phi_policy_subject *who,
                             const char *host, struct phi_policy_decision *ret) {
        const struct phi_policy_role *r;
        const char *group;
        int e = role_eligible(p, role, who, host, &r, &group, ret);

        if (e != 0)
                return e < 0 ? e : 0;
        decide(ret, PHI_POLICY_OK, r->name);
        reason_append(ret, "%s may request role '%s' on %s (group %s)", who->user, r->name, host, group);
        return 0;
}

static int duration_check(const struct phi_policy_role *r, uint64_t duration, uint64_t max, const char *what,
                          struct phi_policy_decision *ret) {
        char want[24], cap[24];

        if (duration == 0) {
                decide(ret, PHI_POLICY_BAD_INPUT, r->name);
                reason_append(ret, "a %s needs a duration longer than 0s", what);
                return -EINVAL;
        }
        if (duration > max) {
                decide(ret, PHI_POLICY_TOO_LONG, r->name);
                reason_append(ret, "%s is longer than role '%s' allows for a %s (%s)",
                              phi_format_duration(duration, want), r->name, what, phi_format_duration(max, cap));
                return 1;
        }
        return 0;
}

int phi_policy_role_request_check(const struct phi_policy *p, const char *role,
                                  const struct phi_policy_subject *who, const char *host, uint64_t duration,
                                  bool has_reason, struct phi_policy_decision *ret) {
        const struct phi_policy_role *r;
        const char *group;
        char d[24];
        int e = role_eligible(p, role, who, host, &r, &group, ret);

        if (e == 0)
                e = duration_check(r, duration, r->max_duration, "request", ret);
        if (e != 0)
                return e < 0 ? e : 0;
        if (r->reason_required && !has_reason) {
                decide(ret, PHI_POLICY_REASON_MISSING, r->name);
                reason_append(ret, "role '%s' needs a reason with each request", r->name);
                return 0;
        }
        decide(ret, PHI_POLICY_OK, r->name);
        reason_append(ret, "%s may request role '%s' on %s for %s (group %s)", who->user, r->name, host,
                      phi_format_duration(duration, d), group);
        return 0;
}

int phi_policy_role_breakglass_check(const struct phi_policy *p, const char *role,
                                     const struct phi_policy_subject *who, const char *host, uint64_t duration,
                                     struct phi_policy_decision *ret) {
        const struct phi_policy_role *r;
        const char *group;
        char d[24];
        int e = role_eligible(p, role, who, host, &r, &group, ret);

        if (e != 0)
                return e < 0 ? e : 0;
        if (!r->breakglass) {
                decide(ret, PHI_POLICY_NO_BREAKGLASS, r->name);
                reason_append(ret, "role '%s' does not allow break-glass", r->name);
                return 0;
        }
        e = duration_check(r, duration, r->breakglass_max, "break-glass", ret);
        if (e != 0)
                return e < 0 ? e : 0;
        decide(ret, PHI_POLICY_OK, r->name);
        reason_append(ret, "%s may break glass for role '%s' on %s for %s (group %s)", who->user, r->name, host,
                      phi_format_duration(duration, d), group);
        return 0;
}

int phi_policy_role_approver_check(const struct phi_policy *p, const char *role,
                                   const struct phi_policy_subject *approver, const char *requester,
                                   struct phi_policy_decision *ret) {
        const struct phi_policy_role *r = NULL;
        const char *group;
        int e;

        if (!phi_name_valid(requester)) {
                decide(ret, PHI_POLICY_BAD_INPUT, NULL);
                reason_append(ret, "'%.*s' is not a valid user name", PHI_NAME_MAX, requester);
                return -EINVAL;
        }
        if ((e = role_prepare(p, role, approver, &r, ret)) != 0)
                return e < 0 ? e : 0;
        if (strcmp(approver->user, requester) == 0) {
                decide(ret, PHI_POLICY_SELF_APPROVAL, r->name);
                reason_append(ret, "%s may not approve their own request for role '%s'", requester, r->name);
                return 0;
        }
        group = common_group(approver, r->approver_groups, r->n_approver_groups);
        if (!group) {
                decide(ret, PHI_POLICY_NOT_APPROVER, r->name);
                reason_append(ret, "%s is in none of the approver groups of role '%s' (", approver->user, r->name);
                append_cstrv(ret, r->approver_groups, r->n_approver_groups);
                reason_append(ret, ")");
                return 0;
        }
        decide(ret, PHI_POLICY_OK, r->name);
        reason_append(ret, "%s may approve %s's request for role '%s' (group %s)", approver->user, requester,
                      r->name, group);
        return 0;
}

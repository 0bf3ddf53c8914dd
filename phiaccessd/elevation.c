/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The elevation lifecycle; see elevation.h. */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <syslog.h>
#include <time.h>

#include "access.h"
#include "elevation.h"
#include "store.h"

/* Open requests are read in pages of this many. */
#define PAGE 256
/* A start further ahead than this is a typo, not a plan. */
#define START_AHEAD_MAX (90 * 86400ULL)

static const char *const state_names[_PHI_ELEV_STATE_MAX] = {
        [PHI_ELEV_PENDING] = "pending",     [PHI_ELEV_APPROVED] = "approved", [PHI_ELEV_ACTIVE] = "active",
        [PHI_ELEV_DENIED] = "denied",       [PHI_ELEV_CANCELLED] = "cancelled",
        [PHI_ELEV_EXPIRED] = "expired",     [PHI_ELEV_REVOKED] = "revoked",  [PHI_ELEV_LAPSED] = "lapsed",
};

const char *phi_elev_state_name(enum phi_elev_state s) {
        return (unsigned) s < _PHI_ELEV_STATE_MAX ? state_names[s] : "unknown";
}

void phi_elev_result_clear(struct phi_elev_result *r) {
        free(r->events);
        *r = (struct phi_elev_result){ 0 };
}

static int refuse(struct phi_elev_result *ret, int error, const char *fmt, ...) _phi_printf_(3, 4);
static int refuse(struct phi_elev_result *ret, int error, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(ret->message, sizeof(ret->message), fmt, ap);
        va_end(ap);
        ret->error = error;
        return 0;
}

static void format_time(uint64_t t, char buf[static 32]) {
        struct tm tm;
        time_t tt = (time_t) t;

        if (!gmtime_r(&tt, &tm) || strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(buf, 32, "%llu", (unsigned long long) t);
}

static int event_add(struct phi_elev_result *ret, enum phi_event event, int priority,
                     const struct phi_elev_request *r, const char *actor, const char *reason, const char *fmt, ...)
        _phi_printf_(7, 8);
static int event_add(struct phi_elev_result *ret, enum phi_event event, int priority,
                     const struct phi_elev_request *r, const char *actor, const char *reason, const char *fmt, ...) {
        struct phi_elev_event *v = realloc(ret->events, (ret->n_events + 1) * sizeof(*v)), *e;
        va_list ap;

        if (!v)
                return -ENOMEM;
        ret->events = v;
        e = &v[ret->n_events++];
        *e = (struct phi_elev_event){ .event = event, .priority = priority, .expires = r->expires,
                                      .approvals = r->approvals, .approvals_needed = r->approvals_needed,
                                      .starts = r->starts };
        snprintf(e->user, sizeof(e->user), "%s", r->requester);
        snprintf(e->actor, sizeof(e->actor), "%s", actor ? actor : "");
        snprintf(e->role, sizeof(e->role), "%s", r->role);
        snprintf(e->id, sizeof(e->id), "%s", r->id);
        snprintf(e->reason, sizeof(e->reason), "%s", reason ? reason : "");
        va_start(ap, fmt);
        (void) vsnprintf(e->message, sizeof(e->message), fmt, ap);
        va_end(ap);
        return 0;
}

static int id_new(char out[static PHI_REQUEST_ID_LEN + 1]) {
        uint8_t b[PHI_REQUEST_ID_LEN / 2];

        if (getrandom(b, sizeof(b), 0) != (ssize_t) sizeof(b))
                return -EIO;
        for (size_t i = 0; i < sizeof(b); i++)
                snprintf(out + 2 * i, 3, "%02x", b[i]);
        return 0;
}

bool phi_elev_id_valid(const char *s) {
        size_t n = 0;

        for (; s[n]; n++)
                if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
                        return false;
        return n == PHI_REQUEST_ID_LEN;
}

/* Text a person typed, as it may go into the journal and a table: one line,
 * no control characters. */
static bool text_ok(const char *s) {
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        return false;
        return strlen(s) <= PHI_ELEV_TEXT_MAX;
}

/* Inserts r with a fresh id (an id taken already is drawn again). */
static int insert_new(phi_store *store, struct phi_elev_request *r) {
        int e = -EEXIST;

        for (int tries = 0; tries < 4 && e == -EEXIST; tries++) {
                if ((e = id_new(r->id)) < 0)
                        return e;
                e = phi_store_elev_put(store, r);
        }
        return e;
}

/* The transition from old to r, if nobody made another first (a daemon on
 * another host sharing the store): -ESTALE then, and the entry the caller
 * added for it is taken back, so a transition is journaled once. */
static int transition(const struct phi_elev_ctx *ctx, struct phi_elev_result *ret, const struct phi_elev_request *r,
                      const struct phi_elev_request *old) {
        int e = phi_store_elev_transition(ctx->store, r, old);

        if (e == -ESTALE && ret->n_events > 0)
                ret->n_events--;
        return e;
}

/* A refusal for a request that changed between its read and its update. */
static int refuse_stale(struct phi_elev_result *ret, const char *id) {
        return refuse(ret, -EALREADY,
                      "request %s was changed meanwhile (by a daemon on another host?); nothing was done: "
                      "phictl requests shows it as it is now",
                      id);
}

static int load(const struct phi_elev_ctx *ctx, const char *id, struct phi_elev_request *r,
                struct phi_elev_result *ret, bool *ret_found) {
        int e;

        *ret_found = false;
        if (!phi_elev_id_valid(id))
                return refuse(ret, -EINVAL, "'%s' is not a request id (12 hex digits, as phictl requests shows)", id);
        e = phi_store_elev_get(ctx->store, id, r);
        if (e == -ENOENT)
                return refuse(ret, -ENOENT, "no request %s", id);
        if (e < 0)
                return e;
        *ret_found = true;
        return 0;
}

static const struct phi_policy_role *role_of(const struct phi_elev_ctx *ctx, const char *name,
                                             struct phi_elev_result *ret) {
        const struct phi_policy_role *role = ctx->policy ? phi_policy_role_find(ctx->policy, name) : NULL;

        if (!ctx->policy)
                (void) refuse(ret, -EAGAIN, "no policy is loaded");
        else if (!role)
                (void) refuse(ret, -ENOENT, "no role '%s' in the policy", name);
        return role;
}

int phi_elev_request(const struct phi_elev_ctx *ctx, const char *requester, const char *role_name, uint64_t duration,
                     const char *reason, uint64_t start_at, const char *ticket, struct phi_elev_result *ret) {
        struct phi_access_subject who = { 0 };
        struct phi_policy_decision dec;
        const struct phi_policy_role *role;
        struct phi_elev_request r = { 0 };
        char until[32], d[24];
        int e = 0;

        if (!(role = role_of(ctx, role_name, ret)))
                goto out;
        if ((reason && !text_ok(reason)) || (ticket && (strlen(ticket) > PHI_ELEV_TICKET_MAX || !text_ok(ticket)))) {
                e = refuse(ret, -EINVAL, "a reason or ticket of one line of at most %d bytes", PHI_ELEV_TEXT_MAX);
                goto out;
        }
        if (start_at && start_at < ctx->now) {
                e = refuse(ret, -EINVAL, "the start asked for is in the past");
                goto out;
        }
        if (start_at > ctx->now + START_AHEAD_MAX) {
                e = refuse(ret, -EINVAL, "the start asked for is more than 90 days ahead");
                goto out;
        }
        if ((e = phi_access_subject_resolve(ctx->store, ctx->passwd_file, ctx->group_file, requester, &who)) < 0)
                goto out;
        (void) phi_policy_role_request_check(ctx->policy, role->name, &who.who, ctx->host, duration,
                                             reason && *reason, &dec);
        if (!dec.allowed) {
                e = refuse(ret, -EACCES, "%s", dec.reason);
                goto out;
        }
        snprintf(r.requester, sizeof(r.requester), "%s", requester);
        snprintf(r.role, sizeof(r.role), "%s", role->name);
        snprintf(r.grant_group, sizeof(r.grant_group), "%s", role->grant_group);
        snprintf(r.host, sizeof(r.host), "%s", ctx->host);
        snprintf(r.reason, sizeof(r.reason), "%s", reason ? reason : "");
        snprintf(r.ticket, sizeof(r.ticket), "%s", ticket ? ticket : "");
        r.state = PHI_ELEV_PENDING;
        r.duration = duration;
        r.start_at = start_at;
        r.created = ctx->now;
        r.pending_until = ctx->now + role->pending_lifetime;
        r.approvals_needed = role->approvals;
        if ((e = insert_new(ctx->store, &r)) < 0)
                goto out;
        format_time(r.pending_until, until);
        if ((e = event_add(ret, PHI_EVENT_ELEVATION_REQUESTED, LOG_NOTICE, &r, requester, r.reason,
                           "%s asked for role %s for %s (request %s): %s; %u approval%s needed by %s", requester,
                           r.role, phi_format_duration(duration, d), r.id, r.reason[0] ? r.reason : "no reason given",
                           r.approvals_needed, r.approvals_needed == 1 ? "" : "s", until)) < 0)
                goto out;
        ret->req = r;
out:
        phi_access_subject_clear(&who);
        return e;
}

/* The grant starts now, or at the start asked for. */
static void grant_begin(const struct phi_elev_ctx *ctx, struct phi_elev_request *r) {
        r->starts = r->start_at > ctx->now ? r->start_at : ctx->now;
        r->expires = r->starts + r->duration;
        r->state = r->starts > ctx->now ? PHI_ELEV_APPROVED : PHI_ELEV_ACTIVE;
}

int phi_elev_decide(const struct phi_elev_ctx *ctx, const char *approver, const char *id, bool approve,
                    const char *reason, bool code_checked, struct phi_elev_result *ret) {
        struct phi_access_subject who = { 0 };
        struct phi_policy_decision dec;
        const struct phi_policy_role *role;
        struct phi_elev_request r, old;
        char until[32];
        bool found;
        int e;

        if ((e = load(ctx, id, &r, ret, &found)) < 0 || !found)
                goto out;
        old = r;
        if (r.state != PHI_ELEV_PENDING) {
                e = refuse(ret, -EALREADY, "request %s is %s, not pending", r.id, phi_elev_state_name(r.state));
                goto out;
        }
        if (!(role = role_of(ctx, r.role, ret)))
                goto out;
        /* Whatever the policy says. */
        if (strcmp(approver, r.requester) == 0) {
                e = refuse(ret, -EACCES, "%s may not decide their own request", approver);
                goto out;
        }
        if ((e = phi_access_subject_resolve(ctx->store, ctx->passwd_file, ctx->group_file, approver, &who)) < 0)
                goto out;
        (void) phi_policy_role_approver_check(ctx->policy, role->name, &who.who, r.requester, &dec);
        if (!dec.allowed) {
                e = refuse(ret, -EACCES, "%s", dec.reason);
                goto out;
        }
        if (role->approver_totp && !code_checked) {
                e = refuse(ret, -ENOKEY, "role '%s' asks approvers for a fresh code of their own", role->name);
                goto out;
        }
        if (reason && !text_ok(reason)) {
                e = refuse(ret, -EINVAL, "a reason of one line of at most %d bytes", PHI_ELEV_TEXT_MAX);
                goto out;
        }
        if (!approve && !(reason && *reason)) {
                e = refuse(ret, -EINVAL, "a denial needs a reason (--reason)");
                goto out;
        }
        e = phi_store_elev_decision_add(ctx->store, r.id, approver, approve, reason ? reason : "", ctx->now);
        if (e == -EEXIST) {
                e = refuse(ret, -EALREADY, "%s has decided request %s already", approver, r.id);
                goto out;
        }
        if (e < 0)
                goto out;
        if (!approve) {
                /* One denial ends it: an approver who says no has a reason. */
                r.denials++;
                r.state = PHI_ELEV_DENIED;
                r.ended = ctx->now;
                snprintf(r.ended_by, sizeof(r.ended_by), "%s", approver);
                snprintf(r.end_reason, sizeof(r.end_reason), "%s", reason);
                e = event_add(ret, PHI_EVENT_ELEVATION_DENIED, LOG_NOTICE, &r, approver, reason,
                              "%s denied request %s of %s for role %s: %s", approver, r.id, r.requester, r.role, reason);
        } else {
                r.approvals++;
                if (r.approvals >= r.approvals_needed) {
                        grant_begin(ctx, &r);
                        ret->grants_changed = r.state == PHI_ELEV_ACTIVE;
                        format_time(r.expires, until);
                        e = event_add(ret, PHI_EVENT_ELEVATION_APPROVED, LOG_NOTICE, &r, approver, reason,
                                      "%s approved request %s (%u of %u): %s holds role %s %s until %s", approver, r.id,
                                      r.approvals, r.approvals_needed, r.requester, r.role,
                                      r.state == PHI_ELEV_ACTIVE ? "from now" : "from its start", until);
                } else
                        e = event_add(ret, PHI_EVENT_ELEVATION_APPROVED, LOG_NOTICE, &r, approver, reason,
                                      "%s approved request %s of %s for role %s (%u of %u); %u more needed",
                                      approver, r.id, r.requester, r.role, r.approvals, r.approvals_needed,
                                      r.approvals_needed - r.approvals);
        }
        /* Stale: the decision row is in this transaction already, so the
         * round rolls back (the caller is told to try again) rather than
         * keep a decision that counted for nothing. */
        if (e < 0 || (e = transition(ctx, ret, &r, &old)) < 0)
                goto out;
        ret->req = r;
out:
        phi_access_subject_clear(&who);
        return e;
}

int phi_elev_cancel(const struct phi_elev_ctx *ctx, const char *user, const char *id, struct phi_elev_result *ret) {
        struct phi_elev_request r, old;
        bool found;
        int e;

        if ((e = load(ctx, id, &r, ret, &found)) < 0 || !found)
                return e;
        old = r;
        if (strcmp(user, r.requester) != 0)
                return refuse(ret, -EACCES, "only %s, who asked, may cancel request %s", r.requester, r.id);
        if (r.state != PHI_ELEV_PENDING)
                return refuse(ret, -EALREADY, "request %s is %s, not pending%s", r.id, phi_elev_state_name(r.state),
                              r.state == PHI_ELEV_ACTIVE || r.state == PHI_ELEV_APPROVED ? " (phictl revoke ends it)"
                                                                                          : "");
        r.state = PHI_ELEV_CANCELLED;
        r.ended = ctx->now;
        snprintf(r.ended_by, sizeof(r.ended_by), "%s", user);
        snprintf(r.end_reason, sizeof(r.end_reason), "cancelled by the requester");
        if ((e = event_add(ret, PHI_EVENT_ELEVATION_CANCELLED, LOG_NOTICE, &r, user, NULL,
                           "%s cancelled request %s for role %s", user, r.id, r.role)) < 0)
                return e;
        if ((e = transition(ctx, ret, &r, &old)) == -ESTALE)
                return refuse_stale(ret, r.id);
        if (e < 0)
                return e;
        ret->req = r;
        return 0;
}

int phi_elev_revoke(const struct phi_elev_ctx *ctx, const char *actor, bool admin, const char *id, const char *reason,
                    struct phi_elev_result *ret) {
        struct phi_access_subject who = { 0 };
        struct phi_policy_decision dec;
        struct phi_elev_request r, old;
        bool found, was_active;
        int e;

        if ((e = load(ctx, id, &r, ret, &found)) < 0 || !found)
                goto out;
        old = r;
        if (r.state != PHI_ELEV_ACTIVE && r.state != PHI_ELEV_APPROVED) {
                e = refuse(ret, -EALREADY, "request %s is %s: no grant to revoke%s", r.id, phi_elev_state_name(r.state),
                           r.state == PHI_ELEV_PENDING ? " (phictl cancel or deny ends a pending one)" : "");
                goto out;
        }
        if (reason && !text_ok(reason)) {
                e = refuse(ret, -EINVAL, "a reason of one line of at most %d bytes", PHI_ELEV_TEXT_MAX);
                goto out;
        }
        if (!admin && strcmp(actor, r.requester) != 0) {
                /* An approver of the role may end what approvers of it grant. */
                if (!ctx->policy) {
                        e = refuse(ret, -EAGAIN, "no policy is loaded");
                        goto out;
                }
                if ((e = phi_access_subject_resolve(ctx->store, ctx->passwd_file, ctx->group_file, actor, &who)) < 0)
                        goto out;
                (void) phi_policy_role_approver_check(ctx->policy, r.role, &who.who, r.requester, &dec);
                if (!dec.allowed) {
                        e = refuse(ret, -EACCES,
                                   "only %s, an approver of role '%s', an admin or root may revoke request %s",
                                   r.requester, r.role, r.id);
                        goto out;
                }
        }
        was_active = r.state == PHI_ELEV_ACTIVE;
        r.state = PHI_ELEV_REVOKED;
        r.ended = ctx->now;
        snprintf(r.ended_by, sizeof(r.ended_by), "%s", actor);
        snprintf(r.end_reason, sizeof(r.end_reason), "%s", reason && *reason ? reason : "revoked");
        ret->grants_changed = was_active;
        if ((e = event_add(ret, PHI_EVENT_ELEVATION_REVOKED, LOG_NOTICE, &r, actor, r.end_reason,
                           "%s revoked the grant of role %s to %s (request %s): %s", actor, r.role, r.requester, r.id,
                           r.end_reason)) < 0)
                goto out;
        if ((e = transition(ctx, ret, &r, &old)) == -ESTALE) {
                ret->grants_changed = false;
                e = refuse_stale(ret, r.id);
                goto out;
        }
        if (e < 0)
                goto out;
        ret->req = r;
out:
        phi_access_subject_clear(&who);
        return e;
}

int phi_elev_breakglass(const struct phi_elev_ctx *ctx, const char *user, const char *role_name, const char *reason,
                        uint64_t duration, bool code_checked, struct phi_elev_result *ret) {
        struct phi_access_subject who = { 0 };
        struct phi_policy_decision dec;
        const struct phi_policy_role *role;
        struct phi_elev_request r = { 0 };
        char until[32];
        int e = 0;

        if (!(role = role_of(ctx, role_name, ret)))
                goto out;
        if (!*reason || !text_ok(reason)) {
                e = refuse(ret, -EINVAL, "break-glass needs a reason of one line of at most %d bytes",
                           PHI_ELEV_TEXT_MAX);
                goto out;
        }
        if (!code_checked) {
                e = refuse(ret, -ENOKEY, "break-glass needs a fresh code of your own");
                goto out;
        }
        if (duration == 0)
                duration = role->breakglass_max;
        if ((e = phi_access_subject_resolve(ctx->store, ctx->passwd_file, ctx->group_file, user, &who)) < 0)
                goto out;
        (void) phi_policy_role_breakglass_check(ctx->policy, role->name, &who.who, ctx->host, duration, &dec);
        if (!dec.allowed) {
                e = refuse(ret, -EACCES, "%s", dec.reason);
                goto out;
        }
        snprintf(r.requester, sizeof(r.requester), "%s", user);
        snprintf(r.role, sizeof(r.role), "%s", role->name);
        snprintf(r.grant_group, sizeof(r.grant_group), "%s", role->grant_group);
        snprintf(r.host, sizeof(r.host), "%s", ctx->host);
        snprintf(r.reason, sizeof(r.reason), "%s", reason);
        r.breakglass = true;
        r.duration = duration;
        r.created = r.pending_until = ctx->now;
        grant_begin(ctx, &r);
        if ((e = insert_new(ctx->store, &r)) < 0)
                goto out;
        ret->grants_changed = true;
        format_time(r.expires, until);
        if ((e = event_add(ret, PHI_EVENT_BREAKGLASS, LOG_CRIT, &r, user, reason,
                           "BREAK-GLASS: %s took role %s without approval until %s (request %s): %s; to be "
                           "reviewed by an approver",
                           user, r.role, until, r.id, reason)) < 0)
                goto out;
        ret->req = r;
out:
        phi_access_subject_clear(&who);
        return e;
}

int phi_elev_review(const struct phi_elev_ctx *ctx, const char *approver, const char *id, const char *note,
                    struct phi_elev_result *ret) {
        struct phi_access_subject who = { 0 };
        struct phi_policy_decision dec;
        struct phi_elev_request r, old;
        bool found;
        int e;

        if ((e = load(ctx, id, &r, ret, &found)) < 0 || !found)
                goto out;
        old = r;
        if (!r.breakglass) {
                e = refuse(ret, -EINVAL, "request %s is not a break-glass grant", r.id);
                goto out;
        }
        if (r.reviewer[0]) {
                e = refuse(ret, -EALREADY, "request %s was reviewed by %s already", r.id, r.reviewer);
                goto out;
        }
        if (!*note || !text_ok(note)) {
                e = refuse(ret, -EINVAL, "a review needs a note of one line of at most %d bytes", PHI_ELEV_TEXT_MAX);
                goto out;
        }
        if (strcmp(approver, r.requester) == 0) {
                e = refuse(ret, -EACCES, "%s may not review their own break-glass", approver);
                goto out;
        }
        if (!ctx->policy) {
                e = refuse(ret, -EAGAIN, "no policy is loaded");
                goto out;
        }
        if ((e = phi_access_subject_resolve(ctx->store, ctx->passwd_file, ctx->group_file, approver, &who)) < 0)
                goto out;
        (void) phi_policy_role_approver_check(ctx->policy, r.role, &who.who, r.requester, &dec);
        if (!dec.allowed) {
                e = refuse(ret, -EACCES, "%s", dec.reason);
                goto out;
        }
        snprintf(r.reviewer, sizeof(r.reviewer), "%s", approver);
        snprintf(r.review_note, sizeof(r.review_note), "%s", note);
        r.reviewed = ctx->now;
        if ((e = event_add(ret, PHI_EVENT_BREAKGLASS_REVIEWED, LOG_NOTICE, &r, approver, note,
                           "%s reviewed the break-glass of %s for role %s (request %s): %s", approver, r.requester,
                           r.role, r.id, note)) < 0)
                goto out;
        if ((e = transition(ctx, ret, &r, &old)) == -ESTALE) {
                e = refuse_stale(ret, r.id);
                goto out;
        }
        if (e < 0)
                goto out;
        ret->req = r;
out:
        phi_access_subject_clear(&who);
        return e;
}

static uint64_t due_at(const struct phi_elev_request *r) {
        switch (r->state) {
        case PHI_ELEV_PENDING: return r->pending_until;
        case PHI_ELEV_APPROVED: return r->starts;
        case PHI_ELEV_ACTIVE: return r->expires;
        default: return 0;
        }
}

int phi_elev_tick(const struct phi_elev_ctx *ctx, struct phi_elev_result *ret, uint64_t *ret_next) {
        char after[PHI_REQUEST_ID_LEN + 1] = "", until[32];
        uint64_t next = 0;
        int e = 0;

        for (;;) {
                struct phi_elev_request *v = NULL;
                size_t n = 0;

                if ((e = phi_store_elev_list(ctx->store, PHI_ELEV_OPEN_MASK, "", after, PAGE, &v, &n)) < 0 || n == 0) {
                        free(v);
                        break;
                }
                for (size_t i = 0; i < n && e >= 0; i++) {
                        struct phi_elev_request *r = &v[i], old = v[i];
                        bool changed = ret->grants_changed;
                        uint64_t due = due_at(r);
                        if (due > ctx->now) {
                                if (!next || due < next)
                                        next = due;
                                continue;
                        }
                        switch (r->state) {
                        case PHI_ELEV_PENDING:
                                r->state = PHI_ELEV_LAPSED;
                                r->ended = ctx->now;
                                snprintf(r->ended_by, sizeof(r->ended_by), "phiaccessd");
                                snprintf(r->end_reason, sizeof(r->end_reason), "pending_lifetime");
                                e = event_add(ret, PHI_EVENT_ELEVATION_EXPIRED, LOG_NOTICE, r, "phiaccessd",
                                              "pending_lifetime",
                                              "Request %s of %s for role %s lapsed: nobody decided it in time (%u of "
                                              "%u approvals)",
                                              r->id, r->requester, r->role, r->approvals, r->approvals_needed);
                                break;
                        case PHI_ELEV_APPROVED:
                                r->state = PHI_ELEV_ACTIVE;
                                ret->grants_changed = true;
                                format_time(r->expires, until);
                                e = event_add(ret, PHI_EVENT_ELEVATION_APPROVED, LOG_NOTICE, r, "phiaccessd", "start",
                                              "The grant of role %s to %s (request %s) starts now, as asked; it ends "
                                              "at %s",
                                              r->role, r->requester, r->id, until);
                                if (!next || r->expires < next)
                                        next = r->expires;
                                break;
                        case PHI_ELEV_ACTIVE:
                                r->state = PHI_ELEV_EXPIRED;
                                r->ended = ctx->now;
                                snprintf(r->ended_by, sizeof(r->ended_by), "phiaccessd");
                                snprintf(r->end_reason, sizeof(r->end_reason), "expired");
                                ret->grants_changed = true;
                                e = event_add(ret, PHI_EVENT_ELEVATION_EXPIRED, LOG_NOTICE, r, "phiaccessd", "expired",
                                              "The grant of role %s to %s (request %s) has expired", r->role,
                                              r->requester, r->id);
                                break;
                        default:
                                break;
                        }
                        /* Another daemon's timer made it first: its entry,
                         * not this one's. */
                        if (e >= 0 && (e = transition(ctx, ret, r, &old)) == -ESTALE) {
                                ret->grants_changed = changed || r->state == PHI_ELEV_ACTIVE ||
                                                      old.state == PHI_ELEV_ACTIVE;
                                e = 0;
                        }
                }
                snprintf(after, sizeof(after), "%s", v[n - 1].id);
                free(v);
                if (e < 0)
                        break;
        }
        if (e >= 0)
                *ret_next = next;
        return e < 0 ? e : 0;
}

int phi_elev_user_has_grant(const struct phi_elev_ctx *ctx, const char *user, bool *ret, char *ret_role,
                            size_t role_len, char *ret_id, size_t id_len) {
        char after[PHI_REQUEST_ID_LEN + 1] = "";
        bool found = false;
        int e = 0;

        while (!found) {
                struct phi_elev_request *v = NULL;
                size_t n = 0;

                if ((e = phi_store_elev_list(ctx->store, PHI_ELEV_MASK(PHI_ELEV_ACTIVE), user, after, PAGE, &v, &n)) <
                            0 ||
                    n == 0) {
                        free(v);
                        break;
                }
                for (size_t i = 0; i < n && !found; i++) {
                        const struct phi_policy_role *role =
                                ctx->policy ? phi_policy_role_find(ctx->policy, v[i].role) : NULL;
                        /* Expired by the clock even before the timer made it so; and
                         * a role gone from the policy, or no longer covering this
                         * host, grants nothing here. */
                        if (v[i].expires > ctx->now && role && phi_policy_role_covers_host(role, ctx->host)) {
                                found = true;
                                snprintf(ret_role, role_len, "%s", v[i].role);
                                snprintf(ret_id, id_len, "%s", v[i].id);
                        }
                }
                snprintf(after, sizeof(after), "%s", v[n - 1].id);
                free(v);
        }
        if (e >= 0)
                *ret = found;
        return e < 0 ? e : 0;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Just-in-time elevation: requests for a role of the policy, their approvals
 * and the grants they become.
 *
 *   request --> pending --(approvals reach the role's number)--> active --> expired
 *                  |   \                         \--(--start later)--> approved --> active
 *                  |    \--(a denial)--> denied                                 \--> revoked
 *                  |--(requester)--> cancelled
 *                  \--(pending_lifetime passes)--> lapsed
 *   breakglass --> active at once (for the role's short cap), unreviewed until an
 *                  approver reviews it
 *
 * Rules the policy cannot loosen: nobody approves their own request; an
 * approver decides a request once; the grant's time is counted from the
 * approval (or the requested start), never from the request, and capped by
 * the role's maximum.
 *
 * These functions make the transitions on a store inside the caller's
 * transaction (the verifier's round: phi_store_begin .. commit) and say what
 * to journal; they read no clock (ctx->now) and journal nothing themselves.
 *
 * Several daemons may share the store (phiaccessd(8), FLEET): each transition
 * writes the row only if it is still as it was read
 * (phi_store_elev_transition), so of two daemons making one transition (both
 * timers expiring a grant; an approval racing a revoke) only one does, and
 * only its entry is journaled. The loser's tick leaves it be; a refusal says
 * the request changed meanwhile; an approval that lost returns -ESTALE, which
 * rolls the round back (its decision row must not stay).
 */

#include <stdbool.h>
#include <stdint.h>

#include "phi/macro.h"
#include "phi/parse.h"
#include "phi/policy.h"
#include "events.h"

typedef struct phi_store phi_store;

#define PHI_REQUEST_ID_LEN 12       /* 48 random bits, hex: typed by people */
#define PHI_ELEV_TEXT_MAX 1024      /* reasons and notes, bytes */
#define PHI_ELEV_TICKET_MAX 128

enum phi_elev_state {
        PHI_ELEV_PENDING = 0,
        PHI_ELEV_APPROVED = 1,      /* approved, waiting for its start */
        PHI_ELEV_ACTIVE = 2,        /* a grant in force */
        PHI_ELEV_DENIED = 3,
        PHI_ELEV_CANCELLED = 4,
        PHI_ELEV_EXPIRED = 5,       /* a grant that ran its time */
        PHI_ELEV_REVOKED = 6,
        PHI_ELEV_LAPSED = 7,        /* pending, and not decided in time */
        _PHI_ELEV_STATE_MAX,
};
#define PHI_ELEV_MASK(s) (1u << (s))
#define PHI_ELEV_OPEN_MASK \
        (PHI_ELEV_MASK(PHI_ELEV_PENDING) | PHI_ELEV_MASK(PHI_ELEV_APPROVED) | PHI_ELEV_MASK(PHI_ELEV_ACTIVE))

const char *phi_elev_state_name(enum phi_elev_state s);
/* True when s is one (PHI_REQUEST_ID_LEN lowercase hex digits). */
bool phi_elev_id_valid(const char *s) _phi_nonnull_;

struct phi_elev_request {
        char id[PHI_REQUEST_ID_LEN + 1];
        char requester[PHI_NAME_MAX + 1];
        char role[PHI_POLICY_NAME_MAX + 1];
        char grant_group[PHI_NAME_MAX + 1];
        char host[256];
        char reason[PHI_ELEV_TEXT_MAX + 1];
        char ticket[PHI_ELEV_TICKET_MAX + 1];
        enum phi_elev_state state;
        bool breakglass;
        uint64_t duration;          /* seconds the grant lasts (already capped) */
        uint64_t start_at;          /* requested start, 0: at approval */
        uint64_t created;
        uint64_t pending_until;
        unsigned approvals_needed, approvals, denials;
        uint64_t starts, expires;   /* of the grant: 0 until approved */
        uint64_t ended;             /* when it left the open states */
        char ended_by[PHI_NAME_MAX + 1];
        char end_reason[PHI_ELEV_TEXT_MAX + 1];
        char reviewer[PHI_NAME_MAX + 1];   /* break-glass: "" until reviewed */
        char review_note[PHI_ELEV_TEXT_MAX + 1];
        uint64_t reviewed;
};

/* One journal entry a transition calls for. */
struct phi_elev_event {
        enum phi_event event;
        int priority;
        char user[PHI_NAME_MAX + 1];        /* the requester */
        char actor[PHI_NAME_MAX + 1];
        char role[PHI_POLICY_NAME_MAX + 1];
        char id[PHI_REQUEST_ID_LEN + 1];
        char reason[PHI_ELEV_TEXT_MAX + 1];
        uint64_t expires;
        uint64_t starts;
        unsigned approvals, approvals_needed;
        char message[512];
};

struct phi_elev_ctx {
        phi_store *store;
        const struct phi_policy *policy;    /* NULL: none loaded, every request refused */
        const char *passwd_file, *group_file;
        const char *host;                   /* this host's name */
        uint64_t now;
};

/* What a call did: error 0, or the refusal (-EACCES not allowed, -ENOENT no
 * such request or role, -EALREADY decided already, -EINVAL bad argument) with
 * a sentence for the caller in message; the request as it is now; the
 * entries to journal; whether the set of active grants changed (publish). */
struct phi_elev_result {
        int error;
        char message[512];
        struct phi_elev_request req;
        struct phi_elev_event *events;
        size_t n_events;
        bool grants_changed;
};
void phi_elev_result_clear(struct phi_elev_result *r);

/* Each returns 0 when the call was answered (yes or no: see result->error) and
 * a negative errno when the store failed (the round then rolls back). */
int phi_elev_request(const struct phi_elev_ctx *ctx, const char *requester, const char *role, uint64_t duration,
                     const char *reason, uint64_t start_at, const char *ticket, struct phi_elev_result *ret)
        _phi_warn_unused_ _phi_nonnull_args_(1, 2, 3, 8);
/* code_checked: the approver gave a fresh code of their own, already verified
 * by the caller (roles with approver_totp = yes need it). */
int phi_elev_decide(const struct phi_elev_ctx *ctx, const char *approver, const char *id, bool approve,
                    const char *reason, bool code_checked, struct phi_elev_result *ret)
        _phi_warn_unused_ _phi_nonnull_args_(1, 2, 3, 7);
int phi_elev_cancel(const struct phi_elev_ctx *ctx, const char *user, const char *id, struct phi_elev_result *ret)
        _phi_warn_unused_ _phi_nonnull_;
/* privileged: the actor is root, an admin or an approver of the role's kind
 * (checked here: an approver of this role); else only the requester may. */
int phi_elev_revoke(const struct phi_elev_ctx *ctx, const char *actor, bool admin, const char *id,
                    const char *reason, struct phi_elev_result *ret) _phi_warn_unused_ _phi_nonnull_args_(1, 2, 4, 6);
/* code_checked: the user's own fresh code, verified by the caller. */
int phi_elev_breakglass(const struct phi_elev_ctx *ctx, const char *user, const char *role, const char *reason,
                        uint64_t duration, bool code_checked, struct phi_elev_result *ret)
        _phi_warn_unused_ _phi_nonnull_;
int phi_elev_review(const struct phi_elev_ctx *ctx, const char *approver, const char *id, const char *note,
                    struct phi_elev_result *ret) _phi_warn_unused_ _phi_nonnull_;
/* Makes every transition that is due at ctx->now (pending requests lapse,
 * approved ones start, grants expire); *ret_next is the next time one is due
 * (0: none). */
int phi_elev_tick(const struct phi_elev_ctx *ctx, struct phi_elev_result *ret, uint64_t *ret_next)
        _phi_warn_unused_ _phi_nonnull_;
/* Whether user holds an active grant whose role covers host. */
int phi_elev_user_has_grant(const struct phi_elev_ctx *ctx, const char *user, bool *ret, char *ret_role,
                            size_t role_len, char *ret_id, size_t id_len) _phi_warn_unused_ _phi_nonnull_;

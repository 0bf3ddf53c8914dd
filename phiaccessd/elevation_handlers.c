/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>
#include <string.h>

#include "elevation_handlers.h"
#include "phi/secret.h"
#include "verifier.h"

/* Durations a request may ask for: the policy caps them per role. */
#define DURATION_MAX (366 * 86400ULL)

static int submit(struct phi_daemon *d, struct phi_verify_request *q, phi_msg **ret_reply, uint64_t *ret_ticket) {
        int r;

        if (!d->verifier)
                r = phi_msg_new_error(-EIO, ret_reply,
                                      "elevation is unavailable: the daemon has no master key, so its verifier "
                                      "(which keeps requests and grants) did not start");
        else if ((r = phi_verifier_submit(d->verifier, q, ret_ticket)) < 0)
                r = phi_msg_new_error(r == -ENOBUFS ? -EBUSY : r, ret_reply, "too many requests waiting; try again");
        phi_secret_wipe(q, sizeof(*q));
        return r;
}

/* The caller as the request's user: a known person, not a bare uid. 1 when so. */
static int caller_as(const struct phi_caller *caller, const char *verb, struct phi_verify_request *q,
                     phi_msg **ret_reply) {
        size_t n = strnlen(caller->name, sizeof(caller->name));

        if (!caller->known || n >= sizeof(q->user))
                return phi_msg_new_error(-EACCES, ret_reply, "%s: %s is no user this host knows", verb, caller->name);
        memcpy(q->user, caller->name, n);
        q->user[n] = '\0';
        snprintf(q->actor, sizeof(q->actor), "%s", caller->name);
        snprintf(q->service, sizeof(q->service), "phictl");
        return 1;
}

/* Optional text field into dst; 1 when fine. The schema bounds it. */
static int text(const phi_msg *req, uint16_t tag, char *dst, size_t size, const char *what, phi_msg **ret_reply) {
        const char *v = NULL;

        if (phi_msg_get_str(req, tag, &v) < 0)
                return 1;
        if (strlen(v) >= size)
                return phi_msg_new_error(-EINVAL, ret_reply, "the %s is longer than %zu bytes", what, size - 1);
        snprintf(dst, size, "%s", v);
        return 1;
}

static int request_id(const phi_msg *req, struct phi_verify_request *q, phi_msg **ret_reply) {
        const char *id = NULL;

        if (phi_msg_get_str(req, PHI_TAG_REQUEST, &id) < 0 || !phi_elev_id_valid(id))
                return phi_msg_new_error(-EINVAL, ret_reply, "'%s' is not a request id (12 hex digits, as phictl "
                                                             "requests shows)", id ? id : "");
        snprintf(q->request_id, sizeof(q->request_id), "%s", id);
        return 1;
}

static int code(const phi_msg *req, struct phi_verify_request *q, phi_msg **ret_reply) {
        const char *c = NULL;

        if (phi_msg_get_str(req, PHI_TAG_CODE, &c) < 0)
                return 1;
        if (!*c || strlen(c) >= sizeof(q->code))
                return phi_msg_new_error(-EINVAL, ret_reply, "not a code");
        memcpy(q->code, c, strlen(c));
        q->code_given = true;
        return 1;
}

int phi_handle_elev_request(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                            phi_msg **ret_reply, uint64_t *ret_ticket) {
        struct phi_verify_request q = { .kind = PHI_VERIFY_ELEV_REQUEST };
        int r;

        if ((r = caller_as(caller, "request", &q, ret_reply)) <= 0 ||
            (r = text(req, PHI_TAG_ROLE, q.role, sizeof(q.role), "role", ret_reply)) <= 0 ||
            (r = text(req, PHI_TAG_REASON, q.reason, sizeof(q.reason), "reason", ret_reply)) <= 0 ||
            (r = text(req, PHI_TAG_TICKET, q.ticket, sizeof(q.ticket), "ticket", ret_reply)) <= 0)
                return r;
        if (phi_msg_get_u64(req, PHI_TAG_DURATION, &q.duration) < 0 || q.duration == 0 || q.duration > DURATION_MAX)
                return phi_msg_new_error(-EINVAL, ret_reply, "a request lasts from 1 second to 366 days (--for)");
        if (phi_msg_get_u64(req, PHI_TAG_START, &q.start) < 0)
                q.start = 0;
        return submit(d, &q, ret_reply, ret_ticket);
}

int phi_handle_elev_decide(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                           phi_msg **ret_reply, uint64_t *ret_ticket) {
        struct phi_verify_request q = { .kind = PHI_VERIFY_ELEV_DECIDE };
        const char *state = NULL;
        int r;

        if ((r = caller_as(caller, "approve", &q, ret_reply)) <= 0 || (r = request_id(req, &q, ret_reply)) <= 0 ||
            (r = text(req, PHI_TAG_REASON, q.reason, sizeof(q.reason), "reason", ret_reply)) <= 0 ||
            (r = code(req, &q, ret_reply)) <= 0)
                goto out;
        if (phi_msg_get_str(req, PHI_TAG_STATE, &state) < 0 || (strcmp(state, "approve") && strcmp(state, "deny"))) {
                r = phi_msg_new_error(-EINVAL, ret_reply, "a request is approved or denied");
                goto out;
        }
        q.approve = strcmp(state, "approve") == 0;
        return submit(d, &q, ret_reply, ret_ticket);
out:
        phi_secret_wipe(&q, sizeof(q));
        return r;
}

int phi_handle_elev_cancel(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                           phi_msg **ret_reply, uint64_t *ret_ticket) {
        struct phi_verify_request q = { .kind = PHI_VERIFY_ELEV_CANCEL };
        int r;

        if ((r = caller_as(caller, "cancel", &q, ret_reply)) <= 0 || (r = request_id(req, &q, ret_reply)) <= 0)
                return r;
        return submit(d, &q, ret_reply, ret_ticket);
}

int phi_handle_elev_revoke(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                           phi_msg **ret_reply, uint64_t *ret_ticket) {
        struct phi_verify_request q = { .kind = PHI_VERIFY_ELEV_REVOKE };
        struct phi_caller who = *caller;
        int r;

        if ((r = caller_as(caller, "revoke", &q, ret_reply)) <= 0 || (r = request_id(req, &q, ret_reply)) <= 0 ||
            (r = text(req, PHI_TAG_REASON, q.reason, sizeof(q.reason), "reason", ret_reply)) <= 0)
                return r;
        phi_caller_resolve_roles(d, &who);
        q.admin = who.classes & (PHI_CALLER_ROOT | PHI_CALLER_ADMIN);
        return submit(d, &q, ret_reply, ret_ticket);
}

int phi_handle_elev_list(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                         phi_msg **ret_reply, uint64_t *ret_ticket) {
        struct phi_verify_request q = { .kind = PHI_VERIFY_ELEV_LIST };
        struct phi_caller who = *caller;
        const char *which = NULL, *after = NULL;
        int r;

        if ((r = caller_as(caller, "requests", &q, ret_reply)) <= 0)
                return r;
        if (phi_msg_get_str(req, PHI_TAG_STATE, &which) < 0 ||
            (strcmp(which, "pending") && strcmp(which, "mine") && strcmp(which, "all") && strcmp(which, "grants")))
                return phi_msg_new_error(-EINVAL, ret_reply, "list pending, mine, all or grants");
        snprintf(q.list, sizeof(q.list), "%s", which);
        if (phi_msg_get_str(req, PHI_TAG_REQUEST, &after) == 0) {
                if (!phi_elev_id_valid(after))
                        return phi_msg_new_error(-EINVAL, ret_reply, "not a request id: %s", after);
                snprintf(q.request_id, sizeof(q.request_id), "%s", after);
        }
        /* Approvers must see what waits for them, auditors everything; a
         * user sees their own. */
        phi_caller_resolve_roles(d, &who);
        q.privileged = who.classes & (PHI_CALLER_ROOT | PHI_CALLER_ADMIN | PHI_CALLER_APPROVER | PHI_CALLER_AUDITOR);
        return submit(d, &q, ret_reply, ret_ticket);
}

int phi_handle_breakglass(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                          phi_msg **ret_reply, uint64_t *ret_ticket) {
        struct phi_verify_request q = { .kind = PHI_VERIFY_ELEV_BREAKGLASS };
        int r;

        if ((r = caller_as(caller, "breakglass", &q, ret_reply)) <= 0 ||
            (r = text(req, PHI_TAG_ROLE, q.role, sizeof(q.role), "role", ret_reply)) <= 0 ||
            (r = text(req, PHI_TAG_REASON, q.reason, sizeof(q.reason), "reason", ret_reply)) <= 0 ||
            (r = code(req, &q, ret_reply)) <= 0)
                goto out;
        if (phi_msg_get_u64(req, PHI_TAG_DURATION, &q.duration) < 0)
                q.duration = 0;
        if (q.duration > DURATION_MAX) {
                r = phi_msg_new_error(-EINVAL, ret_reply, "a break-glass grant lasts at most the role's cap");
                goto out;
        }
        return submit(d, &q, ret_reply, ret_ticket);
out:
        phi_secret_wipe(&q, sizeof(q));
        return r;
}

int phi_handle_review(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                      phi_msg **ret_reply, uint64_t *ret_ticket) {
        struct phi_verify_request q = { .kind = PHI_VERIFY_ELEV_REVIEW };
        int r;

        if ((r = caller_as(caller, "review", &q, ret_reply)) <= 0 || (r = request_id(req, &q, ret_reply)) <= 0 ||
            (r = text(req, PHI_TAG_REASON, q.reason, sizeof(q.reason), "note", ret_reply)) <= 0)
                return r;
        return submit(d, &q, ret_reply, ret_ticket);
}

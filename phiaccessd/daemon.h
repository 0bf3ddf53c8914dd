/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* What the socket thread's request handlers share. */

#include <stdint.h>

#include "config.h"
#include "phi/policy.h"
#include "ratelimit.h"
#include "store.h"
#include "sync.h"
#include "verifier.h"

struct phi_daemon {
        struct phi_config *config;  /* replaced on SIGHUP */
        phi_store *store;           /* the socket thread's own handle */
        phi_sync *sync;
        uint64_t started;           /* Unix seconds */
        uint64_t requests;
        uint64_t refused;
        phi_verifier *verifier;     /* TOTP; NULL without a master key */
        /* The access policy in force (policy_state.c): replaced only by one
         * that parsed without an error. */
        struct phi_policy *policy;
        char policy_state[512];     /* for status: loaded, missing, or refused and why */
        uint64_t policy_loaded_at;  /* Unix seconds */
        /* Re-reads config and policy as SIGHUP does (main.c); for phictl reload.
         * *ret_text says what happened; negative when either was refused. */
        int (*reload)(void *userdata, const char *actor, char *ret_text, size_t text_len);
        void *reload_data;
        /* Kept by the request socket (server.c): how many refusals it journals
         * (NULL: all of them), and its connections, for `phictl status`. */
        phi_ratelimit *refusals;
        phi_ratelimit *connection_notes;
        phi_ratelimit *self_service;    /* a user's own enrolment requests */
        phi_ratelimit *elevation_calls; /* requests that change an elevation request */
        size_t connections;
        uint64_t connections_closed;    /* an idle one closed to make room for another */
        uint64_t connections_refused;   /* no room, and none idle to close */
        /* Live verifications of the audit log (audit_verify.h); NULL: none. */
        struct phi_audit_checks *audit_checks;
};

/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* TOTP records as the store keeps them: tokens (a sealed seed and its replay
 * watermark), enrolment tickets, and failure counters for the rate limit. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "seal.h"
#include "totp.h"

/* An identity: the directory entry's stable key (entryUUID, or "dn:" + DN,
 * as the users table has it) or "local:UID" for an account of the local
 * passwd file. Tokens and tickets belong to one; a name is only how it is
 * reached today. */
#define PHI_IDENTITY_MAX 1100u

enum phi_token_state {
        PHI_TOKEN_PENDING = 1,   /* enrolled, waiting for its first correct code */
        PHI_TOKEN_ACTIVE = 2,
};

struct phi_token {
        enum phi_token_state state;
        enum phi_totp_algorithm algorithm;
        unsigned digits;
        uint64_t watermark;      /* highest time step ever accepted; 0 = none */
        uint64_t created;        /* Unix seconds */
        uint64_t enrolled;       /* Unix seconds of activation; 0 while pending */
        uint8_t nonce[PHI_SEAL_NONCE_BYTES];
        uint8_t sealed[PHI_SEAL_MAX_PLAIN + PHI_SEAL_TAG_BYTES];
        size_t sealed_len;
        /* Whose: sealed for user and this identity. "" for a token of an
         * upgraded store whose name had no identity then (refused, kept until
         * reset); legacy for one not yet bound (sealed for the name alone). */
        char identity[PHI_IDENTITY_MAX + 1];
        bool legacy;
};

struct phi_ticket {
        uint64_t expires;        /* Unix seconds */
        uint64_t created;
        char identity[PHI_IDENTITY_MAX + 1];   /* as in phi_token */
        bool legacy;
};

enum phi_failure_kind {
        PHI_FAILURE_USER = 1,    /* key: the user name as given (known or not) */
        PHI_FAILURE_HOST = 2,    /* key: PAM_RHOST */
};

struct phi_failures {
        uint64_t count;          /* failures since window_start */
        uint64_t window_start;   /* Unix seconds */
        uint64_t locked_until;   /* Unix seconds; 0 = not locked */
};

const char *phi_token_state_name(enum phi_token_state s);

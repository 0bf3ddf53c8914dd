/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* TOTP records as the store keeps them: tokens (a sealed seed and its replay
 * watermark), enrolment tickets, and failure counters for the rate limit. */

#include <stddef.h>
#include <stdint.h>

#include "seal.h"
#include "totp.h"

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

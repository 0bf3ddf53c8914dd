/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* TOTP (RFC 6238) verification with liboath, and the replay rule.
 *
 * Pure functions: no I/O, no clock (the caller passes "now"), no state. The
 * replay state is a watermark, the highest time step ever accepted for a
 * token; a code is accepted only for a step strictly above it, and the caller
 * stores the returned step as the new watermark in the same transaction that
 * records the acceptance. So a code, or any older code, works at most once,
 * however many logins race with it. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "phi/macro.h"

#define PHI_TOTP_PERIOD 30u          /* seconds per step: what every authenticator app assumes */
#define PHI_TOTP_MAX_WINDOW 10u      /* steps either side; 5 minutes is already generous */
#define PHI_TOTP_DEFAULT_WINDOW 1u

enum phi_totp_algorithm {
        PHI_TOTP_SHA1,
        PHI_TOTP_SHA256,
        PHI_TOTP_SHA512,
};

struct phi_totp_params {
        enum phi_totp_algorithm algorithm;
        unsigned digits;             /* 6 or 8 */
        unsigned window;             /* steps accepted on each side of now */
};

/* Initialises liboath once per process; not thread-safe, call from main(). */
int phi_totp_init(void) _phi_warn_unused_;

/* "SHA1"/"SHA256"/"SHA512" as in otpauth URIs; parsing is case-insensitive.
 * -EINVAL for anything else. */
const char *phi_totp_algorithm_name(enum phi_totp_algorithm a);
int phi_totp_algorithm_from_name(const char *s, enum phi_totp_algorithm *ret) _phi_warn_unused_
        _phi_nonnull_;

/* True for exactly `digits` ASCII digits (nothing else, no blanks). */
bool phi_totp_code_valid(const char *code, unsigned digits) _phi_nonnull_;

/*
 * Checks code against the steps now-window .. now+window.
 *   0          a step above watermark matched; *ret_step is that step
 *   -EALREADY  the code belongs to a step at or below the watermark: a replay
 *   -EACCES    no step in the window matches (also: malformed code)
 *   -EINVAL    bad parameters (digits, window, seed length)
 *   -EIO       liboath failed
 * The work done does not depend on how close a wrong code is; a failure
 * always computes every step of the window.
 */
int phi_totp_verify(const uint8_t *seed, size_t seed_len, const struct phi_totp_params *p,
                    time_t now, const char *code, uint64_t watermark, uint64_t *ret_step)
        _phi_warn_unused_ _phi_nonnull_args_(1, 3, 5);

/* The time step containing now. */
uint64_t phi_totp_step(time_t now);

/* Generates the code of one step (tests and enrolment self-checks only). buf needs 9 bytes. */
int phi_totp_generate(const uint8_t *seed, size_t seed_len, const struct phi_totp_params *p,
                      uint64_t step, char buf[static 9]) _phi_warn_unused_ _phi_nonnull_;

/* otpauth://totp/ISSUER:USER?secret=BASE32&issuer=ISSUER&algorithm=..&digits=..&period=30,
 * the key-URI format authenticator apps read from a QR code. The result holds
 * the secret: free it with phi_secret_free_str(). */
int phi_totp_uri(const char *issuer, const char *user, const uint8_t *seed, size_t seed_len,
                 const struct phi_totp_params *p, char **ret) _phi_warn_unused_ _phi_nonnull_;

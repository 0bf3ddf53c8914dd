/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Parsers for one-field logins, where a VPN client puts the password and the
 * one-time code into PAM_AUTHTOK together:
 *   combined   "PASSWORDCODE": the code is the last 6 or 8 characters
 *   SCRV1      OpenVPN's static challenge: "SCRV1:" base64(password) ":" base64(code)
 * Both allocate the two parts; the caller wipes and frees them with
 * phi_secret_free_str(). Every temporary copy is wiped here. */

#include <stddef.h>
#include <stdint.h>

#include "phi/macro.h"

#define PHI_AUTHTOK_MAX 1024      /* longer than any password a module accepts (pam_unix: 512) */
#define PHI_CODE_MAX 16           /* the wire's bound for a code */

/* -EINVAL when the token is shorter than digits + 0 or its last `digits`
 * characters are not all ASCII digits; -E2BIG over PHI_AUTHTOK_MAX. */
int phi_authtok_split_combined(const char *authtok, unsigned digits, char **ret_password,
                               char **ret_code) _phi_warn_unused_ _phi_nonnull_;

/* -EINVAL: no "SCRV1:" prefix, not exactly two parts, bad base64, a NUL inside
 * a decoded part, or a code over PHI_CODE_MAX; -E2BIG over PHI_AUTHTOK_MAX. */
int phi_authtok_parse_scrv1(const char *authtok, char **ret_password, char **ret_code)
        _phi_warn_unused_ _phi_nonnull_;

/* Strict RFC 4648 section 4 base64: standard alphabet, '=' padding to a multiple
 * of 4, no whitespace, no bits set past the data (one spelling per value).
 * Writes at most out_size bytes. -EINVAL malformed, -ENOBUFS out too small. */
int phi_base64_decode(const char *in, size_t len, uint8_t *out, size_t out_size, size_t *ret_len)
        _phi_warn_unused_ _phi_nonnull_args_(1, 5);

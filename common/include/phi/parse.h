/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Strict parsers for values that cross a boundary (command line, config, wire).
 * Each accepts the whole string or nothing: no leading blanks, no sign where
 * none is meant, no trailing text, no silent clamping. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "phi/macro.h"

#define PHI_NAME_MAX 32           /* utmp's ut_user; longer names break last(1) and ps */

/* Decimal integer in [min, max]. -EINVAL not a number, -ERANGE out of bounds. */
int phi_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret) _phi_warn_unused_
        _phi_nonnull_;

/* Duration "90s", "30m", "4h", "7d" (one number and one unit) in seconds, in [min, max].
 * -EINVAL malformed, -ERANGE out of bounds or overflow. */
int phi_parse_duration(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
        _phi_warn_unused_ _phi_nonnull_;

/* Formats seconds as the parser's own syntax with two units at most ("1h30m", "45s");
 * buf needs 24 bytes. Returns buf. */
char *phi_format_duration(uint64_t seconds, char buf[static 24]) _phi_nonnull_;

/* User and group names: 1..PHI_NAME_MAX of [A-Za-z0-9._-], first a letter, digit or '_',
 * optionally ending in '$' (machine accounts), not all digits (would read as an id).
 * The shape shadow-utils and systemd accept, minus what breaks tools. */
bool phi_name_valid(const char *s) _phi_nonnull_;

/* Boolean config words: yes/no, true/false, on/off, 1/0. -EINVAL otherwise. */
int phi_parse_bool(const char *s, bool *ret) _phi_warn_unused_ _phi_nonnull_;

/* Well-formed UTF-8 without NUL, overlong forms or surrogates, in the first len bytes. */
bool phi_utf8_valid(const char *s, size_t len) _phi_nonnull_;

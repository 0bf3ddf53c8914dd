/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* What phictl's verb files share: the options, the exit codes of SPEC.md, and
 * the one-request-one-reply call that maps failures to them. */

#include <stdbool.h>
#include <stdio.h>

#include "phi/wire.h"

enum {
        EXIT_DONE = 0,
        EXIT_REFUSED = 1,
        EXIT_USAGE = 2,
        EXIT_UNREACHABLE = 3,
};

struct ctl {
        const char *socket_path;
        bool json;
};

/* One request, one reply; an ERROR reply is printed and gives EXIT_REFUSED. */
int ctl_call(const struct ctl *ctl, const phi_msg *req, phi_msg **ret);
/* The same, but an ERROR reply with errno `quiet` (negative) is not printed;
 * *ret_error gets the errno of any ERROR reply (0 otherwise). */
int ctl_call_quiet(const struct ctl *ctl, const phi_msg *req, int quiet, phi_msg **ret, int *ret_error);
/* s as a JSON string: '"' and '\\' escaped, control bytes as \\u00XX. */
void ctl_json_string(FILE *f, const char *s);
/* Prints the KEY/VALUE pairs of a reply as aligned lines or one JSON object. */
void print_pairs(const struct ctl *ctl, const phi_msg *m);

/* phictl_totp.c */
/* Reads a line (a code) after prompt, without echo on a terminal; buf is
 * wiped by the caller. -EIO at the end of input, -E2BIG when it does not fit. */
int ctl_read_code(const char *prompt, char *buf, size_t size);
int verb_totp(const struct ctl *ctl, int argc, char **argv);

/* phictl_doctor.c */
int verb_doctor(const struct ctl *ctl, int argc, char **argv);

/* phictl_sessions.c */
int verb_sessions(const struct ctl *ctl, int argc, char **argv);

/* phictl_elevation.c */
int verb_request(const struct ctl *ctl, int argc, char **argv);
int verb_requests(const struct ctl *ctl, int argc, char **argv);
int verb_grants(const struct ctl *ctl, int argc, char **argv);
int verb_approve(const struct ctl *ctl, int argc, char **argv);
int verb_deny(const struct ctl *ctl, int argc, char **argv);
int verb_cancel(const struct ctl *ctl, int argc, char **argv);
int verb_revoke(const struct ctl *ctl, int argc, char **argv);
int verb_breakglass(const struct ctl *ctl, int argc, char **argv);
int verb_review(const struct ctl *ctl, int argc, char **argv);
/* phictl_audit.c */
int verb_audit(const struct ctl *ctl, int argc, char **argv);
/* phictl_audit_live.c: audit verify with no FILE */
int ctl_audit_verify_live(const struct ctl *ctl);

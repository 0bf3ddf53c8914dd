/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* What phictl's verb files share: the options, the exit codes of SPEC.md, and
 * the one-request-one-reply call that maps failures to them. */

#include <stdbool.h>

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
/* Prints the KEY/VALUE pairs of a reply as aligned lines or one JSON object. */
void print_pairs(const struct ctl *ctl, const phi_msg *m);

/* phictl_totp.c */
int verb_totp(const struct ctl *ctl, int argc, char **argv);

/* phictl_doctor.c */
int verb_doctor(const struct ctl *ctl, int argc, char **argv);

/* phictl_audit.c */
int verb_audit(const struct ctl *ctl, int argc, char **argv);

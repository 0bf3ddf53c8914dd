/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The daemon's access policy: reading the file the config names, keeping the
 * policy in force across reloads (a refused file never replaces it), and the
 * admin's question "would this user be let in?" (phictl policy check).
 * libphi_policy itself does no I/O; this is where the file is read. */

#include <stdbool.h>
#include <stdint.h>

#include "daemon.h"
#include "dispatch.h"
#include "phi/macro.h"
#include "phi/policy.h"

/* Reads path with the config's trust rules (root's, not writable by others)
 * and parses it. 0 and *ret; -ENOENT when there is no file (errors untouched);
 * -EINVAL (or the errno of a refused file) with every problem in errors. */
int phi_policy_file_load(const char *path, struct phi_policy **ret, struct phi_policy_errors *errors)
        _phi_warn_unused_ _phi_nonnull_;

/* Loads the config's policy into d and journals the outcome (policy_reload).
 * At start a missing file means the empty policy, which answers every
 * question no; on a reload a missing or bad file is refused and the policy in
 * force stays. actor names who asked ("start", "SIGHUP" or a user). *ret_text
 * (at least 256 bytes) says what happened, for phictl reload. */
int phi_daemon_policy_load(struct phi_daemon *d, bool at_start, const char *actor, char *ret_text,
                           size_t text_len) _phi_nonnull_;

/* The request handler of PHI_MSG_POLICY_CHECK (dispatch.c's table). */
int phi_handle_policy_check(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                            phi_msg **ret_reply, uint64_t *ret_ticket);

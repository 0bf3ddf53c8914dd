/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The TOTP verbs of the dispatch table, and the verifier's start-up. Each
 * handler checks its request and queues it to the verifier (verifier.h); the
 * reply comes back later through the server's deferred-reply path. */

#include "config.h"
#include "daemon.h"
#include "dispatch.h"
#include "verifier.h"

/* Loads the master key and starts the verifier, which serves the PAM socket
 * (pam_fd from systemd, or -1: c->pam_socket_path). A missing or untrusted key
 * is logged and leaves *ret NULL (every TOTP request is then answered with an
 * error, so PAM denies) rather than stopping the daemon's other work. */
int phi_totp_start(const struct phi_config *c, int pam_fd, phi_verifier **ret) _phi_nonnull_args_(1, 3);
/* The PAM socket's handler while there is no verifier: every login is refused
 * with a reason pam_phi logs. */
int phi_handle_pam_unavailable(void *userdata, const struct ucred *cred, const phi_msg *req, phi_msg **ret_reply,
                               uint64_t *ret_ticket);
/* SIGHUP: the [totp] settings of c apply from the next round on; a changed
 * master key is only logged (it is loaded once, at start). */
void phi_totp_reconfigure(phi_verifier *v, const struct phi_config *old, const struct phi_config *c)
        _phi_nonnull_;

/* AUTH on the request socket: refused, with where to ask instead. */
int phi_handle_auth(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                    phi_msg **ret_reply, uint64_t *ret_ticket);
int phi_handle_totp_issue(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                          phi_msg **ret_reply, uint64_t *ret_ticket);
int phi_handle_totp_enroll(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                           phi_msg **ret_reply, uint64_t *ret_ticket);
int phi_handle_totp_activate(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                             phi_msg **ret_reply, uint64_t *ret_ticket);
int phi_handle_totp_reset(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                          phi_msg **ret_reply, uint64_t *ret_ticket);

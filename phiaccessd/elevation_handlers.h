/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The request socket's elevation verbs (phictl request, approve, deny, cancel,
 * revoke, requests, grants, breakglass, review): who asks is the caller
 * (SO_PEERCRED); the verifier makes the change in its next round. */

#include "daemon.h"
#include "dispatch.h"

int phi_handle_elev_request(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                            phi_msg **ret_reply, uint64_t *ret_ticket);
int phi_handle_elev_decide(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                           phi_msg **ret_reply, uint64_t *ret_ticket);
int phi_handle_elev_cancel(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                           phi_msg **ret_reply, uint64_t *ret_ticket);
int phi_handle_elev_revoke(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                           phi_msg **ret_reply, uint64_t *ret_ticket);
int phi_handle_elev_list(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                         phi_msg **ret_reply, uint64_t *ret_ticket);
int phi_handle_breakglass(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                          phi_msg **ret_reply, uint64_t *ret_ticket);
int phi_handle_review(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                      phi_msg **ret_reply, uint64_t *ret_ticket);

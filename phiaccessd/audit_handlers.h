/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The auditor's side of the audit log on the request socket (phictl audit):
 * queries and exports, for members of [daemon] auditor_group and root. Each
 * reads the store's audit rows (the main thread's handle) page by page, so a
 * log of millions of records never needs more than one reply frame of memory
 * on either side; each query and export is itself journaled as audit_query,
 * which puts it in the audit log too. */

#include "daemon.h"
#include "dispatch.h"

int phi_handle_audit_query(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                           phi_msg **ret_reply, uint64_t *ret_ticket);
int phi_handle_audit_export(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                            phi_msg **ret_reply, uint64_t *ret_ticket);

/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The table of permitted requests (OpenSSH monitor.c style): one row per verb,
 * naming which callers may use it and the one handler that serves it. A request
 * whose type has no row, or whose caller the row does not name, is refused with
 * PHI_MSG_ERROR and journaled; no handler runs. */

#include <stdint.h>
#include <sys/socket.h>

#include "daemon.h"
#include "phi/wire.h"

enum phi_caller_class {
        PHI_CALLER_ANYONE = 1 << 0,
        PHI_CALLER_ROOT = 1 << 1,
        PHI_CALLER_SELF = 1 << 2,       /* the request's USER is the caller */
        PHI_CALLER_ADMIN = 1 << 3,      /* [daemon] admin_group */
        PHI_CALLER_APPROVER = 1 << 4,   /* [daemon] approver_group */
        PHI_CALLER_AUDITOR = 1 << 5,    /* [daemon] auditor_group */
};

struct phi_caller {
        uid_t uid;
        gid_t gid;
        pid_t pid;
        char name[64];      /* login name, or "uid N" when unknown */
        unsigned classes;
        /* The group roles (ADMIN, APPROVER, AUDITOR) are in classes only once
         * roles_resolved is set: they cost a store query and three reads of the
         * group file, which a login (AUTH, root only) does not need. */
        bool known, roles_resolved;
        gid_t user_gid;     /* primary gid of the name, for the group file */
        /* The descriptor passed with the request (SCM_RIGHTS; PHI_MSG_BACKUP
         * only), -1 when none. The server's: closed after the handler. */
        int passed_fd;
};

/* Works out who is calling from SO_PEERCRED alone: the name from the local
 * passwd file or the store (never NSS), and ANYONE/ROOT. */
void phi_caller_identify(struct phi_daemon *d, const struct ucred *cred, struct phi_caller *ret)
        _phi_nonnull_;
/* Adds the group roles, from the store's resolved memberships or the local
 * group file. phi_dispatch() calls it when a verb's row needs a role; a
 * handler that looks at roles for anything else calls it first. */
void phi_caller_resolve_roles(struct phi_daemon *d, struct phi_caller *caller) _phi_nonnull_;

/* Serves one request. Either *ret_reply is set, or (long-running verbs) 0 with
 * *ret_reply NULL and *ret_ticket the sync ticket to wait for; then
 * phi_dispatch_sync_reply() builds the reply once the ticket is done. */
int phi_dispatch(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                 phi_msg **ret_reply, uint64_t *ret_ticket) _phi_warn_unused_ _phi_nonnull_;

int phi_dispatch_sync_reply(int error, const char *message, phi_msg **ret_reply) _phi_warn_unused_
        _phi_nonnull_;

/* Journals a refused request as access_denied, within the caller's budget
 * (d->refusals; past it the refusal is only counted). */
void phi_dispatch_journal_refusal(struct phi_daemon *d, const struct phi_caller *caller, const char *verb,
                                  const char *reason) _phi_nonnull_;

/* An ERROR reply for a frame that could not be decoded. */
int phi_dispatch_bad_frame(int error, phi_msg **ret_reply) _phi_warn_unused_ _phi_nonnull_;

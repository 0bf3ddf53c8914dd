/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The request socket: sd-event loop, SO_PEERCRED on every connection, bounded
 * memory and time per connection, a cap on concurrent connections (per uid
 * too, with a reserve for root and admins), and a bound on what any caller
 * can make the daemon journal. */

#include <systemd/sd-event.h>

#include <sys/socket.h>
#include <sys/types.h>

#include "daemon.h"

#define PHI_SERVER_MAX_CONNECTIONS 512
/* The request socket shares out those 512 (phiaccessd(8), LIMITS): */
#define PHI_SERVER_RESERVED_CONNECTIONS 32  /* the last ones, for root and [daemon] admin_group */
#define PHI_SERVER_MAX_PER_UID 32           /* per caller uid, root excepted */
/* What a caller can make the daemon journal, per interval of this many seconds: */
#define PHI_SERVER_JOURNAL_INTERVAL_S 10
#define PHI_SERVER_REFUSAL_BURST 10         /* refused requests journaled per uid */
#define PHI_SERVER_REFUSAL_GLOBAL_BURST 100 /* over all uids */
#define PHI_SERVER_CONNECTION_BURST 1       /* refused or closed connections journaled per uid */
#define PHI_SERVER_CONNECTION_GLOBAL_BURST 16
#define PHI_SERVER_LIMIT_UIDS 256           /* uids tracked per interval, each limiter */
/* A user's own enrolment requests (totp enroll, its activations) each end in
 * a journal entry of the verifier; past this many per uid and interval they
 * are refused before they reach it. */
#define PHI_SERVER_SELF_SERVICE_BURST 10
#define PHI_SERVER_SELF_SERVICE_GLOBAL_BURST 200
/* The elevation verbs that change a request (request, approve, deny, cancel,
 * revoke, breakglass) are each a durable store round, an audit record and a
 * journal entry: any local user can send them, so past this many per uid and
 * interval (root excepted) they are refused before they reach the verifier.
 * An approver clearing a backlog stays well inside it. */
#define PHI_SERVER_ELEVATION_BURST 30
#define PHI_SERVER_ELEVATION_GLOBAL_BURST 300
#define PHI_SERVER_REQUEST_TIMEOUT_S 10     /* to send a whole request frame */
#define PHI_SERVER_IDLE_TIMEOUT_S 30        /* between requests on one connection */
#define PHI_SERVER_SYNC_TIMEOUT_S 900       /* a waiting `sync` gives up after this */

typedef struct phi_server phi_server;

/* The request socket: listen_fd when systemd passed one (taken on success;
 * else -1: binds path, mode 0666: every local user may ask; each verb checks
 * who asks). */
int phi_server_new(sd_event *event, struct phi_daemon *d, int listen_fd, const char *path, phi_server **ret)
        _phi_warn_unused_ _phi_nonnull_args_(1, 2, 4, 5);

/*
 * The PAM socket: only root connects (mode 0600, and SO_PEERCRED is checked
 * on every frame), and each frame goes to handler instead of the verb table.
 * path is bound only when listen_fd is -1 (it may be NULL otherwise).
 * The handler answers at once (*ret_reply) or keeps the request and sets
 * *ret_ticket; phi_server_deliver() answers it later, on the thread that runs
 * event. It lives apart from the request socket so that no unprivileged
 * client, however many connections it opens, stands between a login and its
 * answer, and so that the TOTP verifier can serve it on its own thread.
 */
/* cred: the connection's SO_PEERCRED (the PAM stack's process, which a session belongs to). */
typedef int (*phi_server_handler)(void *userdata, const struct ucred *cred, const phi_msg *req, phi_msg **ret_reply,
                                  uint64_t *ret_ticket);
int phi_server_new_pam(sd_event *event, int listen_fd, const char *path, phi_server_handler handler,
                       void *userdata, phi_server **ret) _phi_warn_unused_ _phi_nonnull_args_(1, 4, 6);
/* Sends reply (taken, may be NULL: the connection is closed) to the connection
 * waiting for ticket; drops it if that connection is gone. */
void phi_server_deliver(phi_server *s, uint64_t ticket, phi_msg *reply) _phi_nonnull_args_(1);
/* True when the client waiting for ticket has hung up (or is gone): nobody
 * would hear its answer. */
bool phi_server_waiter_gone(phi_server *s, uint64_t ticket) _phi_nonnull_;

/* Binds path with mode (as PATH.new, then renamed over PATH) and listens. */
int phi_server_listen(const char *path, mode_t mode, int *ret_fd) _phi_warn_unused_ _phi_nonnull_;
void phi_server_free(phi_server *s);
PHI_DEFINE_TRIVIAL_CLEANUP_FUNC(phi_server *, phi_server_free);

size_t phi_server_connections(const phi_server *s) _phi_nonnull_;

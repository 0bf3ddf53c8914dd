/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The client side of the phi socket, shared by pam_phi and phictl.
 *
 * Every call has a deadline: a PAM module must not hang sshd because the daemon
 * is stuck. The socket is SOCK_CLOEXEC (sshd forks children), writes use
 * MSG_NOSIGNAL (a dead daemon must not SIGPIPE the host process), and the fd is
 * never 0, 1 or 2: if a caller runs with those closed, socket() would hand one
 * back and a later write to "stdout" would reach the daemon. */

#include <stdint.h>

#include "phi/macro.h"
#include "phi/wire.h"

#define PHI_SOCKET_PATH "/run/phiaccessd/socket"
/* pam_phi's: root only, served apart from the request socket. */
#define PHI_PAM_SOCKET_PATH "/run/phiaccessd/pam"
#define PHI_CLIENT_DEFAULT_TIMEOUT_MS 3000

typedef struct phi_client phi_client;

/* Connects within timeout_ms. -ENOENT/-ECONNREFUSED: no daemon, -ETIMEDOUT,
 * -ENAMETOOLONG: path longer than sun_path, -EPERM: the process serving the
 * socket is neither root (so not phiaccessd) nor the caller's own user, and
 * is not trusted (phi_client_strerror() says so). */
int phi_client_connect(const char *path, int timeout_ms, phi_client **ret) _phi_warn_unused_
        _phi_nonnull_;
void phi_client_free(phi_client *c);

/* Text for an error of phi_client_connect(). */
const char *phi_client_strerror(int error);
PHI_DEFINE_TRIVIAL_CLEANUP_FUNC(phi_client *, phi_client_free);
#define _cleanup_client_ _cleanup_(phi_client_freep)

/* Sends one request. The whole call (send and every receive until the final reply)
 * shares the deadline set at connect, refreshed by phi_client_set_timeout(). */
int phi_client_send(phi_client *c, const phi_msg *req) _phi_warn_unused_ _phi_nonnull_;

/* The same, with fd passed alongside the frame's first bytes (SCM_RIGHTS):
 * the daemon takes a descriptor with PHI_MSG_BACKUP only. fd stays the
 * caller's (the daemon gets its own copy). */
int phi_client_send_fd(phi_client *c, const phi_msg *req, int fd) _phi_warn_unused_ _phi_nonnull_;

/* Receives the next frame: ROW frames of a listing, then a final OK/ERROR/typed reply.
 * -ETIMEDOUT, -ECONNRESET (daemon closed early), or a decode error of wire.h. */
int phi_client_recv(phi_client *c, phi_msg **ret) _phi_warn_unused_ _phi_nonnull_;

/* send + recv for single-reply verbs. */
int phi_client_call(phi_client *c, const phi_msg *req, phi_msg **ret) _phi_warn_unused_
        _phi_nonnull_;

/* Restarts the deadline: timeout_ms from now. */
void phi_client_set_timeout(phi_client *c, int timeout_ms) _phi_nonnull_;

/* Frame I/O on any stream fd with an absolute CLOCK_MONOTONIC deadline in ms
 * (the daemon uses the same reader). */
int phi_wire_write_frame(int fd, const uint8_t *frame, size_t len, int64_t deadline_ms)
        _phi_warn_unused_ _phi_nonnull_;
int phi_wire_read_msg(int fd, int64_t deadline_ms, phi_msg **ret) _phi_warn_unused_
        _phi_nonnull_;
int64_t phi_now_ms(void);

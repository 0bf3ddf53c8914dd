/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Open login and sudo sessions (pam_phi session), as the store keeps them,
 * and how the daemon tells that a session's process is still the one that
 * opened it.
 *
 * A session belongs to the process that called pam_open_session(): sshd's
 * privileged child of the connection, sudo itself, OpenVPN's PAM helper. That
 * process calls pam_close_session() before it exits; when it is killed
 * instead, nobody does, and the daemon closes the session when its pidfd says
 * the process has gone. A pid alone would not do after a restart (it may have
 * been reused), so the row also holds the process's start time, in clock
 * ticks after boot (proc(5), stat field 22), and the boot it belongs to. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "phi/macro.h"
#include "phi/parse.h"

#define PHI_SESSION_ID_LEN 32   /* 128 random bits, hex */
#define PHI_BOOT_ID_LEN 36      /* /proc/sys/kernel/random/boot_id */
/* Sessions the daemon watches at once; past it, a session is still recorded
 * and closed by pam_close_session(), and its process is looked for at the
 * next start instead. */
#define PHI_SESSIONS_WATCHED_MAX 65536

struct phi_session {
        char id[PHI_SESSION_ID_LEN + 1];
        char user[PHI_NAME_MAX + 1];
        char service[65];
        char rhost[256];
        char tty[65];
        char host[256];
        uint64_t pid;
        uint64_t pid_start;
        char boot_id[PHI_BOOT_ID_LEN + 1];
        uint64_t opened;        /* Unix seconds */
        /* The elevation grant a sudo session runs under (elevation.h,
         * PHI_REQUEST_ID_LEN hex digits), "" for none: the daemon ends the
         * session when that grant ends. */
        char request_id[12 + 1];
};

/* A new session id. */
int phi_session_id_new(char out[static PHI_SESSION_ID_LEN + 1]) _phi_warn_unused_;
/* True when s is one (32 lowercase hex digits). */
bool phi_session_id_valid(const char *s);
/* This boot's id. */
int phi_session_boot_id(char out[static PHI_BOOT_ID_LEN + 1]) _phi_warn_unused_;
/* The start time of pid (proc(5) stat field 22); -ESRCH when there is no such process. */
int phi_session_pid_start(pid_t pid, uint64_t *ret) _phi_warn_unused_;
/* A pidfd for pid, checked to be the process that started at `start` (the
 * pidfd is taken first, so the check is about the process it refers to).
 * -ESRCH when that process has gone. */
int phi_session_pidfd(pid_t pid, uint64_t start, int *ret_fd) _phi_warn_unused_;

/* Processes of one session's tree killed at most (a fork bomb is stopped
 * where it stands; what is past the bound is left). */
#define PHI_SESSION_TREE_MAX 4096
/* SIGKILLs every descendant of root (not root itself), stopping each first so
 * that none forks away meanwhile: what a sudo whose grant ended still runs
 * after its grace period. Processes that left the tree before (reparented to
 * init by a double fork) are not found. kill(2) needs the caller's uid to be
 * the target's real or saved uid, or CAP_KILL: a daemon without it kills the
 * root-owned part of the tree (sudo, its monitor, a root command) and is
 * refused the rest (*ret_refused), such as a command run as another user. */
int phi_session_kill_tree(pid_t root, size_t *ret_killed, size_t *ret_refused) _phi_warn_unused_ _phi_nonnull_;

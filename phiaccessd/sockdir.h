/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Whether every user can reach the request socket: phictl connects with the
 * caller's own uid, so the socket must be writable by others and each
 * directory above it searchable by others. A directory that is not (a
 * RuntimeDirectoryMode= or umask of 0700) makes `phictl totp enroll` fail with
 * "Permission denied" for everyone but root, long after the daemon started
 * fine; the daemon checks at start and says what to change. */

#include <stddef.h>

#include "phi/macro.h"

/* The socket fd is bound to if it is one (systemd passed it: its path is
 * systemd's ListenStream=, which may differ from the configuration), else
 * socket_path. 1 when reachable, or not on the file system (abstract);
 * 0 with a sentence naming the culprit and its fix in problem; a negative
 * errno when the path cannot be examined. */
int phi_sockdir_check(int fd, const char *socket_path, char *problem, size_t len) _phi_warn_unused_ _phi_nonnull_;

/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The request socket: sd-event loop, SO_PEERCRED on every connection, bounded
 * memory and time per connection, a cap on concurrent connections. */

#include <systemd/sd-event.h>

#include "daemon.h"

#define PHI_SERVER_MAX_CONNECTIONS 512
#define PHI_SERVER_REQUEST_TIMEOUT_S 10     /* to send a whole request frame */
#define PHI_SERVER_IDLE_TIMEOUT_S 30        /* between requests on one connection */
#define PHI_SERVER_SYNC_TIMEOUT_S 900       /* a waiting `sync` gives up after this */

typedef struct phi_server phi_server;

/* Uses the socket passed by systemd (sd_listen_fds) if there is one, else binds
 * path (mode 0666: every local user may ask; each verb checks who asks). */
int phi_server_new(sd_event *event, struct phi_daemon *d, const char *path, phi_server **ret)
        _phi_warn_unused_ _phi_nonnull_;
void phi_server_free(phi_server *s);
PHI_DEFINE_TRIVIAL_CLEANUP_FUNC(phi_server *, phi_server_free);

size_t phi_server_connections(const phi_server *s) _phi_nonnull_;

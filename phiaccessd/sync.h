/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The directory synchroniser: one thread that owns every LDAP connection.
 *
 * Why a thread: libldap's calls block (connect, bind, StartTLS, a page of a
 * search), and the socket server must answer PAM within its deadline whatever
 * the directory does. The thread talks to the rest of the daemon only through
 * this interface: a status snapshot under a mutex, a request queue, and an
 * eventfd that wakes the socket thread's event loop when a request finishes.
 * It writes the store through its own handle and publishes the NSS snapshot. */

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "phi/macro.h"

struct phi_sync_status {
        char state[32];             /* starting, connecting, refreshing, live, idle (paged: until the
                                     * next reload), disconnected (waiting to retry), refused */
        char mode[16];              /* syncrepl or paged (what the server supports) */
        char uri[256];              /* server in use or last tried */
        char last_error[512];
        char snapshot[128];         /* "published" or why not */
        uint64_t last_success;      /* Unix seconds of the last applied refresh or change */
        uint64_t last_attempt;
        uint64_t outage_since;      /* 0 while the directory answers */
        uint64_t users, groups, generation;
        uint64_t last_duration_ms;
        uint64_t full_refreshes;        /* this process: complete reloads */
        uint64_t incremental_refreshes; /* this process: resumed from the cookie */
        uint64_t changes_applied;       /* this process: entries written or deleted */
        uint64_t entries_received;      /* this process: entries and UUIDs read from LDAP */
        uint64_t entries_rejected;      /* this process: entries that failed validation */
        uint64_t refreshes_refused;     /* this process: empty or shrinking refreshes */
        uint64_t reconnects;            /* this process: connections made after a failure */
        uint64_t failures;              /* this process: failed connects, searches and refreshes */
        uint64_t nested_cycles;
        bool have_cookie;
};

typedef struct phi_sync phi_sync;

int phi_sync_start(struct phi_config *config, phi_sync **ret) _phi_warn_unused_ _phi_nonnull_;
/* Stops the thread (at most about a second) and frees everything. */
void phi_sync_free(phi_sync *s);
PHI_DEFINE_TRIVIAL_CLEANUP_FUNC(phi_sync *, phi_sync_free);

void phi_sync_get_status(phi_sync *s, struct phi_sync_status *ret) _phi_nonnull_;

/* Asks for a sync (full: a complete paged reload). Returns a ticket; the eventfd
 * becomes readable when it (or a later request) has been carried out. */
uint64_t phi_sync_request(phi_sync *s, bool full) _phi_nonnull_;
/* true once ticket is done: *ret_error 0 or negative errno, message for a person. */
bool phi_sync_request_result(phi_sync *s, uint64_t ticket, int *ret_error, char *message,
                             size_t message_len) _phi_nonnull_;
int phi_sync_event_fd(phi_sync *s) _phi_nonnull_;
/* Drains the eventfd. */
void phi_sync_event_ack(phi_sync *s) _phi_nonnull_;

/* Hands a new configuration to the thread; it reconnects with it. Takes a reference. */
void phi_sync_reconfigure(phi_sync *s, struct phi_config *config) _phi_nonnull_;

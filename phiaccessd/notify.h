/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Notifications: [notify] command is run with one JSON object on its standard
 * input for each elevation request, approval, denial, expiry, revoke and
 * cancel, each break-glass and each lockout (a mail to the approvers, a chat
 * message). On a thread of its own, one command at a time, each with a
 * timeout and the queue bounded: a slow or hanging command delays no login
 * and no approval; what does not fit is counted and journaled, never waited
 * for.
 */

#include <stdbool.h>
#include <stdint.h>

#include "journal.h"
#include "phi/macro.h"

#define PHI_NOTIFY_QUEUE_MAX 256

struct phi_notify_config {
        const char *command;        /* absolute path; NULL or "": off */
        uint64_t timeout;           /* seconds a run may take before it is killed */
        const char *host;           /* this host's name, for the message */
};

/* Starts the thread and registers the journal's notify hook. */
int phi_notify_start(const struct phi_notify_config *c) _phi_warn_unused_ _phi_nonnull_;
/* Finishes the command that runs, drops (and logs) what waits, and stops. */
void phi_notify_stop(void);
/* Counters for status: runs done, failed (exit status, signal, timeout), dropped (queue full). */
void phi_notify_stats(uint64_t *ret_sent, uint64_t *ret_failed, uint64_t *ret_dropped) _phi_nonnull_;

/* Whether an event is one that is notified. */
bool phi_notify_wants(enum phi_event event);
/* The JSON object for an event (for the thread and for tests): NUL-terminated
 * in buf; -ENOBUFS when it does not fit. */
int phi_notify_format(enum phi_event event, int priority, const struct phi_journal_field *fields, size_t n,
                      const char *message, const char *host, uint64_t time_us, char *buf, size_t cap)
        _phi_warn_unused_ _phi_nonnull_args_(3, 5, 8);

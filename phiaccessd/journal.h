/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Security events to the journal, with the fields of SPEC.md. Diagnostics that
 * are not security events use phi_log() (no PHI_EVENT, no MESSAGE_ID), so a query
 * for PHI_EVENT= finds only what an auditor needs. */

#include <stdbool.h>
#include <stddef.h>
#include <syslog.h>

#include "events.h"
#include "phi/macro.h"

struct phi_journal_field {
        const char *name;       /* e.g. "PHI_USER" */
        const char *value;      /* NULL: field left out */
};

/* Sends one event: MESSAGE (formatted), MESSAGE_ID and PHI_EVENT from the event,
 * PRIORITY, SYSLOG_IDENTIFIER=phiaccessd and the given fields. Never fails the
 * caller: an event that cannot be journaled is written to stderr. */
void phi_journal_event(enum phi_event event, int priority, const struct phi_journal_field *fields,
                       size_t n_fields, const char *fmt, ...) _phi_printf_(5, 6);

/* The same, written by a thread of the journal's (started on the first call):
 * for the event loop, which must not wait for a journald that falls behind.
 * Entries keep their order; past 1,024 waiting the caller waits for room
 * rather than drop one. phi_journal_async_stop() writes all that wait. */
void phi_journal_event_async(enum phi_event event, int priority, const struct phi_journal_field *fields,
                             size_t n_fields, const char *fmt, ...) _phi_printf_(5, 6);
/* Writes what waits and ends the thread; later entries are written at once. */
void phi_journal_async_stop(void);

/* The audit log takes every event too (audit_log.h): set, each event journaled
 * by phi_journal_event[_async] on any thread is handed to the hook first,
 * except on a thread that appends its own events to the audit log in the
 * transaction of their change (the verifier's) and says so with
 * phi_journal_audited_here(true). The hook must copy what it keeps. */
typedef void (*phi_journal_audit_hook)(void *userdata, enum phi_event event, int priority,
                                       const struct phi_journal_field *fields, size_t n_fields);
void phi_journal_set_audit_hook(phi_journal_audit_hook hook, void *userdata);
void phi_journal_audited_here(bool yes);
/* Notifications (notify.h): every event journaled, on any thread, with its
 * message; the hook must not block (it queues). */
typedef void (*phi_journal_notify_hook)(void *userdata, enum phi_event event, int priority,
                                        const struct phi_journal_field *fields, size_t n_fields, const char *message);
void phi_journal_set_notify_hook(phi_journal_notify_hook hook, void *userdata);

/* Something of a user's access history that is not one of SPEC.md's events
 * (a token offered to a login, say): the fields, so that `journalctl
 * PHI_USER=...` shows it, but no PHI_EVENT and no MESSAGE_ID. */
void phi_journal_note(int priority, const struct phi_journal_field *fields, size_t n_fields, const char *fmt, ...)
        _phi_printf_(4, 5);

/* Diagnostics: journal (SYSLOG_IDENTIFIER=phiaccessd) and stderr when stderr is
 * not already the journal. */
void phi_log(int priority, const char *fmt, ...) _phi_printf_(2, 3);

/* Test hook: minimum priority printed to stderr (default LOG_INFO). */
void phi_log_set_max_level(int priority);

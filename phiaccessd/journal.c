/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include "journal.h"

#define IDENT "phiaccessd"
#define MAX_FIELDS 32

static int max_level = LOG_INFO;

void phi_log_set_max_level(int priority) {
        max_level = priority;
}

/* Under systemd stderr is a journal stream already; printing there too would log twice. */
static bool stderr_is_journal(void) {
        return getenv("JOURNAL_STREAM") != NULL;
}

static void to_stderr(int priority, const char *msg) {
        if (priority <= max_level && !stderr_is_journal())
                fprintf(stderr, IDENT ": %s\n", msg);
}

/* One entry: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, the event's MESSAGE_ID and
 * PHI_EVENT when there is one, and the fields. */
static void journal_send(const struct phi_event_info *event, int priority, const struct phi_journal_field *fields,
                         size_t n_fields, const char *msg) {
        struct iovec iov[MAX_FIELDS + 6];
        char *parts[MAX_FIELDS + 6] = { 0 };
        size_t n = 0;
        int r;

        if (asprintf(&parts[n++], "MESSAGE=%s", msg) < 0 ||
            asprintf(&parts[n++], "PRIORITY=%d", priority) < 0 ||
            asprintf(&parts[n++], "SYSLOG_IDENTIFIER=" IDENT) < 0 ||
            (event && (asprintf(&parts[n++], "MESSAGE_ID=%s", event->message_id) < 0 ||
                       asprintf(&parts[n++], "PHI_EVENT=%s", event->name) < 0))) {
                parts[n - 1] = NULL;
                goto out;
        }
        for (size_t i = 0; i < n_fields && n < PHI_ELEMENTSOF(parts); i++) {
                if (!fields[i].value)
                        continue;
                if (asprintf(&parts[n], "%s=%s", fields[i].name, fields[i].value) < 0) {
                        parts[n] = NULL;
                        goto out;
                }
                n++;
        }
        for (size_t i = 0; i < n; i++)
                iov[i] = (struct iovec){ .iov_base = parts[i], .iov_len = strlen(parts[i]) };
        r = sd_journal_sendv(iov, (int) n);
        if (r < 0 || !stderr_is_journal())
                to_stderr(r < 0 ? LOG_CRIT : priority, msg);
out:
        for (size_t i = 0; i < PHI_ELEMENTSOF(parts); i++)
                free(parts[i]);
}

void phi_journal_event(enum phi_event event, int priority, const struct phi_journal_field *fields,
                       size_t n_fields, const char *fmt, ...) {
        char msg[2048];
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (event < _PHI_EVENT_MAX)
                journal_send(&phi_events[event], priority, fields, n_fields, msg);
}

void phi_journal_note(int priority, const struct phi_journal_field *fields, size_t n_fields, const char *fmt, ...) {
        char msg[2048];
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        journal_send(NULL, priority, fields, n_fields, msg);
}

void phi_log(int priority, const char *fmt, ...) {
        char msg[2048];
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        (void) sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", priority,
                               "SYSLOG_IDENTIFIER=" IDENT, NULL);
        to_stderr(priority, msg);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <pthread.h>
#include <signal.h>
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

/* One entry as its journal fields: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, the
 * event's MESSAGE_ID and PHI_EVENT when there is one, and the fields. */
struct entry {
        struct entry *next;
        int priority;
        size_t n;
        char *parts[MAX_FIELDS + 6];
        char msg[];             /* for stderr */
};

static void entry_free(struct entry *e) {
        if (!e)
                return;
        for (size_t i = 0; i < e->n; i++)
                free(e->parts[i]);
        free(e);
}

static struct entry *entry_new(const struct phi_event_info *event, int priority,
                               const struct phi_journal_field *fields, size_t n_fields, const char *msg) {
        size_t len = strlen(msg) + 1;
        struct entry *e = calloc(1, sizeof(*e) + len);

        if (!e)
                return NULL;
        memcpy(e->msg, msg, len);
        e->priority = priority;
        /* asprintf leaves its pointer undefined on failure: the slot is cleared. */
#define ADD(...) (asprintf(&e->parts[e->n], __VA_ARGS__) < 0 ? (e->parts[e->n] = NULL, false) : (e->n++, true))
        if (!ADD("MESSAGE=%s", msg) || !ADD("PRIORITY=%d", priority) || !ADD("SYSLOG_IDENTIFIER=" IDENT) ||
            (event && (!ADD("MESSAGE_ID=%s", event->message_id) || !ADD("PHI_EVENT=%s", event->name))))
                goto fail;
        for (size_t i = 0; i < n_fields && e->n < PHI_ELEMENTSOF(e->parts); i++)
                if (fields[i].value && !ADD("%s=%s", fields[i].name, fields[i].value))
                        goto fail;
#undef ADD
        return e;
fail:
        entry_free(e);
        return NULL;
}

static void entry_send(const struct entry *e) {
        struct iovec iov[MAX_FIELDS + 6];
        int r;

        for (size_t i = 0; i < e->n; i++)
                iov[i] = (struct iovec){ .iov_base = e->parts[i], .iov_len = strlen(e->parts[i]) };
        r = sd_journal_sendv(iov, (int) e->n);
        if (r < 0 || !stderr_is_journal())
                to_stderr(r < 0 ? LOG_CRIT : e->priority, e->msg);
}

static void journal_send(const struct phi_event_info *event, int priority, const struct phi_journal_field *fields,
                         size_t n_fields, const char *msg) {
        struct entry *e = entry_new(event, priority, fields, n_fields, msg);

        if (e)
                entry_send(e);
        else
                to_stderr(LOG_CRIT, msg);
        entry_free(e);
}

/* ------------------------------------------------------------ the writer
 * The event loop's entries are written by a thread of their own (started on
 * the first one), so a journald that falls behind does not stall the request
 * socket. The queue is bounded: past ASYNC_MAX waiting entries the caller
 * waits for room, so nothing is dropped. */

#define ASYNC_MAX 1024

static struct {
        pthread_mutex_t lock;
        pthread_cond_t wake, room;
        struct entry *head, *tail;
        size_t n;
        bool started, failed, stop;
        pthread_t thread;
} async = { .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER, .room = PTHREAD_COND_INITIALIZER };

static void *writer_main(void *arg) {
        (void) arg;
        pthread_mutex_lock(&async.lock);
        for (;;) {
                struct entry *e;
                while (!async.head && !async.stop)
                        pthread_cond_wait(&async.wake, &async.lock);
                if (!async.head)
                        break;
                e = async.head;
                async.head = e->next;
                if (!async.head)
                        async.tail = NULL;
                async.n--;
                pthread_cond_signal(&async.room);
                pthread_mutex_unlock(&async.lock);
                entry_send(e);
                entry_free(e);
                pthread_mutex_lock(&async.lock);
        }
        pthread_mutex_unlock(&async.lock);
        return NULL;
}

/* Under the lock: false when there is no writer (the caller writes itself). */
static bool writer_ready(void) {
        if (async.started || async.failed)
                return async.started;
        {
                sigset_t all, old;
                /* The thread takes no signal: they are for the event loop's signalfd. */
                sigfillset(&all);
                (void) pthread_sigmask(SIG_SETMASK, &all, &old);
                async.failed = pthread_create(&async.thread, NULL, writer_main, NULL) != 0;
                (void) pthread_sigmask(SIG_SETMASK, &old, NULL);
        }
        if (!async.failed)
                (void) pthread_setname_np(async.thread, "phi-journal-rq");
        async.started = !async.failed;
        return async.started;
}

/* ------------------------------------------------------- the audit hook */

static struct {
        pthread_mutex_t lock;
        phi_journal_audit_hook hook;
        void *userdata;
} audit = { .lock = PTHREAD_MUTEX_INITIALIZER };
static _Thread_local bool audited_here;

void phi_journal_set_audit_hook(phi_journal_audit_hook hook, void *userdata) {
        pthread_mutex_lock(&audit.lock);
        audit.hook = hook;
        audit.userdata = userdata;
        pthread_mutex_unlock(&audit.lock);
}

static struct {
        pthread_mutex_t lock;
        phi_journal_notify_hook hook;
        void *userdata;
} notify = { .lock = PTHREAD_MUTEX_INITIALIZER };

void phi_journal_set_notify_hook(phi_journal_notify_hook hook, void *userdata) {
        pthread_mutex_lock(&notify.lock);
        notify.hook = hook;
        notify.userdata = userdata;
        pthread_mutex_unlock(&notify.lock);
}

static void notify_forward(enum phi_event event, int priority, const struct phi_journal_field *fields, size_t n,
                           const char *msg) {
        pthread_mutex_lock(&notify.lock);
        if (notify.hook)
                notify.hook(notify.userdata, event, priority, fields, n, msg);
        pthread_mutex_unlock(&notify.lock);
}

void phi_journal_audited_here(bool yes) {
        audited_here = yes;
}

static void audit_forward(enum phi_event event, int priority, const struct phi_journal_field *fields, size_t n) {
        if (audited_here)
                return;
        /* Under the lock, so that the hook's userdata (the verifier) is not
         * freed while a call is on its way to it. */
        pthread_mutex_lock(&audit.lock);
        if (audit.hook)
                audit.hook(audit.userdata, event, priority, fields, n);
        pthread_mutex_unlock(&audit.lock);
}

void phi_journal_event_async(enum phi_event event, int priority, const struct phi_journal_field *fields,
                             size_t n_fields, const char *fmt, ...) {
        struct entry *e;
        char msg[2048];
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (event >= _PHI_EVENT_MAX)
                return;
        audit_forward(event, priority, fields, n_fields);
        notify_forward(event, priority, fields, n_fields, msg);
        e = entry_new(&phi_events[event], priority, fields, n_fields, msg);
        if (!e) {
                to_stderr(LOG_CRIT, msg);
                return;
        }
        pthread_mutex_lock(&async.lock);
        if (async.stop || !writer_ready()) {
                pthread_mutex_unlock(&async.lock);
                entry_send(e);
                entry_free(e);
                return;
        }
        while (async.n >= ASYNC_MAX)
                pthread_cond_wait(&async.room, &async.lock);
        if (async.tail)
                async.tail->next = e;
        else
                async.head = e;
        async.tail = e;
        async.n++;
        pthread_cond_signal(&async.wake);
        pthread_mutex_unlock(&async.lock);
}

void phi_journal_async_stop(void) {
        bool joined;

        pthread_mutex_lock(&async.lock);
        async.stop = true;
        joined = async.started;
        pthread_cond_signal(&async.wake);
        pthread_mutex_unlock(&async.lock);
        if (joined)
                (void) pthread_join(async.thread, NULL);
        pthread_mutex_lock(&async.lock);
        async.started = false;
        pthread_mutex_unlock(&async.lock);
}

void phi_journal_event(enum phi_event event, int priority, const struct phi_journal_field *fields,
                       size_t n_fields, const char *fmt, ...) {
        char msg[2048];
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (event >= _PHI_EVENT_MAX)
                return;
        audit_forward(event, priority, fields, n_fields);
        notify_forward(event, priority, fields, n_fields, msg);
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

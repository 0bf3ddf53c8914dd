/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Directory synchronisation (see sync.h for the threading model).
 *
 * Two ways to read the directory:
 *   - a full refresh: paged searches (RFC 2696) of the user and group subtrees;
 *     used with servers that do not offer RFC 4533, for `phictl sync --full`,
 *     and every refresh_interval in paged mode;
 *   - RFC 4533 refreshAndPersist: one search with the Sync Request control over
 *     the user and group filters. Its refresh stage brings the store up to date
 *     from the stored cookie (or loads everything without one); its persist
 *     stage then streams each change as it happens.
 *
 * RFC 4533 is spoken here with libldap's message-level calls (ldap_search_ext,
 * ldap_result with LDAP_MSG_ONE, ldap_parse_intermediate, ber_scanf) rather than
 * its ldap_sync_* helpers, because ldap_sync_init() waits in an endless loop
 * until the refresh ends (no way to stop it for shutdown, no bound when a server
 * stalls), ignores the callbacks' errors during the refresh, and hands callbacks
 * the head of a message chain instead of each message. A daemon has to stop on
 * SIGTERM within a second and must not advance the cookie past a change it
 * failed to store, so it drives the protocol itself: every message is handled
 * on its own, and the cookie is written in the same transaction as the changes
 * it covers.
 *
 * Safety rules:
 *   - a refresh is staged in memory and applied in one transaction, after the
 *     shrink check: a refresh that returns no users, or would remove more than
 *     shrink_threshold percent of them, is refused and journaled, and the last
 *     good data stays in the store and the snapshot;
 *   - every entry passes ldap_entry.c's validation; a bad one is skipped,
 *     counted and logged;
 *   - any failure, whether connecting, searching (a lost connection, a server
 *     limit, a refused search) or storing, leaves the store and snapshot as
 *     they are, drops the connection and waits before the next attempt, 1 s
 *     growing to 30 s, so a server that accepts the connection and then fails
 *     every search is not hammered; the failure is counted each time but
 *     journaled only when it starts or changes kind, and again on recovery;
 *   - URIs are tried in order from the one that last worked; a server that
 *     fails after accepting the connection is passed over on the next attempt.
 */

#include <fcntl.h>
#include <ldap.h>
#include <lber.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <time.h>

#include "journal.h"
#include "ldap_entry.h"
#include "phi/client.h"
#include "phi/secret.h"
#include "snapshot_publish.h"
#include "store.h"
#include "sync.h"

#define POLL_MS 500                 /* persist stage: how often control requests are checked */
#define BATCH_MAX 2000              /* persist stage: changes per transaction at most */
#define BACKOFF_MIN 1
#define BACKOFF_MAX 30
#define MAX_ATTRS 16
/* Largest LDAP message accepted: a group of PHI_LDAP_MEMBERS_MAX member DNs fits;
 * a server (or whatever answers at its address) cannot make us allocate more. */
#define MAX_PDU (64u * 1024u * 1024u)

struct phi_sync {
        pthread_t thread;
        bool started;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        int event_fd;

        /* under lock */
        struct phi_config *config;
        struct phi_config *new_config;
        bool stop;
        uint64_t next_ticket;
        uint64_t want_ticket;       /* highest ticket asked for */
        bool want_full;
        uint64_t done_ticket;       /* every ticket <= this is done */
        int done_error;
        char done_message[256];
        struct phi_sync_status status;
};

/* A refresh being collected: what the directory sent, before it is applied. */
struct staged {
        struct phi_identities ids;
        char **present;             /* keys reported unchanged */
        size_t n_present, cap_present;
        char **deletes;             /* keys reported deleted */
        size_t n_deletes, cap_deletes;
        bool present_mode;          /* unmentioned entries are gone */
        bool full;                  /* the set is the whole directory */
        size_t received, rejected;
        int64_t started_ms;
};

/* Why the directory cannot be used; an outage is journaled when it starts and
 * when its kind changes, not on every retry. */
enum fault {
        FAULT_NONE,
        FAULT_UNAVAILABLE,     /* cannot connect or bind, connection lost or stalled */
        FAULT_LIMIT,           /* a size, time or administrative limit of the server */
        FAULT_SEARCH,          /* the server refused or broke off the search */
        FAULT_OTHER,           /* store, memory */
};

struct worker {
        phi_sync *s;
        struct phi_config *c;
        struct phi_ldap_scope scope;
        phi_store *store;
        LDAP *ld;
        char uri[256];
        bool syncrepl;
        char *attrs[MAX_ATTRS];
        uint64_t synced_at;         /* last_success as the latest commit stored it */
        uint8_t *cookie;            /* committed with the data it covers */
        size_t cookie_len;
        char *search;               /* fingerprint of the search the cookie belongs to */
        uint8_t *pending_cookie;    /* received, not yet committed */
        size_t pending_cookie_len;
        uint64_t generation;
        unsigned backoff;
        size_t uri_first;           /* connect_any starts here */
        size_t uri_index;           /* the URI of the connection */
        bool mode_known;            /* w->syncrepl tells the mode of the last server used */
        uint64_t next_refresh;      /* paged mode: when the next reload is due (0: at once) */
        /* the outage in progress */
        enum fault cause;           /* set where the current attempt failed */
        enum fault fault;           /* kind of outage last journaled; NONE while healthy */
        uint64_t fault_since, fault_count;
        char fault_error[512];
        /* persist batch */
        bool txn;
        size_t batch_puts, batch_deletes, batch_rejected;
        int64_t batch_started_ms;
        /* request being served by the current refresh (syncrepl "sync") */
        uint64_t serving_ticket;
};

enum {
        RUN_STOP = 1,          /* stop, reconfigure or a request needs the connection */
        RUN_RESTART,           /* search ended by the server; start it again */
        RUN_RELOAD,            /* cookie too old: restart without it */
        RUN_REFUSED,           /* refresh refused by the shrink check */
};

/* ------------------------------------------------------------------ status */

#define LOCKED(s) for (int _once = (pthread_mutex_lock(&(s)->lock), 1); _once; \
                       _once = 0, pthread_mutex_unlock(&(s)->lock))

static uint64_t now_s(void) {
        return (uint64_t) time(NULL);
}

static void wake_main(phi_sync *s) {
        uint64_t one = 1;
        (void) !write(s->event_fd, &one, sizeof(one));
}

static void set_state(phi_sync *s, const char *state) {
        LOCKED(s) snprintf(s->status.state, sizeof(s->status.state), "%s", state);
}

static void set_error(phi_sync *s, const char *fmt, ...) _phi_printf_(2, 3);
static void set_error(phi_sync *s, const char *fmt, ...) {
        char buf[512];
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        LOCKED(s) snprintf(s->status.last_error, sizeof(s->status.last_error), "%s", buf);
}

static void complete_requests(phi_sync *s, uint64_t upto, int error, const char *fmt, ...)
        _phi_printf_(4, 5);
static void complete_requests(phi_sync *s, uint64_t upto, int error, const char *fmt, ...) {
        va_list ap;

        if (upto == 0)
                return;
        LOCKED(s) {
                if (upto > s->done_ticket) {
                        s->done_ticket = upto;
                        s->done_error = error;
                        va_start(ap, fmt);
                        (void) vsnprintf(s->done_message, sizeof(s->done_message), fmt, ap);
                        va_end(ap);
                }
        }
        wake_main(s);
}

/* A pending request, if any: its ticket and kind. Does not consume it. */
static uint64_t pending_request(phi_sync *s, bool *ret_full) {
        uint64_t t = 0;

        LOCKED(s) {
                if (s->want_ticket > s->done_ticket) {
                        t = s->want_ticket;
                        *ret_full = s->want_full;
                }
        }
        return t;
}

static void take_request(phi_sync *s) {
        LOCKED(s) s->want_full = false;
}

static bool stopping(phi_sync *s) {
        bool stop;

        pthread_mutex_lock(&s->lock);
        stop = s->stop;
        pthread_mutex_unlock(&s->lock);
        return stop;
}

static bool should_stop(phi_sync *s) {
        bool stop;

        pthread_mutex_lock(&s->lock);
        stop = s->stop || s->new_config;
        pthread_mutex_unlock(&s->lock);
        return stop;
}

/* Sleeps up to seconds, or until a request, stop or reconfigure arrives. */
static void wait_for(phi_sync *s, uint64_t seconds) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += (time_t) seconds;
        pthread_mutex_lock(&s->lock);
        while (!s->stop && !s->new_config && s->want_ticket <= s->done_ticket)
                if (pthread_cond_timedwait(&s->cond, &s->lock, &ts) == ETIMEDOUT)
                        break;
        pthread_mutex_unlock(&s->lock);
}

static void journal_sync(struct worker *w, int priority, const char *outcome, const char *mode,
                         uint64_t users, uint64_t groups, uint64_t duration_ms, const char *reason,
                         const char *fmt, ...) _phi_printf_(9, 10);
static void journal_sync(struct worker *w, int priority, const char *outcome, const char *mode,
                         uint64_t users, uint64_t groups, uint64_t duration_ms, const char *reason,
                         const char *fmt, ...) {
        char u[24], g[24], d[24], msg[1024];
        va_list ap;

        snprintf(u, sizeof(u), "%llu", (unsigned long long) users);
        snprintf(g, sizeof(g), "%llu", (unsigned long long) groups);
        snprintf(d, sizeof(d), "%llu", (unsigned long long) duration_ms);
        va_start(ap, fmt);
        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        const struct phi_journal_field fields[] = {
                { "PHI_OUTCOME", outcome },
                { "PHI_SYNC_MODE", mode },
                { "PHI_USERS", u },
                { "PHI_GROUPS", g },
                { "PHI_DURATION_MS", d },
                { "PHI_URI", w->uri[0] ? w->uri : NULL },
                { "PHI_REASON", reason },
        };
        phi_journal_event(PHI_EVENT_LDAP_SYNC, priority, fields, PHI_ELEMENTSOF(fields), "%s", msg);
}

/* -------------------------------------------------------------- connection */

static void disconnect(struct worker *w) {
        if (w->ld) {
                (void) ldap_unbind_ext(w->ld, NULL, NULL);
                w->ld = NULL;
        }
}

static int set_timeout_opt(LDAP *ld, int opt, uint64_t seconds) {
        struct timeval tv = { .tv_sec = (time_t) seconds };
        return ldap_set_option(ld, opt, &tv);
}

static int connect_one(struct worker *w, const char *uri, char *err, size_t err_len) {
        const struct phi_config *c = w->c;
        int version = LDAP_VERSION3, demand = LDAP_OPT_X_TLS_DEMAND, rc;
        int idle = 30, probes = 3, interval = 10, zero = 0;
        _cleanup_secret_str_ char *password = NULL;
        struct berval cred = { 0 };
        LDAP *ld = NULL;

        rc = ldap_initialize(&ld, uri);
        if (rc != LDAP_SUCCESS) {
                snprintf(err, err_len, "%s: %s", uri, ldap_err2string(rc));
                return -EINVAL;
        }
        (void) ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
        {
                Sockbuf *sb = NULL;
                ber_len_t max = MAX_PDU;
                if (ldap_get_option(ld, LDAP_OPT_SOCKBUF, &sb) == LDAP_OPT_SUCCESS && sb)
                        (void) ber_sockbuf_ctrl(sb, LBER_SB_OPT_SET_MAX_INCOMING, &max);
        }
        (void) ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
        (void) set_timeout_opt(ld, LDAP_OPT_NETWORK_TIMEOUT, c->network_timeout);
        (void) set_timeout_opt(ld, LDAP_OPT_TIMEOUT, c->network_timeout * 3);
        /* A directory that vanishes without a FIN (cable, firewall) is noticed by
         * TCP keepalive instead of hanging the persist stage forever. */
        (void) ldap_set_option(ld, LDAP_OPT_X_KEEPALIVE_IDLE, &idle);
        (void) ldap_set_option(ld, LDAP_OPT_X_KEEPALIVE_PROBES, &probes);
        (void) ldap_set_option(ld, LDAP_OPT_X_KEEPALIVE_INTERVAL, &interval);
        if (c->tls != PHI_TLS_NONE) {
                (void) ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand);
                if (c->ca_file)
                        (void) ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, c->ca_file);
                (void) ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero);
        }
        if (c->tls == PHI_TLS_STARTTLS) {
                rc = ldap_start_tls_s(ld, NULL, NULL);
                if (rc != LDAP_SUCCESS) {
                        snprintf(err, err_len, "%s: StartTLS failed: %s", uri, ldap_err2string(rc));
                        goto fail;
                }
        }
        if (c->bind_dn) {
                int r = phi_config_read_password(c->bind_password_file, &password);
                if (r < 0) {
                        snprintf(err, err_len, "cannot read bind_password_file %s: %s",
                                 c->bind_password_file, phi_errno_text(r));
                        goto fail;
                }
                cred.bv_val = password;
                cred.bv_len = strlen(password);
        }
        /* Also the anonymous case binds, so that an unreachable server shows up
         * here, where the next URI can be tried, and not in the first search. */
        rc = ldap_sasl_bind_s(ld, c->bind_dn ? c->bind_dn : "", LDAP_SASL_SIMPLE, &cred, NULL, NULL,
                              NULL);
        if (rc != LDAP_SUCCESS) {
                snprintf(err, err_len, "%s: bind failed: %s", uri, ldap_err2string(rc));
                goto fail;
        }
        w->ld = ld;
        return 0;
fail:
        (void) ldap_unbind_ext(ld, NULL, NULL);
        return -ECONNREFUSED;
}

/* Asks the root DSE whether the server offers the Sync Request control. */
static bool server_offers_syncrepl(LDAP *ld) {
        char attr[] = "supportedControl";
        char *attrs[] = { attr, NULL };
        struct timeval tv = { .tv_sec = 10 };
        LDAPMessage *res = NULL, *e;
        bool found = false;

        if (ldap_search_ext_s(ld, "", LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 0, NULL, NULL, &tv,
                              1, &res) == LDAP_SUCCESS &&
            (e = ldap_first_entry(ld, res))) {
                struct berval **vals = ldap_get_values_len(ld, e, attr);
                for (size_t i = 0; vals && vals[i]; i++)
                        if (vals[i]->bv_len == strlen(LDAP_CONTROL_SYNC) &&
                            memcmp(vals[i]->bv_val, LDAP_CONTROL_SYNC, vals[i]->bv_len) == 0)
                                found = true;
                ldap_value_free_len(vals);
        }
        ldap_msgfree(res);
        return found;
}

/* Tries every URI once, from w->uri_first on: the one that last worked, or the
 * next one after a server that failed once connected. */
static int connect_any(struct worker *w) {
        char err[512] = "no uri configured";
        size_t n = w->c->n_uris;

        w->cause = FAULT_UNAVAILABLE;
        for (size_t k = 0; k < n; k++) {
                size_t i = (w->uri_first + k) % n;
                LOCKED(w->s) snprintf(w->s->status.uri, sizeof(w->s->status.uri), "%s", w->c->uris[i]);
                if (connect_one(w, w->c->uris[i], err, sizeof(err)) == 0) {
                        snprintf(w->uri, sizeof(w->uri), "%s", w->c->uris[i]);
                        w->uri_first = w->uri_index = i;
                        w->syncrepl = w->c->sync_mode == PHI_SYNC_SYNCREPL ||
                                      (w->c->sync_mode == PHI_SYNC_AUTO && server_offers_syncrepl(w->ld));
                        w->mode_known = true;
                        w->cause = FAULT_NONE;
                        LOCKED(w->s) snprintf(w->s->status.mode, sizeof(w->s->status.mode), "%s",
                                              w->syncrepl ? "syncrepl" : "paged");
                        return 0;
                }
                phi_log(LOG_WARNING, "directory %s unusable: %s", w->c->uris[i], err);
        }
        set_error(w->s, "%s", err);
        return -ECONNREFUSED;
}

/* A search that ended with LDAP result rc. A server limit is named as one,
 * with what lifts it: "Size limit exceeded" alone reads like a fault that a
 * retry could cure, and the usual cause (an anonymous bind, which slapd
 * limits to 500 entries) is not the directory's size. */
static void search_error(struct worker *w, int rc, const char *what, size_t received, const char *text) {
        const char *limit = NULL, *knob = NULL;
        char bound[300];

        switch (rc) {
        case LDAP_SIZELIMIT_EXCEEDED:
                limit = "size limit";
                knob = "OpenLDAP: olcSizeLimit, sizelimit in slapd.conf, or a limits directive for the bind DN";
                break;
        case LDAP_TIMELIMIT_EXCEEDED:
                limit = "time limit";
                knob = "OpenLDAP: olcTimeLimit, timelimit in slapd.conf, or a limits directive for the bind DN";
                break;
        case LDAP_ADMINLIMIT_EXCEEDED:
                limit = "administrative limit";
                knob = "OpenLDAP: size.pr, size.prtotal or size.unchecked of a limits directive; "
                       "Active Directory: MaxPageSize or MaxResultSetSize of its LDAP policy";
                break;
        default:
                break;
        }
        if (w->c->bind_dn)
                snprintf(bound, sizeof(bound), "bound as %s", w->c->bind_dn);
        else
                snprintf(bound, sizeof(bound), "bound anonymously");
        if (limit) {
                w->cause = FAULT_LIMIT;
                set_error(w->s, "%s stopped by the directory's %s (%s) after %zu entries, %s: bind as an "
                          "account the limit does not apply to ([ldap] bind_dn), or raise the limit on the "
                          "server (%s)", what, limit, ldap_err2string(rc), received, bound, knob);
        } else {
                w->cause = rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR || rc == LDAP_TIMEOUT
                                   ? FAULT_UNAVAILABLE : FAULT_SEARCH;
                set_error(w->s, "%s failed: %s%s%s", what, ldap_err2string(rc), text && *text ? ": " : "",
                          text && *text ? text : "");
        }
}

/* Every failure after the start ends here (after_connect: the server had
 * accepted the connection): the connection is dropped, the failure counted,
 * journaled only if it starts an outage or changes its kind, waiting requests
 * answered, and the next attempt waits 1 s doubling to 30 s; a request cuts
 * the wait short. Without the wait a server that accepts connections and
 * fails every search (a size limit) was asked again as fast as it answered. */
static void sync_failed(struct worker *w, const char *phase, bool after_connect) {
        phi_sync *s = w->s;
        enum fault f = w->cause != FAULT_NONE ? w->cause : FAULT_OTHER;
        bool unreachable = f == FAULT_UNAVAILABLE && !after_connect, full = false;
        uint64_t users = 0, groups = 0, ticket;
        char error[512];

        disconnect(w);
        if (after_connect && w->c->n_uris > 1)
                w->uri_first = (w->uri_index + 1) % w->c->n_uris;
        LOCKED(s) {
                s->status.failures++;
                if (s->status.outage_since == 0)
                        s->status.outage_since = now_s();
                snprintf(s->status.state, sizeof(s->status.state), "disconnected");
                snprintf(error, sizeof(error), "%s", s->status.last_error);
                users = s->status.users;
                groups = s->status.groups;
        }
        if (w->fault == FAULT_NONE) {
                w->fault_since = now_s();
                w->fault_count = 0;
        }
        w->fault_count++;
        snprintf(w->fault_error, sizeof(w->fault_error), "%s", error);
        /* Lost, then unreachable while reconnecting, is one outage. */
        if (f != w->fault) {
                const char *what = f == FAULT_UNAVAILABLE ? (after_connect ? "Directory connection lost"
                                                                           : "Directory unreachable")
                                   : f == FAULT_LIMIT  ? "Directory search stopped by a server limit"
                                   : f == FAULT_SEARCH ? "Directory search failed"
                                                       : "Directory synchronisation failed";
                journal_sync(w, f == FAULT_UNAVAILABLE ? LOG_WARNING : LOG_ERR,
                             f == FAULT_UNAVAILABLE && after_connect ? "disconnected" : "failed", phase, users,
                             groups, 0, error,
                             "%s (%s); serving the last good data, retrying in %u s, then with delays growing "
                             "to %u s",
                             what, error, w->backoff, (unsigned) BACKOFF_MAX);
                w->fault = f;
        }
        ticket = pending_request(s, &full);
        complete_requests(s, ticket, unreachable ? -EHOSTUNREACH : -EIO, "%s%s",
                          unreachable ? "directory unreachable: " : "", error);
        wait_for(s, w->backoff);
        w->backoff = w->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : w->backoff * 2;
}

/* A refresh completed: an outage in progress is over, journaled once. */
static void sync_recovered(struct worker *w) {
        uint64_t users = 0, groups = 0, secs = now_s() - w->fault_since;

        if (w->fault == FAULT_NONE)
                return;
        LOCKED(w->s) {
                users = w->s->status.users;
                groups = w->s->status.groups;
        }
        journal_sync(w, LOG_NOTICE, "recovered", w->syncrepl ? "syncrepl" : "paged", users, groups, secs * 1000,
                     w->fault_error,
                     "Directory synchronisation from %s works again after %llu failed attempts in %llu s "
                     "(the last: %s)",
                     w->uri, (unsigned long long) w->fault_count, (unsigned long long) secs, w->fault_error);
        w->fault = FAULT_NONE;
        w->fault_count = 0;
}

/* ----------------------------------------------------------------- entries */

/* Collects an entry's attributes in ldap_entry.c's libldap-free form and
 * converts it. *ret_kind NONE with 0: the entry is neither user nor group. */
static int convert_entry(struct worker *w, LDAPMessage *msg, const char *key, enum phi_entry_kind *ret_kind,
                         struct phi_user *ret_u, struct phi_group *ret_g, const char **ret_reason,
                         char **ret_dn) {
        struct phi_ldap_attr attrs[MAX_ATTRS];
        struct berval **vals[MAX_ATTRS] = { 0 };
        struct phi_ldap_value *values[MAX_ATTRS] = { 0 };
        char *names[MAX_ATTRS] = { 0 };
        _cleanup_free_ char *uuid_attr = NULL;
        size_t n = 0;
        BerElement *ber = NULL;
        char *dn = ldap_get_dn(w->ld, msg);
        int r = 0;

        *ret_kind = PHI_ENTRY_NONE;
        *ret_reason = NULL;
        for (char *a = ldap_first_attribute(w->ld, msg, &ber); a; a = ldap_next_attribute(w->ld, msg, ber)) {
                struct berval **v;
                size_t nv = 0;
                if (n >= MAX_ATTRS) {
                        ldap_memfree(a);
                        continue;
                }
                v = ldap_get_values_len(w->ld, msg, a);
                while (v && v[nv])
                        nv++;
                if (strcasecmp(a, "entryUUID") == 0 && nv == 1 && v[0]->bv_len <= PHI_LDAP_UUID_MAX) {
                        uuid_attr = strndup(v[0]->bv_val, v[0]->bv_len);
                        for (char *p = uuid_attr; p && *p; p++)
                                if (*p >= 'A' && *p <= 'F')
                                        *p = (char) (*p - 'A' + 'a');
                }
                values[n] = calloc(nv + 1, sizeof(struct phi_ldap_value));
                if (!values[n]) {
                        ldap_value_free_len(v);
                        ldap_memfree(a);
                        r = -ENOMEM;
                        break;
                }
                for (size_t i = 0; i < nv; i++)
                        values[n][i] = (struct phi_ldap_value){ v[i]->bv_val, v[i]->bv_len };
                vals[n] = v;
                names[n] = a;
                attrs[n] = (struct phi_ldap_attr){ a, values[n], nv };
                n++;
        }
        if (ber)
                ber_free(ber, 0);
        if (r == 0 && dn) {
                struct phi_ldap_entry e = { dn, key ? key : uuid_attr, attrs, n };
                size_t skipped = 0;
                *ret_kind = phi_ldap_entry_classify(&e, w->c, &w->scope);
                if (*ret_kind == PHI_ENTRY_USER)
                        r = phi_ldap_entry_to_user(&e, w->c, ret_u, ret_reason);
                else if (*ret_kind == PHI_ENTRY_GROUP)
                        r = phi_ldap_entry_to_group(&e, w->c, ret_g, &skipped, ret_reason);
                if (r == 0 && skipped > 0)
                        phi_log(LOG_NOTICE, "group %s: %zu member values skipped (not a valid name or DN)",
                                ret_g->name, skipped);
        } else if (r == 0) {
                *ret_reason = "entry has no DN";
                r = -EINVAL;
        }
        for (size_t i = 0; i < n; i++) {
                ldap_value_free_len(vals[i]);
                free(values[i]);
                ldap_memfree(names[i]);
        }
        *ret_dn = dn ? strdup(dn) : NULL;
        if (dn)
                ldap_memfree(dn);
        return r;
}

static void log_rejected(const char *dn, const char *reason) {
        phi_log(LOG_WARNING, "skipping directory entry %s: %s", dn ? dn : "(no DN)",
                reason ? reason : "invalid");
}

static int strv_push(char ***v, size_t *n, size_t *cap, const char *s) {
        if (*n >= *cap) {
                size_t ncap = *cap ? *cap * 2 : 256;
                char **nv = reallocarray(*v, ncap, sizeof(char *));
                if (!nv)
                        return -ENOMEM;
                *v = nv;
                *cap = ncap;
        }
        (*v)[*n] = strdup(s);
        if (!(*v)[*n])
                return -ENOMEM;
        (*n)++;
        return 0;
}

static void staged_clear(struct staged *st) {
        phi_identities_clear(&st->ids);
        phi_strv_free(st->present, st->n_present);
        phi_strv_free(st->deletes, st->n_deletes);
        *st = (struct staged){ 0 };
}

/* Adds a converted entry to a staged refresh (takes ownership). */
static int staged_add(struct staged *st, enum phi_entry_kind kind, struct phi_user *u, struct phi_group *g) {
        int r = 0;

        if (kind == PHI_ENTRY_USER) {
                r = phi_identities_add_user(&st->ids, u);
                if (r < 0)
                        phi_user_clear(u);
        } else if (kind == PHI_ENTRY_GROUP) {
                r = phi_identities_add_group(&st->ids, g);
                if (r < 0)
                        phi_group_clear(g);
        }
        return r;
}

/* ------------------------------------------------------------------- apply */

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static bool sorted_has(char *const *v, size_t n, const char *key) {
        return n > 0 && bsearch(&key, v, n, sizeof(char *), cmp_str) != NULL;
}

/* Resolves nesting from what the store now holds (inside the caller's
 * transaction), writes the memberships, bumps the generation and publishes the
 * snapshot once the caller has committed. */
struct resolved_view {
        struct phi_identities ids;
        struct phi_resolved res;
};

static void view_clear(struct resolved_view *v) {
        phi_resolved_clear(&v->res);
        phi_identities_clear(&v->ids);
}

static int resolve_into_store(struct worker *w, struct resolved_view *v) {
        unsigned flags = 0;
        int r;

        if (w->c->membership != PHI_MEMBERSHIP_MEMBER)
                flags |= PHI_RESOLVE_MEMBER_UID;
        if (w->c->membership != PHI_MEMBERSHIP_MEMBERUID)
                flags |= PHI_RESOLVE_MEMBER_DN;
        if ((r = phi_store_identities_load(w->store, &v->ids)) < 0 ||
            (r = phi_identities_resolve(&v->ids, flags, &v->res)) < 0 ||
            (r = phi_store_memberships_replace(w->store, &v->ids, &v->res)) < 0)
                return r;
        if (v->res.n_cycles > 0)
                phi_log(LOG_WARNING, "nested groups form %zu cycle(s), e.g. %s; each group is counted once",
                        v->res.n_cycles, v->res.cycle_example);
        return 0;
}

/* The cookie moves on only together with the data it covers: a refused or
 * failed refresh must be asked for again from the old cookie. */
static void cookie_drop_pending(struct worker *w) {
        free(w->pending_cookie);
        w->pending_cookie = NULL;
        w->pending_cookie_len = 0;
}

static void cookie_promote(struct worker *w) {
        if (!w->pending_cookie)
                return;
        free(w->cookie);
        w->cookie = w->pending_cookie;
        w->cookie_len = w->pending_cookie_len;
        w->pending_cookie = NULL;
        w->pending_cookie_len = 0;
}

/* synced: this commit carries data from the directory (a start-up republish
 * of the store does not, and must not look like a sync in `status`). */
static int save_state_ex(struct worker *w, bool full, bool synced) {
        struct phi_sync_state st = {
                .cookie = w->pending_cookie ? w->pending_cookie : w->cookie,
                .cookie_len = w->pending_cookie ? w->pending_cookie_len : w->cookie_len,
                .generation = w->generation + 1,
        };
        struct phi_sync_state old = { 0 };
        int r;

        if ((r = phi_store_sync_state_get(w->store, &old)) < 0)
                return r;
        st.last_success = synced ? now_s() : old.last_success;
        w->synced_at = st.last_success;
        st.last_full = full ? now_s() : old.last_full;
        st.search = w->search;
        phi_sync_state_clear(&old);
        return phi_store_sync_state_put(w->store, &st);
}

/* After a commit: publish and refresh the counters in the status. */
static int save_state(struct worker *w, bool full) {
        return save_state_ex(w, full, true);
}

/*
 * The TOTP state of users who left the directory: their tokens and tickets
 * (found by identity, whatever name they are under) and the failure counter
 * of the name they had. The departures were recorded in the refresh's own
 * transaction; each leaves the list only after its revocation is committed,
 * so a crash in between revokes at the next start (and a second pass over
 * one finds nothing to revoke, and journals nothing). Logins do not depend on
 * it: the verifier refuses a token whose identity is not the name's now.
 */
static void revoke_departed(struct worker *w) {
        struct phi_departed *d = NULL;
        bool *revoked = NULL;
        size_t n = 0;
        int r;

        if ((r = phi_store_departed_list(w->store, &d, &n)) < 0 || n == 0)
                goto out;
        revoked = calloc(n, sizeof(bool));
        if (!revoked) {
                r = -ENOMEM;
                goto out;
        }
        if ((r = phi_store_begin(w->store)) < 0)
                goto out;
        for (size_t i = 0; i < n && r >= 0; i++) {
                bool token = false, ticket = false;
                r = phi_store_identity_revoke(w->store, d[i].key, &token, &ticket);
                if (r >= 0)
                        r = phi_store_failures_put(w->store, PHI_FAILURE_USER, d[i].name, &(struct phi_failures){ 0 });
                revoked[i] = token || ticket;
        }
        if (r >= 0)
                r = phi_store_commit(w->store);
        if (r < 0) {
                phi_store_rollback(w->store);
                goto out;
        }
        for (size_t i = 0; i < n; i++) {
                const struct phi_journal_field fields[] = {
                        { "PHI_USER", d[i].name },
                        { "PHI_REASON", "user_removed" },
                };
                if (revoked[i])
                        phi_journal_event(PHI_EVENT_TOKEN_REVOKED, LOG_NOTICE, fields, PHI_ELEMENTSOF(fields),
                                          "TOTP token of %s revoked: the user (%s) left the directory", d[i].name,
                                          d[i].key);
        }
        if ((r = phi_store_identities_begin(w->store)) < 0)
                goto out;
        for (size_t i = 0; i < n && r >= 0; i++)
                r = phi_store_departed_delete(w->store, d[i].key);
        if (r >= 0)
                r = phi_store_identities_commit(w->store);
        if (r < 0)
                phi_store_identities_rollback(w->store);
out:
        if (r < 0)
                phi_log(LOG_ERR, "cannot revoke the TOTP state of users who left the directory (tried again "
                                 "after the next change): %s", phi_errno_text(r));
        free(revoked);
        phi_departed_free(d, n);
}

static void after_commit(struct worker *w, struct resolved_view *v) {
        struct phi_publish_stats ps = { 0 };
        uint64_t users = 0, groups = 0;
        int r;

        revoke_departed(w);
        cookie_promote(w);
        w->generation++;
        r = phi_snapshot_publish(&v->ids, &v->res, w->c, w->generation, &ps);
        if (r < 0)
                phi_log(LOG_ERR, "cannot publish the NSS snapshot %s: %s", w->c->snapshot_path,
                        phi_errno_text(r));
        if (phi_store_counts(w->store, &users, &groups) < 0) {
                users = v->ids.n_users;
                groups = v->ids.n_groups;
        }
        LOCKED(w->s) {
                w->s->status.users = users;
                w->s->status.groups = groups;
                w->s->status.generation = w->generation;
                /* The time the store holds, not a second reading of the
                 * clock: they differed when a second boundary fell between
                 * the commit and the publish. */
                w->s->status.last_success = w->synced_at;
                w->s->status.nested_cycles = v->res.n_cycles;
                w->s->status.have_cookie = w->cookie != NULL;
                if (r < 0)
                        snprintf(w->s->status.snapshot, sizeof(w->s->status.snapshot),
                                 "not published: %s", phi_errno_text(r));
                else
                        snprintf(w->s->status.snapshot, sizeof(w->s->status.snapshot),
                                 "published (%zu users, %zu groups, %zu local names kept out)",
                                 ps.users, ps.groups, ps.shadowed);
        }
}

/* Applies a staged refresh in one transaction, or refuses it. Returns 0,
 * RUN_REFUSED, or a negative errno. */
static int apply_refresh(struct worker *w, struct staged *st, const char *mode) {
        char **keys = NULL, example[256];
        size_t n_keys = 0, n_user_keys = 0, removed_users = 0, new_users = 0, dropped;
        char **staged_user_keys = NULL, **staged_keys = NULL, **gone_users = NULL;
        size_t n_staged_keys = 0;
        struct resolved_view v = { 0 };
        int64_t t0 = st->started_ms, locked_ms = 0;
        uint64_t final_users;
        int r;

        dropped = phi_identities_dedup(&st->ids, example, sizeof(example));
        if (dropped > 0) {
                st->rejected += dropped;
                phi_log(LOG_WARNING, "%zu directory entries repeat a key, name or id of another; "
                        "the first one wins, e.g. dropped %s", dropped, example);
        }
        if ((r = phi_store_keys_load(w->store, &keys, &n_keys, &n_user_keys)) < 0)
                goto out;

        staged_user_keys = calloc(st->ids.n_users + 1, sizeof(char *));
        staged_keys = calloc(st->ids.n_users + st->ids.n_groups + 1, sizeof(char *));
        gone_users = calloc(n_user_keys + 1, sizeof(char *));
        if (!staged_user_keys || !staged_keys || !gone_users) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < st->ids.n_users; i++) {
                staged_user_keys[i] = st->ids.users[i].key;
                staged_keys[n_staged_keys++] = st->ids.users[i].key;
        }
        for (size_t i = 0; i < st->ids.n_groups; i++)
                staged_keys[n_staged_keys++] = st->ids.groups[i].key;
        qsort(staged_user_keys, st->ids.n_users, sizeof(char *), cmp_str);
        qsort(staged_keys, n_staged_keys, sizeof(char *), cmp_str);
        if (st->n_present > 0)
                qsort(st->present, st->n_present, sizeof(char *), cmp_str);
        if (st->n_deletes > 0)
                qsort(st->deletes, st->n_deletes, sizeof(char *), cmp_str);

        /* keys[0..n_user_keys) are the users now stored. */
        for (size_t i = 0; i < n_user_keys; i++) {
                bool gone;
                if (st->full || st->present_mode)
                        gone = !sorted_has(staged_keys, n_staged_keys, keys[i]) &&
                               !sorted_has(st->present, st->n_present, keys[i]);
                else
                        gone = sorted_has(st->deletes, st->n_deletes, keys[i]);
                if (gone)
                        gone_users[removed_users++] = keys[i];
        }
        for (size_t i = 0; i < st->ids.n_users; i++)
                if (!(n_user_keys > 0 &&
                      bsearch(&st->ids.users[i].key, keys, n_user_keys, sizeof(char *), cmp_str)))
                        new_users++;
        final_users = n_user_keys - removed_users + new_users;

        if (final_users == 0 ||
            (n_user_keys > 0 && removed_users * 100 > w->c->shrink_threshold * n_user_keys)) {
                char reason[256];
                if (final_users == 0)
                        snprintf(reason, sizeof(reason), "the directory returned no users");
                else
                        snprintf(reason, sizeof(reason),
                                 "it would remove %zu of %zu users, more than shrink_threshold %llu%%",
                                 removed_users, n_user_keys, (unsigned long long) w->c->shrink_threshold);
                LOCKED(w->s) {
                        w->s->status.refreshes_refused++;
                        snprintf(w->s->status.state, sizeof(w->s->status.state), "refused");
                        snprintf(w->s->status.last_error, sizeof(w->s->status.last_error),
                                 "refresh refused: %s; keeping the last good data", reason);
                }
                journal_sync(w, LOG_ERR, "refused", mode, st->ids.n_users, st->ids.n_groups,
                             (uint64_t) (phi_now_ms() - t0), reason,
                             "Directory refresh from %s refused: %s; keeping the last good data (%zu users)",
                             w->uri, reason, n_user_keys);
                cookie_drop_pending(w);
                r = RUN_REFUSED;
                goto out;
        }

        /* The identity file's write lock, held from here to the commit, is
         * the directory thread's alone: logins commit to the shared store.
         * Only what changed is written: entries gone are deleted, unchanged
         * ones left alone (user_put skips them). If that meets a name or id
         * still held by another staged entry (two users swapped names), the
         * full refresh is written again from empty, as before. */
        for (bool clear = false;;) {
                bool conflict = false;
                size_t rejected = 0;

                locked_ms = phi_now_ms();
                if ((r = phi_store_identities_begin(w->store)) < 0)
                        goto out;
                /* Before their rows go: the departure records the name they had. */
                for (size_t i = 0; i < removed_users && r >= 0; i++)
                        r = phi_store_departed_add(w->store, gone_users[i], now_s());
                if (r >= 0 && clear)
                        r = phi_store_identities_clear(w->store);
                else
                        for (size_t i = 0; i < n_keys && r >= 0; i++) {
                                bool gone, found;
                                if (st->present_mode)
                                        gone = !sorted_has(staged_keys, n_staged_keys, keys[i]) &&
                                               !sorted_has(st->present, st->n_present, keys[i]);
                                else
                                        gone = sorted_has(st->deletes, st->n_deletes, keys[i]);
                                if (gone)
                                        r = phi_store_entry_delete(w->store, keys[i], &found);
                        }
                for (size_t i = 0; i < st->ids.n_users && r >= 0 && !conflict; i++) {
                        r = phi_store_user_put(w->store, &st->ids.users[i]);
                        if (r == -EEXIST) {
                                r = 0;
                                if (st->full && !clear)
                                        conflict = true;
                                else {
                                        log_rejected(st->ids.users[i].dn, "its name or uid belongs to another entry");
                                        rejected++;
                                }
                        }
                }
                for (size_t i = 0; i < st->ids.n_groups && r >= 0 && !conflict; i++) {
                        r = phi_store_group_put(w->store, &st->ids.groups[i]);
                        if (r == -EEXIST) {
                                r = 0;
                                if (st->full && !clear)
                                        conflict = true;
                                else {
                                        log_rejected(st->ids.groups[i].dn, "its name or gid belongs to another entry");
                                        rejected++;
                                }
                        }
                }
                if (r >= 0 && conflict) {
                        phi_store_identities_rollback(w->store);
                        clear = true;
                        continue;
                }
                st->rejected += rejected;
                break;
        }
        if (r >= 0)
                r = resolve_into_store(w, &v);
        if (r >= 0)
                r = save_state(w, st->full);
        if (r >= 0)
                r = phi_store_identities_commit(w->store);
        locked_ms = phi_now_ms() - locked_ms;
        if (r < 0) {
                phi_store_identities_rollback(w->store);
                cookie_drop_pending(w);
                set_error(w->s, "cannot store the refresh: %s", phi_errno_text(r));
                phi_log(LOG_ERR, "cannot store the directory refresh: %s", phi_errno_text(r));
                goto out;
        }
        after_commit(w, &v);
        /* Only a completed refresh proves the server works: one that accepts the
         * connection and then breaks every session keeps the delays growing. */
        w->backoff = BACKOFF_MIN;
        {
                uint64_t ms = (uint64_t) (phi_now_ms() - t0);
                LOCKED(w->s) {
                        if (st->full)
                                w->s->status.full_refreshes++;
                        else
                                w->s->status.incremental_refreshes++;
                        w->s->status.entries_rejected += st->rejected;
                        w->s->status.changes_applied += st->ids.n_users + st->ids.n_groups;
                        w->s->status.last_duration_ms = ms;
                        w->s->status.outage_since = 0;
                        w->s->status.last_error[0] = 0;
                }
                journal_sync(w, LOG_INFO, "ok", mode, v.ids.n_users, v.ids.n_groups, ms, NULL,
                             "Directory %s refresh from %s: %zu users, %zu groups (%zu entries read, "
                             "%zu rejected, %zu removed users) in %llu ms, %lld ms of them writing the "
                             "identity file",
                             st->full ? "full" : "incremental", w->uri, v.ids.n_users, v.ids.n_groups,
                             st->received, st->rejected, removed_users, (unsigned long long) ms,
                             (long long) locked_ms);
        }
        r = 0;
out:
        view_clear(&v);
        phi_strv_free(keys, n_keys);
        free(staged_user_keys);
        free(staged_keys);
        free(gone_users);
        return r;
}

/* ---------------------------------------------------------- full (paged) */

static int page_search(struct worker *w, const char *base, const char *filter, struct staged *st) {
        struct berval cookie = { 0 };
        char *filter_copy = strdup(filter);
        int r = 0;

        if (!filter_copy)
                return -ENOMEM;
        do {
                LDAPControl *page = NULL, *ctrls[2] = { NULL, NULL }, **rctrls = NULL, *pr;
                struct timeval tv = { .tv_sec = (time_t) (w->c->network_timeout * 6) };
                LDAPMessage *res = NULL;
                int rc, err = 0;

                rc = ldap_create_page_control(w->ld, (ber_int_t) w->c->page_size,
                                              cookie.bv_val ? &cookie : NULL, 0, &page);
                if (rc != LDAP_SUCCESS) {
                        r = -ENOMEM;
                        break;
                }
                ctrls[0] = page;
                rc = ldap_search_ext_s(w->ld, base, LDAP_SCOPE_SUBTREE, filter_copy, w->attrs, 0,
                                       ctrls, NULL, &tv, LDAP_NO_LIMIT, &res);
                ldap_control_free(page);
                if (cookie.bv_val) {
                        ber_memfree(cookie.bv_val);
                        cookie = (struct berval){ 0 };
                }
                if (rc != LDAP_SUCCESS) {
                        char what[300];
                        int n = res ? ldap_count_entries(w->ld, res) : 0;
                        snprintf(what, sizeof(what), "search of %s", base);
                        search_error(w, rc, what, st->received + (size_t) (n > 0 ? n : 0), NULL);
                        ldap_msgfree(res);
                        r = rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR || rc == LDAP_TIMEOUT
                                    ? -ECONNRESET : -EIO;
                        break;
                }
                for (LDAPMessage *e = ldap_first_entry(w->ld, res); e && r >= 0; e = ldap_next_entry(w->ld, e)) {
                        enum phi_entry_kind kind;
                        struct phi_user u = { 0 };
                        struct phi_group g = { 0 };
                        const char *reason = NULL;
                        _cleanup_free_ char *dn = NULL;
                        st->received++;
                        r = convert_entry(w, e, NULL, &kind, &u, &g, &reason, &dn);
                        if (r == -EINVAL || (r == 0 && kind == PHI_ENTRY_NONE)) {
                                log_rejected(dn, reason ? reason : "neither a user nor a group under the configured bases");
                                st->rejected++;
                                r = 0;
                                continue;
                        }
                        if (r == 0)
                                r = staged_add(st, kind, &u, &g);
                }
                if (r >= 0 && ldap_parse_result(w->ld, res, &err, NULL, NULL, NULL, &rctrls, 0) == LDAP_SUCCESS &&
                    (pr = ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, rctrls, NULL))) {
                        ber_int_t count = 0;
                        if (ldap_parse_pageresponse_control(w->ld, pr, &count, &cookie) != LDAP_SUCCESS)
                                cookie = (struct berval){ 0 };
                }
                ldap_controls_free(rctrls);
                ldap_msgfree(res);
                if (should_stop(w->s))
                        r = -ECANCELED;
        } while (r >= 0 && cookie.bv_val && cookie.bv_len > 0);
        if (cookie.bv_val)
                ber_memfree(cookie.bv_val);
        free(filter_copy);
        return r;
}

static int full_refresh(struct worker *w) {
        struct staged st = { .full = true, .present_mode = true, .started_ms = phi_now_ms() };
        int r;

        set_state(w->s, "refreshing");
        w->cause = FAULT_NONE;
        r = page_search(w, w->c->user_base, w->c->user_filter, &st);
        if (r >= 0)
                r = page_search(w, w->c->group_base, w->c->group_filter, &st);
        LOCKED(w->s) w->s->status.entries_received += st.received;
        if (r >= 0)
                r = apply_refresh(w, &st, "paged");
        if (r == 0) {
                set_state(w->s, w->syncrepl ? "live" : "idle");
                sync_recovered(w);
        }
        staged_clear(&st);
        return r;
}

/* ----------------------------------------------------------- RFC 4533 */

static void uuid_format(const struct berval *raw, char out[37]) {
        const unsigned char *b = (const unsigned char *) raw->bv_val;
        snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
                 b[14], b[15]);
}

static int cookie_set(struct worker *w, const struct berval *c) {
        uint8_t *copy;

        if (!c->bv_val || c->bv_len == 0 || c->bv_len > 4096)
                return 0;
        copy = malloc(c->bv_len);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, c->bv_val, c->bv_len);
        free(w->pending_cookie);
        w->pending_cookie = copy;
        w->pending_cookie_len = c->bv_len;
        return 0;
}

static int persist_begin(struct worker *w) {
        int r;

        if (w->txn)
                return 0;
        if ((r = phi_store_identities_begin(w->store)) < 0)
                return r;
        w->txn = true;
        w->batch_puts = w->batch_deletes = w->batch_rejected = 0;
        w->batch_started_ms = phi_now_ms();
        return 0;
}

/* Commits the changes streamed so far with the cookie that covers them. */
static int persist_flush(struct worker *w) {
        struct resolved_view v = { 0 };
        int r;

        if (!w->txn)
                return 0;
        r = resolve_into_store(w, &v);
        if (r >= 0)
                r = save_state(w, false);
        if (r >= 0)
                r = phi_store_identities_commit(w->store);
        w->txn = false;
        if (r < 0) {
                phi_store_identities_rollback(w->store);
                cookie_drop_pending(w);
                phi_log(LOG_ERR, "cannot store directory changes: %s", phi_errno_text(r));
                view_clear(&v);
                return r;
        }
        after_commit(w, &v);
        {
                uint64_t ms = (uint64_t) (phi_now_ms() - w->batch_started_ms);
                LOCKED(w->s) {
                        w->s->status.changes_applied += w->batch_puts + w->batch_deletes;
                        w->s->status.entries_rejected += w->batch_rejected;
                }
                if (w->batch_puts + w->batch_deletes + w->batch_rejected > 0)
                        journal_sync(w, LOG_INFO, "ok", "persist", v.ids.n_users, v.ids.n_groups, ms, NULL,
                                     "Directory changes from %s applied: %zu entries added or changed, "
                                     "%zu deleted, %zu rejected",
                                     w->uri, w->batch_puts, w->batch_deletes, w->batch_rejected);
        }
        view_clear(&v);
        return 0;
}

static int persist_put(struct worker *w, enum phi_entry_kind kind, const struct phi_user *u,
                       const struct phi_group *g) {
        int r;

        if ((r = persist_begin(w)) < 0)
                return r;
        r = kind == PHI_ENTRY_USER ? phi_store_user_put(w->store, u) : phi_store_group_put(w->store, g);
        if (r == -EEXIST) {
                log_rejected(kind == PHI_ENTRY_USER ? u->dn : g->dn,
                             "its name or id belongs to another entry");
                w->batch_rejected++;
                return 0;
        }
        if (r == 0)
                w->batch_puts++;
        return r;
}

static int persist_delete(struct worker *w, const char *key) {
        bool found = false;
        int r;

        if ((r = persist_begin(w)) < 0 || (r = phi_store_departed_add(w->store, key, now_s())) < 0)
                return r;
        r = phi_store_entry_delete(w->store, key, &found);
        if (r == 0 && found)
                w->batch_deletes++;
        return r;
}

/* One search result entry of the sync search. */
static int sync_entry(struct worker *w, LDAPMessage *msg, struct staged *st, bool in_refresh) {
        LDAPControl **ctrls = NULL, *ctrl;
        struct berval uuid = { 0 }, cookie = { 0 };
        BerElement *ber = NULL;
        ber_len_t len;
        ber_int_t state = -1;
        char key[37];
        int r = 0;

        if (ldap_get_entry_controls(w->ld, msg, &ctrls) != LDAP_SUCCESS ||
            !(ctrl = ldap_control_find(LDAP_CONTROL_SYNC_STATE, ctrls, NULL)) ||
            !(ber = ber_init(&ctrl->ldctl_value)) ||
            ber_scanf(ber, "{em", &state, &uuid) == LBER_ERROR || uuid.bv_len != 16) {
                r = -EPROTO;
                goto out;
        }
        if (ber_peek_tag(ber, &len) == LDAP_TAG_SYNC_COOKIE) {
                if (ber_scanf(ber, "m", &cookie) == LBER_ERROR) {
                        r = -EPROTO;
                        goto out;
                }
                if ((r = cookie_set(w, &cookie)) < 0)
                        goto out;
        }
        uuid_format(&uuid, key);
        st->received++;
        LOCKED(w->s) w->s->status.entries_received++;

        switch (state) {
        case LDAP_SYNC_PRESENT:
                if (in_refresh)
                        r = strv_push(&st->present, &st->n_present, &st->cap_present, key);
                break;
        case LDAP_SYNC_DELETE:
                if (in_refresh)
                        r = strv_push(&st->deletes, &st->n_deletes, &st->cap_deletes, key);
                else
                        r = persist_delete(w, key);
                break;
        case LDAP_SYNC_ADD:
        case LDAP_SYNC_MODIFY: {
                enum phi_entry_kind kind;
                struct phi_user u = { 0 };
                struct phi_group g = { 0 };
                const char *reason = NULL;
                _cleanup_free_ char *dn = NULL;

                r = convert_entry(w, msg, key, &kind, &u, &g, &reason, &dn);
                if (r == -EINVAL) {
                        /* Kept as it was: the last good version of an entry beats none. */
                        log_rejected(dn, reason);
                        if (in_refresh) {
                                st->rejected++;
                                r = strv_push(&st->present, &st->n_present, &st->cap_present, key);
                        } else if ((r = persist_begin(w)) == 0)
                                w->batch_rejected++;
                        break;
                }
                if (r < 0)
                        break;
                if (kind == PHI_ENTRY_NONE) {
                        /* Still matches the sync filter but is no longer a user or group
                         * we can use (moved out of the bases, attributes removed). */
                        if (in_refresh)
                                r = strv_push(&st->deletes, &st->n_deletes, &st->cap_deletes, key);
                        else
                                r = persist_delete(w, key);
                        break;
                }
                if (in_refresh)
                        r = staged_add(st, kind, &u, &g);
                else {
                        r = persist_put(w, kind, &u, &g);
                        phi_user_clear(&u);
                        phi_group_clear(&g);
                }
                break;
        }
        default:
                r = -EPROTO;
        }
out:
        if (ber)
                ber_free(ber, 1);
        ldap_controls_free(ctrls);
        return r;
}

/* A Sync Info intermediate message. *ret_done when the refresh stage ended. */
static int sync_intermediate(struct worker *w, LDAPMessage *msg, struct staged *st, bool in_refresh,
                             bool *ret_done) {
        char *oid = NULL;
        struct berval *data = NULL, cookie = { 0 };
        BerElement *ber = NULL;
        ber_len_t len;
        ber_tag_t tag;
        int r = 0;

        *ret_done = false;
        if (ldap_parse_intermediate(w->ld, msg, &oid, &data, NULL, 0) != LDAP_SUCCESS) {
                r = -EPROTO;
                goto out;
        }
        if (!oid || strcmp(oid, LDAP_SYNC_INFO) != 0 || !data)
                goto out;   /* not ours: ignore */
        ber = ber_init(data);
        if (!ber) {
                r = -ENOMEM;
                goto out;
        }
        tag = ber_peek_tag(ber, &len);
        switch (tag) {
        case LDAP_TAG_SYNC_NEW_COOKIE:
                if (ber_scanf(ber, "m", &cookie) == LBER_ERROR) {
                        r = -EPROTO;
                        break;
                }
                r = cookie_set(w, &cookie);
                /* A new cookie alone is worth saving in the persist stage, so a
                 * restart does not replay what is already stored. */
                if (r == 0 && !in_refresh)
                        r = persist_begin(w);
                break;
        case LDAP_TAG_SYNC_REFRESH_DELETE:
        case LDAP_TAG_SYNC_REFRESH_PRESENT: {
                ber_int_t done = 1;
                if (ber_scanf(ber, "{") == LBER_ERROR) {
                        r = -EPROTO;
                        break;
                }
                if (ber_peek_tag(ber, &len) == LDAP_TAG_SYNC_COOKIE) {
                        if (ber_scanf(ber, "m", &cookie) == LBER_ERROR || (r = cookie_set(w, &cookie)) < 0) {
                                r = r < 0 ? r : -EPROTO;
                                break;
                        }
                }
                if (ber_peek_tag(ber, &len) == LDAP_TAG_REFRESHDONE &&
                    ber_scanf(ber, "b", &done) == LBER_ERROR) {
                        r = -EPROTO;
                        break;
                }
                /* The end of a present phase means: what was not mentioned is gone. */
                if (tag == LDAP_TAG_SYNC_REFRESH_PRESENT)
                        st->present_mode = true;
                *ret_done = done != 0;
                break;
        }
        case LDAP_TAG_SYNC_ID_SET: {
                ber_int_t deletes = 0;
                BerVarray uuids = NULL;
                if (ber_scanf(ber, "{") == LBER_ERROR) {
                        r = -EPROTO;
                        break;
                }
                if (ber_peek_tag(ber, &len) == LDAP_TAG_SYNC_COOKIE) {
                        if (ber_scanf(ber, "m", &cookie) == LBER_ERROR || (r = cookie_set(w, &cookie)) < 0) {
                                r = r < 0 ? r : -EPROTO;
                                break;
                        }
                }
                if (ber_peek_tag(ber, &len) == LDAP_TAG_REFRESHDELETES &&
                    ber_scanf(ber, "b", &deletes) == LBER_ERROR) {
                        r = -EPROTO;
                        break;
                }
                if (ber_scanf(ber, "[W]}", &uuids) == LBER_ERROR) {
                        r = -EPROTO;
                        break;
                }
                for (size_t i = 0; uuids && uuids[i].bv_val && r >= 0; i++) {
                        char key[37];
                        if (uuids[i].bv_len != 16)
                                continue;
                        uuid_format(&uuids[i], key);
                        st->received++;
                        if (deletes) {
                                if (in_refresh)
                                        r = strv_push(&st->deletes, &st->n_deletes, &st->cap_deletes, key);
                                else
                                        r = persist_delete(w, key);
                        } else if (in_refresh)
                                r = strv_push(&st->present, &st->n_present, &st->cap_present, key);
                }
                if (!deletes && in_refresh)
                        st->present_mode = true;
                ber_bvarray_free(uuids);
                break;
        }
        default:
                r = -EPROTO;
        }
out:
        if (ber)
                ber_free(ber, 1);
        ldap_memfree(oid);
        ber_bvfree(data);
        return r;
}

static int sync_search_start(struct worker *w, int *ret_msgid) {
        LDAPControl ctrl = { 0 }, *ctrls[2] = { &ctrl, NULL };
        _cleanup_free_ char *filter = NULL;
        BerElement *ber = ber_alloc_t(LBER_USE_DER);
        struct berval cookie = { .bv_val = (char *) w->cookie, .bv_len = w->cookie_len };
        int rc, r = 0;

        if (!ber)
                return -ENOMEM;
        /* syncRequestValue ::= SEQUENCE { mode ENUMERATED, cookie OCTET STRING OPTIONAL,
         * reloadHint BOOLEAN DEFAULT FALSE }; DER leaves the default out. */
        if (w->cookie)
                rc = ber_printf(ber, "{eO}", (ber_int_t) LDAP_SYNC_REFRESH_AND_PERSIST, &cookie);
        else
                rc = ber_printf(ber, "{e}", (ber_int_t) LDAP_SYNC_REFRESH_AND_PERSIST);
        if (rc < 0 || ber_flatten2(ber, &ctrl.ldctl_value, 0) < 0) {
                r = -ENOMEM;
                goto out;
        }
        ctrl.ldctl_oid = (char *) LDAP_CONTROL_SYNC;
        ctrl.ldctl_iscritical = 1;
        if (asprintf(&filter, "(|%s%s)", w->c->user_filter, w->c->group_filter) < 0) {
                filter = NULL;
                r = -ENOMEM;
                goto out;
        }
        rc = ldap_search_ext(w->ld, w->c->base, LDAP_SCOPE_SUBTREE, filter, w->attrs, 0, ctrls, NULL,
                             NULL, LDAP_NO_LIMIT, ret_msgid);
        if (rc != LDAP_SUCCESS) {
                set_error(w->s, "sync search failed: %s", ldap_err2string(rc));
                w->cause = FAULT_UNAVAILABLE;
                r = -ECONNRESET;
        }
out:
        ber_free(ber, 1);
        return r;
}

/* Runs one refreshAndPersist search until the connection fails (negative
 * errno) or something else needs the thread (RUN_*). */
static int run_syncrepl(struct worker *w) {
        struct staged st = { .started_ms = phi_now_ms() };
        bool in_refresh = true, ended = false;
        int64_t last_msg_ms = phi_now_ms();
        int msgid = -1, r;

        cookie_drop_pending(w);
        w->cause = FAULT_NONE;
        st.full = w->cookie == NULL;
        if (st.full)
                st.present_mode = true;
        set_state(w->s, "refreshing");
        if ((r = sync_search_start(w, &msgid)) < 0)
                goto out;
        for (;;) {
                struct timeval tv = { .tv_sec = 0, .tv_usec = POLL_MS * 1000 };
                LDAPMessage *msg = NULL;
                bool full = false, done = false;
                int rc;

                if (should_stop(w->s)) {
                        r = RUN_STOP;
                        break;
                }
                /* A request waits for the refresh in progress; in the persist stage
                 * it gets the connection at once. */
                if (!in_refresh && pending_request(w->s, &full)) {
                        r = RUN_STOP;
                        break;
                }
                rc = ldap_result(w->ld, msgid, LDAP_MSG_ONE, &tv, &msg);
                if (rc == 0) {
                        if (!in_refresh && (r = persist_flush(w)) < 0)
                                break;
                        /* Silence is normal once live; during the refresh it means
                         * the server stalled, and waiting forever would keep every
                         * request (and the next URI) waiting too. */
                        if (in_refresh &&
                            phi_now_ms() - last_msg_ms > (int64_t) w->c->network_timeout * 3000) {
                                set_error(w->s, "directory %s stopped answering during the refresh", w->uri);
                                w->cause = FAULT_UNAVAILABLE;
                                r = -ECONNRESET;
                                break;
                        }
                        continue;
                }
                last_msg_ms = phi_now_ms();
                if (rc < 0) {
                        int err = LDAP_SERVER_DOWN;
                        (void) ldap_get_option(w->ld, LDAP_OPT_RESULT_CODE, &err);
                        set_error(w->s, "connection to %s lost: %s", w->uri, ldap_err2string(err));
                        w->cause = FAULT_UNAVAILABLE;
                        r = -ECONNRESET;
                        break;
                }
                switch (ldap_msgtype(msg)) {
                case LDAP_RES_SEARCH_ENTRY:
                        r = sync_entry(w, msg, &st, in_refresh);
                        break;
                case LDAP_RES_INTERMEDIATE:
                        r = sync_intermediate(w, msg, &st, in_refresh, &done);
                        break;
                case LDAP_RES_SEARCH_RESULT: {
                        LDAPControl **ctrls = NULL, *c;
                        char *text = NULL;
                        int err = 0;
                        r = RUN_RESTART;
                        ended = true;
                        if (ldap_parse_result(w->ld, msg, &err, NULL, &text, NULL, &ctrls, 0) != LDAP_SUCCESS)
                                err = LDAP_OTHER;
                        if (err == LDAP_SYNC_REFRESH_REQUIRED) {
                                phi_log(LOG_NOTICE, "directory %s no longer knows our sync cookie; reloading everything",
                                        w->uri);
                                r = RUN_RELOAD;
                        } else if (err != LDAP_SUCCESS) {
                                char what[300];
                                snprintf(what, sizeof(what), "sync search of %s", w->c->base);
                                search_error(w, err, what, st.received, text);
                                r = -EIO;
                        } else if (in_refresh && (c = ldap_control_find(LDAP_CONTROL_SYNC_DONE, ctrls, NULL))) {
                                BerElement *ber = ber_init(&c->ldctl_value);
                                struct berval cookie = { 0 };
                                ber_int_t deletes = 0;
                                ber_len_t len;
                                if (ber && ber_scanf(ber, "{") != LBER_ERROR) {
                                        if (ber_peek_tag(ber, &len) == LDAP_TAG_SYNC_COOKIE &&
                                            ber_scanf(ber, "m", &cookie) != LBER_ERROR)
                                                (void) cookie_set(w, &cookie);
                                        if (ber_peek_tag(ber, &len) == LDAP_TAG_REFRESHDELETES)
                                                (void) ber_scanf(ber, "b", &deletes);
                                }
                                if (ber)
                                        ber_free(ber, 1);
                                if (!deletes)
                                        st.present_mode = true;
                                done = true;
                        } else if (in_refresh) {
                                /* Restarting at once would repeat this as fast as the
                                 * server answers; as a failure it waits its turn. */
                                set_error(w->s, "directory %s ended the sync search before its refresh finished",
                                          w->uri);
                                w->cause = FAULT_SEARCH;
                                r = -EIO;
                        }
                        ldap_memfree(text);
                        ldap_controls_free(ctrls);
                        break;
                }
                default:
                        r = 0;
                }
                ldap_msgfree(msg);
                if (r < 0 && r != -ENOMEM && r != -EPROTO && r != -ECONNRESET && r != -EIO) {
                        /* store failure */
                        set_error(w->s, "cannot store directory changes: %s", phi_errno_text(r));
                }
                if (r < 0)
                        break;
                if (done && in_refresh) {
                        r = apply_refresh(w, &st, st.full ? "full" : "incremental");
                        complete_requests(w->s, w->serving_ticket, r == 0 ? 0 : -EAGAIN,
                                          r == 0 ? "directory synchronised" : "%s",
                                          r == 0 ? "" : w->s->status.last_error);
                        w->serving_ticket = 0;
                        if (r != 0)
                                break;
                        sync_recovered(w);
                        in_refresh = false;
                        staged_clear(&st);
                        set_state(w->s, "live");
                        /* The server ended the search with the refresh (refreshOnly
                         * behaviour): nothing more comes on this one. */
                        if (ended)
                                r = RUN_RESTART;
                }
                if (r == RUN_RESTART || r == RUN_RELOAD)
                        break;
                if (!in_refresh && w->txn && w->batch_puts + w->batch_deletes >= BATCH_MAX &&
                    (r = persist_flush(w)) < 0)
                        break;
        }
        if (w->txn) {
                if (r >= 0 || r == -ECONNRESET) {
                        int f = persist_flush(w);
                        if (f < 0 && r >= 0)
                                r = f;
                } else {
                        phi_store_identities_rollback(w->store);
                        cookie_drop_pending(w);
                        w->txn = false;
                }
        }
        if (msgid >= 0 && w->ld && r != -ECONNRESET)
                (void) ldap_abandon_ext(w->ld, msgid, NULL, NULL);
out:
        staged_clear(&st);
        return r;
}

/* ------------------------------------------------------------------ thread */

static void build_attrs(struct worker *w) {
        const struct phi_ldap_attrs_map *a = &w->c->attrs;
        const char *names[] = { a->uid, a->uid_number, a->gid_number, a->gecos, a->home, a->shell,
                                a->group_name, a->member_uid, a->member, "entryUUID" };
        size_t n = 0;

        for (size_t i = 0; i < MAX_ATTRS; i++) {
                free(w->attrs[i]);
                w->attrs[i] = NULL;
        }
        for (size_t i = 0; i < PHI_ELEMENTSOF(names) && n + 1 < MAX_ATTRS; i++)
                if ((w->attrs[n] = strdup(names[i])))
                        n++;
}

/* At start: serve what the store already holds, before the directory answers. */
static void publish_from_store(struct worker *w) {
        struct resolved_view v = { 0 };
        int r;

        if ((r = phi_store_identities_begin(w->store)) < 0)
                return;
        r = resolve_into_store(w, &v);
        if (r >= 0 && v.ids.n_users > 0)
                r = save_state_ex(w, false, false);
        if (r >= 0)
                r = phi_store_identities_commit(w->store);
        if (r < 0) {
                phi_store_identities_rollback(w->store);
                phi_log(LOG_ERR, "cannot read the store: %s", phi_errno_text(r));
        } else if (v.ids.n_users > 0) {
                after_commit(w, &v);
                /* what the store held is not a sync */
                LOCKED(w->s) w->s->status.last_success = 0;
        }
        view_clear(&v);
}

static bool str_same(const char *a, const char *b) {
        return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* A cookie describes one search: with another base, filter or mapping, the
 * changes since it would be the wrong ones, so the next refresh starts over. */
static bool search_changed(const struct phi_config *a, const struct phi_config *b) {
        const struct phi_ldap_attrs_map *x = &a->attrs, *y = &b->attrs;

        return !str_same(a->base, b->base) || !str_same(a->user_base, b->user_base) ||
               !str_same(a->group_base, b->group_base) || !str_same(a->user_filter, b->user_filter) ||
               !str_same(a->group_filter, b->group_filter) || !str_same(x->uid, y->uid) ||
               !str_same(x->uid_number, y->uid_number) || !str_same(x->gid_number, y->gid_number) ||
               !str_same(x->gecos, y->gecos) || !str_same(x->home, y->home) ||
               !str_same(x->shell, y->shell) || !str_same(x->group_name, y->group_name) ||
               !str_same(x->member_uid, y->member_uid) || !str_same(x->member, y->member) ||
               a->membership != b->membership || a->min_uid != b->min_uid || a->min_gid != b->min_gid ||
               a->n_primary_gids_allowed != b->n_primary_gids_allowed ||
               memcmp(a->primary_gids_allowed, b->primary_gids_allowed,
                      a->n_primary_gids_allowed * sizeof(a->primary_gids_allowed[0])) != 0;
}

static int worker_configure(struct worker *w, struct phi_config *c) {
        char gids[PHI_CONFIG_MAX_PRIMARY_GIDS * 11 + 1] = "";
        int r;

        if (w->c && search_changed(w->c, c) && w->cookie) {
                phi_log(LOG_NOTICE, "directory search settings changed; the next refresh reloads everything");
                free(w->cookie);
                w->cookie = NULL;
                w->cookie_len = 0;
        }
        free(w->search);
        /* Users refused for their primary gid come back only with a full refresh. */
        for (size_t i = 0, n = 0; i < c->n_primary_gids_allowed; i++)
                n += (size_t) snprintf(gids + n, sizeof(gids) - n, "%s%u", i ? "," : "",
                                       (unsigned) c->primary_gids_allowed[i]);
        if (asprintf(&w->search, "base=%s\nuser_base=%s\ngroup_base=%s\nuser_filter=%s\ngroup_filter=%s\n"
                     "attrs=%s,%s,%s,%s,%s,%s,%s,%s,%s\nmembership=%d\nmin=%llu,%llu\nprimary_gids=%s",
                     c->base, c->user_base, c->group_base, c->user_filter, c->group_filter, c->attrs.uid,
                     c->attrs.uid_number, c->attrs.gid_number, c->attrs.gecos, c->attrs.home,
                     c->attrs.shell, c->attrs.group_name, c->attrs.member_uid, c->attrs.member,
                     (int) c->membership, (unsigned long long) c->min_uid,
                     (unsigned long long) c->min_gid, gids) < 0) {
                w->search = NULL;
                return -ENOMEM;
        }

        phi_ldap_scope_clear(&w->scope);
        phi_config_unref(w->c);
        w->c = c;
        build_attrs(w);
        if ((r = phi_ldap_scope_init(c, &w->scope)) < 0)
                return r;
        return 0;
}

static void *thread_main(void *arg) {
        phi_sync *s = arg;
        struct worker w = { .s = s, .backoff = BACKOFF_MIN };
        struct phi_sync_state state = { 0 };
        struct phi_config *c0 = NULL;
        int r;

        LOCKED(s) c0 = phi_config_ref(s->config);
        if ((r = worker_configure(&w, c0)) < 0 ||
            (r = phi_store_open_config(w.c, PHI_IDENTITIES_WRITE, &w.store)) < 0) {
                set_error(s, "cannot open the store %s: %s", w.c->store_path, phi_errno_text(r));
                set_state(s, "failed");
                phi_log(LOG_CRIT, "directory sync cannot start: %s", s->status.last_error);
                goto wait_stop;
        }
        if (phi_store_sync_state_get(w.store, &state) == 0) {
                if (state.cookie && (!state.search || strcmp(state.search, w.search) != 0)) {
                        /* Configured differently than when the cookie was stored. */
                        phi_log(LOG_NOTICE, "directory search settings changed since the last run; "
                                "reloading everything");
                        free(state.cookie);
                        state.cookie = NULL;
                        state.cookie_len = 0;
                }
                w.cookie = state.cookie;
                w.cookie_len = state.cookie_len;
                w.generation = state.generation;
                state.cookie = NULL;
                LOCKED(s) {
                        s->status.last_success = state.last_success;
                        s->status.have_cookie = w.cookie != NULL;
                }
        }
        /* Departures a crash left unrevoked. */
        revoke_departed(&w);
        publish_from_store(&w);
        LOCKED(s) s->status.last_success = state.last_success;

        while (!stopping(s)) {
                struct phi_config *nc = NULL;
                uint64_t ticket, now;
                bool full = false;

                LOCKED(s) {
                        nc = s->new_config;
                        s->new_config = NULL;
                }
                if (nc) {
                        disconnect(&w);
                        if ((r = worker_configure(&w, nc)) < 0)
                                phi_log(LOG_ERR, "cannot apply the new configuration: %s", phi_errno_text(r));
                        /* New settings take effect at once, in paged mode too. */
                        w.uri_first = 0;
                        w.mode_known = false;
                        w.next_refresh = 0;
                        continue;
                }
                if (stopping(s))
                        break;
                ticket = pending_request(s, &full);
                now = now_s();
                /* Paged mode holds no connection between reloads: servers drop idle
                 * ones (Active Directory after 15 minutes), which would turn every
                 * reload into a failure. */
                if (!w.ld && !ticket && w.mode_known && !w.syncrepl && now < w.next_refresh) {
                        wait_for(s, w.next_refresh - now);
                        continue;
                }
                if (!w.ld) {
                        set_state(s, "connecting");
                        LOCKED(s) s->status.last_attempt = now_s();
                        if (connect_any(&w) < 0) {
                                sync_failed(&w, "connect", false);
                                continue;
                        }
                        LOCKED(s) {
                                if (s->status.outage_since != 0)
                                        s->status.reconnects++;
                        }
                        phi_log(LOG_INFO, "connected to directory %s (%s)", w.uri,
                                w.syncrepl ? "RFC 4533 sync" : "paged searches");
                        ticket = pending_request(s, &full);
                }

                if (ticket && (full || !w.syncrepl)) {
                        take_request(s);
                        r = full_refresh(&w);
                        complete_requests(s, ticket, r == 0 ? 0 : (r == RUN_REFUSED ? -EAGAIN : r),
                                          "%s", r == 0 ? "directory synchronised (full refresh)"
                                                       : s->status.last_error);
                        if (r < 0 && r != -ECANCELED) {
                                sync_failed(&w, "paged", true);
                                continue;
                        }
                        if (r >= 0)
                                w.next_refresh = now_s() + w.c->refresh_interval;
                        if (!w.syncrepl)
                                disconnect(&w);
                        continue;
                }
                if (w.syncrepl) {
                        if (ticket) {
                                take_request(s);
                                w.serving_ticket = ticket;
                        }
                        r = run_syncrepl(&w);
                        if (r == RUN_RELOAD) {
                                free(w.cookie);
                                w.cookie = NULL;
                                w.cookie_len = 0;
                                cookie_drop_pending(&w);
                        } else if (r == RUN_RESTART) {
                                /* The server ended the search: start it again, but not
                                 * faster than once a second whatever the server does. */
                                wait_for(s, BACKOFF_MIN);
                        } else if (r == RUN_REFUSED) {
                                disconnect(&w);
                                wait_for(s, w.c->refresh_interval);
                        } else if (r < 0) {
                                complete_requests(s, w.serving_ticket, r, "%s", s->status.last_error);
                                w.serving_ticket = 0;
                                sync_failed(&w, "syncrepl", true);
                        }
                        continue;
                }
                /* Paged mode: a reload at start (the store is served meanwhile), then
                 * every refresh_interval. */
                if (now_s() >= w.next_refresh) {
                        r = full_refresh(&w);
                        if (r < 0 && r != -ECANCELED) {
                                sync_failed(&w, "paged", true);
                                continue;
                        }
                        if (r >= 0)
                                w.next_refresh = now_s() + w.c->refresh_interval;
                }
                disconnect(&w);
        }
        goto done;
wait_stop:
        /* Without a store there is nothing to do but answer status until stopped. */
        for (;;) {
                uint64_t t;
                bool full;
                pthread_mutex_lock(&s->lock);
                if (s->stop) {
                        pthread_mutex_unlock(&s->lock);
                        break;
                }
                pthread_mutex_unlock(&s->lock);
                t = pending_request(s, &full);
                complete_requests(s, t, -EIO, "the store cannot be opened: %s", s->status.last_error);
                wait_for(s, 5);
        }
done:
        disconnect(&w);
        phi_store_free(w.store);
        phi_ldap_scope_clear(&w.scope);
        for (size_t i = 0; i < MAX_ATTRS; i++)
                free(w.attrs[i]);
        free(w.cookie);
        free(w.pending_cookie);
        free(w.search);
        phi_sync_state_clear(&state);
        phi_config_unref(w.c);
        return NULL;
}

/* ------------------------------------------------------------------ API */

int phi_sync_start(struct phi_config *config, phi_sync **ret) {
        pthread_condattr_t ca;
        phi_sync *s = calloc(1, sizeof(*s));
        int r;

        if (!s)
                return -ENOMEM;
        s->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (s->event_fd < 0) {
                r = phi_negative_errno();
                free(s);
                return r;
        }
        pthread_mutex_init(&s->lock, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&s->cond, &ca);
        pthread_condattr_destroy(&ca);
        s->config = phi_config_ref(config);
        snprintf(s->status.state, sizeof(s->status.state), "starting");
        snprintf(s->status.snapshot, sizeof(s->status.snapshot), "not published yet");
        r = -pthread_create(&s->thread, NULL, thread_main, s);
        if (r < 0) {
                phi_sync_free(s);
                return r;
        }
        s->started = true;
        (void) pthread_setname_np(s->thread, "phi-ldap-sync");
        *ret = s;
        return 0;
}

void phi_sync_free(phi_sync *s) {
        if (!s)
                return;
        if (s->started) {
                pthread_mutex_lock(&s->lock);
                s->stop = true;
                pthread_cond_broadcast(&s->cond);
                pthread_mutex_unlock(&s->lock);
                pthread_join(s->thread, NULL);
        }
        phi_config_unref(s->config);
        phi_config_unref(s->new_config);
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->lock);
        (void) phi_close_safe(s->event_fd);
        free(s);
}

void phi_sync_get_status(phi_sync *s, struct phi_sync_status *ret) {
        LOCKED(s) *ret = s->status;
}

uint64_t phi_sync_request(phi_sync *s, bool full) {
        uint64_t t = 0;

        LOCKED(s) {
                t = ++s->next_ticket;
                s->want_ticket = t;
                s->want_full = s->want_full || full;
                pthread_cond_broadcast(&s->cond);
        }
        return t;
}

bool phi_sync_request_result(phi_sync *s, uint64_t ticket, int *ret_error, char *message,
                             size_t message_len) {
        bool done = false;

        LOCKED(s) {
                if (ticket <= s->done_ticket) {
                        done = true;
                        *ret_error = s->done_error;
                        snprintf(message, message_len, "%s", s->done_message);
                }
        }
        return done;
}

int phi_sync_event_fd(phi_sync *s) {
        return s->event_fd;
}

void phi_sync_event_ack(phi_sync *s) {
        uint64_t v;
        (void) !read(s->event_fd, &v, sizeof(v));
}

void phi_sync_reconfigure(phi_sync *s, struct phi_config *config) {
        LOCKED(s) {
                phi_config_unref(s->new_config);
                s->new_config = phi_config_ref(config);
                phi_config_unref(s->config);
                s->config = phi_config_ref(config);
                pthread_cond_broadcast(&s->cond);
        }
}

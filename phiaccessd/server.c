/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Each connection reads one frame at a time into a buffer sized from the
 * length prefix (at most PHI_WIRE_MAX_FRAME), answers it, and only then reads
 * the next: a client cannot make the daemon queue replies or buffer more than
 * one frame. A timer closes connections that stall mid-request or sit idle. */

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>

#include "audit_verify.h"
#include "dispatch.h"
#include "journal.h"
#include "phi/secret.h"
#include "server.h"

#define PHI_TAKE_TICKET(t) ({ uint64_t _t = (t); (t) = 0; _t; })

struct conn {
        struct phi_server *server;
        struct conn *prev, *next;
        int fd;
        struct ucred cred;
        sd_event_source *io, *timer;
        uint8_t header[PHI_WIRE_HEADER_SIZE];
        size_t header_len;
        uint8_t *body;
        size_t body_len, body_got;
        uint8_t *out;
        size_t out_len, out_pos;
        bool close_after_write;
        uint64_t waiting_ticket;
        uint64_t last_active;       /* CLOCK_MONOTONIC µs: accepted, or last reply sent */
        /* A descriptor that came with the frame being read (SCM_RIGHTS; only
         * PHI_MSG_BACKUP may carry one), -1 when none; fd_excess: more than
         * one came, or the kernel cut some off. */
        int passed_fd;
        bool fd_excess;
};

struct phi_server {
        sd_event *event;
        struct phi_daemon *daemon;          /* NULL for the PAM socket */
        phi_server_handler handler;         /* the PAM socket's */
        void *handler_data;
        int listen_fd;
        char *bound_path;           /* unlinked at exit when we created it */
        sd_event_source *listen_src, *sync_src, *verifier_src, *audit_src, *flush_timer;
        struct conn *conns;
        size_t n_conns;
        /* Journal budgets: refused requests (the request socket's; the
         * dispatcher reaches it through daemon->refusals), and refused or
         * closed connections. Each interval ends in their summaries. */
        phi_ratelimit *refusals, *connection_notes, *self_service, *elevation;
};

static void conn_free(struct conn *c) {
        struct phi_server *s;

        if (!c)
                return;
        s = c->server;
        if (c->prev)
                c->prev->next = c->next;
        else if (s->conns == c)
                s->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        s->n_conns--;
        if (s->daemon)
                s->daemon->connections = s->n_conns;
        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->timer);
        (void) phi_close_safe(c->fd);
        (void) phi_close_safe(c->passed_fd);
        /* Frames may hold a one-time code or an enrolment secret. */
        phi_secret_wipe(c->body, c->body_len);
        free(c->body);
        phi_secret_wipe(c->out, c->out_len);
        free(c->out);
        free(c);
}

static int conn_arm_timer(struct conn *c, uint64_t seconds) {
        uint64_t now;

        if (sd_event_now(c->server->event, CLOCK_MONOTONIC, &now) < 0)
                return -EIO;
        (void) sd_event_source_set_time(c->timer, now + seconds * 1000000ULL);
        return sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
}

static int conn_write(struct conn *c);

/* Queues reply and sends what the socket takes at once: a reply almost always
 * fits, which spares a wake-up for EPOLLOUT on the path of every login. Fails
 * (the caller frees c) on errors, and with -ECONNRESET once a reply with
 * close_after_write set is out. */
static int conn_send(struct conn *c, phi_msg *reply) {
        uint8_t *frame = NULL;
        size_t len = 0;
        int r;

        r = phi_msg_encode(reply, &frame, &len);
        if (r < 0)
                return r;
        phi_secret_wipe(c->out, c->out_len);
        free(c->out);
        c->out = frame;
        c->out_len = len;
        c->out_pos = 0;
        r = conn_write(c);
        if (r < 0 || !c->out)
                return r;
        (void) sd_event_source_set_io_events(c->io, EPOLLOUT);
        return conn_arm_timer(c, PHI_SERVER_REQUEST_TIMEOUT_S);
}

static void conn_reset_read(struct conn *c) {
        phi_secret_wipe(c->body, c->body_len);
        free(c->body);
        c->body = NULL;
        c->body_len = c->body_got = 0;
        c->header_len = 0;
}

static void conn_handle_frame(struct conn *c) {
        struct phi_daemon *d = c->server->daemon;
        _cleanup_msg_ phi_msg *req = NULL, *reply = NULL;
        /* The frame's descriptor is closed once it is handled, whatever the
         * handler did: a handler uses it while it runs and keeps nothing. */
        _cleanup_close_ int passed_fd = PHI_TAKE_FD(c->passed_fd);
        bool fd_excess = c->fd_excess;
        struct phi_caller caller;
        uint64_t ticket = 0;
        int r;

        c->fd_excess = false;
        r = phi_msg_decode(c->body, c->body_len, &req);
        conn_reset_read(c);
        if (r < 0) {
                c->close_after_write = true;
                if (phi_dispatch_bad_frame(r, &reply) < 0 || conn_send(c, reply) < 0)
                        conn_free(c);
                return;
        }
        if ((passed_fd >= 0 || fd_excess) &&
            (fd_excess || c->server->handler || phi_msg_type(req) != PHI_MSG_BACKUP)) {
                if (phi_msg_new_error(-EPROTO, &reply, "malformed request: a descriptor may come only with a "
                                                       "backup request, and only one") < 0 ||
                    conn_send(c, reply) < 0)
                        conn_free(c);
                return;
        }
        if (c->server->handler) {
                /* The PAM socket is 0600 root; the check holds even if someone
                 * loosens the mode, and it needs no name lookup. */
                if (c->cred.uid != 0) {
                        c->close_after_write = true;
                        r = phi_msg_new_error(-EACCES, &reply, "only root (PAM in sshd, sudo, the VPN) may "
                                                               "use the PAM socket");
                } else
                        r = c->server->handler(c->server->handler_data, &c->cred, req, &reply, &ticket);
        } else {
                /* Identify per request: group membership may have changed since connect. */
                uint64_t queued = phi_verifier_audit_queued_here();
                phi_caller_identify(d, &c->cred, &caller);
                caller.passed_fd = passed_fd;
                r = phi_dispatch(d, &caller, req, &reply, &ticket);
                /* The request's events went to the audit log through the
                 * hook (a reload, a refusal): the answer waits until their
                 * records are durable, so that nothing acknowledged is lost
                 * to a crash. */
                if (reply && d->verifier && phi_verifier_audit_queued_here() != queued &&
                    phi_verifier_submit_after_audit(d->verifier, reply, &ticket) == 0)
                        reply = NULL;
        }
        if (r < 0 && !reply && phi_msg_new_error(r, &reply, "internal error: %s", phi_errno_text(r)) < 0) {
                conn_free(c);
                return;
        }
        if (!reply) {
                /* Deferred: no reading until the answer is out. */
                c->waiting_ticket = ticket;
                (void) sd_event_source_set_enabled(c->io, SD_EVENT_OFF);
                (void) conn_arm_timer(c, PHI_SERVER_SYNC_TIMEOUT_S);
                return;
        }
        if (conn_send(c, reply) < 0)
                conn_free(c);
}

/* recv() that also takes a descriptor passed with the bytes: kept in
 * c->passed_fd for the frame being read (at most one; any more are closed
 * and noted). Other control messages are not asked for (no SO_PASSCRED). */
static ssize_t conn_recv(struct conn *c, void *buf, size_t len) {
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control;
        struct iovec iov = { .iov_base = buf, .iov_len = len };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                             .msg_controllen = sizeof(control.buf) };
        ssize_t n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

        if (n < 0)
                return n;
        if (mh.msg_flags & MSG_CTRUNC)
                c->fd_excess = true;   /* the kernel closed what did not fit */
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
                size_t n_fds;
                if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len < CMSG_LEN(0))
                        continue;
                n_fds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < n_fds; i++) {
                        int fd;
                        memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
                        if (c->passed_fd < 0 && !c->fd_excess)
                                c->passed_fd = fd;
                        else {
                                (void) phi_close_safe(fd);
                                c->fd_excess = true;
                        }
                }
        }
        return n;
}

static int conn_read(struct conn *c) {
        for (;;) {
                ssize_t n;
                if (c->header_len < PHI_WIRE_HEADER_SIZE) {
                        n = conn_recv(c, c->header + c->header_len, PHI_WIRE_HEADER_SIZE - c->header_len);
                        if (n > 0) {
                                c->header_len += (size_t) n;
                                if (c->header_len == PHI_WIRE_HEADER_SIZE) {
                                        int r = phi_wire_frame_length(c->header, &c->body_len);
                                        if (r < 0) {
                                                _cleanup_msg_ phi_msg *reply = NULL;
                                                /* No way to resynchronise: answer and close. */
                                                conn_reset_read(c);
                                                c->close_after_write = true;
                                                if (phi_dispatch_bad_frame(r, &reply) < 0 ||
                                                    conn_send(c, reply) < 0)
                                                        return -EPROTO;
                                                return 0;
                                        }
                                        c->body = malloc(c->body_len);
                                        if (!c->body)
                                                return -ENOMEM;
                                        c->body_got = 0;
                                        /* Once a frame starts, it must arrive in time. */
                                        (void) conn_arm_timer(c, PHI_SERVER_REQUEST_TIMEOUT_S);
                                }
                                continue;
                        }
                } else {
                        n = conn_recv(c, c->body + c->body_got, c->body_len - c->body_got);
                        if (n > 0) {
                                c->body_got += (size_t) n;
                                if (c->body_got == c->body_len) {
                                        conn_handle_frame(c);
                                        return 1;   /* c may be gone */
                                }
                                continue;
                        }
                }
                if (n == 0)
                        return -ECONNRESET;
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN)
                        return 0;
                return phi_negative_errno();
        }
}

static int conn_write(struct conn *c) {
        while (c->out_pos < c->out_len) {
                ssize_t n = send(c->fd, c->out + c->out_pos, c->out_len - c->out_pos,
                                 MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n > 0) {
                        c->out_pos += (size_t) n;
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return 0;
                return n < 0 ? phi_negative_errno() : -EIO;
        }
        phi_secret_wipe(c->out, c->out_len);
        free(c->out);
        c->out = NULL;
        c->out_len = c->out_pos = 0;
        if (c->close_after_write)
                return -ECONNRESET;
        (void) sd_event_now(c->server->event, CLOCK_MONOTONIC, &c->last_active);
        (void) sd_event_source_set_io_events(c->io, EPOLLIN);
        return conn_arm_timer(c, PHI_SERVER_IDLE_TIMEOUT_S);
}

static int on_conn_io(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        struct conn *c = userdata;
        int r = 0;

        (void) src, (void) fd;
        if (c->out)
                r = conn_write(c);
        else if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                r = conn_read(c);
                if (r == 1)
                        return 0;
        }
        if (r < 0)
                conn_free(c);
        return 0;
}

static int on_conn_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        struct conn *c = userdata;

        (void) src, (void) usec;
        if (c->waiting_ticket) {
                _cleanup_msg_ phi_msg *reply = NULL;
                uint64_t ticket = PHI_TAKE_TICKET(c->waiting_ticket);
                (void) sd_event_source_set_enabled(c->io, SD_EVENT_ON);
                if (phi_msg_new_error(-ETIMEDOUT, &reply, ticket & (PHI_VERIFIER_TICKET_BIT | PHI_AUDIT_CHECK_TICKET_BIT) ? "the request did not finish in time" : "sync did not finish in time; see phictl status") == 0 &&
                    conn_send(c, reply) == 0)
                        return 0;
        }
        conn_free(c);
        return 0;
}

/* ------------------------------------------------- sharing the connections
 *
 * No uid but root holds more than PHI_SERVER_MAX_PER_UID connections to the
 * request socket, and the last PHI_SERVER_RESERVED_CONNECTIONS of the cap are
 * for root and admin_group. A caller over its share does not lock others out:
 * room is made by closing the oldest idle connection of the uid over its cap
 * (or, the pool being full, of the uid holding the most); that connection
 * gets an ERROR frame saying why, then end of file. Only when none of those
 * is idle is the new connection refused (an ERROR frame, then closed). */

static bool conn_idle(const struct conn *c) {
        return !c->waiting_ticket && !c->out && c->header_len == 0;
}

static size_t conns_of(const phi_server *s, uid_t uid) {
        size_t n = 0;

        for (const struct conn *c = s->conns; c; c = c->next)
                n += c->cred.uid == uid;
        return n;
}

static struct conn *oldest_idle_of(phi_server *s, uid_t uid) {
        struct conn *best = NULL;

        for (struct conn *c = s->conns; c; c = c->next)
                if (c->cred.uid == uid && conn_idle(c) && (!best || c->last_active <= best->last_active))
                        best = c;
        return best;
}

static int uid_cmp(const void *a, const void *b) {
        uid_t x = *(const uid_t *) a, y = *(const uid_t *) b;
        return x < y ? -1 : x > y;
}

/* The uid other than root holding the most connections, which pays for a full
 * pool; false when only root holds any. */
static bool busiest_uid(const phi_server *s, uid_t *ret) {
        uid_t uids[PHI_SERVER_MAX_CONNECTIONS + 1];
        size_t n = 0, best_n = 0;

        for (const struct conn *c = s->conns; c && n < PHI_ELEMENTSOF(uids); c = c->next)
                if (c->cred.uid != 0)
                        uids[n++] = c->cred.uid;
        qsort(uids, n, sizeof(uids[0]), uid_cmp);
        for (size_t i = 0, j; i < n; i = j) {
                for (j = i; j < n && uids[j] == uids[i]; j++)
                        ;
                if (j - i > best_n) {
                        best_n = j - i;
                        *ret = uids[i];
                }
        }
        return best_n > 0;
}

/* One refused or closed connection of uid: journaled within the budget. */
static void note_connection(phi_server *s, uid_t uid, const char *reason, const char *what) {
        struct phi_caller who = { 0 };
        char uid_text[24];

        if (!phi_ratelimit_admit(s->connection_notes, uid, NULL))
                return;
        if (s->daemon)
                phi_caller_identify(s->daemon, &(struct ucred){ .uid = uid, .gid = (gid_t) -1 }, &who);
        else
                snprintf(who.name, sizeof(who.name), "uid %u", (unsigned) uid);
        snprintf(uid_text, sizeof(uid_text), "%u", (unsigned) uid);
        const struct phi_journal_field fields[] = {
                { "PHI_ACTOR", who.name },
                { "PHI_USER", who.name },
                { "PHI_SERVICE", "phiaccessd" },
                { "PHI_VERB", "connect" },
                { "PHI_REASON", reason },
                { "PHI_CALLER_UID", uid_text },
        };
        phi_journal_event_async(PHI_EVENT_ACCESS_DENIED, LOG_WARNING, fields, PHI_ELEMENTSOF(fields),
                                "Connection of %s %s (more such within %d s are counted, not journaled "
                                "one by one)", who.name, what, PHI_SERVER_JOURNAL_INTERVAL_S);
}

/* An ERROR frame (best effort: the socket is not waited for), then close. */
static void close_with_error(int fd, int error, const char *message) {
        _cleanup_msg_ phi_msg *reply = NULL;
        _cleanup_free_ uint8_t *frame = NULL;
        size_t len = 0;

        if (phi_msg_new_error(error, &reply, "%s", message) == 0 && phi_msg_encode(reply, &frame, &len) == 0)
                (void) !send(fd, frame, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        (void) phi_close_safe(fd);
}

static void conn_close_for_room(struct conn *c, const char *reason, const char *message) {
        phi_server *s = c->server;
        uid_t uid = c->cred.uid;
        int fd = PHI_TAKE_FD(c->fd);

        conn_free(c);
        close_with_error(fd, -EUSERS, message);
        if (s->daemon)
                s->daemon->connections_closed++;
        note_connection(s, uid, reason, "closed: its oldest idle one, to make room");
}

static bool may_use_reserve(phi_server *s, uid_t uid) {
        struct phi_caller who;

        if (uid == 0)
                return true;
        /* Only near the cap: it costs a look at the passwd and group files. */
        phi_caller_identify(s->daemon, &(struct ucred){ .uid = uid, .gid = (gid_t) -1 }, &who);
        phi_caller_resolve_roles(s->daemon, &who);
        return who.classes & PHI_CALLER_ADMIN;
}

/* Makes room for a new connection of uid: 0, or -EUSERS with *ret_reason
 * when it is refused. */
static int make_room(phi_server *s, uid_t uid, const char **ret_reason) {
        char message[256];
        struct conn *victim;
        uid_t busiest;

        if (uid != 0 && conns_of(s, uid) >= PHI_SERVER_MAX_PER_UID) {
                *ret_reason = "too_many_connections";
                victim = oldest_idle_of(s, uid);
                if (!victim)
                        return -EUSERS;
                snprintf(message, sizeof(message),
                         "connection closed: uid %u has %d connections to phiaccessd, the most one user may; "
                         "its oldest idle one (this) was closed for its new one",
                         (unsigned) uid, PHI_SERVER_MAX_PER_UID);
                conn_close_for_room(victim, *ret_reason, message);
                return 0;
        }
        if (s->n_conns < PHI_SERVER_MAX_CONNECTIONS - PHI_SERVER_RESERVED_CONNECTIONS ||
            (s->n_conns < PHI_SERVER_MAX_CONNECTIONS && may_use_reserve(s, uid)))
                return 0;
        *ret_reason = "server_full";
        if (!busiest_uid(s, &busiest) || !(victim = oldest_idle_of(s, busiest)))
                return -EUSERS;
        snprintf(message, sizeof(message),
                 "connection closed: phiaccessd is at its %d connections and uid %u holds the most; "
                 "its oldest idle one (this) was closed for another caller",
                 PHI_SERVER_MAX_CONNECTIONS, (unsigned) busiest);
        conn_close_for_room(victim, *ret_reason, message);
        return 0;
}

static int on_accept(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        struct phi_server *s = userdata;
        struct ucred cred;
        socklen_t len = sizeof(cred);
        const char *reason = NULL;
        struct conn *c;
        int cfd, r;

        (void) src, (void) revents;
        cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0)
                return 0;
        if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof(cred)) {
                (void) phi_close_safe(cfd);
                return 0;
        }
        /* The PAM socket is root's alone: only the plain cap. */
        if (s->daemon)
                r = make_room(s, cred.uid, &reason);
        else if (s->n_conns >= PHI_SERVER_MAX_CONNECTIONS) {
                reason = "server_full";
                r = -EUSERS;
        } else
                r = 0;
        if (r < 0) {
                char message[256];
                /* Accept-and-close keeps the backlog moving; the client reads why. */
                if (strcmp(reason, "server_full") == 0)
                        snprintf(message, sizeof(message),
                                 "phiaccessd is at its %d connections and none can be closed; try again",
                                 PHI_SERVER_MAX_CONNECTIONS);
                else
                        snprintf(message, sizeof(message),
                                 "uid %u already has %d connections to phiaccessd, none idle; close one "
                                 "and try again", (unsigned) cred.uid, PHI_SERVER_MAX_PER_UID);
                close_with_error(cfd, -EUSERS, message);
                if (s->daemon)
                        s->daemon->connections_refused++;
                note_connection(s, cred.uid, reason, "refused");
                return 0;
        }
        c = calloc(1, sizeof(*c));
        if (!c) {
                (void) phi_close_safe(cfd);
                return 0;
        }
        c->server = s;
        c->fd = cfd;
        c->passed_fd = -1;
        c->cred = cred;
        (void) sd_event_now(s->event, CLOCK_MONOTONIC, &c->last_active);
        c->next = s->conns;
        if (s->conns)
                s->conns->prev = c;
        s->conns = c;
        s->n_conns++;
        if (s->daemon)
                s->daemon->connections = s->n_conns;
        r = sd_event_add_io(s->event, &c->io, cfd, EPOLLIN, on_conn_io, c);
        if (r >= 0)
                r = sd_event_add_time_relative(s->event, &c->timer, CLOCK_MONOTONIC,
                                               PHI_SERVER_IDLE_TIMEOUT_S * 1000000ULL, 0, on_conn_timer, c);
        if (r < 0)
                conn_free(c);
        return 0;
}

/* ------------------------------------------------------------ summaries */

static void summarise(const struct phi_ratelimit_summary *sum, const char *limit, const char *what) {
        char uid_text[24], suppressed[24], written[24], who[64];
        bool others = sum->uid == PHI_RATELIMIT_OTHERS;

        snprintf(uid_text, sizeof(uid_text), "%u", (unsigned) sum->uid);
        snprintf(suppressed, sizeof(suppressed), "%llu", (unsigned long long) sum->suppressed);
        snprintf(written, sizeof(written), "%llu", (unsigned long long) sum->written);
        if (others)
                snprintf(who, sizeof(who), "callers beyond the %d tracked", PHI_SERVER_LIMIT_UIDS);
        else if (sum->name[0])
                snprintf(who, sizeof(who), "%s", sum->name);
        else
                snprintf(who, sizeof(who), "uid %u", (unsigned) sum->uid);
        const struct phi_journal_field fields[] = {
                { "PHI_ACTOR", others ? NULL : who },
                { "PHI_USER", others ? NULL : who },
                { "PHI_SERVICE", "phiaccessd" },
                { "PHI_REASON", "rate_limited" },
                { "PHI_LIMIT", limit },
                { "PHI_SUPPRESSED", suppressed },
                { "PHI_JOURNALED", written },
                { "PHI_CALLER_UID", others ? NULL : uid_text },
        };
        phi_journal_event_async(PHI_EVENT_ACCESS_DENIED, LOG_WARNING, fields, PHI_ELEMENTSOF(fields),
                                "%s more %s of %s not journaled one by one (%s were), at most %d a uid per %d s",
                                suppressed, what, who, written,
                                strcmp(limit, "requests") == 0 ? PHI_SERVER_REFUSAL_BURST
                                                               : PHI_SERVER_CONNECTION_BURST,
                                PHI_SERVER_JOURNAL_INTERVAL_S);
}

static void summarise_refusal(void *userdata, const struct phi_ratelimit_summary *sum) {
        (void) userdata;
        summarise(sum, "requests", "refused requests");
}

static void summarise_connection(void *userdata, const struct phi_ratelimit_summary *sum) {
        (void) userdata;
        summarise(sum, "connections", "refused or closed connections");
}

static void forget(void *userdata, const struct phi_ratelimit_summary *sum) {
        (void) userdata, (void) sum;   /* its refusals were journaled as such */
}

static void server_flush(phi_server *s) {
        if (s->refusals)
                (void) phi_ratelimit_flush(s->refusals, summarise_refusal, NULL);
        if (s->connection_notes)
                (void) phi_ratelimit_flush(s->connection_notes, summarise_connection, NULL);
        if (s->self_service)
                (void) phi_ratelimit_flush(s->self_service, forget, NULL);
        if (s->elevation)
                (void) phi_ratelimit_flush(s->elevation, forget, NULL);
}

static int on_flush_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        server_flush(userdata);
        (void) sd_event_source_set_time(src, usec + PHI_SERVER_JOURNAL_INTERVAL_S * 1000000ULL);
        return sd_event_source_set_enabled(src, SD_EVENT_ON);
}

/* The sync thread finished a request: answer every connection waiting for it. */
static int on_sync_event(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        struct phi_server *s = userdata;
        struct conn *next;

        (void) src, (void) fd, (void) revents;
        phi_sync_event_ack(s->daemon->sync);
        for (struct conn *c = s->conns; c; c = next) {
                _cleanup_msg_ phi_msg *reply = NULL;
                char message[256];
                int error;

                next = c->next;
                if (!c->waiting_ticket ||
                    !phi_sync_request_result(s->daemon->sync, c->waiting_ticket, &error, message, sizeof(message)))
                        continue;
                c->waiting_ticket = 0;
                (void) sd_event_source_set_enabled(c->io, SD_EVENT_ON);
                if (phi_dispatch_sync_reply(error, message, &reply) < 0 || conn_send(c, reply) < 0)
                        conn_free(c);
        }
        return 0;
}

/* The connection waiting for ticket, or NULL if it has gone meanwhile. */
static struct conn *conn_waiting_for(phi_server *s, uint64_t ticket) {
        struct conn *c = s->conns;

        while (c && c->waiting_ticket != ticket)
                c = c->next;
        return c;
}

void phi_server_deliver(phi_server *s, uint64_t ticket, phi_msg *reply) {
        struct conn *c = conn_waiting_for(s, ticket);

        if (c) {
                c->waiting_ticket = 0;
                (void) sd_event_source_set_enabled(c->io, SD_EVENT_ON);
                if (!reply || conn_send(c, reply) < 0)
                        conn_free(c);
        }
        phi_msg_free(reply);
}

bool phi_server_waiter_gone(phi_server *s, uint64_t ticket) {
        struct conn *c = conn_waiting_for(s, ticket);
        char b;
        ssize_t n;

        if (!c)
                return true;
        /* A client sends one request and waits; what it may still send is
         * left in place. Only end-of-file or an error says it has gone. */
        n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* The TOTP verifier committed a round with requests from this socket (phictl's
 * enrolment and admin verbs): send each reply to the connection that waits for
 * it. A connection that gave up meanwhile is gone; its reply is dropped. */
static int on_verifier_event(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        struct phi_server *s = userdata;
        phi_msg *reply = NULL;
        uint64_t ticket;

        (void) src, (void) fd, (void) revents;
        phi_verifier_event_ack(s->daemon->verifier);
        while (phi_verifier_take(s->daemon->verifier, &ticket, &reply))
                phi_server_deliver(s, ticket, PHI_TAKE_PTR(reply));
        return 0;
}

/* A live audit verification finished (audit_verify.c): its reply to the
 * connection that waits for it. */
static int on_audit_check_event(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        struct phi_server *s = userdata;
        phi_msg *reply = NULL;
        uint64_t ticket;

        (void) src, (void) fd, (void) revents;
        phi_audit_checks_event_ack(s->daemon->audit_checks);
        while (phi_audit_checks_take(s->daemon->audit_checks, &ticket, &reply))
                phi_server_deliver(s, ticket, PHI_TAKE_PTR(reply));
        return 0;
}

int phi_server_listen(const char *path, mode_t mode, int *ret_fd) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -1;
        size_t len = strlen(path);

        /* Bound as PATH.new first (see below), so that name must fit too. */
        if (len + sizeof(".new") > sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, len);
        memcpy(sa.sun_path + len, ".new", sizeof(".new"));
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return phi_negative_errno();
        /* Outside systemd (RuntimeDirectory=) the directory may not exist yet. */
        {
                _cleanup_free_ char *parent = strdup(path);
                char *slash = parent ? strrchr(parent, '/') : NULL;
                if (slash && slash != parent) {
                        *slash = 0;
                        if (mkdir(parent, 0755) < 0 && errno != EEXIST)
                                return phi_negative_errno();
                }
        }
        /* A socket left by a previous run; anything else at the path is not ours. */
        {
                struct stat st;
                if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
                        return -EEXIST;
                if (lstat(sa.sun_path, &st) == 0) {
                        if (!S_ISSOCK(st.st_mode))
                                return -EEXIST;
                        (void) unlink(sa.sun_path);
                }
        }
        /* The mode is set with chmod, not the umask: the umask is process-wide and
         * the sync thread creates files at the same time (the socket once came
         * out 0600). Bound under PATH.new and renamed over PATH (replacing a
         * stale socket), so PATH never has another mode. */
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return phi_negative_errno();
        if (chmod(sa.sun_path, mode) < 0 || rename(sa.sun_path, path) < 0) {
                int r = phi_negative_errno();
                (void) unlink(sa.sun_path);
                return r;
        }
        if (listen(fd, 128) < 0)
                return phi_negative_errno();
        *ret_fd = PHI_TAKE_FD(fd);
        return 0;
}

static int server_new(sd_event *event, int listen_fd, const char *path, mode_t mode, phi_server **ret) {
        phi_server *s = calloc(1, sizeof(*s));
        int r;

        if (!s)
                return -ENOMEM;
        s->event = event;
        s->listen_fd = -1;
        if (listen_fd < 0 && !path) {
                r = -EINVAL;
                goto fail;
        }
        if (listen_fd >= 0) {
                s->listen_fd = listen_fd;
                (void) fcntl(s->listen_fd, F_SETFL, O_NONBLOCK);
        } else {
                r = phi_server_listen(path, mode, &s->listen_fd);
                if (r < 0) {
                        phi_log(LOG_ERR, "cannot listen on %s: %s", path, phi_errno_text(r));
                        goto fail;
                }
                s->bound_path = strdup(path);
        }
        r = phi_ratelimit_new(PHI_SERVER_CONNECTION_BURST, PHI_SERVER_CONNECTION_GLOBAL_BURST,
                              PHI_SERVER_LIMIT_UIDS, &s->connection_notes);
        if (r >= 0)
                r = sd_event_add_time_relative(event, &s->flush_timer, CLOCK_MONOTONIC,
                                               PHI_SERVER_JOURNAL_INTERVAL_S * 1000000ULL, 0, on_flush_timer, s);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->flush_timer, SD_EVENT_ON);
        if (r >= 0)
                r = sd_event_add_io(event, &s->listen_src, s->listen_fd, EPOLLIN, on_accept, s);
        if (r < 0)
                goto fail;
        *ret = s;
        return 0;
fail:
        /* A passed socket stays with the caller unless this succeeds. */
        if (listen_fd >= 0)
                s->listen_fd = -1;
        phi_server_free(s);
        return r;
}

int phi_server_new(sd_event *event, struct phi_daemon *d, int listen_fd, const char *path, phi_server **ret) {
        phi_server *s = NULL;
        int r;

        r = server_new(event, listen_fd, path, 0666, &s);
        if (r < 0)
                return r;
        s->daemon = d;
        r = phi_ratelimit_new(PHI_SERVER_REFUSAL_BURST, PHI_SERVER_REFUSAL_GLOBAL_BURST, PHI_SERVER_LIMIT_UIDS,
                              &s->refusals);
        if (r >= 0)
                r = phi_ratelimit_new(PHI_SERVER_SELF_SERVICE_BURST, PHI_SERVER_SELF_SERVICE_GLOBAL_BURST,
                                      PHI_SERVER_LIMIT_UIDS, &s->self_service);
        if (r >= 0)
                r = phi_ratelimit_new(PHI_SERVER_ELEVATION_BURST, PHI_SERVER_ELEVATION_GLOBAL_BURST,
                                      PHI_SERVER_LIMIT_UIDS, &s->elevation);
        if (r >= 0) {
                d->refusals = s->refusals;
                d->connection_notes = s->connection_notes;
                d->self_service = s->self_service;
                d->elevation_calls = s->elevation;
                r = sd_event_add_io(event, &s->sync_src, phi_sync_event_fd(d->sync), EPOLLIN, on_sync_event, s);
        }
        if (r >= 0 && d->verifier)
                r = sd_event_add_io(event, &s->verifier_src, phi_verifier_event_fd(d->verifier), EPOLLIN,
                                    on_verifier_event, s);
        if (r >= 0 && d->audit_checks)
                r = sd_event_add_io(event, &s->audit_src, phi_audit_checks_event_fd(d->audit_checks), EPOLLIN,
                                    on_audit_check_event, s);
        if (r < 0) {
                phi_server_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

int phi_server_new_pam(sd_event *event, int listen_fd, const char *path, phi_server_handler handler,
                       void *userdata, phi_server **ret) {
        phi_server *s = NULL;
        int r;

        r = server_new(event, listen_fd, path, 0600, &s);
        if (r < 0)
                return r;
        s->handler = handler;
        s->handler_data = userdata;
        *ret = s;
        return 0;
}

void phi_server_free(phi_server *s) {
        if (!s)
                return;
        while (s->conns)
                conn_free(s->conns);
        /* What was held back in the last, unfinished interval is still told. */
        server_flush(s);
        if (s->daemon && s->daemon->refusals == s->refusals) {
                s->daemon->refusals = NULL;
                s->daemon->connection_notes = NULL;
                s->daemon->self_service = NULL;
                s->daemon->elevation_calls = NULL;
        }
        phi_ratelimit_free(s->self_service);
        phi_ratelimit_free(s->elevation);
        phi_ratelimit_free(s->refusals);
        phi_ratelimit_free(s->connection_notes);
        sd_event_source_disable_unref(s->flush_timer);
        sd_event_source_disable_unref(s->listen_src);
        sd_event_source_disable_unref(s->sync_src);
        sd_event_source_disable_unref(s->verifier_src);
        sd_event_source_disable_unref(s->audit_src);
        (void) phi_close_safe(s->listen_fd);
        if (s->bound_path) {
                (void) unlink(s->bound_path);
                free(s->bound_path);
        }
        free(s);
}

size_t phi_server_connections(const phi_server *s) {
        return s->n_conns;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Each connection reads one frame at a time into a buffer sized from the
 * length prefix (at most PHI_WIRE_MAX_FRAME), answers it, and only then reads
 * the next: a client cannot make the daemon queue replies or buffer more than
 * one frame. A timer closes connections that stall mid-request or sit idle. */

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>

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
};

struct phi_server {
        sd_event *event;
        struct phi_daemon *daemon;          /* NULL for the PAM socket */
        phi_server_handler handler;         /* the PAM socket's */
        void *handler_data;
        int listen_fd;
        char *bound_path;           /* unlinked at exit when we created it */
        sd_event_source *listen_src, *sync_src, *verifier_src;
        struct conn *conns;
        size_t n_conns;
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
        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->timer);
        (void) phi_close_safe(c->fd);
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
        struct phi_caller caller;
        uint64_t ticket = 0;
        int r;

        r = phi_msg_decode(c->body, c->body_len, &req);
        conn_reset_read(c);
        if (r < 0) {
                c->close_after_write = true;
                if (phi_dispatch_bad_frame(r, &reply) < 0 || conn_send(c, reply) < 0)
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
                        r = c->server->handler(c->server->handler_data, req, &reply, &ticket);
        } else {
                /* Identify per request: group membership may have changed since connect. */
                phi_caller_identify(d, &c->cred, &caller);
                r = phi_dispatch(d, &caller, req, &reply, &ticket);
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

static int conn_read(struct conn *c) {
        for (;;) {
                ssize_t n;
                if (c->header_len < PHI_WIRE_HEADER_SIZE) {
                        n = recv(c->fd, c->header + c->header_len, PHI_WIRE_HEADER_SIZE - c->header_len,
                                 MSG_DONTWAIT);
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
                        n = recv(c->fd, c->body + c->body_got, c->body_len - c->body_got, MSG_DONTWAIT);
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
                if (phi_msg_new_error(-ETIMEDOUT, &reply, ticket & PHI_VERIFIER_TICKET_BIT ? "the request did not finish in time" : "sync did not finish in time; see phictl status") == 0 &&
                    conn_send(c, reply) == 0)
                        return 0;
        }
        conn_free(c);
        return 0;
}

static int on_accept(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        struct phi_server *s = userdata;
        socklen_t len;
        struct conn *c;
        int cfd, r;

        (void) src, (void) revents;
        cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0)
                return 0;
        if (s->n_conns >= PHI_SERVER_MAX_CONNECTIONS) {
                /* Accept-and-close keeps the backlog moving; clients see a reset and
                 * report the daemon busy instead of hanging. */
                phi_log(LOG_WARNING, "too many connections (%d); refusing one", PHI_SERVER_MAX_CONNECTIONS);
                (void) phi_close_safe(cfd);
                return 0;
        }
        c = calloc(1, sizeof(*c));
        if (!c) {
                (void) phi_close_safe(cfd);
                return 0;
        }
        c->server = s;
        c->fd = cfd;
        c->next = s->conns;
        if (s->conns)
                s->conns->prev = c;
        s->conns = c;
        s->n_conns++;
        len = sizeof(c->cred);
        if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &c->cred, &len) < 0 || len != sizeof(c->cred)) {
                conn_free(c);
                return 0;
        }
        r = sd_event_add_io(s->event, &c->io, cfd, EPOLLIN, on_conn_io, c);
        if (r >= 0)
                r = sd_event_add_time_relative(s->event, &c->timer, CLOCK_MONOTONIC,
                                               PHI_SERVER_IDLE_TIMEOUT_S * 1000000ULL, 0, on_conn_timer, c);
        if (r < 0)
                conn_free(c);
        return 0;
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
        r = sd_event_add_io(event, &s->sync_src, phi_sync_event_fd(d->sync), EPOLLIN, on_sync_event, s);
        if (r >= 0 && d->verifier)
                r = sd_event_add_io(event, &s->verifier_src, phi_verifier_event_fd(d->verifier), EPOLLIN,
                                    on_verifier_event, s);
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
        sd_event_source_disable_unref(s->listen_src);
        sd_event_source_disable_unref(s->sync_src);
        sd_event_source_disable_unref(s->verifier_src);
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

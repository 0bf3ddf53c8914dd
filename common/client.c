/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "phi/client.h"
#include "phi/secret.h"

struct phi_client {
        int fd;
        int64_t deadline_ms;
};

int64_t phi_now_ms(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for events or the deadline passes. */
static int wait_fd(int fd, short events, int64_t deadline_ms) {
        for (;;) {
                struct pollfd p = { .fd = fd, .events = events };
                int64_t left = deadline_ms - phi_now_ms();
                int n;

                if (left <= 0)
                        return -ETIMEDOUT;
                n = poll(&p, 1, left > 60000 ? 60000 : (int) left);
                if (n > 0)
                        return 0;
                if (n < 0 && errno != EINTR)
                        return phi_negative_errno();
        }
}

/* A host process running with 0-2 closed would get one of them from socket(). */
static int fd_move_above_stdio(int fd) {
        int moved;

        if (fd > STDERR_FILENO)
                return fd;
        moved = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
        if (moved < 0)
                moved = phi_negative_errno();
        (void) phi_close_safe(fd);
        return moved;
}

int phi_client_connect(const char *path, int timeout_ms, phi_client **ret) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t len = strlen(path);
        _cleanup_close_ int fd = -1;
        int64_t deadline = phi_now_ms() + (timeout_ms > 0 ? timeout_ms : 1);
        phi_client *c;
        int r;

        if (len == 0)
                return -EINVAL;
        if (len >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, len + 1);

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return phi_negative_errno();
        fd = fd_move_above_stdio(fd);
        if (fd < 0)
                return fd;

        /* A non-blocking AF_UNIX connect fails with EAGAIN while the listener's backlog
         * is full, rather than waiting: retry until the deadline. */
        while (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                if (errno == EINTR)
                        continue;
                if (errno == EINPROGRESS) {
                        int err = 0;
                        socklen_t sl = sizeof(err);
                        if ((r = wait_fd(fd, POLLOUT, deadline)) < 0)
                                return r;
                        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0)
                                return phi_negative_errno();
                        if (err != 0)
                                return -err;
                        break;
                }
                if (errno != EAGAIN)
                        return phi_negative_errno();
                if (phi_now_ms() >= deadline)
                        return -ETIMEDOUT;
                (void) poll(NULL, 0, 5);
        }

        /* Whoever serves this socket decides logins: only root may (or the
         * caller itself, who gains nothing by fooling itself). The default
         * paths are in root's /run/phiaccessd, but socket= may name any path,
         * and a user who could bind one there could answer OK to every code. */
        {
                struct ucred peer;
                socklen_t sl = sizeof(peer);
                if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &sl) < 0)
                        return phi_negative_errno();
                if (sl != sizeof(peer) || (peer.uid != 0 && peer.uid != geteuid()))
                        return -EPERM;
        }

        c = malloc(sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->fd = PHI_TAKE_FD(fd);
        c->deadline_ms = deadline;
        *ret = c;
        return 0;
}

const char *phi_client_strerror(int error) {
        if (error == -EPERM)
                return "the socket is not served by root; not trusting it";
        return phi_errno_text(error);
}

void phi_client_free(phi_client *c) {
        if (!c)
                return;
        (void) phi_close_safe(c->fd);
        free(c);
}

void phi_client_set_timeout(phi_client *c, int timeout_ms) {
        c->deadline_ms = phi_now_ms() + (timeout_ms > 0 ? timeout_ms : 1);
}

int phi_wire_write_frame(int fd, const uint8_t *frame, size_t len, int64_t deadline_ms) {
        size_t done = 0;
        int r;

        while (done < len) {
                ssize_t n = send(fd, frame + done, len - done, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n > 0) {
                        done += (size_t) n;
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno != EAGAIN)
                        return phi_negative_errno();
                if ((r = wait_fd(fd, POLLOUT, deadline_ms)) < 0)
                        return r;
        }
        return 0;
}

static int read_exact(int fd, uint8_t *buf, size_t len, int64_t deadline_ms) {
        size_t done = 0;
        int r;

        while (done < len) {
                ssize_t n = recv(fd, buf + done, len - done, MSG_DONTWAIT);
                if (n > 0) {
                        done += (size_t) n;
                        continue;
                }
                if (n == 0)
                        return -ECONNRESET;
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN)
                        return phi_negative_errno();
                if ((r = wait_fd(fd, POLLIN, deadline_ms)) < 0)
                        return r;
        }
        return 0;
}

int phi_wire_read_msg(int fd, int64_t deadline_ms, phi_msg **ret) {
        uint8_t header[PHI_WIRE_HEADER_SIZE];
        uint8_t *body = NULL;
        size_t body_len = 0;
        int r;

        if ((r = read_exact(fd, header, sizeof(header), deadline_ms)) < 0 ||
            (r = phi_wire_frame_length(header, &body_len)) < 0)
                goto out;
        body = malloc(body_len);
        if (!body) {
                r = -ENOMEM;
                goto out;
        }
        if ((r = read_exact(fd, body, body_len, deadline_ms)) < 0)
                goto out;
        r = phi_msg_decode(body, body_len, ret);
out:
        /* The body may carry a one-time code. */
        phi_secret_wipe(body, body_len);
        free(body);
        return r;
}

int phi_client_send(phi_client *c, const phi_msg *req) {
        uint8_t *frame = NULL;
        size_t len = 0;
        int r;

        if ((r = phi_msg_encode(req, &frame, &len)) < 0)
                return r;
        r = phi_wire_write_frame(c->fd, frame, len, c->deadline_ms);
        phi_secret_wipe(frame, len);
        free(frame);
        return r;
}

int phi_client_send_fd(phi_client *c, const phi_msg *req, int fd) {
        uint8_t *frame = NULL;
        size_t len = 0;
        int r;

        if (fd < 0)
                return -EBADF;
        if ((r = phi_msg_encode(req, &frame, &len)) < 0)
                return r;
        /* The descriptor rides on the first sendmsg() that moves a byte; the
         * rest of the frame follows as usual. */
        for (;;) {
                union {
                        struct cmsghdr h;
                        char buf[CMSG_SPACE(sizeof(int))];
                } control = { 0 };
                struct iovec iov = { .iov_base = frame, .iov_len = len };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                                     .msg_controllen = sizeof(control.buf) };
                struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
                ssize_t n;

                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(cm), &fd, sizeof(int));
                n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n > 0) {
                        r = phi_wire_write_frame(c->fd, frame + n, len - (size_t) n, c->deadline_ms);
                        break;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n == 0 || errno != EAGAIN) {
                        r = n == 0 ? -EIO : phi_negative_errno();
                        break;
                }
                if ((r = wait_fd(c->fd, POLLOUT, c->deadline_ms)) < 0)
                        break;
        }
        phi_secret_wipe(frame, len);
        free(frame);
        return r;
}

int phi_client_recv(phi_client *c, phi_msg **ret) {
        return phi_wire_read_msg(c->fd, c->deadline_ms, ret);
}

int phi_client_call(phi_client *c, const phi_msg *req, phi_msg **ret) {
        int r;

        if ((r = phi_client_send(c, req)) < 0)
                return r;
        return phi_client_recv(c, ret);
}

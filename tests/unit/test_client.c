/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "phi/client.h"

enum behaviour {
        ANSWER_OK,     /* reads the request, answers OK with one pair */
        SILENT,        /* reads the request, never answers */
        HUGE_LENGTH,   /* answers a length prefix over the maximum */
        HALF_FRAME,    /* answers half a frame, then closes */
        CLOSE_AT_ONCE, /* closes without reading */
};

struct server {
        char dir[64];
        char path[128];
        int listen_fd;
        enum behaviour behaviour;
        pthread_t thread;
        uint16_t seen_type;
        int result; /* of the server's last write or read */
};

static void *serve(void *arg) {
        struct server *s = arg;
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        phi_msg *req = NULL, *reply = NULL;
        uint8_t *frame = NULL;
        size_t len = 0;

        if (fd < 0)
                return NULL;
        if (s->behaviour == CLOSE_AT_ONCE)
                goto done;
        if (phi_wire_read_msg(fd, phi_now_ms() + 5000, &req) == 0)
                s->seen_type = phi_msg_type(req);
        switch (s->behaviour) {
        case ANSWER_OK:
                reply = phi_msg_new(PHI_MSG_OK);
                if (phi_msg_put_pair(reply, "answer", "42") == 0 &&
                    phi_msg_encode(reply, &frame, &len) == 0)
                        s->result = phi_wire_write_frame(fd, frame, len, phi_now_ms() + 5000);
                break;
        case SILENT: {
                char c;
                /* Hold the connection until the client gives up. */
                s->result = (int) read(fd, &c, 1);
                break;
        }
        case HUGE_LENGTH:
                s->result = (int) write(fd, "\x7f\xff\xff\xff", 4);
                break;
        case HALF_FRAME:
                s->result = (int) write(fd, "\x00\x00\x00\x10\x01", 5);
                break;
        case CLOSE_AT_ONCE:
                break;
        }
done:
        free(frame);
        phi_msg_free(req);
        phi_msg_free(reply);
        close(fd);
        return NULL;
}

static struct server *server_start(enum behaviour b) {
        struct server *s = calloc(1, sizeof(*s));
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        assert_non_null(s);
        strcpy(s->dir, "/tmp/phi-client-test-XXXXXX");
        assert_non_null(mkdtemp(s->dir));
        snprintf(s->path, sizeof(s->path), "%s/socket", s->dir);
        strcpy(sa.sun_path, s->path);
        s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(s->listen_fd >= 0);
        assert_int_equal(bind(s->listen_fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(listen(s->listen_fd, 4), 0);
        s->behaviour = b;
        assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
        return s;
}

/* Returns the type of the request the server saw. */
static uint16_t server_stop(struct server *s) {
        uint16_t seen;

        assert_int_equal(pthread_join(s->thread, NULL), 0);
        seen = s->seen_type;
        close(s->listen_fd);
        unlink(s->path);
        rmdir(s->dir);
        free(s);
        return seen;
}

static int call(struct server *s, int timeout_ms, phi_msg **ret) {
        _cleanup_client_ phi_client *c = NULL;
        _cleanup_msg_ phi_msg *req = phi_msg_new(PHI_MSG_STATUS);
        int r;

        if ((r = phi_client_connect(s->path, timeout_ms, &c)) < 0)
                return r;
        return phi_client_call(c, req, ret);
}

static void test_round_trip(void **state) {
        struct server *s = server_start(ANSWER_OK);
        _cleanup_msg_ phi_msg *reply = NULL;
        const char *v;

        (void) state;
        assert_int_equal(call(s, 3000, &reply), 0);
        assert_int_equal(phi_msg_type(reply), PHI_MSG_OK);
        assert_int_equal(phi_msg_get_str(reply, PHI_TAG_VALUE, &v), 0);
        assert_string_equal(v, "42");
        assert_int_equal(server_stop(s), PHI_MSG_STATUS);
}

static void test_no_daemon(void **state) {
        phi_client *c = NULL;
        char longpath[200];

        (void) state;
        assert_int_equal(phi_client_connect("/nonexistent/phi/socket", 1000, &c), -ENOENT);
        memset(longpath, 'x', sizeof(longpath) - 1);
        longpath[0] = '/';
        longpath[sizeof(longpath) - 1] = 0;
        assert_int_equal(phi_client_connect(longpath, 1000, &c), -ENAMETOOLONG);
        assert_null(c);
}

static void test_timeout(void **state) {
        struct server *s = server_start(SILENT);
        phi_msg *reply = NULL;

        (void) state;
        assert_int_equal(call(s, 200, &reply), -ETIMEDOUT);
        assert_null(reply);
        (void) server_stop(s);
}

static void test_huge_length(void **state) {
        struct server *s = server_start(HUGE_LENGTH);
        phi_msg *reply = NULL;

        (void) state;
        assert_int_equal(call(s, 3000, &reply), -EMSGSIZE);
        (void) server_stop(s);
}

static void test_half_frame(void **state) {
        struct server *s = server_start(HALF_FRAME);
        phi_msg *reply = NULL;

        (void) state;
        assert_int_equal(call(s, 3000, &reply), -ECONNRESET);
        (void) server_stop(s);
}

/* A daemon that dies mid-request must not kill the host process with SIGPIPE:
 * the test would end here if it did. */
static void test_no_sigpipe(void **state) {
        struct server *s = server_start(CLOSE_AT_ONCE);
        _cleanup_client_ phi_client *c = NULL;
        _cleanup_msg_ phi_msg *req = phi_msg_new(PHI_MSG_ROW);
        char value[4000];
        int r = 0;

        (void) state;
        memset(value, 'v', sizeof(value) - 1);
        value[sizeof(value) - 1] = 0;
        for (int i = 0; i < 15; i++)
                assert_int_equal(phi_msg_put_str(req, PHI_TAG_VALUE, value), 0);
        assert_int_equal(phi_client_connect(s->path, 3000, &c), 0);
        (void) server_stop(s);
        for (int i = 0; i < 20 && r == 0; i++)
                r = phi_client_send(c, req);
        assert_true(r == -EPIPE || r == -ECONNRESET);
}

/* With stdin closed, socket() would return 0; the client must not keep it there.
 * No server thread here: its accept() could take fd 0 itself. The backlog lets
 * the connect succeed without one. */
static void test_never_stdio(void **state) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char dir[] = "/tmp/phi-client-test-XXXXXX";
        _cleanup_close_ int listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        phi_client *c = NULL;
        int saved = dup(STDIN_FILENO);

        (void) state;
        assert_true(saved > 2 && listen_fd > 2);
        assert_non_null(mkdtemp(dir));
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/socket", dir);
        assert_int_equal(bind(listen_fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(listen(listen_fd, 4), 0);

        close(STDIN_FILENO);
        assert_int_equal(phi_client_connect(sa.sun_path, 3000, &c), 0);
        /* fd 0 is still closed: the client took another number. */
        assert_int_equal(fcntl(STDIN_FILENO, F_GETFD), -1);
        phi_client_free(c);
        assert_int_equal(dup2(saved, STDIN_FILENO), STDIN_FILENO);
        close(saved);
        unlink(sa.sun_path);
        rmdir(dir);
}

/* A socket served by neither root nor the caller is not phiaccessd, whatever
 * it answers: the connection is refused before a byte is sent. */
static void test_untrusted_server(void **state) {
        char dir[] = "/tmp/phi-client-test-XXXXXX", path[64];
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        phi_client *c = NULL;
        int fd;

        (void) state;
        if (geteuid() != 0)
                skip();   /* making a listener with another uid needs root */
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/socket", dir);
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        /* The peer credentials a client sees are those of listen()'s caller. */
        assert_int_equal(seteuid(65534), 0);
        assert_int_equal(listen(fd, 4), 0);
        assert_int_equal(seteuid(0), 0);
        assert_int_equal(phi_client_connect(path, 1000, &c), -EPERM);
        assert_null(c);
        assert_string_equal(phi_client_strerror(-EPERM), "the socket is not served by root; not trusting it");
        close(fd);
        unlink(path);
        rmdir(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip),  cmocka_unit_test(test_no_daemon),
                cmocka_unit_test(test_timeout),     cmocka_unit_test(test_huge_length),
                cmocka_unit_test(test_half_frame),  cmocka_unit_test(test_no_sigpipe),
                cmocka_unit_test(test_never_stdio), cmocka_unit_test(test_untrusted_server),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The request socket under hostile clients: stalled half-frames do not block
 * others, malformed frames get a clear error and a closed connection, request
 * types without a dispatch row are refused. The server runs in-process on its
 * own thread; the directory it points at does not exist (the sync thread just
 * retries), which is all these checks need. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "config.h"
#include "daemon.h"
#include "journal.h"
#include "phi/client.h"
#include "server.h"

static char dir[] = "/tmp/phi-test-server.XXXXXX";
static char sock_path[100];
static struct phi_daemon daemon_ctx;
static sd_event *event;
static phi_server *server;
static pthread_t loop_thread;
static int stop_fd = -1;

static int on_stop(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        (void) s, (void) fd, (void) revents, (void) userdata;
        return sd_event_exit(event, 0);
}

static void *loop_main(void *arg) {
        (void) arg;
        (void) sd_event_loop(event);
        return NULL;
}

static int setup(void **state) {
        char text[1024], path[256];
        struct phi_config_errors e = { 0 };
        FILE *f;

        (void) state;
        if (!mkdtemp(dir))
                return -1;
        snprintf(sock_path, sizeof(sock_path), "%s/socket", dir);
        snprintf(path, sizeof(path), "%s/passwd", dir);
        f = fopen(path, "we");
        fputs("root:x:0:0::/root:/bin/sh\n", f);
        fclose(f);
        snprintf(text, sizeof(text),
                 "[ldap]\nuri = ldap://127.0.0.1:9\nbase = dc=example,dc=org\ntls = none\n"
                 "[store]\npath = %s/phi.db\n[daemon]\nsocket = %s\nsnapshot = %s/snap\n"
                 "passwd_file = %s/passwd\ngroup_file = %s/group\n",
                 dir, sock_path, dir, dir, dir);
        if (phi_config_load_string("test", text, &daemon_ctx.config, &e) < 0 ||
            phi_store_open("sqlite", daemon_ctx.config->store_path, PHI_IDENTITIES_READ, &daemon_ctx.store) < 0 ||
            phi_sync_start(daemon_ctx.config, &daemon_ctx.sync) < 0 || sd_event_new(&event) < 0)
                return -1;
        /* A strict umask at start-up must not close the socket to users. */
        mode_t old = umask(077);
        int r = phi_server_new(event, &daemon_ctx, -1, sock_path, &server);
        (void) umask(old);
        if (r < 0)
                return -1;
        stop_fd = eventfd(0, EFD_CLOEXEC);
        if (sd_event_add_io(event, NULL, stop_fd, EPOLLIN, on_stop, NULL) < 0)
                return -1;
        return pthread_create(&loop_thread, NULL, loop_main, NULL) == 0 ? 0 : -1;
}

static int teardown(void **state) {
        uint64_t one = 1;
        char cmd[256];

        (void) state;
        (void) !write(stop_fd, &one, sizeof(one));
        pthread_join(loop_thread, NULL);
        phi_server_free(server);
        phi_journal_async_stop();
        sd_event_unref(event);
        phi_sync_free(daemon_ctx.sync);
        phi_store_free(daemon_ctx.store);
        phi_config_unref(daemon_ctx.config);
        close(stop_fd);
        snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", dir);
        return system(cmd) == 0 ? 0 : -1;
}

static int raw_connect(void) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
        assert_true(fd >= 0);
        assert_int_equal(connect(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        return fd;
}

static void status_works(void) {
        phi_client *c = NULL;
        phi_msg *req = phi_msg_new(PHI_MSG_STATUS), *reply = NULL;

        assert_int_equal(phi_client_connect(sock_path, 3000, &c), 0);
        assert_int_equal(phi_client_call(c, req, &reply), 0);
        assert_int_equal(phi_msg_type(reply), PHI_MSG_OK);
        phi_msg_free(reply);
        phi_msg_free(req);
        phi_client_free(c);
}

/* Reads one reply frame and expects an ERROR with this errno, then EOF if closed. */
static void expect_error(int fd, int error, const char *text, bool closed) {
        phi_msg *reply = NULL;
        const char *message = NULL;
        int e = 0;
        char byte;

        assert_int_equal(phi_wire_read_msg(fd, phi_now_ms() + 3000, &reply), 0);
        assert_int_equal(phi_msg_get_error(reply, &e, &message), 0);
        assert_int_equal(e, -error);
        assert_non_null(strstr(message, text));
        phi_msg_free(reply);
        if (closed) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                assert_int_equal(poll(&p, 1, 3000), 1);
                assert_int_equal(recv(fd, &byte, 1, 0), 0);
        }
}

static void test_stalled_clients_do_not_block(void **state) {
        int fds[100];

        (void) state;
        for (size_t i = 0; i < PHI_ELEMENTSOF(fds); i++) {
                fds[i] = raw_connect();
                /* Half a length prefix, then silence. */
                assert_int_equal(send(fds[i], "\0\0", 2, MSG_NOSIGNAL), 2);
        }
        status_works();
        for (size_t i = 0; i < PHI_ELEMENTSOF(fds); i++)
                close(fds[i]);
        status_works();
}

static void test_malformed_frames(void **state) {
        static const uint8_t bad_version[] = { 0, 0, 0, 5, 9, 0x01, 0x00, 0, 0 };
        static const uint8_t too_long[] = { 0xff, 0xff, 0xff, 0xff };
        static const uint8_t unknown_type[] = { 0, 0, 0, 5, 1, 0x7e, 0x7e, 0, 0 };
        int fd;

        (void) state;
        fd = raw_connect();
        assert_int_equal(send(fd, bad_version, sizeof(bad_version), MSG_NOSIGNAL), (ssize_t) sizeof(bad_version));
        expect_error(fd, EPROTO, "unsupported protocol version", true);
        close(fd);

        fd = raw_connect();
        assert_int_equal(send(fd, too_long, sizeof(too_long), MSG_NOSIGNAL), (ssize_t) sizeof(too_long));
        expect_error(fd, EPROTO, "longer than allowed", true);
        close(fd);

        fd = raw_connect();
        assert_int_equal(send(fd, unknown_type, sizeof(unknown_type), MSG_NOSIGNAL), (ssize_t) sizeof(unknown_type));
        expect_error(fd, EPROTO, "unknown message type", true);
        close(fd);
        status_works();
}

/* Sends req (freed here) on c and expects an ERROR with this errno whose
 * message holds text. */
static void call_expect_error(phi_client *c, phi_msg *req, int error, const char *text) {
        phi_msg *reply = NULL;
        const char *message = NULL;
        int e = 0;

        assert_non_null(req);
        phi_client_set_timeout(c, 3000);
        assert_int_equal(phi_client_call(c, req, &reply), 0);
        assert_int_equal(phi_msg_get_error(reply, &e, &message), 0);
        assert_int_equal(e, -error);
        assert_non_null(strstr(message, text));
        phi_msg_free(reply);
        phi_msg_free(req);
}

static void test_no_dispatch_row(void **state) {
        phi_client *c = NULL;
        phi_msg *req = NULL;

        (void) state;
        assert_int_equal(phi_client_connect(sock_path, 3000, &c), 0);
        /* A well-formed message that is a reply type, not a request: no row. */
        call_expect_error(c, phi_msg_new(PHI_MSG_ROW), EOPNOTSUPP, "not served");
        /* The same connection still serves the next request. */
        req = phi_msg_new(PHI_MSG_USER_SHOW);
        assert_int_equal(phi_msg_put_str(req, PHI_TAG_USER, "nobody-here"), 0);
        call_expect_error(c, req, ENOENT, "");
        phi_client_free(c);
}

/* On this socket a token is activated by its own user (SO_PEERCRED); only
 * pam_phi, on the root-only PAM socket, names the user of an activation. */
static void test_activate_names_no_user(void **state) {
        phi_client *c = NULL;
        phi_msg *req = phi_msg_new(PHI_MSG_TOTP_ACTIVATE);

        (void) state;
        assert_int_equal(phi_msg_put_str(req, PHI_TAG_CODE, "123456"), 0);
        assert_int_equal(phi_msg_put_str(req, PHI_TAG_USER, "alice"), 0);
        assert_int_equal(phi_client_connect(sock_path, 3000, &c), 0);
        call_expect_error(c, req, EINVAL, "activated by its own user; name no user");
        phi_client_free(c);
}

/* Each verb authorises its caller, so anyone may connect: 0666, and the
 * temporary name it was bound under is gone. */
static void test_socket_mode(void **state) {
        char path[128];
        struct stat st;

        (void) state;
        assert_int_equal(lstat(sock_path, &st), 0);
        assert_true(S_ISSOCK(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0666);
        snprintf(path, sizeof(path), "%s.new", sock_path);
        assert_int_equal(lstat(path, &st), -1);
        status_works();
}

/* Sends req with n descriptors (SCM_RIGHTS) in one sendmsg on a raw socket. */
static int send_with_fds(const phi_msg *req, const int *fds, size_t n) {
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(2 * sizeof(int))];
        } control = { 0 };
        uint8_t *frame = NULL;
        size_t len = 0;
        int fd = raw_connect();

        assert_int_equal(phi_msg_encode(req, &frame, &len), 0);
        struct iovec iov = { .iov_base = frame, .iov_len = len };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                             .msg_controllen = CMSG_SPACE(n * sizeof(int)) };
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(n * sizeof(int));
        memcpy(CMSG_DATA(cm), fds, n * sizeof(int));
        assert_int_equal(sendmsg(fd, &mh, MSG_NOSIGNAL), (ssize_t) len);
        free(frame);
        return fd;
}

static size_t open_fds(void) {
        char path[64];
        size_t n = 0;

        for (int i = 0; i < 4096; i++) {
                snprintf(path, sizeof(path), "/proc/self/fd/%d", i);
                n += access(path, F_OK) == 0;
        }
        return n;
}

/* A descriptor comes only with a backup request, one at a time; any other is
 * refused and closed (the server is in this process: its descriptors are
 * ours to count). */
static void test_descriptors(void **state) {
        phi_msg *status = phi_msg_new(PHI_MSG_STATUS), *backup = phi_msg_new(PHI_MSG_BACKUP);
        char path[256], magic[16];
        phi_client *c = NULL;
        size_t before;
        int fds[2], sock;

        (void) state;
        snprintf(path, sizeof(path), "%s/backup.db", dir);
        fds[0] = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        fds[1] = open("/dev/null", O_WRONLY | O_CLOEXEC);
        assert_true(fds[0] >= 0 && fds[1] >= 0);
        status_works();   /* every lazily opened descriptor of the daemon is open */
        before = open_fds();
        for (int i = 0; i < 20; i++) {
                sock = send_with_fds(status, fds, 1);
                expect_error(sock, EPROTO, "a descriptor may come only with a backup request", false);
                close(sock);
                sock = send_with_fds(backup, fds, 2);
                expect_error(sock, EPROTO, "and only one", false);
                close(sock);
        }
        status_works();
        /* 60 were passed; the daemon's other threads (the directory's
         * reconnects, the journal) may hold a few of their own meanwhile. */
        assert_true(open_fds() < before + 10);

        /* The backup's own checks of what it was given. */
        assert_int_equal(phi_client_connect(sock_path, 3000, &c), 0);
        call_expect_error(c, phi_msg_new(PHI_MSG_BACKUP), EINVAL, "none came");
        phi_client_free(c);
        sock = send_with_fds(backup, &fds[1], 1);
        expect_error(sock, EINVAL, "must be a regular file", false);
        close(sock);
        if (geteuid() == 0) {
                phi_msg *reply = NULL;
                int ro = open(path, O_RDONLY | O_CLOEXEC);

                sock = send_with_fds(backup, &ro, 1);
                expect_error(sock, EBADF, "not opened for writing", false);
                close(sock);
                close(ro);
                /* Root: the copy is written into the descriptor. */
                assert_int_equal(phi_client_connect(sock_path, 3000, &c), 0);
                assert_int_equal(phi_client_send_fd(c, backup, fds[0]), 0);
                assert_int_equal(phi_client_recv(c, &reply), 0);
                assert_int_equal(phi_msg_type(reply), PHI_MSG_OK);
                phi_msg_free(reply);
                phi_client_free(c);
                assert_int_equal(pread(fds[0], magic, sizeof(magic), 0), -1);   /* write-only */
                ro = open(path, O_RDONLY | O_CLOEXEC);
                assert_int_equal(pread(ro, magic, sizeof(magic), 0), (ssize_t) sizeof(magic));
                assert_memory_equal(magic, "SQLite format 3", 16);
                close(ro);
                /* Not over a file with content. */
                sock = send_with_fds(backup, &fds[0], 1);
                expect_error(sock, EEXIST, "not empty", false);
                close(sock);
        }
        close(fds[0]);
        close(fds[1]);
        phi_msg_free(status);
        phi_msg_free(backup);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_descriptors),
                cmocka_unit_test(test_socket_mode),
                cmocka_unit_test(test_stalled_clients_do_not_block),
                cmocka_unit_test(test_malformed_frames),
                cmocka_unit_test(test_no_dispatch_row),
                cmocka_unit_test(test_activate_names_no_user),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}

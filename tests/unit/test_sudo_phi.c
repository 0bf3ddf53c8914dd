/* SPDX-License-Identifier: GPL-2.0-or-later */
/* sudo_phi's client side: the plugin dlopen()ed as sudo loads it, its structs
 * called as sudo calls them, against a scripted stand-in for phiaccessd on a
 * temp socket. What the daemon decides is tested by integration.sudo_grants
 * with real sudo; here: what the plugin sends (the command line escaped and
 * cut, the run-as user, cwd, tty), how it maps every kind of answer, and that
 * it never says yes on its own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sudo_plugin.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "phi/client.h"

enum answer {
        ANSWER_OK,
        ANSWER_EACCES,
        ANSWER_EIO,
        ANSWER_GARBAGE_TYPE,
        ANSWER_CLOSE,
};

static struct {
        char dir[64];
        char socket[96];
        char socket_opt[128];
        int listen_fd;
        enum answer answer;
        pthread_t thread;
        int requests;
        uint16_t type;
        char user[64], state[16], runas[64], group[64], cwd[256], tty[64], service[64], reason[256];
        char command[9000];
} d;

static void *handle;
static struct approval_plugin *approval;
static struct audit_plugin *audit;
static char printed[4096];

static int fake_printf(int msg_type, const char *fmt, ...) {
        va_list ap;
        size_t len = strlen(printed);
        int r;

        (void) msg_type;
        va_start(ap, fmt);
        r = vsnprintf(printed + len, sizeof(printed) - len, fmt, ap);
        va_end(ap);
        return r;
}

static void copy_field(const phi_msg *m, uint16_t tag, char *out, size_t n) {
        const char *s;

        snprintf(out, n, "%s", phi_msg_get_str(m, tag, &s) == 0 ? s : "");
}

static void *serve(void *arg) {
        (void) arg;
        for (;;) {
                int fd = accept4(d.listen_fd, NULL, NULL, SOCK_CLOEXEC);
                phi_msg *req = NULL, *reply = NULL;
                uint8_t *frame = NULL;
                size_t len = 0;

                if (fd < 0)
                        return NULL;
                if (phi_wire_read_msg(fd, phi_now_ms() + 5000, &req) == 0) {
                        d.requests++;
                        d.type = phi_msg_type(req);
                        copy_field(req, PHI_TAG_USER, d.user, sizeof(d.user));
                        copy_field(req, PHI_TAG_STATE, d.state, sizeof(d.state));
                        copy_field(req, PHI_TAG_RUNAS, d.runas, sizeof(d.runas));
                        copy_field(req, PHI_TAG_RUNAS_GROUP, d.group, sizeof(d.group));
                        copy_field(req, PHI_TAG_CWD, d.cwd, sizeof(d.cwd));
                        copy_field(req, PHI_TAG_TTY, d.tty, sizeof(d.tty));
                        copy_field(req, PHI_TAG_SERVICE, d.service, sizeof(d.service));
                        copy_field(req, PHI_TAG_REASON, d.reason, sizeof(d.reason));
                        copy_field(req, PHI_TAG_COMMAND, d.command, sizeof(d.command));
                }
                switch (d.answer) {
                case ANSWER_OK:
                        reply = phi_msg_new(PHI_MSG_OK);
                        break;
                case ANSWER_EACCES:
                        assert_int_equal(phi_msg_new_error(-EACCES, &reply, "no active grant, says the test"), 0);
                        break;
                case ANSWER_EIO:
                        assert_int_equal(phi_msg_new_error(-EIO, &reply, "store unavailable"), 0);
                        break;
                case ANSWER_GARBAGE_TYPE:
                        reply = phi_msg_new(PHI_MSG_USER_SHOW);
                        assert_int_equal(phi_msg_put_str(reply, PHI_TAG_USER, "x"), 0);
                        break;
                case ANSWER_CLOSE:
                        break;
                }
                if (reply && phi_msg_encode(reply, &frame, &len) == 0)
                        (void) !phi_wire_write_frame(fd, frame, len, phi_now_ms() + 5000);
                free(frame);
                phi_msg_free(req);
                phi_msg_free(reply);
                close(fd);
        }
}

static int setup(void **state) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        (void) state;
        snprintf(d.dir, sizeof(d.dir), "/tmp/phi-sudo-test.XXXXXX");
        assert_non_null(mkdtemp(d.dir));
        snprintf(d.socket, sizeof(d.socket), "%s/pam", d.dir);
        snprintf(d.socket_opt, sizeof(d.socket_opt), "socket=%s", d.socket);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", d.socket);
        d.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(d.listen_fd >= 0);
        assert_int_equal(bind(d.listen_fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(listen(d.listen_fd, 16), 0);
        assert_int_equal(pthread_create(&d.thread, NULL, serve, NULL), 0);
        handle = dlopen(SUDO_PHI_SO, RTLD_NOW | RTLD_LOCAL);
        assert_non_null(handle);
        approval = dlsym(handle, "sudo_phi_approval");
        audit = dlsym(handle, "sudo_phi_audit");
        assert_non_null(approval);
        assert_non_null(audit);
        return 0;
}

static int teardown(void **state) {
        (void) state;
        shutdown(d.listen_fd, SHUT_RDWR);
        close(d.listen_fd);
        pthread_join(d.thread, NULL);
        unlink(d.socket);
        rmdir(d.dir);
        dlclose(handle);
        return 0;
}

static char *user_info[] = { "user=alice", "uid=2001", "tty=/dev/pts/7", "cwd=/home/alice", "host=db1", NULL };
static char *settings[] = { "remote_host=10.0.0.9", NULL };
static char *command_info[] = { "command=/usr/bin/psql", "runas_user=postgres", "runas_group=dba", "cwd=/srv",
                                NULL };
static char *run_argv[] = { "psql", "-c", "select 1;\n-- two lines", "caf\xc3\xa9 \xff", NULL };

static int open_approval(char **options) {
        const char *err = NULL;

        printed[0] = '\0';
        return approval->open(SUDO_API_VERSION, NULL, fake_printf, settings, user_info, 0, NULL, NULL, options, &err);
}

static int open_audit(char **options) {
        const char *err = NULL;

        printed[0] = '\0';
        return audit->open(SUDO_API_VERSION, NULL, fake_printf, settings, user_info, 0, NULL, NULL, options, &err);
}

static void test_structs(void **state) {
        (void) state;
        assert_int_equal(approval->type, SUDO_APPROVAL_PLUGIN);
        assert_int_equal(SUDO_API_VERSION_GET_MAJOR(approval->version), SUDO_API_VERSION_MAJOR);
        assert_int_equal(audit->type, SUDO_AUDIT_PLUGIN);
        assert_non_null(approval->check);
        assert_non_null(audit->accept);
        assert_non_null(audit->reject);
        assert_non_null(audit->error);
        /* sudo -V */
        assert_int_equal(open_approval(NULL), 1);
        assert_int_equal(approval->show_version(0), 1);
        assert_non_null(strstr(printed, "sudo_phi approval plugin version " PHI_VERSION));
        approval->close();
}

static void test_check_sends_the_command(void **state) {
        char *options[] = { d.socket_opt, NULL };
        const char *err = NULL;

        (void) state;
        d.answer = ANSWER_OK;
        d.requests = 0;
        assert_int_equal(open_approval(options), 1);
        assert_int_equal(approval->check(command_info, run_argv, NULL, &err), 1);
        approval->close();
        assert_int_equal(d.requests, 1);
        assert_int_equal(d.type, PHI_MSG_SUDO_CHECK);
        assert_string_equal(d.state, "check");
        assert_string_equal(d.user, "alice");
        assert_string_equal(d.runas, "postgres");
        assert_string_equal(d.group, "dba");
        assert_string_equal(d.cwd, "/srv");
        assert_string_equal(d.tty, "pts/7");
        assert_string_equal(d.service, "sudo");
        /* The resolved path, then the arguments; a newline and a byte that is
         * not UTF-8 escaped, valid UTF-8 kept. */
        assert_string_equal(d.command, "/usr/bin/psql -c select 1;\\x0a-- two lines caf\xc3\xa9 \\xff");
}

static void test_check_refusals(void **state) {
        static const enum answer answers[] = { ANSWER_EACCES, ANSWER_EIO, ANSWER_GARBAGE_TYPE, ANSWER_CLOSE };
        char *options[] = { d.socket_opt, NULL };
        char *nowhere[] = { "socket=/nonexistent/phi/pam", NULL };
        const char *err = NULL;

        (void) state;
        for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++) {
                d.answer = answers[i];
                assert_int_equal(open_approval(options), 1);
                err = NULL;
                assert_int_equal(approval->check(command_info, run_argv, NULL, &err), 0);
                assert_non_null(err);
                assert_non_null(strstr(printed, "sudo_phi: "));
                approval->close();
        }
        d.answer = ANSWER_EACCES;
        assert_int_equal(open_approval(options), 1);
        assert_int_equal(approval->check(command_info, run_argv, NULL, &err), 0);
        assert_non_null(strstr(printed, "no active grant, says the test"));
        assert_non_null(strstr(printed, "phictl request"));
        approval->close();
        /* No daemon: refused, and said. */
        assert_int_equal(open_approval(nowhere), 1);
        assert_int_equal(approval->check(command_info, run_argv, NULL, &err), 0);
        assert_non_null(strstr(printed, "cannot reach phiaccessd"));
        approval->close();
}

static void test_open_refuses(void **state) {
        char *typo[] = { "sokcet=/run/x", NULL };
        char *info_no_user[] = { "uid=2001", NULL };
        char *info_bad_user[] = { "user=al ice", NULL };
        const char *err = NULL;

        (void) state;
        assert_int_equal(open_approval(typo), -1);
        assert_non_null(strstr(printed, "bad option"));
        assert_int_equal(approval->open(SUDO_API_VERSION, NULL, fake_printf, settings, info_no_user, 0, NULL, NULL,
                                        NULL, &err),
                         -1);
        assert_int_equal(approval->open(SUDO_API_VERSION, NULL, fake_printf, settings, info_bad_user, 0, NULL,
                                        NULL, NULL, &err),
                         -1);
        assert_int_equal(approval->open(SUDO_API_MKVERSION(2, 0), NULL, fake_printf, settings, user_info, 0, NULL,
                                        NULL, NULL, &err),
                         -1);
}

static void test_long_command_is_cut_visibly(void **state) {
        char *options[] = { d.socket_opt, NULL };
        static char big[3000];
        char *argv[] = { "cp", big, big, big, big, NULL };
        const char *err = NULL;

        (void) state;
        memset(big, 'a', sizeof(big) - 1);
        d.answer = ANSWER_OK;
        assert_int_equal(open_approval(options), 1);
        assert_int_equal(approval->check(command_info, argv, NULL, &err), 1);
        approval->close();
        assert_true(strlen(d.command) <= 8192);
        assert_non_null(strstr(d.command, "[cut: 5 arguments, "));
}

static void test_audit(void **state) {
        char *options[] = { d.socket_opt, NULL };
        char *typed[] = { "sudo", "-u", "postgres", "psql", "-l", NULL };
        const char *err = NULL;

        (void) state;
        /* Recorded once, at the policy plugin's accept; an approval plugin's
         * accept adds nothing. */
        d.answer = ANSWER_OK;
        d.requests = 0;
        assert_int_equal(open_audit(options), 1);
        assert_int_equal(audit->accept("sudoers_policy", SUDO_POLICY_PLUGIN, command_info, run_argv, NULL, &err), 1);
        assert_int_equal(audit->accept("sudo_phi_approval", SUDO_APPROVAL_PLUGIN, command_info, run_argv, NULL, &err),
                         1);
        assert_int_equal(d.requests, 1);
        assert_string_equal(d.state, "accept");
        audit->close(SUDO_PLUGIN_NO_STATUS, 0);
        /* Not recorded: not run. */
        d.answer = ANSWER_EACCES;
        assert_int_equal(open_audit(options), 1);
        err = NULL;
        assert_int_equal(audit->accept("sudoers_policy", SUDO_POLICY_PLUGIN, command_info, run_argv, NULL, &err), 0);
        assert_non_null(err);
        assert_non_null(strstr(err, "no active grant"));
        audit->close(SUDO_PLUGIN_NO_STATUS, 0);
        /* sudoers' refusal, with the command as typed (no argv from sudo). */
        d.answer = ANSWER_OK;
        d.requests = 0;
        printed[0] = '\0';
        assert_int_equal(audit->open(SUDO_API_VERSION, NULL, fake_printf, settings, user_info, 3, typed, NULL,
                                     options, &err),
                         1);
        assert_int_equal(audit->reject("sudoers_policy", SUDO_POLICY_PLUGIN, "command not allowed", NULL, &err), 1);
        assert_string_equal(d.state, "reject");
        assert_string_equal(d.reason, "command not allowed");
        assert_string_equal(d.command, "psql -l");
        /* sudo_phi's own refusal was recorded by its check already. */
        assert_int_equal(audit->reject("sudo_phi_approval", SUDO_APPROVAL_PLUGIN, "no grant", command_info, &err), 1);
        assert_int_equal(d.requests, 1);
        /* An error of sudo's, recorded too; the daemon's trouble cannot turn it into a yes. */
        d.answer = ANSWER_EIO;
        assert_int_equal(audit->error("sudoers_policy", SUDO_POLICY_PLUGIN, "a password is required", command_info,
                                      &err),
                         1);
        assert_string_equal(d.state, "error");
        audit->close(SUDO_PLUGIN_NO_STATUS, 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_structs),
                cmocka_unit_test(test_check_sends_the_command),
                cmocka_unit_test(test_check_refusals),
                cmocka_unit_test(test_open_refuses),
                cmocka_unit_test(test_long_command_is_cut_visibly),
                cmocka_unit_test(test_audit),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}

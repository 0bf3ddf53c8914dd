/* SPDX-License-Identifier: GPL-2.0-or-later */
/* pam_phi's client side, run through a real libpam stack (pam_start_confdir)
 * against a scripted stand-in for phiaccessd on a temp socket. What the
 * daemon decides is tested by the integration tests against the real daemon;
 * here: what the module sends, how it maps every kind of answer, and that it
 * never says yes on its own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <security/pam_appl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "phi/client.h"

enum answer {
        ANSWER_OK,
        ANSWER_EACCES,
        ANSWER_EIO,
        ANSWER_GARBAGE_TYPE, /* a USER_SHOW request instead of a reply */
        ANSWER_CLOSE,
        ANSWER_SILENT,
};

struct daemon {
        char dir[64];
        char socket[96];
        int listen_fd;
        enum answer answer;
        pthread_t thread;
        bool running;
        /* What the last request carried. */
        int requests;
        uint16_t type;
        char user[64], code[32], service[64], rhost[64], tty[64], state[16], session[40];
        bool has_rhost, has_tty, elevate;
};

static struct daemon d;

#define SESSION_ID "0123456789abcdef0123456789abcdef"

static void copy_field(const phi_msg *m, uint16_t tag, char *out, size_t n, bool *present) {
        const char *s;
        bool ok = phi_msg_get_str(m, tag, &s) == 0;

        if (present)
                *present = ok;
        snprintf(out, n, "%s", ok ? s : "");
}

static void *serve(void *arg) {
        (void) arg;
        for (;;) {
                int fd = accept4(d.listen_fd, NULL, NULL, SOCK_CLOEXEC);
                phi_msg *req = NULL, *reply = NULL;
                uint8_t *frame = NULL;
                size_t len = 0;
                uint64_t v = 0;

                if (fd < 0)
                        return NULL;
                if (phi_wire_read_msg(fd, phi_now_ms() + 5000, &req) == 0) {
                        d.requests++;
                        d.type = phi_msg_type(req);
                        copy_field(req, PHI_TAG_USER, d.user, sizeof(d.user), NULL);
                        copy_field(req, PHI_TAG_CODE, d.code, sizeof(d.code), NULL);
                        copy_field(req, PHI_TAG_SERVICE, d.service, sizeof(d.service), NULL);
                        copy_field(req, PHI_TAG_RHOST, d.rhost, sizeof(d.rhost), &d.has_rhost);
                        copy_field(req, PHI_TAG_TTY, d.tty, sizeof(d.tty), &d.has_tty);
                        copy_field(req, PHI_TAG_STATE, d.state, sizeof(d.state), NULL);
                        copy_field(req, PHI_TAG_SESSION, d.session, sizeof(d.session), NULL);
                        d.elevate = phi_msg_get_u64(req, PHI_TAG_ELEVATE, &v) == 0 && v == 1;
                }
                switch (d.answer) {
                case ANSWER_OK:
                        reply = phi_msg_new(PHI_MSG_OK);
                        if (d.type == PHI_MSG_SESSION && strcmp(d.state, "open") == 0)
                                assert_int_equal(phi_msg_put_str(reply, PHI_TAG_SESSION, SESSION_ID), 0);
                        break;
                case ANSWER_EACCES:
                        assert_int_equal(phi_msg_new_error(-EACCES, &reply, "Verification failed."), 0);
                        break;
                case ANSWER_EIO:
                        assert_int_equal(phi_msg_new_error(-EIO, &reply, "Store unavailable."), 0);
                        break;
                case ANSWER_GARBAGE_TYPE:
                        reply = phi_msg_new(PHI_MSG_USER_SHOW);
                        assert_int_equal(phi_msg_put_str(reply, PHI_TAG_USER, "x"), 0);
                        break;
                case ANSWER_CLOSE:
                        break;
                case ANSWER_SILENT: {
                        char c;
                        (void) !read(fd, &c, 1); /* until the client gives up */
                        break;
                }
                }
                if (reply && phi_msg_encode(reply, &frame, &len) == 0)
                        (void) !phi_wire_write_frame(fd, frame, len, phi_now_ms() + 5000);
                free(frame);
                phi_msg_free(req);
                phi_msg_free(reply);
                close(fd);
        }
}

static char confdir[128];

static void write_stack(const char *service, const char *lines) {
        char path[256];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", confdir, service);
        f = fopen(path, "we");
        assert_non_null(f);
        fputs(lines, f);
        fclose(f);
}

static void write_file_mode(const char *name, const char *text, mode_t mode) {
        char path[256];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", d.dir, name);
        f = fopen(path, "we");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
        assert_int_equal(chmod(path, mode), 0);
}

static int setup(void **state) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char stack[1024];

        (void) state;
        snprintf(d.dir, sizeof(d.dir), "/tmp/phi-pam-XXXXXX");
        if (!mkdtemp(d.dir))
                return -1;
        snprintf(d.socket, sizeof(d.socket), "%s/socket", d.dir);
        snprintf(confdir, sizeof(confdir), "%s/pam.d", d.dir);
        if (mkdir(confdir, 0700) < 0)
                return -1;
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", d.socket);
        d.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (d.listen_fd < 0 || bind(d.listen_fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ||
            listen(d.listen_fd, 16) < 0)
                return -1;
        if (pthread_create(&d.thread, NULL, serve, NULL) != 0)
                return -1;

        snprintf(stack, sizeof(stack), "#!/bin/sh\nexec cat >%s/authtok\n", d.dir);
        write_file_mode("save-authtok", stack, 0700);
        /* The one-field modes hand the password part on; pam_exec shows what the
         * next module would get as PAM_AUTHTOK. */
#define STACK(name, args, next)                                                                \
        snprintf(stack, sizeof(stack),                                                         \
                 "auth required " PAM_PHI_SO " socket=%s " args "\n"                           \
                 "%s%s%s"                                                                      \
                 "account required " PAM_PHI_SO " socket=%s " args "\n"                        \
                 "session required " PAM_PHI_SO " socket=%s " args "\n",                       \
                 d.socket, next ? "auth required pam_exec.so expose_authtok quiet " : "", \
                 next ? d.dir : "", next ? "/save-authtok\n" : "", d.socket, d.socket);             \
        write_stack(name, stack)
        STACK("prompt", "", false);
        STACK("combined", "combined", true);
        STACK("combined8", "combined digits=8", true);
        STACK("openvpn", "openvpn", true);
        STACK("elevate", "elevate timeout=1", false);
        STACK("typo", "combinde", false);
        STACK("both", "combined openvpn", false);
#undef STACK
        snprintf(stack, sizeof(stack), "auth required " PAM_PHI_SO " socket=%s/nothing-here\n"
                 "account required " PAM_PHI_SO " socket=%s/nothing-here\n", d.dir, d.dir);
        write_stack("nodaemon", stack);
        /* "sufficient" and ignore-on-default: a module that returned PAM_IGNORE or
         * an error treated as ignorable would let pam_permit through. */
        snprintf(stack, sizeof(stack),
                 "auth [success=done ignore=ignore default=die] " PAM_PHI_SO " socket=%s/nothing-here\n"
                 "auth required pam_permit.so\n", d.dir);
        write_stack("fallthrough", stack);
        return 0;
}

static int teardown(void **state) {
        char cmd[128];

        (void) state;
        shutdown(d.listen_fd, SHUT_RDWR);
        close(d.listen_fd);
        pthread_join(d.thread, NULL);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d.dir);
        return system(cmd) == 0 ? 0 : -1;
}

struct script {
        const char *answer;   /* reply to the first prompt; NULL = conversation fails */
        int prompts;
        int style;
        char prompt[64];
        int infos;
};

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data) {
        struct script *s = data;
        struct pam_response *r = calloc((size_t) n, sizeof(*r));

        if (!r)
                return PAM_BUF_ERR;
        for (int i = 0; i < n; i++) {
                if (msg[i]->msg_style == PAM_TEXT_INFO || msg[i]->msg_style == PAM_ERROR_MSG) {
                        s->infos++;
                        continue;
                }
                s->prompts++;
                s->style = msg[i]->msg_style;
                snprintf(s->prompt, sizeof(s->prompt), "%s", msg[i]->msg);
                if (!s->answer) {
                        free(r);
                        return PAM_CONV_ERR;
                }
                r[i].resp = strdup(s->answer);
        }
        *resp = r;
        return PAM_SUCCESS;
}

enum op { OP_AUTH, OP_ACCOUNT, OP_OPEN, OP_CLOSE, OP_OPEN_CLOSE };

static int run(const char *service, const char *user, enum op op, struct script *s) {
        struct pam_conv c = { conv, s };
        pam_handle_t *pamh = NULL;
        int r;

        d.requests = 0;
        d.code[0] = 0;
        assert_int_equal(pam_start_confdir(service, user, &c, confdir, &pamh), PAM_SUCCESS);
        assert_int_equal(pam_set_item(pamh, PAM_RHOST, "192.0.2.7"), PAM_SUCCESS);
        assert_int_equal(pam_set_item(pamh, PAM_TTY, "ssh"), PAM_SUCCESS);
        switch (op) {
        case OP_AUTH: r = pam_authenticate(pamh, 0); break;
        case OP_ACCOUNT: r = pam_acct_mgmt(pamh, 0); break;
        case OP_OPEN: r = pam_open_session(pamh, 0); break;
        case OP_OPEN_CLOSE:
                /* One handle, as sshd and sudo use it: the close names the open's session. */
                r = pam_open_session(pamh, 0);
                if (r == PAM_SUCCESS) {
                        const char *env = pam_getenv(pamh, "PHI_SESSION_ID");
                        assert_non_null(env);
                        assert_string_equal(env, SESSION_ID);
                        r = pam_close_session(pamh, 0);
                }
                break;
        default: r = pam_close_session(pamh, 0); break;
        }
        pam_end(pamh, r);
        return r;
}

static void authtok_after(char *buf, size_t n) {
        char path[128];
        FILE *f;
        size_t got;

        snprintf(path, sizeof(path), "%s/authtok", d.dir);
        f = fopen(path, "re");
        assert_non_null(f);
        got = fread(buf, 1, n - 1, f);
        buf[got] = 0;
        fclose(f);
        (void) unlink(path);
}

static void test_prompt_and_request(void **state) {
        struct script s = { .answer = "123456" };

        (void) state;
        d.answer = ANSWER_OK;
        assert_int_equal(run("prompt", "alice", OP_AUTH, &s), PAM_SUCCESS);
        assert_int_equal(s.prompts, 1);
        assert_int_equal(s.style, PAM_PROMPT_ECHO_OFF);
        assert_string_equal(s.prompt, "Verification code: ");
        assert_int_equal(s.infos, 0);
        assert_int_equal(d.requests, 1);
        assert_int_equal(d.type, PHI_MSG_AUTH);
        assert_string_equal(d.user, "alice");
        assert_string_equal(d.code, "123456");
        assert_string_equal(d.service, "prompt");
        assert_string_equal(d.rhost, "192.0.2.7");
        assert_string_equal(d.tty, "ssh");
}

static void test_answers_map_to_denials(void **state) {
        struct script s = { .answer = "654321" };

        (void) state;
        d.answer = ANSWER_EACCES;
        assert_int_equal(run("prompt", "alice", OP_AUTH, &s), PAM_AUTH_ERR);
        d.answer = ANSWER_EIO;
        assert_int_equal(run("prompt", "alice", OP_AUTH, &s), PAM_AUTHINFO_UNAVAIL);
        d.answer = ANSWER_GARBAGE_TYPE;
        assert_int_equal(run("prompt", "alice", OP_AUTH, &s), PAM_AUTHINFO_UNAVAIL);
        d.answer = ANSWER_CLOSE;
        assert_int_equal(run("prompt", "alice", OP_AUTH, &s), PAM_AUTHINFO_UNAVAIL);
        assert_int_equal(run("nodaemon", "alice", OP_AUTH, &s), PAM_AUTHINFO_UNAVAIL);
        assert_int_equal(run("fallthrough", "alice", OP_AUTH, &s), PAM_AUTHINFO_UNAVAIL);
}

static void test_silent_daemon_times_out(void **state) {
        struct script s = { .answer = "123456" };

        (void) state;
        d.answer = ANSWER_SILENT;
        /* timeout=1 in this stack: one second, then a denial, not a hang. */
        assert_int_equal(run("elevate", "alice", OP_AUTH, &s), PAM_AUTHINFO_UNAVAIL);
        assert_int_equal(d.requests, 1);
}

static void test_no_daemon_contact_without_code_or_name(void **state) {
        struct script s = { .answer = NULL };

        (void) state;
        d.answer = ANSWER_OK;
        assert_int_equal(run("prompt", "alice", OP_AUTH, &s), PAM_AUTH_ERR);
        assert_int_equal(d.requests, 0);
        s.answer = "";
        assert_int_equal(run("prompt", "alice", OP_AUTH, &s), PAM_AUTH_ERR);
        s.answer = "12345678901234567";
        assert_int_equal(run("prompt", "alice", OP_AUTH, &s), PAM_AUTH_ERR);
        assert_int_equal(d.requests, 0);
        /* Not a name any directory can hold: denied like a wrong code. */
        s.answer = "123456";
        assert_int_equal(run("prompt", "../etc", OP_AUTH, &s), PAM_AUTH_ERR);
        assert_int_equal(run("prompt", "", OP_AUTH, &s), PAM_AUTH_ERR);
        assert_int_equal(d.requests, 0);
        /* A typo or a contradiction in the stack denies and asks nobody. */
        assert_int_equal(run("typo", "alice", OP_AUTH, &s), PAM_AUTHINFO_UNAVAIL);
        assert_int_equal(run("both", "alice", OP_AUTH, &s), PAM_AUTHINFO_UNAVAIL);
        assert_int_equal(run("typo", "alice", OP_ACCOUNT, &s), PAM_AUTHINFO_UNAVAIL);
        assert_int_equal(d.requests, 0);
}

static void test_combined(void **state) {
        struct script s = { .answer = "hunter2 pass123456" };
        char rest[64];

        (void) state;
        d.answer = ANSWER_OK;
        /* One field: the password prompt gets password and code together. */
        assert_int_equal(run("combined", "bob", OP_AUTH, &s), PAM_SUCCESS);
        assert_int_equal(s.prompts, 1);
        assert_string_equal(s.prompt, "Password: ");
        assert_string_equal(d.code, "123456");
        authtok_after(rest, sizeof(rest));
        assert_string_equal(rest, "hunter2 pass");

        s = (struct script){ .answer = "pw12345678" };
        assert_int_equal(run("combined8", "bob", OP_AUTH, &s), PAM_SUCCESS);
        assert_string_equal(d.code, "12345678");
        authtok_after(rest, sizeof(rest));
        assert_string_equal(rest, "pw");

        d.answer = ANSWER_EACCES;
        s = (struct script){ .answer = "hunter2999999" };
        assert_int_equal(run("combined", "bob", OP_AUTH, &s), PAM_AUTH_ERR);
        assert_string_equal(d.code, "999999");

        /* No code at the end: denied without asking the daemon. */
        s = (struct script){ .answer = "hunter2" };
        assert_int_equal(run("combined", "bob", OP_AUTH, &s), PAM_AUTH_ERR);
        assert_int_equal(d.requests, 0);
}

static void test_openvpn(void **state) {
        /* base64("hunter2") and base64("123456") */
        struct script s = { .answer = "SCRV1:aHVudGVyMg==:MTIzNDU2" };
        const char *bad[] = {
                "hunter2123456",                 /* not a challenge response */
                "SCRV1:aHVudGVyMg==",            /* one part */
                "SCRV1:aHVudGVyMg==:MTIzNDU2:",  /* three parts */
                "SCRV1:aHVudGVyMg=:MTIzNDU2",    /* bad padding */
                "SCRV1:aHVudGVyMh==:MTIzNDU2",   /* non-canonical bits */
                "SCRV1:aHVud GVyMg==:MTIzNDU2",  /* whitespace */
                "SCRV1:aHVudGVyMg==:",           /* no code */
                "scrv1:aHVudGVyMg==:MTIzNDU2",   /* prefix is case-sensitive */
        };
        char rest[64];

        (void) state;
        d.answer = ANSWER_OK;
        assert_int_equal(run("openvpn", "carol", OP_AUTH, &s), PAM_SUCCESS);
        assert_int_equal(s.prompts, 1);
        assert_string_equal(d.code, "123456");
        authtok_after(rest, sizeof(rest));
        assert_string_equal(rest, "hunter2");
        for (size_t i = 0; i < PHI_ELEMENTSOF(bad); i++) {
                s = (struct script){ .answer = bad[i] };
                assert_int_equal(run("openvpn", "carol", OP_AUTH, &s), PAM_AUTH_ERR);
                assert_int_equal(d.requests, 0);
        }
}

static void test_account_and_session(void **state) {
        struct script s = { 0 };

        (void) state;
        d.answer = ANSWER_OK;
        assert_int_equal(run("prompt", "alice", OP_ACCOUNT, &s), PAM_SUCCESS);
        assert_int_equal(d.type, PHI_MSG_ACCOUNT);
        assert_false(d.elevate);
        assert_int_equal(run("elevate", "alice", OP_ACCOUNT, &s), PAM_SUCCESS);
        assert_true(d.elevate);
        d.answer = ANSWER_EACCES;
        assert_int_equal(run("prompt", "alice", OP_ACCOUNT, &s), PAM_PERM_DENIED);
        /* Could not decide, or not asked: denied, and told apart from a "no". */
        d.answer = ANSWER_EIO;
        assert_int_equal(run("prompt", "alice", OP_ACCOUNT, &s), PAM_AUTHINFO_UNAVAIL);
        assert_int_equal(run("nodaemon", "alice", OP_ACCOUNT, &s), PAM_AUTHINFO_UNAVAIL);
        d.answer = ANSWER_CLOSE;
        assert_int_equal(run("prompt", "alice", OP_ACCOUNT, &s), PAM_AUTHINFO_UNAVAIL);
        d.answer = ANSWER_GARBAGE_TYPE;
        assert_int_equal(run("prompt", "alice", OP_ACCOUNT, &s), PAM_AUTHINFO_UNAVAIL);

        d.answer = ANSWER_OK;
        assert_int_equal(run("prompt", "alice", OP_OPEN_CLOSE, &s), PAM_SUCCESS);
        assert_int_equal(d.type, PHI_MSG_SESSION);
        assert_string_equal(d.state, "close");
        assert_string_equal(d.session, SESSION_ID);
        assert_int_equal(d.requests, 2);
        /* A close with no open in this handle names no session: not sent. */
        assert_int_equal(run("prompt", "alice", OP_CLOSE, &s), PAM_SESSION_ERR);
        assert_int_equal(d.requests, 0);
        /* An open the daemon does not record (no id, or no answer) fails the session. */
        d.answer = ANSWER_CLOSE;
        assert_int_equal(run("prompt", "alice", OP_OPEN, &s), PAM_SESSION_ERR);
        d.answer = ANSWER_EACCES;
        assert_int_equal(run("prompt", "alice", OP_OPEN, &s), PAM_SESSION_ERR);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_prompt_and_request),
                cmocka_unit_test(test_answers_map_to_denials),
                cmocka_unit_test(test_silent_daemon_times_out),
                cmocka_unit_test(test_no_daemon_contact_without_code_or_name),
                cmocka_unit_test(test_combined),
                cmocka_unit_test(test_openvpn),
                cmocka_unit_test(test_account_and_session),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}

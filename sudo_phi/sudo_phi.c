/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sudo_phi: the sudo face of phiaccessd's just-in-time elevation, as two sudo
 * plugins (sudo_plugin(5), sudo >= 1.9) in one object:
 *
 *   sudo_phi_approval  an approval plugin: check() asks the daemon whether the
 *                      invoking user holds an active grant that covers this
 *                      host, and refuses the command unless the answer is yes;
 *   sudo_phi_audit     an audit plugin: accept() records the command (line,
 *                      run-as user and group, cwd, tty) with the daemon, which
 *                      checks the grant again, and sudo runs nothing that was
 *                      not recorded; reject() and error() record refusals.
 *
 * A thin client like pam_phi: it holds no policy and no secret, asks over the
 * root-only PAM socket (sudo runs plugins with euid 0) and obeys. Fail
 * closed: a daemon that cannot be asked, or that answers anything but OK, is
 * a refusal. It works without PAM, so it also holds where a sudoers rule is
 * NOPASSWD or pam_acct_mgmt is switched off.
 *
 * Inputs come from sudo (user_info, command_info, the command's argv), which
 * takes them from the user: each is bounded by the wire's schema, a command
 * line is escaped (control bytes and invalid UTF-8 as \xNN) and cut with a
 * visible note past PHI_SUDO_COMMAND_MAX, and any other value that does not fit
 * is a refusal rather than a shortened record.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sudo_plugin.h>
#include <syslog.h>

#include "phi/client.h"
#include "phi/macro.h"
#include "phi/parse.h"
#include "command.h"

#define PLUGIN_NAME "sudo_phi"
#define APPROVAL_NAME "sudo_phi_approval"

struct sudo_phi_options {
        const char *socket_path;
        int timeout_ms;
        const char *service;
};

/* What open() was given, for check() and the audit calls of the same sudo. */
struct sudo_phi_state {
        struct sudo_phi_options o;
        sudo_printf_t print;
        char user[PHI_NAME_MAX + 1];
        char tty[65];
        char cwd[4096];
        char rhost[256];
        char message[1100];     /* *errstr: must outlive the call */
        bool quiet;             /* audit: sudo prints *errstr itself */
        /* The command as typed (sudo's argv after its options): what a
         * refusal records when sudo passes no command_info. sudo's own. */
        char *const *typed;
};

static struct sudo_phi_state approval_state, audit_state;

static void sudo_phi_say(const struct sudo_phi_state *s, const char *fmt, ...) _phi_printf_(2, 3);
static void sudo_phi_say(const struct sudo_phi_state *s, const char *fmt, ...) {
        char buf[1200];
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        if (s->print && !s->quiet)
                (void) s->print(SUDO_CONV_ERROR_MSG, "%s: %s\n", PLUGIN_NAME, buf);
}

/* The value of "name=value" in a sudo vector, or NULL. */
static const char *sudo_phi_info(char *const v[], const char *name) {
        size_t n = strlen(name);

        for (size_t i = 0; v && v[i]; i++)
                if (strncmp(v[i], name, n) == 0 && v[i][n] == '=')
                        return v[i] + n + 1;
        return NULL;
}

/* Copies src into dst (size bytes); -ENAMETOOLONG rather than a shortened value. */
static int sudo_phi_copy(char *dst, size_t size, const char *src) {
        size_t n = src ? strlen(src) : 0;

        if (n >= size)
                return -ENAMETOOLONG;
        memcpy(dst, src ? src : "", n);
        dst[n] = '\0';
        return 0;
}

/* Options after the path in sudo.conf (root-owned); an unknown one is an
 * error, so that a typo cannot switch a check off unseen. */
static int sudo_phi_parse_options(char *const argv[], struct sudo_phi_options *ret, const char **ret_bad) {
        struct sudo_phi_options o = {
                .socket_path = PHI_PAM_SOCKET_PATH,
                .timeout_ms = PHI_CLIENT_DEFAULT_TIMEOUT_MS,
                .service = "sudo",
        };

        for (size_t i = 0; argv && argv[i]; i++) {
                const char *a = argv[i];
                uint64_t v;

                if (strncmp(a, "timeout=", 8) == 0 && phi_parse_u64(a + 8, 1, 60, &v) == 0)
                        o.timeout_ms = (int) v * 1000;
                else if (strncmp(a, "socket=", 7) == 0 && a[7] == '/')
                        o.socket_path = a + 7;
                else if (strncmp(a, "service=", 8) == 0 && a[8] && strlen(a + 8) <= 64 &&
                         phi_utf8_valid(a + 8, strlen(a + 8)))
                        o.service = a + 8;
                else {
                        *ret_bad = a;
                        return -EINVAL;
                }
        }
        *ret = o;
        return 0;
}

static int sudo_phi_open_common(struct sudo_phi_state *s, unsigned version, sudo_printf_t print,
                                char *const settings[], char *const user_info[], int submit_optind,
                                char *const submit_argv[], char *const options[], const char **errstr) {
        const char *bad = NULL, *user, *tty, *cwd, *rhost;
        int r;

        *s = (struct sudo_phi_state){ .print = print };
        if (submit_argv && submit_optind >= 0 && submit_argv[0]) {
                int i = 0;
                while (i < submit_optind && submit_argv[i])
                        i++;
                if (i == submit_optind && submit_argv[i])
                        s->typed = submit_argv + i;
        }
        if (SUDO_API_VERSION_GET_MAJOR(version) != SUDO_API_VERSION_MAJOR) {
                snprintf(s->message, sizeof(s->message), "sudo plugin API %u.x, built for %u.x",
                         SUDO_API_VERSION_GET_MAJOR(version), SUDO_API_VERSION_MAJOR);
                goto fail;
        }
        if (sudo_phi_parse_options(options, &s->o, &bad) < 0) {
                snprintf(s->message, sizeof(s->message),
                         "bad option '%.200s' in sudo.conf (socket=PATH, timeout=SECONDS, service=NAME)", bad);
                goto fail;
        }
        user = sudo_phi_info(user_info, "user");
        tty = sudo_phi_info(user_info, "tty");
        cwd = sudo_phi_info(user_info, "cwd");
        rhost = sudo_phi_info(settings, "remote_host");
        if (!user || !phi_name_valid(user)) {
                snprintf(s->message, sizeof(s->message), "sudo gave no valid invoking user name");
                goto fail;
        }
        /* As PAM_TTY: "pts/1", not "/dev/pts/1". */
        if (tty && strncmp(tty, "/dev/", 5) == 0)
                tty += 5;
        if ((r = sudo_phi_copy(s->user, sizeof(s->user), user)) < 0 ||
            (r = sudo_phi_copy(s->tty, sizeof(s->tty), tty)) < 0 ||
            (r = sudo_phi_copy(s->cwd, sizeof(s->cwd), cwd)) < 0 ||
            (r = sudo_phi_copy(s->rhost, sizeof(s->rhost), rhost)) < 0) {
                snprintf(s->message, sizeof(s->message), "a terminal, directory or host name too long to record");
                goto fail;
        }
        return 1;
fail:
        sudo_phi_say(s, "%s; refusing", s->message);
        *errstr = s->message;
        return -1;
}

/*
 * One request to the daemon: 1 on OK, 0 on a refusal (EACCES; its sentence
 * in s->message), -1 when the daemon could not be asked or answered nonsense
 * (said to the user; also in s->message). Nothing but OK lets a command run.
 */
static int sudo_phi_ask(struct sudo_phi_state *s, const char *state, char *const command_info[],
                        char *const run_argv[], const char *reason) {
        _cleanup_client_ phi_client *c = NULL;
        _cleanup_msg_ phi_msg *req = NULL, *reply = NULL;
        char command[PHI_SUDO_COMMAND_MAX + 1];
        const char *runas = sudo_phi_info(command_info, "runas_user");
        const char *group = sudo_phi_info(command_info, "runas_group");
        const char *cwd = sudo_phi_info(command_info, "cwd");
        const char *message = NULL;
        int r, error;

        if (!cwd || !*cwd || strcmp(cwd, "*") == 0)
                cwd = s->cwd;
        /* A refusal comes without the command's argv: its arguments as typed
         * (the path, when there is one, is sudo's resolved one). */
        if (!run_argv && s->typed)
                run_argv = s->typed;
        phi_sudo_command_line(sudo_phi_info(command_info, "command"), run_argv, command);
        req = phi_msg_new(PHI_MSG_SUDO_CHECK);
        if (!req || phi_msg_put_str(req, PHI_TAG_USER, s->user) < 0 || phi_msg_put_str(req, PHI_TAG_STATE, state) < 0 ||
            phi_msg_put_str(req, PHI_TAG_COMMAND, command) < 0 ||
            phi_msg_put_str(req, PHI_TAG_SERVICE, s->o.service) < 0 ||
            (runas && *runas && phi_msg_put_str(req, PHI_TAG_RUNAS, runas) < 0) ||
            (group && *group && phi_msg_put_str(req, PHI_TAG_RUNAS_GROUP, group) < 0) ||
            (cwd && *cwd && phi_msg_put_str(req, PHI_TAG_CWD, cwd) < 0) ||
            (s->tty[0] && phi_msg_put_str(req, PHI_TAG_TTY, s->tty) < 0) ||
            (s->rhost[0] && phi_msg_put_str(req, PHI_TAG_RHOST, s->rhost) < 0) ||
            (reason && *reason && phi_msg_put_str(req, PHI_TAG_REASON, reason) < 0)) {
                snprintf(s->message, sizeof(s->message),
                         "the command's run-as user, group or directory is not valid text or too long to record");
                sudo_phi_say(s, "%s; refusing", s->message);
                return -1;
        }
        r = phi_client_connect(s->o.socket_path, s->o.timeout_ms, &c);
        if (r >= 0)
                r = phi_client_call(c, req, &reply);
        if (r < 0) {
                snprintf(s->message, sizeof(s->message), "cannot reach phiaccessd at %s: %s", s->o.socket_path,
                         r == -ENOENT || r == -ECONNREFUSED || r == -EPERM || r == -ETIMEDOUT
                                 ? phi_client_strerror(r)
                                 : phi_wire_strerror(r));
                sudo_phi_say(s, "%s; refusing", s->message);
                syslog(LOG_AUTHPRIV | LOG_ERR, "%s: %s (user %s)", PLUGIN_NAME, s->message, s->user);
                return -1;
        }
        if (phi_msg_type(reply) == PHI_MSG_OK)
                return 1;
        if (phi_msg_get_error(reply, &error, &message) < 0) {
                snprintf(s->message, sizeof(s->message), "unexpected %s reply from phiaccessd",
                         phi_msg_type_name(phi_msg_type(reply)));
                sudo_phi_say(s, "%s; refusing", s->message);
                return -1;
        }
        snprintf(s->message, sizeof(s->message), "%s", message);
        if (error != -EACCES) {
                sudo_phi_say(s, "phiaccessd could not decide: %s; refusing", message);
                return -1;
        }
        return 0;
}

/* ------------------------------------------------------------ approval */

static int sudo_phi_approval_open(unsigned int version, sudo_conv_t conversation, sudo_printf_t print,
                                  char *const settings[], char *const user_info[], int submit_optind,
                                  char *const submit_argv[], char *const submit_envp[], char *const options[],
                                  const char **errstr) {
        (void) conversation, (void) submit_envp;
        return sudo_phi_open_common(&approval_state, version, print, settings, user_info, submit_optind, submit_argv,
                                    options, errstr);
}

static void sudo_phi_approval_close(void) {
        approval_state = (struct sudo_phi_state){ 0 };
}

static int sudo_phi_approval_check(char *const command_info[], char *const run_argv[], char *const run_envp[],
                                   const char **errstr) {
        struct sudo_phi_state *s = &approval_state;
        int r;

        (void) run_envp;
        r = sudo_phi_ask(s, "check", command_info, run_argv, NULL);
        if (r == 0) {
                sudo_phi_say(s, "%s", s->message);
                sudo_phi_say(s, "ask for a grant with: phictl request ROLE --for DURATION --reason TEXT");
        }
        if (r != 1)
                *errstr = s->message;
        /* 0: refused; a daemon that could not decide refuses too. */
        return r == 1 ? 1 : 0;
}

/* sudo -V, as root: which plugin of which release. */
static int sudo_phi_show_version(const struct sudo_phi_state *s, const char *which) {
        if (s->print)
                (void) s->print(SUDO_CONV_INFO_MSG, "%s %s plugin version %s\n", PLUGIN_NAME, which, PHI_VERSION);
        return 1;
}

static int sudo_phi_approval_version(int verbose) {
        (void) verbose;
        return sudo_phi_show_version(&approval_state, "approval");
}

_phi_export_ struct approval_plugin sudo_phi_approval = {
        .type = SUDO_APPROVAL_PLUGIN,
        .version = SUDO_API_VERSION,
        .open = sudo_phi_approval_open,
        .close = sudo_phi_approval_close,
        .check = sudo_phi_approval_check,
        .show_version = sudo_phi_approval_version,
};

/* --------------------------------------------------------------- audit */

static int sudo_phi_audit_open(unsigned int version, sudo_conv_t conversation, sudo_printf_t print,
                               char *const settings[], char *const user_info[], int submit_optind,
                               char *const submit_argv[], char *const submit_envp[], char *const options[],
                               const char **errstr) {
        int r;

        (void) conversation, (void) submit_envp;
        r = sudo_phi_open_common(&audit_state, version, print, settings, user_info, submit_optind, submit_argv,
                                 options, errstr);
        /* From here on sudo shows what accept() refuses with (*errstr). */
        audit_state.quiet = true;
        return r;
}

static void sudo_phi_audit_close(int status_type, int status) {
        (void) status_type, (void) status;
        audit_state = (struct sudo_phi_state){ 0 };
}

/* sudo calls accept once for the policy plugin and once more for each
 * approval plugin that agrees; the command is recorded once, at the policy's. */
static int sudo_phi_audit_accept(const char *plugin_name, unsigned int plugin_type, char *const command_info[],
                                 char *const run_argv[], char *const run_envp[], const char **errstr) {
        struct sudo_phi_state *s = &audit_state;
        int r;

        (void) plugin_name, (void) run_envp;
        if (plugin_type != SUDO_POLICY_PLUGIN)
                return 1;
        r = sudo_phi_ask(s, "accept", command_info, run_argv, NULL);
        if (r != 1)
                *errstr = s->message;
        return r == 1 ? 1 : 0;
}

/* A refusal or error of another plugin (sudoers: not allowed, wrong
 * password). One of sudo_phi's own approval was recorded by its check. Their
 * outcome stands whatever happens here: a record that cannot be made is
 * said, and sudo refuses anyway. */
static int sudo_phi_audit_refusal(const char *state, const char *plugin_name, const char *audit_msg,
                                  char *const command_info[]) {
        struct sudo_phi_state *s = &audit_state;
        char msg[1025];

        if (plugin_name && strcmp(plugin_name, APPROVAL_NAME) == 0)
                return 1;
        /* sudo's own sentence, as one line of text the wire takes. */
        size_t len = 0;
        if (!phi_sudo_escape(msg, &len, sizeof(msg), audit_msg ? audit_msg : ""))
                msg[len] = '\0';
        (void) sudo_phi_ask(s, state, command_info, NULL, msg);
        return 1;
}

static int sudo_phi_audit_reject(const char *plugin_name, unsigned int plugin_type, const char *audit_msg,
                                 char *const command_info[], const char **errstr) {
        (void) plugin_type, (void) errstr;
        return sudo_phi_audit_refusal("reject", plugin_name, audit_msg, command_info);
}

static int sudo_phi_audit_error(const char *plugin_name, unsigned int plugin_type, const char *audit_msg,
                                char *const command_info[], const char **errstr) {
        (void) plugin_type, (void) errstr;
        return sudo_phi_audit_refusal("error", plugin_name, audit_msg, command_info);
}

static int sudo_phi_audit_version(int verbose) {
        (void) verbose;
        return sudo_phi_show_version(&audit_state, "audit");
}

_phi_export_ struct audit_plugin sudo_phi_audit = {
        .type = SUDO_AUDIT_PLUGIN,
        .version = SUDO_API_VERSION,
        .open = sudo_phi_audit_open,
        .close = sudo_phi_audit_close,
        .accept = sudo_phi_audit_accept,
        .reject = sudo_phi_audit_reject,
        .error = sudo_phi_audit_error,
        .show_version = sudo_phi_audit_version,
};

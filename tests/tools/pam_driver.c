/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Runs one PAM operation through a real libpam stack read from a directory
 * (pam_start_confdir), answering the conversation from the command line. The
 * integration tests and benchmarks use it in place of a login program.
 *
 * Usage: pam_driver --confdir DIR --service NAME --user USER [--op OP[,OP]...]
 *                   [--rhost HOST] [--tty TTY] [--answer TEXT]... [--answer-cmd CMD]
 *                   [--hold FILE]
 * OP is auth, account, open or close. Several, comma-separated, run in that
 * order on one handle, as a login program does (pam_close_session needs the
 * handle pam_open_session used), stopping at the first that fails; each
 * prints "OP RESULT" then, and a successful open also "env NAME=VALUE" for
 * each variable the stack put in the PAM environment. With --hold, the
 * operation after a successful open waits until FILE exists: a session that
 * stays open while the test looks at it (or kills this process).
 * Once the --answer texts are used up, each further prompt is answered with
 * the first line CMD prints (run by sh, with the last informational message
 * of the conversation in $PAM_DRIVER_INFO): how a test answers with a code it
 * can only compute from what the module showed, as a person would.
 * One OP prints the PAM result's symbolic name ("PAM_SUCCESS") on stdout;
 * every message of the conversation goes to stderr ("prompt-off: Verification
 * code: "). Exit status: 0 PAM_SUCCESS (every OP), 1 any other result, 2
 * usage error. */

#include <getopt.h>
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_ANSWERS 16
#define MAX_OPS 8

struct script {
        const char *answers[MAX_ANSWERS];
        int n, next;
        const char *answer_cmd;
};

/* The first line CMD prints, or NULL. */
static char *run_answer_cmd(const char *cmd) {
        char line[256];
        FILE *f = popen(cmd, "r");
        char *answer = NULL;

        if (!f)
                return NULL;
        if (fgets(line, sizeof(line), f)) {
                line[strcspn(line, "\r\n")] = 0;
                answer = strdup(line);
        }
        if (pclose(f) != 0) {
                free(answer);
                answer = NULL;
        }
        return answer;
}

static const char *result_name(int r) {
        static const struct {
                int code;
                const char *name;
        } names[] = {
#define N(x) { x, #x }
                N(PAM_SUCCESS), N(PAM_OPEN_ERR), N(PAM_SYMBOL_ERR), N(PAM_SERVICE_ERR),
                N(PAM_SYSTEM_ERR), N(PAM_BUF_ERR), N(PAM_PERM_DENIED), N(PAM_AUTH_ERR),
                N(PAM_CRED_INSUFFICIENT), N(PAM_AUTHINFO_UNAVAIL), N(PAM_USER_UNKNOWN),
                N(PAM_MAXTRIES), N(PAM_NEW_AUTHTOK_REQD), N(PAM_ACCT_EXPIRED), N(PAM_SESSION_ERR),
                N(PAM_CONV_ERR), N(PAM_IGNORE), N(PAM_ABORT), N(PAM_BAD_ITEM),
#undef N
        };
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                if (names[i].code == r)
                        return names[i].name;
        return "PAM_UNKNOWN_RESULT";
}

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data) {
        struct script *s = data;
        struct pam_response *r = calloc((size_t) n, sizeof(*r));

        if (!r)
                return PAM_BUF_ERR;
        for (int i = 0; i < n; i++) {
                switch (msg[i]->msg_style) {
                case PAM_PROMPT_ECHO_OFF:
                case PAM_PROMPT_ECHO_ON:
                        fprintf(stderr, "%s: %s\n",
                                msg[i]->msg_style == PAM_PROMPT_ECHO_OFF ? "prompt-off" : "prompt-on",
                                msg[i]->msg);
                        if (s->next >= s->n && s->answer_cmd) {
                                r[i].resp = run_answer_cmd(s->answer_cmd);
                                if (r[i].resp)
                                        break;
                                fprintf(stderr, "pam_driver: --answer-cmd gave no answer\n");
                        }
                        if (s->next >= s->n) {
                                /* A login program whose user gave up. */
                                for (int j = 0; j < i; j++)
                                        free(r[j].resp);
                                free(r);
                                return PAM_CONV_ERR;
                        }
                        r[i].resp = strdup(s->answers[s->next++]);
                        break;
                case PAM_TEXT_INFO:
                        fprintf(stderr, "info: %s\n", msg[i]->msg);
                        (void) setenv("PAM_DRIVER_INFO", msg[i]->msg, 1);
                        break;
                default:
                        fprintf(stderr, "error: %s\n", msg[i]->msg);
                        break;
                }
        }
        *resp = r;
        return PAM_SUCCESS;
}

/* The PAM call OP names; -1 for an unknown name. */
static int run_op(pam_handle_t *pamh, const char *op) {
        if (strcmp(op, "auth") == 0)
                return pam_authenticate(pamh, 0);
        if (strcmp(op, "account") == 0)
                return pam_acct_mgmt(pamh, 0);
        if (strcmp(op, "open") == 0)
                return pam_open_session(pamh, 0);
        if (strcmp(op, "close") == 0)
                return pam_close_session(pamh, 0);
        return -1;
}

static void wait_for_file(const char *path) {
        const struct timespec tick = { .tv_nsec = 20 * 1000 * 1000 };

        while (access(path, F_OK) != 0)
                (void) nanosleep(&tick, NULL);
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "confdir", required_argument, NULL, 'c' },
                { "service", required_argument, NULL, 's' },
                { "user", required_argument, NULL, 'u' },
                { "op", required_argument, NULL, 'o' },
                { "rhost", required_argument, NULL, 'r' },
                { "tty", required_argument, NULL, 't' },
                { "answer", required_argument, NULL, 'a' },
                { "answer-cmd", required_argument, NULL, 'A' },
                { "hold", required_argument, NULL, 'H' },
                {},
        };
        const char *confdir = NULL, *service = NULL, *user = NULL, *op = "auth";
        const char *rhost = NULL, *tty = NULL, *hold = NULL;
        char ops_buf[256], *ops[MAX_OPS], *save = NULL;
        int n_ops = 0;
        struct script s = { 0 };
        struct pam_conv c = { conv, &s };
        pam_handle_t *pamh = NULL;
        int opt, r;

        while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
                switch (opt) {
                case 'c': confdir = optarg; break;
                case 's': service = optarg; break;
                case 'u': user = optarg; break;
                case 'o': op = optarg; break;
                case 'r': rhost = optarg; break;
                case 't': tty = optarg; break;
                case 'a':
                        if (s.n >= MAX_ANSWERS) {
                                fprintf(stderr, "pam_driver: at most %d answers\n", MAX_ANSWERS);
                                return 2;
                        }
                        s.answers[s.n++] = optarg;
                        break;
                case 'A': s.answer_cmd = optarg; break;
                case 'H': hold = optarg; break;
                default:
                        return 2;
                }
        }
        if (!confdir || !service || !user || optind != argc) {
                fprintf(stderr, "usage: pam_driver --confdir DIR --service NAME --user USER "
                                "[--op auth|account|open|close[,...]] [--rhost H] [--tty T] [--answer A]... "
                                "[--answer-cmd CMD] [--hold FILE]\n");
                return 2;
        }
        if (strlen(op) >= sizeof(ops_buf)) {
                fprintf(stderr, "pam_driver: --op is too long\n");
                return 2;
        }
        strcpy(ops_buf, op);
        for (char *t = strtok_r(ops_buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (n_ops >= MAX_OPS || (strcmp(t, "auth") != 0 && strcmp(t, "account") != 0 &&
                                         strcmp(t, "open") != 0 && strcmp(t, "close") != 0)) {
                        fprintf(stderr, "pam_driver: bad --op '%s'\n", op);
                        return 2;
                }
                ops[n_ops++] = t;
        }
        if (n_ops == 0) {
                fprintf(stderr, "pam_driver: bad --op '%s'\n", op);
                return 2;
        }
        r = pam_start_confdir(service, user, &c, confdir, &pamh);
        if (r != PAM_SUCCESS) {
                printf("%s\n", result_name(r));
                return 1;
        }
        if ((rhost && pam_set_item(pamh, PAM_RHOST, rhost) != PAM_SUCCESS) ||
            (tty && pam_set_item(pamh, PAM_TTY, tty) != PAM_SUCCESS)) {
                pam_end(pamh, PAM_SYSTEM_ERR);
                return 2;
        }
        r = PAM_SUCCESS;
        for (int i = 0; i < n_ops && r == PAM_SUCCESS; i++) {
                if (i > 0 && hold && strcmp(ops[i - 1], "open") == 0)
                        wait_for_file(hold);
                r = run_op(pamh, ops[i]);
                if (n_ops == 1) {
                        printf("%s\n", result_name(r));
                        break;
                }
                printf("%s %s\n", ops[i], result_name(r));
                if (r == PAM_SUCCESS && strcmp(ops[i], "open") == 0) {
                        char **env = pam_getenvlist(pamh);
                        for (char **e = env; e && *e; e++) {
                                printf("env %s\n", *e);
                                free(*e);
                        }
                        free(env);
                }
                /* Seen at once by a test that waits for it while this holds. */
                fflush(stdout);
        }
        pam_end(pamh, r);
        return r == PAM_SUCCESS ? 0 : 1;
}

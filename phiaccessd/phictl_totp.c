/* SPDX-License-Identifier: GPL-2.0-or-later */
/* phictl totp issue|enroll|reset. Enrolment shows the new secret once, as a QR
 * code and as the otpauth:// URI, and activates the token only after the user
 * proves the app has it by typing a code. The secret never touches a file;
 * every copy in this process is wiped. */

#include <getopt.h>
#include <stdio.h>
#include <termios.h>

#include "phi/macro.h"
#include "phi/parse.h"
#include "phi/secret.h"
#include "phictl.h"
#include "qr.h"

#define TICKET_MIN (5 * 60)
#define TICKET_MAX (30 * 86400)
#define ACTIVATE_TRIES 3

static int totp_usage(void) {
        fprintf(stderr, "Usage: phictl totp issue USER [--expires DUR]\n"
                        "       phictl totp enroll\n"
                        "       phictl totp reset USER\n");
        return EXIT_USAGE;
}

static int totp_issue(const struct ctl *ctl, int argc, char **argv) {
        static const struct option options[] = {
                { "expires", required_argument, NULL, 'e' },
                {},
        };
        _cleanup_msg_ phi_msg *req = phi_msg_new(PHI_MSG_TOTP_ISSUE);
        _cleanup_msg_ phi_msg *reply = NULL;
        uint64_t expires = 0;
        char lo[24], hi[24];
        int c, r;

        /* 0, not 1: glibc re-initialises its scan state only then (main() used getopt). */
        optind = 0;
        while ((c = getopt_long(argc, argv, "e:", options, NULL)) != -1) {
                if (c != 'e')
                        return totp_usage();
                if (phi_parse_duration(optarg, TICKET_MIN, TICKET_MAX, &expires) < 0) {
                        fprintf(stderr, "phictl: --expires takes a duration from %s to %s, like 7d\n",
                                phi_format_duration(TICKET_MIN, lo), phi_format_duration(TICKET_MAX, hi));
                        return EXIT_USAGE;
                }
        }
        if (optind != argc - 1)
                return totp_usage();
        if (!phi_name_valid(argv[optind])) {
                fprintf(stderr, "phictl: '%s' is not a valid user name\n", argv[optind]);
                return EXIT_USAGE;
        }
        if (!req || phi_msg_put_str(req, PHI_TAG_USER, argv[optind]) < 0 ||
            (expires > 0 && phi_msg_put_u64(req, PHI_TAG_DURATION, expires) < 0))
                return EXIT_REFUSED;
        r = ctl_call(ctl, req, &reply);
        if (r == EXIT_DONE)
                print_pairs(ctl, reply);
        return r;
}

static int totp_reset(const struct ctl *ctl, int argc, char **argv) {
        _cleanup_msg_ phi_msg *req = phi_msg_new(PHI_MSG_TOTP_RESET);
        _cleanup_msg_ phi_msg *reply = NULL;
        int r;

        if (argc != 2)
                return totp_usage();
        if (!phi_name_valid(argv[1])) {
                fprintf(stderr, "phictl: '%s' is not a valid user name\n", argv[1]);
                return EXIT_USAGE;
        }
        if (!req || phi_msg_put_str(req, PHI_TAG_USER, argv[1]) < 0)
                return EXIT_REFUSED;
        r = ctl_call(ctl, req, &reply);
        if (r == EXIT_DONE) {
                if (ctl->json)
                        print_pairs(ctl, reply);
                else
                        printf("Token of %s removed; they need a new ticket to enrol again.\n", argv[1]);
        }
        return r;
}

/* Reads one line into buf (wiped by the caller), without echo on a terminal. */
int ctl_read_code(const char *prompt, char *buf, size_t size) {
        struct termios old, quiet;
        bool tty = tcgetattr(STDIN_FILENO, &old) == 0;
        bool ok;
        size_t n;

        /* Echo off before the prompt, and TCSANOW: TCSAFLUSH would throw away a
         * code typed (or pasted) as soon as the prompt appeared. */
        if (tty) {
                quiet = old;
                quiet.c_lflag &= ~(tcflag_t) ECHO;
                (void) tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
        }
        /* On stderr, as sudo and ssh ask: stdout stays the answer, for scripts. */
        fflush(stdout);
        fputs(prompt, stderr);
        ok = fgets(buf, (int) size, stdin) != NULL;
        if (tty)
                (void) tcsetattr(STDIN_FILENO, TCSANOW, &old);
        fputc('\n', stderr);
        if (!ok)
                return -EIO;
        n = strcspn(buf, "\r\n");
        if (buf[n] == 0 && n == size - 1)
                return -E2BIG;  /* no newline within the buffer: not a code */
        buf[n] = 0;
        return 0;
}

static int totp_enroll(const struct ctl *ctl, int argc, char **argv) {
        _cleanup_msg_ phi_msg *req = phi_msg_new(PHI_MSG_TOTP_ENROLL);
        _cleanup_msg_ phi_msg *reply = NULL;
        const char *uri = NULL, *user = NULL;
        char *qr = NULL;
        char code[64];
        int r;

        (void) argv;
        if (argc != 1)
                return totp_usage();
        if (!req)
                return EXIT_REFUSED;
        r = ctl_call(ctl, req, &reply);
        if (r != EXIT_DONE)
                return r;
        if (phi_msg_type(reply) != PHI_MSG_TOTP_SECRET ||
            phi_msg_get_str(reply, PHI_TAG_URI, &uri) < 0 ||
            phi_msg_get_str(reply, PHI_TAG_USER, &user) < 0) {
                fprintf(stderr, "phictl: unexpected answer from phiaccessd\n");
                return EXIT_UNREACHABLE;
        }

        r = phi_qr_draw(uri, &qr);
        printf("Enrolling a new token for %s.\n"
               "Scan this QR code with your authenticator app:\n\n", user);
        if (r == 0) {
                fputs(qr, stdout);
                phi_secret_free_str(PHI_TAKE_PTR(qr));
        } else
                printf("(cannot draw a QR code here: %s)\n", phi_errno_text(r));
        printf("\nOr enter this URI in the app by hand:\n%s\n\n", uri);
        fflush(stdout);

        r = EXIT_REFUSED;
        for (int i = 0; i < ACTIVATE_TRIES && r == EXIT_REFUSED; i++) {
                _cleanup_msg_ phi_msg *act = phi_msg_new(PHI_MSG_TOTP_ACTIVATE);
                _cleanup_msg_ phi_msg *ok = NULL;
                int rc = ctl_read_code("Code from your authenticator app: ", code, sizeof(code));

                /* Not a usage error: the command line was right, the input
                 * ended (or was no code) before the token could be activated. */
                if (rc < 0) {
                        fprintf(stderr, rc == -E2BIG
                                        ? "phictl: that is not a code (6 or 8 digits); the token stays inactive\n"
                                        : "phictl: no code was given (end of input); the token stays inactive. "
                                          "Run phictl totp enroll again on a terminal, or give the code on "
                                          "standard input\n");
                        phi_secret_wipe(code, sizeof(code));
                        return EXIT_REFUSED;
                }
                if (!act || phi_msg_put_str(act, PHI_TAG_CODE, code) < 0) {
                        fprintf(stderr, "phictl: that is not a code (6 or 8 digits)\n");
                        phi_secret_wipe(code, sizeof(code));
                        continue;
                }
                phi_secret_wipe(code, sizeof(code));
                r = ctl_call(ctl, act, &ok);
        }
        phi_secret_wipe(code, sizeof(code));
        if (r == EXIT_DONE)
                printf("Token active: %s now signs in with a code from this app.\n", user);
        else if (r == EXIT_REFUSED)
                fprintf(stderr, "phictl: the token was not activated; run phictl totp enroll again\n");
        return r;
}

int verb_totp(const struct ctl *ctl, int argc, char **argv) {
        if (argc < 2)
                return totp_usage();
        if (strcmp(argv[1], "issue") == 0)
                return totp_issue(ctl, argc - 1, argv + 1);
        if (strcmp(argv[1], "enroll") == 0 || strcmp(argv[1], "enrol") == 0)
                return totp_enroll(ctl, argc - 1, argv + 1);
        if (strcmp(argv[1], "reset") == 0)
                return totp_reset(ctl, argc - 1, argv + 1);
        fprintf(stderr, "phictl: unknown totp verb '%s'\n", argv[1]);
        return totp_usage();
}

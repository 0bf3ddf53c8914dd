/* SPDX-License-Identifier: GPL-2.0-or-later */
/* phictl's elevation verbs: request, requests, grants, approve, deny, cancel,
 * revoke, breakglass, review. The daemon decides who may do what; phictl
 * reads the command line, asks, and prints the answer. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "phi/macro.h"
#include "phi/parse.h"
#include "phi/secret.h"
#include "phictl.h"

#define CODE_PROMPT "Verification code: "

static int usage(const char *line) {
        fprintf(stderr, "phictl: usage: phictl %s\n", line);
        return EXIT_USAGE;
}

/* --start: "+DUR" from now, or an ISO 8601 time in UTC (2026-12-02T14:00:00Z
 * or 2026-12-02T14:00Z). */
static int parse_start(const char *s, uint64_t *ret) {
        struct tm tm = { 0 };
        const char *end;
        uint64_t d;
        time_t t;

        if (s[0] == '+') {
                if (phi_parse_duration(s + 1, 1, 90 * 86400ULL, &d) < 0)
                        return -EINVAL;
                *ret = (uint64_t) time(NULL) + d;
                return 0;
        }
        end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (!end || *end) {
                tm = (struct tm){ 0 };
                end = strptime(s, "%Y-%m-%dT%H:%MZ", &tm);
        }
        if (!end || *end || (t = timegm(&tm)) < 0)
                return -EINVAL;
        *ret = (uint64_t) t;
        return 0;
}

static int call_print(const struct ctl *ctl, const phi_msg *req) {
        _cleanup_msg_ phi_msg *reply = NULL;
        int r = ctl_call(ctl, req, &reply);

        if (r == EXIT_DONE)
                print_pairs(ctl, reply);
        return r;
}

int verb_request(const struct ctl *ctl, int argc, char **argv) {
        static const char line[] = "request ROLE --for DUR --reason TEXT [--start T] [--ticket REF]";
        _cleanup_msg_ phi_msg *req = phi_msg_new(PHI_MSG_ELEV_REQUEST);
        const char *role = NULL, *reason = NULL, *ticket = NULL;
        uint64_t duration = 0, start = 0;

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--for") == 0 && i + 1 < argc) {
                        if (phi_parse_duration(argv[++i], 1, 366 * 86400ULL, &duration) < 0) {
                                fprintf(stderr, "phictl: --for takes a duration: 90s, 30m, 4h, 7d\n");
                                return EXIT_USAGE;
                        }
                } else if (strcmp(argv[i], "--reason") == 0 && i + 1 < argc)
                        reason = argv[++i];
                else if (strcmp(argv[i], "--ticket") == 0 && i + 1 < argc)
                        ticket = argv[++i];
                else if (strcmp(argv[i], "--start") == 0 && i + 1 < argc) {
                        if (parse_start(argv[++i], &start) < 0) {
                                fprintf(stderr, "phictl: --start takes +DUR or a UTC time like 2026-12-02T14:00Z\n");
                                return EXIT_USAGE;
                        }
                } else if (argv[i][0] != '-' && !role)
                        role = argv[i];
                else
                        return usage(line);
        }
        if (!role || !duration)
                return usage(line);
        if (!req || phi_msg_put_str(req, PHI_TAG_ROLE, role) < 0 || phi_msg_put_u64(req, PHI_TAG_DURATION, duration) < 0 ||
            (reason && phi_msg_put_str(req, PHI_TAG_REASON, reason) < 0) ||
            (ticket && phi_msg_put_str(req, PHI_TAG_TICKET, ticket) < 0) ||
            (start && phi_msg_put_u64(req, PHI_TAG_START, start) < 0)) {
                fprintf(stderr, "phictl: a role, reason or ticket that cannot be sent (too long, or not UTF-8)\n");
                return EXIT_USAGE;
        }
        return call_print(ctl, req);
}

/* approve and deny: with a code when the role asks approvers for one. */
static int decide(const struct ctl *ctl, int argc, char **argv, bool approve) {
        const char *line = approve ? "approve ID [--reason TEXT]" : "deny ID --reason TEXT";
        const char *id = NULL, *reason = NULL;
        char code[64] = "";
        int r = EXIT_USAGE;

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--reason") == 0 && i + 1 < argc)
                        reason = argv[++i];
                else if (argv[i][0] != '-' && !id)
                        id = argv[i];
                else
                        return usage(line);
        }
        if (!id || (!approve && !reason))
                return usage(line);
        for (int attempt = 0; attempt < 2; attempt++) {
                _cleanup_msg_ phi_msg *req = phi_msg_new(PHI_MSG_ELEV_DECIDE), *reply = NULL;
                int error = 0;

                if (!req || phi_msg_put_str(req, PHI_TAG_REQUEST, id) < 0 ||
                    phi_msg_put_str(req, PHI_TAG_STATE, approve ? "approve" : "deny") < 0 ||
                    (reason && phi_msg_put_str(req, PHI_TAG_REASON, reason) < 0) ||
                    (code[0] && phi_msg_put_str(req, PHI_TAG_CODE, code) < 0)) {
                        fprintf(stderr, "phictl: a request id, reason or code that cannot be sent\n");
                        r = EXIT_USAGE;
                        break;
                }
                phi_secret_wipe(code, sizeof(code));
                r = ctl_call_quiet(ctl, req, attempt == 0 ? -ENOKEY : 0, &reply, &error);
                if (r == EXIT_DONE)
                        print_pairs(ctl, reply);
                if (r != EXIT_REFUSED || error != -ENOKEY || attempt > 0)
                        break;
                /* The role asks approvers for a fresh code of their own. */
                if (ctl_read_code(CODE_PROMPT, code, sizeof(code)) < 0 || !code[0]) {
                        fprintf(stderr, "phictl: this role asks approvers for a code from their authenticator app; "
                                        "none was given\n");
                        r = EXIT_REFUSED;
                        break;
                }
        }
        phi_secret_wipe(code, sizeof(code));
        return r;
}

int verb_approve(const struct ctl *ctl, int argc, char **argv) {
        return decide(ctl, argc, argv, true);
}

int verb_deny(const struct ctl *ctl, int argc, char **argv) {
        return decide(ctl, argc, argv, false);
}

/* A verb on one request id, with an optional --reason (or --note). */
static int on_id(const struct ctl *ctl, int argc, char **argv, uint16_t type, const char *line, const char *text_opt,
                 bool text_required) {
        _cleanup_msg_ phi_msg *req = phi_msg_new(type);
        const char *id = NULL, *text = NULL;

        for (int i = 1; i < argc; i++) {
                if (text_opt && strcmp(argv[i], text_opt) == 0 && i + 1 < argc)
                        text = argv[++i];
                else if (argv[i][0] != '-' && !id)
                        id = argv[i];
                else
                        return usage(line);
        }
        if (!id || (text_required && !text))
                return usage(line);
        if (!req || phi_msg_put_str(req, PHI_TAG_REQUEST, id) < 0 ||
            (text && phi_msg_put_str(req, PHI_TAG_REASON, text) < 0)) {
                fprintf(stderr, "phictl: a request id or text that cannot be sent\n");
                return EXIT_USAGE;
        }
        return call_print(ctl, req);
}

int verb_cancel(const struct ctl *ctl, int argc, char **argv) {
        return on_id(ctl, argc, argv, PHI_MSG_ELEV_CANCEL, "cancel ID", NULL, false);
}

int verb_revoke(const struct ctl *ctl, int argc, char **argv) {
        return on_id(ctl, argc, argv, PHI_MSG_ELEV_REVOKE, "revoke ID [--reason TEXT]", "--reason", false);
}

int verb_review(const struct ctl *ctl, int argc, char **argv) {
        return on_id(ctl, argc, argv, PHI_MSG_REVIEW, "review ID --note TEXT", "--note", true);
}

int verb_breakglass(const struct ctl *ctl, int argc, char **argv) {
        static const char line[] = "breakglass ROLE --reason TEXT [--for DUR]";
        _cleanup_msg_ phi_msg *req = phi_msg_new(PHI_MSG_BREAKGLASS);
        const char *role = NULL, *reason = NULL;
        uint64_t duration = 0;
        char code[64] = "";
        int r;

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--reason") == 0 && i + 1 < argc)
                        reason = argv[++i];
                else if (strcmp(argv[i], "--for") == 0 && i + 1 < argc) {
                        if (phi_parse_duration(argv[++i], 1, 366 * 86400ULL, &duration) < 0) {
                                fprintf(stderr, "phictl: --for takes a duration: 90s, 30m, 4h\n");
                                return EXIT_USAGE;
                        }
                } else if (argv[i][0] != '-' && !role)
                        role = argv[i];
                else
                        return usage(line);
        }
        if (!role || !reason)
                return usage(line);
        /* Break-glass skips the approvers, not the second factor. */
        if (ctl_read_code(CODE_PROMPT, code, sizeof(code)) < 0 || !code[0]) {
                fprintf(stderr, "phictl: break-glass needs a code from your authenticator app\n");
                phi_secret_wipe(code, sizeof(code));
                return EXIT_REFUSED;
        }
        if (!req || phi_msg_put_str(req, PHI_TAG_ROLE, role) < 0 || phi_msg_put_str(req, PHI_TAG_REASON, reason) < 0 ||
            phi_msg_put_str(req, PHI_TAG_CODE, code) < 0 ||
            (duration && phi_msg_put_u64(req, PHI_TAG_DURATION, duration) < 0)) {
                phi_secret_wipe(code, sizeof(code));
                fprintf(stderr, "phictl: a role, reason or code that cannot be sent\n");
                return EXIT_USAGE;
        }
        phi_secret_wipe(code, sizeof(code));
        r = call_print(ctl, req);
        return r;
}

/* ------------------------------------------------------------- listings */

enum { C_ID, C_USER, C_ROLE, C_STATE, C_APPROVALS, C_CREATED, C_EXPIRES, C_LEFT, C_BREAKGLASS, C_REVIEWED, C_REASON,
       _C_MAX };
static const char *const columns[_C_MAX] = { "id", "user", "role", "state", "approvals", "created", "expires",
                                             "seconds_left", "breakglass", "reviewed", "reason" };
#define LIST_MAX 100000

struct row {
        char *v[_C_MAX];
};

static void rows_free(struct row *rows, size_t n) {
        for (size_t i = 0; i < n; i++)
                for (size_t c = 0; c < _C_MAX; c++)
                        free(rows[i].v[c]);
        free(rows);
}


/* In JSON every pair of the reply, typed; one object per request. */
static void print_json_page(const phi_msg *m, bool *first) {
        const char *key = NULL;
        bool open = false;

        for (size_t i = 0, nf = phi_msg_field_count(m); i < nf; i++) {
                uint16_t tag;
                const void *value;
                uint64_t u;

                if (phi_msg_field(m, i, &tag, NULL, &value, NULL) < 0)
                        continue;
                if (tag == PHI_TAG_KEY) {
                        key = value;
                        continue;
                }
                if (!key || strcmp(key, "more") == 0) {
                        key = NULL;
                        continue;
                }
                if (strcmp(key, "id") == 0) {
                        printf("%s%s{", open ? "}" : "", *first && !open ? "" : ",");
                        open = true;
                        *first = false;
                } else
                        putchar(',');
                ctl_json_string(stdout, key);
                putchar(':');
                if (tag == PHI_TAG_VALUE)
                        ctl_json_string(stdout, value);
                else if (phi_msg_field_u64(m, i, &u) == 0 && tag == PHI_TAG_FLAG)
                        fputs(u ? "true" : "false", stdout);
                else if (phi_msg_field_u64(m, i, &u) == 0)
                        printf("%llu", (unsigned long long) u);
                else
                        fputs("null", stdout);
                key = NULL;
        }
        if (open)
                putchar('}');
}

static int take_page(const phi_msg *m, struct row **rows, size_t *n, size_t *cap, bool *ret_more) {
        const char *key = NULL;
        struct row *cur = NULL;

        *ret_more = false;
        for (size_t i = 0, nf = phi_msg_field_count(m); i < nf; i++) {
                uint16_t tag;
                const void *value;
                char number[24];
                uint64_t u;
                int c = -1;

                if (phi_msg_field(m, i, &tag, NULL, &value, NULL) < 0)
                        continue;
                if (tag == PHI_TAG_KEY) {
                        key = value;
                        continue;
                }
                if (!key)
                        continue;
                if (strcmp(key, "more") == 0 && tag == PHI_TAG_FLAG && phi_msg_field_u64(m, i, &u) == 0)
                        *ret_more = u != 0;
                for (int k = 0; k < _C_MAX && c < 0; k++)
                        if (strcmp(columns[k], key) == 0)
                                c = k;
                key = NULL;
                if (c < 0)
                        continue;
                if (c == C_ID) {
                        if (*n >= LIST_MAX)
                                return -E2BIG;
                        if (*n == *cap) {
                                size_t nc = *cap ? *cap * 2 : 64;
                                struct row *nr = realloc(*rows, nc * sizeof(**rows));
                                if (!nr)
                                        return -ENOMEM;
                                *rows = nr;
                                *cap = nc;
                        }
                        cur = &(*rows)[(*n)++];
                        *cur = (struct row){ 0 };
                }
                if (!cur || cur->v[c])
                        continue;
                if ((tag == PHI_TAG_NUMBER || tag == PHI_TAG_FLAG) && phi_msg_field_u64(m, i, &u) == 0) {
                        if (tag == PHI_TAG_FLAG)
                                snprintf(number, sizeof(number), "%s", u ? "yes" : "no");
                        else
                                snprintf(number, sizeof(number), "%llu", (unsigned long long) u);
                        value = number;
                } else if (tag != PHI_TAG_VALUE)
                        continue;
                if (!(cur->v[c] = strdup(value)))
                        return -ENOMEM;
        }
        return 0;
}

static void print_table(struct row *rows, size_t n, bool grants) {
        if (n == 0) {
                puts(grants ? "no active grants" : "no requests");
                return;
        }
        if (grants)
                printf("%-12s %-16s %-16s %-9s %-20s %s\n", "ID", "USER", "ROLE", "STATE", "EXPIRES", "LEFT");
        else
                printf("%-12s %-16s %-16s %-9s %-9s %-20s %s\n", "ID", "USER", "ROLE", "STATE", "APPROVALS", "CREATED",
                       "REASON");
        for (size_t i = 0; i < n; i++) {
                char *const *v = rows[i].v;
#define COL(c) (v[c] && v[c][0] ? v[c] : "-")
                char state[40];
                /* A break-glass grant nobody has reviewed stands out. */
                snprintf(state, sizeof(state), "%s%s", COL(C_STATE),
                         v[C_BREAKGLASS] && strcmp(v[C_BREAKGLASS], "yes") == 0
                                 ? (v[C_REVIEWED] && strcmp(v[C_REVIEWED], "yes") == 0 ? " (break-glass)"
                                                                                       : " (break-glass, unreviewed)")
                                 : "");
                if (grants) {
                        char left[24] = "-";
                        uint64_t s;
                        if (v[C_LEFT] && phi_parse_u64(v[C_LEFT], 0, UINT64_MAX, &s) == 0 && s > 0)
                                phi_format_duration(s, left);
                        printf("%-12s %-16s %-16s %-9s %-20s %s\n", COL(C_ID), COL(C_USER), COL(C_ROLE), state,
                               COL(C_EXPIRES), left);
                } else
                        printf("%-12s %-16s %-16s %-9s %-9s %-20s %s\n", COL(C_ID), COL(C_USER), COL(C_ROLE), state,
                               COL(C_APPROVALS), COL(C_CREATED), COL(C_REASON));
#undef COL
        }
}

static int list(const struct ctl *ctl, const char *which, bool grants) {
        struct row *rows = NULL;
        size_t n = 0, cap = 0;
        bool more = true, first = true;
        int r = EXIT_DONE;

        if (ctl->json)
                putchar('[');
        while (more && r == EXIT_DONE) {
                _cleanup_msg_ phi_msg *req = phi_msg_new(PHI_MSG_ELEV_LIST), *reply = NULL;
                const char *after = n > 0 ? rows[n - 1].v[C_ID] : NULL;
                size_t before = n;
                int e;

                if (!req || phi_msg_put_str(req, PHI_TAG_STATE, which) < 0 ||
                    (after && phi_msg_put_str(req, PHI_TAG_REQUEST, after) < 0)) {
                        r = EXIT_REFUSED;
                        break;
                }
                if ((r = ctl_call(ctl, req, &reply)) != EXIT_DONE)
                        break;
                if ((e = take_page(reply, &rows, &n, &cap, &more)) < 0) {
                        fprintf(stderr, "phictl: cannot hold the listing: %s\n", strerror(-e));
                        r = EXIT_REFUSED;
                        break;
                }
                if (ctl->json)
                        print_json_page(reply, &first);
                if (more && (n == before || !rows[n - 1].v[C_ID])) {
                        fprintf(stderr, "phictl: phiaccessd sent a page that cannot be continued\n");
                        r = EXIT_REFUSED;
                }
        }
        if (ctl->json)
                puts("]");
        else if (r == EXIT_DONE)
                print_table(rows, n, grants);
        rows_free(rows, n);
        return r;
}

int verb_requests(const struct ctl *ctl, int argc, char **argv) {
        const char *which = "pending";

        if (argc > 2)
                return usage("requests [--pending|--mine|--all]");
        if (argc == 2) {
                if (strcmp(argv[1], "--pending") == 0)
                        which = "pending";
                else if (strcmp(argv[1], "--mine") == 0)
                        which = "mine";
                else if (strcmp(argv[1], "--all") == 0)
                        which = "all";
                else
                        return usage("requests [--pending|--mine|--all]");
        }
        return list(ctl, which, false);
}

int verb_grants(const struct ctl *ctl, int argc, char **argv) {
        (void) argv;
        if (argc != 1)
                return usage("grants");
        return list(ctl, "grants", true);
}

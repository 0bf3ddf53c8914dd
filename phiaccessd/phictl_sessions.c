/* SPDX-License-Identifier: GPL-2.0-or-later */
/* phictl sessions: the open login and sudo sessions, oldest first. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phi/macro.h"
#include "phictl.h"

/* A listing is asked for page by page; this bounds what phictl holds. */
#define SESSIONS_MAX 1000000

enum { C_SESSION, C_USER, C_SERVICE, C_RHOST, C_TTY, C_HOST, C_PID, C_OPENED, _C_MAX };
static const char *const columns[_C_MAX] = { "session", "user", "service", "rhost", "tty", "host", "pid", "opened" };

struct row {
        char *v[_C_MAX];
};

static void rows_free(struct row *rows, size_t n) {
        for (size_t i = 0; i < n; i++)
                for (size_t c = 0; c < _C_MAX; c++)
                        free(rows[i].v[c]);
        free(rows);
}

static int column_of(const char *key) {
        for (int c = 0; c < _C_MAX; c++)
                if (strcmp(columns[c], key) == 0)
                        return c;
        return -1;
}

/* Appends the sessions of one reply; *ret_more from its "more" flag. */
static int take_page(const phi_msg *m, struct row **rows, size_t *n, size_t *cap, bool *ret_more) {
        const char *key = NULL;
        struct row *cur = NULL;

        *ret_more = false;
        for (size_t i = 0, nf = phi_msg_field_count(m); i < nf; i++) {
                uint16_t tag;
                const void *value;
                char number[24];
                uint64_t u;
                int c;

                if (phi_msg_field(m, i, &tag, NULL, &value, NULL) < 0)
                        continue;
                if (tag == PHI_TAG_KEY) {
                        key = value;
                        continue;
                }
                if (!key)
                        continue;
                if (tag == PHI_TAG_FLAG && strcmp(key, "more") == 0 && phi_msg_field_u64(m, i, &u) == 0) {
                        *ret_more = u != 0;
                        key = NULL;
                        continue;
                }
                c = column_of(key);
                key = NULL;
                if (c < 0)
                        continue;
                if (c == C_SESSION) {
                        if (*n >= SESSIONS_MAX)
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
                if (tag == PHI_TAG_NUMBER && phi_msg_field_u64(m, i, &u) == 0) {
                        snprintf(number, sizeof(number), "%llu", (unsigned long long) u);
                        value = number;
                } else if (tag != PHI_TAG_VALUE)
                        continue;
                if (!(cur->v[c] = strdup(value)))
                        return -ENOMEM;
        }
        return 0;
}

static int by_opened(const void *a, const void *b) {
        const struct row *x = a, *y = b;
        /* ISO 8601 UTC sorts as text; the id breaks ties. */
        int r = strcmp(x->v[C_OPENED] ? x->v[C_OPENED] : "", y->v[C_OPENED] ? y->v[C_OPENED] : "");
        return r ? r : strcmp(x->v[C_SESSION] ? x->v[C_SESSION] : "", y->v[C_SESSION] ? y->v[C_SESSION] : "");
}


static void print_rows(const struct ctl *ctl, struct row *rows, size_t n) {
        if (ctl->json) {
                putchar('[');
                for (size_t i = 0; i < n; i++) {
                        printf("%s{", i ? "," : "");
                        for (int c = 0; c < _C_MAX; c++) {
                                const char *v = rows[i].v[c] ? rows[i].v[c] : "";
                                printf("%s\"%s\":", c ? "," : "", columns[c]);
                                if (c == C_PID)
                                        fputs(v[0] ? v : "0", stdout);
                                else
                                        ctl_json_string(stdout, v);
                        }
                        putchar('}');
                }
                puts("]");
                return;
        }
        if (n == 0) {
                puts("no open sessions");
                return;
        }
        printf("%-20s %-16s %-10s %-20s %-8s %-8s %s\n", "OPENED", "USER", "SERVICE", "FROM", "TTY", "PID", "SESSION");
        for (size_t i = 0; i < n; i++) {
                char *const *v = rows[i].v;
#define COL(c) (v[c] && v[c][0] ? v[c] : "-")
                printf("%-20s %-16s %-10s %-20s %-8s %-8s %s\n", COL(C_OPENED), COL(C_USER), COL(C_SERVICE),
                       COL(C_RHOST), COL(C_TTY), COL(C_PID), COL(C_SESSION));
#undef COL
        }
}

int verb_sessions(const struct ctl *ctl, int argc, char **argv) {
        struct row *rows = NULL;
        size_t n = 0, cap = 0;
        bool more = true;
        int r = EXIT_DONE;

        (void) argv;
        if (argc != 1) {
                fprintf(stderr, "phictl: usage: phictl sessions\n");
                return EXIT_USAGE;
        }
        while (more && r == EXIT_DONE) {
                _cleanup_msg_ phi_msg *req = phi_msg_new(PHI_MSG_SESSIONS), *reply = NULL;
                const char *after = n > 0 ? rows[n - 1].v[C_SESSION] : NULL;
                size_t before = n;
                int e;

                if (!req || (after && phi_msg_put_str(req, PHI_TAG_SESSION, after) < 0)) {
                        r = EXIT_REFUSED;
                        break;
                }
                r = ctl_call(ctl, req, &reply);
                if (r != EXIT_DONE)
                        break;
                if ((e = take_page(reply, &rows, &n, &cap, &more)) < 0) {
                        fprintf(stderr, "phictl: cannot hold the listing: %s\n", strerror(-e));
                        r = EXIT_REFUSED;
                        break;
                }
                /* A page that adds nothing yet says "more" would loop forever. */
                if (more && (n == before || !rows[n - 1].v[C_SESSION])) {
                        fprintf(stderr, "phictl: phiaccessd sent a page of sessions that cannot be continued\n");
                        r = EXIT_REFUSED;
                }
        }
        if (r == EXIT_DONE) {
                /* No session, no array: qsort() must not be handed NULL. */
                if (n > 1)
                        qsort(rows, n, sizeof(*rows), by_opened);
                print_rows(ctl, rows, n);
        }
        rows_free(rows, n);
        return r;
}

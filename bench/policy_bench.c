/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Access decisions of libphi_policy per second, for a generated policy of
 * 1,000 rules naming users of a 10,000-user population, with the library's
 * name index and, as the peer measured in the same run on the same questions,
 * the library's scan of every rule (phi_policy_check_access_linear). Both
 * answers are compared for every question; a difference aborts the run.
 * Times are this thread's CPU time; the decisions include their reasons.
 *
 * policy_bench [--rules N] [--users N] [--groups N] [--seconds S] */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "phi/policy.h"

#define USER_GROUPS 4          /* each user's groups besides "staff" */
#define RULE_USERS 10          /* users named by each rule */
#define RULE_GROUPS 2
#define QUESTIONS 4096

static const char *const services[] = { "sshd", "sudo", "openvpn", "login" };
static const char *const host_names[] = { "db01", "db02", "db17", "app1", "app7", "web3.example.org",
                                          "vpn1", "ws-0042", "billing1", "lab9" };
static const char *const host_patterns[] = { "db0*", "db1?", "app[1-4]", "app*", "web*.example.org",
                                             "vpn?", "ws-*", "billing1", "lab[!0]", "*" };

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;
static unsigned rnd(unsigned n) {
        rnd_state ^= rnd_state << 13;
        rnd_state ^= rnd_state >> 7;
        rnd_state ^= rnd_state << 17;
        return (unsigned) (rnd_state % n);
}

/* CPU time of this thread: on a machine shared with other work, the time the
 * evaluations took rather than the time spent waiting for a CPU. */
static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

struct question {
        char user[16];
        char groups[USER_GROUPS + 1][16];
        const char *group_ptrs[USER_GROUPS + 1];
        struct phi_policy_subject who;
        const char *service, *host;
};

typedef int (*check_fn)(const struct phi_policy *, const struct phi_policy_subject *, const char *, const char *,
                        int64_t, struct phi_policy_decision *);

/* Evaluations per second over at least `seconds`, going round the questions. */
static double run(const struct phi_policy *p, check_fn check, const struct question *q, double seconds,
                  unsigned long *ret_allowed, unsigned long *ret_evals) {
        unsigned long evals = 0, allowed = 0;
        double start = now_s(), elapsed;
        struct phi_policy_decision d;

        do {
                for (unsigned i = 0; i < QUESTIONS; i++) {
                        if (check(p, &q[i].who, q[i].service, q[i].host, 1790000000, &d) < 0)
                                abort();
                        allowed += d.allowed;
                }
                evals += QUESTIONS;
                elapsed = now_s() - start;
        } while (elapsed < seconds);
        *ret_allowed = allowed;
        *ret_evals = evals;
        return (double) evals / elapsed;
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "rules", required_argument, NULL, 'r' }, { "users", required_argument, NULL, 'u' },
                { "groups", required_argument, NULL, 'g' }, { "seconds", required_argument, NULL, 's' },
                { "help", no_argument, NULL, 'h' },       { 0 },
        };
        unsigned n_rules = 1000, n_users = 10000, n_groups = 200, deny_rules = 0, mismatches = 0;
        double seconds = 2.0, t0, parse_s, fast, slow;
        struct phi_policy_errors errors = { 0 };
        struct phi_policy *p = NULL;
        unsigned long allowed_fast, allowed_slow, evals_fast, evals_slow;
        struct question *q;
        size_t cap, len = 0;
        char *text;
        int c;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1)
                switch (c) {
                case 'r': n_rules = (unsigned) strtoul(optarg, NULL, 10); break;
                case 'u': n_users = (unsigned) strtoul(optarg, NULL, 10); break;
                case 'g': n_groups = (unsigned) strtoul(optarg, NULL, 10); break;
                case 's': seconds = strtod(optarg, NULL); break;
                default:
                        fprintf(stderr, "usage: %s [--rules N] [--users N] [--groups N] [--seconds S]\n", argv[0]);
                        return c == 'h' ? 0 : 2;
                }
        if (n_rules < 1 || n_rules > PHI_POLICY_MAX_RULES || n_users < 1 || n_groups < 1 || seconds <= 0) {
                fprintf(stderr, "bad arguments\n");
                return 2;
        }

        /* The policy: one rule for local root, then allow rules and one deny
         * rule in seven, each naming users and groups of the population. */
        cap = (size_t) n_rules * 512 + 4096;
        text = malloc(cap);
        if (!text)
                return 1;
        len += (size_t) snprintf(text + len, cap - len,
                                 "[access:local-root]\naction = allow\nuids = 0\nservices = *\nhosts = *\n");
        for (unsigned i = 1; i < n_rules; i++) {
                bool deny = i % 7 == 0;
                deny_rules += deny;
                len += (size_t) snprintf(text + len, cap - len, "[access:rule%04u]\naction = %s\nusers =", i,
                                         deny ? "deny" : "allow");
                for (unsigned k = 0; k < RULE_USERS; k++)
                        len += (size_t) snprintf(text + len, cap - len, " u%05u", rnd(n_users));
                len += (size_t) snprintf(text + len, cap - len, "\ngroups =");
                for (unsigned k = 0; k < RULE_GROUPS; k++)
                        len += (size_t) snprintf(text + len, cap - len, " g%03u", rnd(n_groups));
                len += (size_t) snprintf(text + len, cap - len, "\nservices = %s %s\nhosts = %s %s\n",
                                         services[rnd(4)], services[rnd(4)], host_patterns[rnd(9)],
                                         host_patterns[rnd(9)]);
        }
        t0 = now_s();
        if (phi_policy_parse(text, len, "bench.conf", &p, &errors) != 0) {
                phi_policy_errors_print(&errors, stderr);
                return 1;
        }
        parse_s = now_s() - t0;

        /* Questions: random users of the population with their groups. */
        q = calloc(QUESTIONS, sizeof(*q));
        if (!q)
                return 1;
        for (unsigned i = 0; i < QUESTIONS; i++) {
                unsigned u = rnd(n_users);
                snprintf(q[i].user, sizeof(q[i].user), "u%05u", u);
                snprintf(q[i].groups[0], sizeof(q[i].groups[0]), "staff");
                for (unsigned k = 1; k <= USER_GROUPS; k++)
                        snprintf(q[i].groups[k], sizeof(q[i].groups[k]), "g%03u", rnd(n_groups));
                for (unsigned k = 0; k <= USER_GROUPS; k++)
                        q[i].group_ptrs[k] = q[i].groups[k];
                q[i].who = (struct phi_policy_subject){ q[i].user, 10000 + u, q[i].group_ptrs, USER_GROUPS + 1 };
                q[i].service = services[rnd(4)];
                q[i].host = host_names[rnd(10)];
        }
        for (unsigned i = 0; i < QUESTIONS; i++) {
                struct phi_policy_decision a, b;
                (void) phi_policy_check_access(p, &q[i].who, q[i].service, q[i].host, 1790000000, &a);
                (void) phi_policy_check_access_linear(p, &q[i].who, q[i].service, q[i].host, 1790000000, &b);
                if (a.allowed != b.allowed || strcmp(a.rule, b.rule) != 0 || strcmp(a.reason, b.reason) != 0)
                        mismatches++;
        }
        if (mismatches) {
                fprintf(stderr, "index and scan disagree on %u of %u questions\n", mismatches, QUESTIONS);
                return 1;
        }

        slow = run(p, phi_policy_check_access_linear, q, seconds, &allowed_slow, &evals_slow);
        fast = run(p, phi_policy_check_access, q, seconds, &allowed_fast, &evals_fast);

        printf("policy: %zu rules (%u deny), %u users, %u groups; %zu bytes of text parsed in %.1f ms\n",
               phi_policy_n_rules(p), deny_rules, n_users, n_groups + 1, len, parse_s * 1e3);
        printf("questions: %u distinct (user with %u groups, service, host), both answers identical; "
               "allowed %.1f%%\n",
               QUESTIONS, USER_GROUPS + 1, 100.0 * (double) allowed_fast / (double) evals_fast);
        printf("%-28s %14s %10s %8s\n", "", "evaluations/s", "ns/eval", "vs scan");
        printf("%-28s %14.0f %10.1f %7.1fx\n", "phi_policy_check_access", fast, 1e9 / fast, fast / slow);
        printf("%-28s %14.0f %10.1f %7.1fx\n", "peer: scan of every rule", slow, 1e9 / slow, 1.0);
        (void) allowed_slow;
        (void) evals_slow;
        phi_policy_unref(p);
        free(q);
        free(text);
        return 0;
}

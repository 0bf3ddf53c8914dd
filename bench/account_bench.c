/* SPDX-License-Identifier: GPL-2.0-or-later */
/* PAM account decisions per second through a real libpam stack, for
 * account_bench.sh: pam_phi (which asks phiaccessd, which decides with its
 * access policy) and, as the floor measured in the same run by the same
 * driver, a bare `account required pam_permit.so` stack.
 *
 *   account_bench gen --dir DIR [--rules N] [--users N] [--groups N] [--per-group K]
 *       Writes DIR/policy.conf: a policy of N rules over users userNNNNN
 *       (1..users) and groups grpNNNNN (1..groups), shaped as policy_bench's
 *       (one deny rule in seven, each rule naming 10 users, 2 groups, two of
 *       the services sshd/sudo/openvpn/login and two host patterns); and
 *       DIR/passwd, DIR/group holding the same users and groups as local
 *       files (uid 10000+i, gid 20000+j, group j's members users
 *       ((j-1)*K + t) mod N + 1 for t < K, as tests/lib/gen-ldif makes them).
 *
 *   account_bench run --service S --users FILE --count N --procs P --label L
 *                     [--pamtester PATH] [--permit] [--rhost H] [--tty T]
 *       N decisions, P at a time, for the users of FILE (one "NAME EXPECTED"
 *       a line, EXPECTED 1 allowed / 0 denied, or "-" for any), round robin.
 *       In-process (default): P forked processes, each looping
 *       pam_start / pam_set_item(RHOST, TTY) / pam_acct_mgmt / pam_end, as a
 *       login program does once per login. --pamtester PATH: one
 *       `PATH -v -I rhost=H -I tty=T S USER acct_mgmt` process per decision,
 *       P at a time (PATH absolute: no search of $PATH in the figure). A result other than PAM_SUCCESS or
 *       PAM_PERM_DENIED, or one that is not the expected answer (with
 *       --permit, for the pam_permit floor: PAM_SUCCESS for everyone), is
 *       counted and shown; the script stops on any.
 *       Prints one line of key=value pairs: label procs n allowed denied
 *       errors wrong per_s wall_s p50_us p90_us p99_us max_us. */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <security/pam_appl.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define RULE_USERS 10
#define RULE_GROUPS 2
#define MAX_PROCS 256
#define NAME_MAX_LEN 32

static const char *const services[] = { "sshd", "sudo", "openvpn", "login" };
static const char *const host_patterns[] = { "db0*", "db1?", "app[1-4]", "app*", "web*.example.org",
                                             "vpn?", "ws-*", "billing1", "lab[!0]", "*" };

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;
static unsigned rnd(unsigned n) {
        rnd_state ^= rnd_state << 13;
        rnd_state ^= rnd_state >> 7;
        rnd_state ^= rnd_state << 17;
        return (unsigned) (rnd_state % n);
}

static _Noreturn void die(const char *what, int error) {
        fprintf(stderr, "account_bench: %s%s%s\n", what, error ? ": " : "", error ? strerror(error) : "");
        exit(1);
}

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

static struct {
        const char *dir, *service, *users, *label, *rhost, *tty, *pamtester;
        unsigned rules, n_users, groups, per_group, count, procs;
        bool permit;
} O = { .rules = 1000, .n_users = 10000, .groups = 200, .per_group = 250, .procs = 1, .rhost = "192.0.2.10",
        .tty = "ssh" };

/* ------------------------------------------------------------------ gen */

static FILE *open_out(const char *name) {
        char path[4096];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", O.dir, name);
        if (!(f = fopen(path, "we")))
                die(path, errno);
        return f;
}

static void close_out(FILE *f, const char *name) {
        if (ferror(f) || fclose(f) != 0)
                die(name, EIO);
}

static void gen(void) {
        FILE *f = open_out("policy.conf");
        unsigned k = O.per_group < O.n_users ? O.per_group : O.n_users;

        fprintf(f, "# account_bench: %u rules over %u users and %u groups\n"
                   "[access:local-root]\naction = allow\nuids = 0\nservices = *\nhosts = *\n",
                O.rules, O.n_users, O.groups);
        for (unsigned i = 1; i < O.rules; i++) {
                fprintf(f, "\n[access:rule%04u]\naction = %s\nusers =", i, i % 7 == 0 ? "deny" : "allow");
                for (unsigned t = 0; t < RULE_USERS; t++)
                        fprintf(f, " user%05u", 1 + rnd(O.n_users));
                fputs("\ngroups =", f);
                for (unsigned t = 0; t < RULE_GROUPS; t++)
                        fprintf(f, " grp%05u", 1 + rnd(O.groups));
                fprintf(f, "\nservices = %s %s\nhosts = %s %s\n", services[rnd(4)], services[rnd(4)],
                        host_patterns[rnd(9)], host_patterns[rnd(9)]);
        }
        close_out(f, "policy.conf");

        f = open_out("passwd");
        fputs("root:x:0:0:root:/root:/bin/bash\n", f);
        for (unsigned i = 1; i <= O.n_users; i++)
                fprintf(f, "user%05u:x:%u:%u:User %05u:/home/user%05u:/bin/bash\n", i, 10000 + i,
                        O.groups ? 20000 + (i - 1) % O.groups + 1 : 20000, i, i);
        close_out(f, "passwd");

        f = open_out("group");
        fputs("root:x:0:\nphi-admins:x:3000:\n", f);
        for (unsigned j = 1; j <= O.groups; j++) {
                fprintf(f, "grp%05u:x:%u:", j, 20000 + j);
                for (unsigned t = 0; t < k; t++)
                        fprintf(f, "%suser%05u", t ? "," : "", ((j - 1) * k + t) % O.n_users + 1);
                fputc('\n', f);
        }
        close_out(f, "group");
}

/* ------------------------------------------------------------------ run */

struct user {
        char name[NAME_MAX_LEN];
        int expected;   /* 1 allowed, 0 denied, -1 either */
};

static struct user *users;
static size_t n_users;

static void users_load(void) {
        char line[128], name[NAME_MAX_LEN], exp[8];
        size_t cap = 0;
        FILE *f = fopen(O.users, "re");

        if (!f)
                die(O.users, errno);
        while (fgets(line, sizeof(line), f)) {
                if (sscanf(line, "%31s %7s", name, exp) != 2)
                        die("a users line is not 'NAME EXPECTED'", 0);
                if (n_users == cap) {
                        cap = cap ? cap * 2 : 256;
                        if (!(users = reallocarray(users, cap, sizeof(*users))))
                                die("users", ENOMEM);
                }
                snprintf(users[n_users].name, sizeof(users[n_users].name), "%s", name);
                users[n_users].expected = strcmp(exp, "1") == 0 ? 1 : strcmp(exp, "0") == 0 ? 0 : -1;
                n_users++;
        }
        fclose(f);
        if (n_users == 0)
                die("no users", 0);
}

/* What the workers report, one slot per decision, in memory shared with the
 * forked ones: the latency and the outcome (1 allowed, 2 denied, 3 error,
 * 4 not the expected answer). */
static uint64_t *lat_ns;
static uint8_t *outcome;

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data) {
        (void) n, (void) msg, (void) resp, (void) data;
        return PAM_CONV_ERR;   /* account management asks nothing */
}

static uint8_t judge(int pam_result, const struct user *u) {
        int allowed;

        if (pam_result == PAM_SUCCESS)
                allowed = 1;
        else if (pam_result == PAM_PERM_DENIED)
                allowed = 0;
        else
                return 3;
        if (O.permit ? !allowed : u->expected >= 0 && u->expected != allowed)
                return 4;
        return allowed ? 1 : 2;
}

static int one_inprocess(const struct user *u) {
        struct pam_conv c = { conv, NULL };
        pam_handle_t *pamh = NULL;
        int r;

        r = pam_start(O.service, u->name, &c, &pamh);
        if (r != PAM_SUCCESS)
                return r;
        if ((r = pam_set_item(pamh, PAM_RHOST, O.rhost)) == PAM_SUCCESS &&
            (r = pam_set_item(pamh, PAM_TTY, O.tty)) == PAM_SUCCESS)
                r = pam_acct_mgmt(pamh, 0);
        pam_end(pamh, r);
        return r;
}

/* pamtester prints "account management done" (stdout) or pam_strerror()
 * (stderr), so PAM_PERM_DENIED can be told from any other failure. */
static int one_pamtester(const struct user *u) {
        char rh[300], tt[300], service[128], name[NAME_MAX_LEN], out[4096];
        char a0[] = "pamtester", a1[] = "-v", a2[] = "-I", a4[] = "-I", a7[] = "acct_mgmt";
        char *argv[] = { a0, a1, a2, rh, a4, tt, service, name, a7, NULL };
        posix_spawn_file_actions_t fa;
        size_t len = 0;
        ssize_t k;
        int p[2], status = 0;
        pid_t pid;

        snprintf(rh, sizeof(rh), "rhost=%s", O.rhost);
        snprintf(tt, sizeof(tt), "tty=%s", O.tty);
        snprintf(service, sizeof(service), "%s", O.service);
        memcpy(name, u->name, sizeof(name));
        if (pipe2(p, O_CLOEXEC) < 0)
                die("pipe", errno);
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, p[1], 1);
        posix_spawn_file_actions_adddup2(&fa, p[1], 2);
        if (posix_spawn(&pid, O.pamtester, &fa, NULL, argv, environ) != 0)
                die("posix_spawn pamtester", errno);
        posix_spawn_file_actions_destroy(&fa);
        close(p[1]);
        while (len < sizeof(out) - 1 && ((k = read(p[0], out + len, sizeof(out) - 1 - len)) > 0 ||
                                         (k < 0 && errno == EINTR)))
                if (k > 0)
                        len += (size_t) k;
        out[len] = '\0';
        close(p[0]);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && strstr(out, "account management done"))
                return PAM_SUCCESS;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 1 && strstr(out, "Permission denied"))
                return PAM_PERM_DENIED;
        return PAM_SYSTEM_ERR;
}

/* Decisions i = w, w + P, w + 2P, ... */
static void work(unsigned w) {
        for (size_t i = w; i < O.count; i += O.procs) {
                const struct user *u = &users[i % n_users];
                uint64_t t0 = now_ns();
                int r = O.pamtester ? one_pamtester(u) : one_inprocess(u);

                lat_ns[i] = now_ns() - t0;
                outcome[i] = judge(r, u);
        }
}

static void *work_thread(void *arg) {
        work((unsigned) (uintptr_t) arg);
        return NULL;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

static void run(void) {
        size_t size = O.count * (sizeof(uint64_t) + 1);
        unsigned long allowed = 0, denied = 0, errors = 0, wrong = 0;
        void *s;
        uint64_t t0, wall;
        uint64_t *sorted;

        users_load();
        s = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (s == MAP_FAILED)
                die("mmap", errno);
        lat_ns = s;
        outcome = (uint8_t *) (lat_ns + O.count);

        if (O.pamtester) {
                /* Threads, each waiting for its own pamtester processes. */
                pthread_t th[MAX_PROCS];
                t0 = now_ns();
                for (unsigned w = 0; w < O.procs; w++)
                        if ((errno = pthread_create(&th[w], NULL, work_thread, (void *) (uintptr_t) w)) != 0)
                                die("pthread_create", errno);
                for (unsigned w = 0; w < O.procs; w++)
                        pthread_join(th[w], NULL);
                wall = now_ns() - t0;
        } else {
                /* Processes, as separate login programs are; they start
                 * together when the go pipe closes. */
                pid_t pids[MAX_PROCS];
                int go[2];
                if (pipe2(go, O_CLOEXEC) < 0)
                        die("pipe", errno);
                for (unsigned w = 0; w < O.procs; w++) {
                        pids[w] = fork();
                        if (pids[w] < 0)
                                die("fork", errno);
                        if (pids[w] == 0) {
                                char c;
                                close(go[1]);
                                while (read(go[0], &c, 1) < 0 && errno == EINTR)
                                        ;
                                work(w);
                                _exit(0);
                        }
                }
                close(go[0]);
                t0 = now_ns();
                close(go[1]);
                for (unsigned w = 0; w < O.procs; w++) {
                        int status = 0;
                        while (waitpid(pids[w], &status, 0) < 0 && errno == EINTR)
                                ;
                        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                                die("a worker process failed", 0);
                }
                wall = now_ns() - t0;
        }

        for (size_t i = 0; i < O.count; i++)
                switch (outcome[i]) {
                case 1: allowed++; break;
                case 2: denied++; break;
                case 4: wrong++; break;
                default: errors++; break;
                }
        if (!(sorted = malloc(O.count * sizeof(uint64_t))))
                die("malloc", ENOMEM);
        memcpy(sorted, lat_ns, O.count * sizeof(uint64_t));
        qsort(sorted, O.count, sizeof(uint64_t), cmp_u64);
#define PCT(p) ((double) sorted[(size_t) ((double) (O.count - 1) * (p))] / 1e3)
        printf("label=%s procs=%u n=%u allowed=%lu denied=%lu errors=%lu wrong=%lu per_s=%.0f wall_s=%.3f "
               "p50_us=%.0f p90_us=%.0f p99_us=%.0f max_us=%.0f\n",
               O.label, O.procs, O.count, allowed, denied, errors, wrong, (double) O.count / ((double) wall / 1e9),
               (double) wall / 1e9, PCT(0.50), PCT(0.90), PCT(0.99), (double) sorted[O.count - 1] / 1e3);
#undef PCT
        free(sorted);
        munmap(s, size);
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "dir", required_argument, NULL, 'd' },      { "rules", required_argument, NULL, 'r' },
                { "users", required_argument, NULL, 'u' },    { "groups", required_argument, NULL, 'g' },
                { "per-group", required_argument, NULL, 'k' }, { "service", required_argument, NULL, 's' },
                { "count", required_argument, NULL, 'n' },    { "procs", required_argument, NULL, 'p' },
                { "label", required_argument, NULL, 'l' },    { "pamtester", required_argument, NULL, 'P' },
                { "rhost", required_argument, NULL, 'R' },    { "tty", required_argument, NULL, 'T' },
                { "permit", no_argument, NULL, 'Y' },         {},
        };
        const char *mode = argc > 1 ? argv[1] : "";
        const char *users_arg = NULL;
        int c;

        optind = 2;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1)
                switch (c) {
                case 'd': O.dir = optarg; break;
                case 'r': O.rules = (unsigned) strtoul(optarg, NULL, 10); break;
                case 'u': users_arg = optarg; break;
                case 'g': O.groups = (unsigned) strtoul(optarg, NULL, 10); break;
                case 'k': O.per_group = (unsigned) strtoul(optarg, NULL, 10); break;
                case 's': O.service = optarg; break;
                case 'n': O.count = (unsigned) strtoul(optarg, NULL, 10); break;
                case 'p': O.procs = (unsigned) strtoul(optarg, NULL, 10); break;
                case 'l': O.label = optarg; break;
                case 'P': O.pamtester = optarg; break;
                case 'R': O.rhost = optarg; break;
                case 'T': O.tty = optarg; break;
                case 'Y': O.permit = true; break;
                default: goto usage;
                }
        if (optind != argc)
                goto usage;
        if (strcmp(mode, "gen") == 0) {
                if (users_arg)
                        O.n_users = (unsigned) strtoul(users_arg, NULL, 10);
                if (!O.dir || O.rules < 1 || O.n_users < 1 || O.n_users > 99999 || O.groups > 99999)
                        goto usage;
                gen();
                return 0;
        }
        if (strcmp(mode, "run") == 0) {
                O.users = users_arg;
                if (!O.service || !O.users || !O.label || O.count < 1 || O.procs < 1 || O.procs > MAX_PROCS)
                        goto usage;
                run();
                return 0;
        }
usage:
        fputs("usage: account_bench gen --dir DIR [--rules N] [--users N] [--groups N] [--per-group K]\n"
              "       account_bench run --service S --users FILE --count N --procs P --label L\n"
              "                         [--pamtester PATH] [--permit] [--rhost H] [--tty T]\n",
              stderr);
        return 2;
}

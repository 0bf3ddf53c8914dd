/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nss_bench: times user and group lookups through glibc (so through whatever
 * /etc/nsswitch.conf names: files, phi, ldap...) and prints one line per
 * operation:
 *
 *   op=getpwnam first_ns=N median_ns=N p90_ns=N p99_ns=N samples=N batch=N
 *
 * first_ns is the first call of that operation in the process; for the first
 * operation run it is the cold lookup (glibc loads the NSS module, the module
 * maps its file). The other figures are per call after a warm-up of a tenth of
 * the time budget: a sample times a batch of calls (sized so that a batch takes
 * >= 20 us, which keeps clock overhead out of fast lookups) and divides. Names
 * are random, so a large file is read cache-cold as in real use.
 *
 *   nss_bench [--users N] [--groups M] [--seconds S] [--direct MODULE.so] [OPS...]
 *
 * Names are those of tests/lib/gen-ldif and phi-mksnapshot --synthetic: users
 * userNNNNN (uid 10000+i), groups grpNNNNN (gid 20000+j), picked at random
 * with a fixed seed so that every peer answers the same questions. OPS default
 * to getpwnam getpwuid getgrnam initgroups (getgrouplist(), what initgroups()
 * and id(1) run). --direct MODULE.so calls MODULE's _nss_phi_* entry points
 * without glibc in between (for the module's own cold cost); then only
 * getpwnam, getpwuid and getgrnam are timed. The op nsswitch_stat, run only
 * when named, times the stat() glibc makes before every lookup.
 */
#include <dlfcn.h>
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <nss.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static unsigned n_users = 10000, n_groups = 2000;
static double seconds = 1.0;
static uint64_t rng = 0x9e3779b97f4a7c15ull;

typedef enum nss_status (*pwnam_fn)(const char *, struct passwd *, char *, size_t, int *);
typedef enum nss_status (*pwuid_fn)(uid_t, struct passwd *, char *, size_t, int *);
typedef enum nss_status (*grnam_fn)(const char *, struct group *, char *, size_t, int *);
static pwnam_fn direct_pwnam;
static pwuid_fn direct_pwuid;
static grnam_fn direct_grnam;

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

static unsigned pick(unsigned n) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return (unsigned) (rng % n) + 1;
}

static char buf[1 << 20];
static unsigned failures;

/* One lookup of a random entry; counts a failure when it is not found. */
static void op_getpwnam(void) {
        char name[32];
        struct passwd pw, *res = NULL;
        int err = 0;

        snprintf(name, sizeof(name), "user%05u", pick(n_users));
        if (direct_pwnam)
                failures += direct_pwnam(name, &pw, buf, sizeof(buf), &err) != NSS_STATUS_SUCCESS;
        else
                failures += getpwnam_r(name, &pw, buf, sizeof(buf), &res) != 0 || !res;
}

static void op_getpwuid(void) {
        struct passwd pw, *res = NULL;
        uid_t uid = 10000 + pick(n_users);
        int err = 0;

        if (direct_pwuid)
                failures += direct_pwuid(uid, &pw, buf, sizeof(buf), &err) != NSS_STATUS_SUCCESS;
        else
                failures += getpwuid_r(uid, &pw, buf, sizeof(buf), &res) != 0 || !res;
}

static void op_getgrnam(void) {
        char name[32];
        struct group gr, *res = NULL;
        int err = 0;

        snprintf(name, sizeof(name), "grp%05u", pick(n_groups));
        if (direct_grnam)
                failures += direct_grnam(name, &gr, buf, sizeof(buf), &err) != NSS_STATUS_SUCCESS;
        else
                failures += getgrnam_r(name, &gr, buf, sizeof(buf), &res) != 0 || !res;
}

static void op_initgroups(void) {
        static gid_t groups[65536];
        char name[32];
        int n = 65536;

        snprintf(name, sizeof(name), "user%05u", pick(n_users));
        failures += getgrouplist(name, 20001, groups, &n) < 0;
}

/* Not a lookup: the stat() of /etc/nsswitch.conf that glibc (>= 2.33) makes
 * before every NSS call to notice a changed configuration. It is the floor
 * under any module's figure through glibc, so the bench prints it beside them. */
static void op_nsswitch_stat(void) {
        struct stat st;

        failures += stat("/etc/nsswitch.conf", &st) < 0;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

static void bench(const char *name, void (*op)(void)) {
        enum { MAX_SAMPLES = 20000 };
        static uint64_t samples[MAX_SAMPLES];
        uint64_t t0, first, start, budget = (uint64_t) (seconds * 1e9), est = 0;
        unsigned batch = 1, n = 0;

        failures = 0;
        t0 = now_ns();
        op();
        first = now_ns() - t0;
        /* Warm up for a tenth of the budget (page faults, caches), then
         * calibrate: a batch should take at least 20 us. */
        t0 = now_ns();
        while (now_ns() - t0 < budget / 10)
                op();
        t0 = now_ns();
        for (int i = 0; i < 20; i++)
                op();
        est = (now_ns() - t0) / 20;
        if (est < 20000)
                batch = (unsigned) (20000 / (est ? est : 1)) + 1;
        start = now_ns();
        while (n < MAX_SAMPLES && (n < 21 || now_ns() - start < budget)) {
                t0 = now_ns();
                for (unsigned i = 0; i < batch; i++)
                        op();
                samples[n++] = (now_ns() - t0) / batch;
        }
        qsort(samples, n, sizeof(samples[0]), cmp_u64);
        printf("op=%s first_ns=%" PRIu64 " median_ns=%" PRIu64 " p90_ns=%" PRIu64 " p99_ns=%" PRIu64
               " samples=%u batch=%u failures=%u\n",
               name, first, samples[n / 2], samples[n * 9 / 10], samples[n * 99 / 100], n, batch,
               failures);
        fflush(stdout);
}

int main(int argc, char **argv) {
        static const struct {
                const char *name;
                void (*fn)(void);
        } ops[] = {
                { "getpwnam", op_getpwnam },
                { "getpwuid", op_getpwuid },
                { "getgrnam", op_getgrnam },
                { "initgroups", op_initgroups },
                { "nsswitch_stat", op_nsswitch_stat },
        };
        const char *want[8];
        int n_want = 0;

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--users") == 0 && i + 1 < argc)
                        n_users = (unsigned) strtoul(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "--groups") == 0 && i + 1 < argc)
                        n_groups = (unsigned) strtoul(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
                        seconds = strtod(argv[++i], NULL);
                else if (strcmp(argv[i], "--direct") == 0 && i + 1 < argc) {
                        void *h = dlopen(argv[++i], RTLD_NOW | RTLD_LOCAL);
                        if (!h) {
                                fprintf(stderr, "nss_bench: %s\n", dlerror());
                                return 1;
                        }
                        *(void **) &direct_pwnam = dlsym(h, "_nss_phi_getpwnam_r");
                        *(void **) &direct_pwuid = dlsym(h, "_nss_phi_getpwuid_r");
                        *(void **) &direct_grnam = dlsym(h, "_nss_phi_getgrnam_r");
                        if (!direct_pwnam || !direct_pwuid || !direct_grnam)
                                return 1;
                } else if (argv[i][0] != '-' && n_want < 8)
                        want[n_want++] = argv[i];
                else {
                        fprintf(stderr, "usage: nss_bench [--users N] [--groups M] [--seconds S] "
                                        "[--direct MODULE.so] [OPS...]\n");
                        return 2;
                }
        }
        if (n_users == 0 || n_groups == 0)
                return 2;
        for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
                bool run = n_want == 0 && ops[k].fn != op_nsswitch_stat;
                for (int i = 0; i < n_want; i++)
                        run = run || strcmp(want[i], ops[k].name) == 0;
                if (direct_pwnam && ops[k].fn == op_initgroups)
                        run = false;
                if (run)
                        bench(ops[k].name, ops[k].fn);
        }
        return 0;
}

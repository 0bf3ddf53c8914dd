/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * phi-nss-hammer: test-only program. THREADS threads loop on lookups through
 * glibc (getpwnam_r, getpwuid_r, getgrnam_r, getgrouplist) while something else
 * replaces the snapshot, and check every answer:
 *   - STABLE (a user present in every snapshot) must always be found, with its uid;
 *   - once a thread has seen MARKER, it must never miss it again (no stale
 *     answer after the swap).
 * It stops when every thread has seen MARKER and has done a further 1,000 rounds,
 * or after TIMEOUT seconds (then it fails).
 *
 *   phi-nss-hammer THREADS STABLE STABLE_UID GROUP MARKER TIMEOUT
 *
 * Prints "rounds=N errors=N" and exits 0 only with no error.
 */
#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *stable, *group, *marker;
static uid_t stable_uid;
static atomic_uint done_threads, errors;
static atomic_ulong rounds;
static atomic_bool stop;

static void error(const char *what, const char *name, int r) {
        if (atomic_fetch_add(&errors, 1) < 20)
                fprintf(stderr, "phi-nss-hammer: %s %s: %s\n", what, name, r ? strerror(r) : "not found");
}

static void *loop(void *arg) {
        char buf[16384];
        bool seen = false;
        unsigned after = 0;

        (void) arg;
        while (!atomic_load(&stop)) {
                struct passwd pw, *pwp = NULL;
                struct group gr, *grp = NULL;
                gid_t groups[64];
                int n = 64, r;

                r = getpwnam_r(stable, &pw, buf, sizeof(buf), &pwp);
                if (r != 0 || !pwp || pw.pw_uid != stable_uid)
                        error("getpwnam", stable, r);
                r = getpwuid_r(stable_uid, &pw, buf, sizeof(buf), &pwp);
                if (r != 0 || !pwp || strcmp(pw.pw_name, stable) != 0)
                        error("getpwuid", stable, r);
                r = getgrnam_r(group, &gr, buf, sizeof(buf), &grp);
                if (r != 0 || !grp)
                        error("getgrnam", group, r);
                if (getgrouplist(stable, 0, groups, &n) < 0 || n < 2)
                        error("getgrouplist", stable, 0);
                r = getpwnam_r(marker, &pw, buf, sizeof(buf), &pwp);
                if (r == 0 && pwp) {
                        if (!seen)
                                seen = true;
                } else if (seen) {
                        error("stale answer after the swap: getpwnam", marker, r);
                }
                if (seen && ++after == 1000)
                        atomic_fetch_add(&done_threads, 1);
                atomic_fetch_add(&rounds, 1);
        }
        return NULL;
}

int main(int argc, char **argv) {
        pthread_t t[64];
        int threads, timeout;
        time_t deadline;

        if (argc != 7 || (threads = atoi(argv[1])) < 1 || threads > 64 || (timeout = atoi(argv[6])) < 1) {
                fprintf(stderr, "usage: phi-nss-hammer THREADS STABLE STABLE_UID GROUP MARKER TIMEOUT\n");
                return 2;
        }
        stable = argv[2];
        stable_uid = (uid_t) strtoul(argv[3], NULL, 10);
        group = argv[4];
        marker = argv[5];
        deadline = time(NULL) + timeout;
        for (int i = 0; i < threads; i++)
                if (pthread_create(&t[i], NULL, loop, NULL) != 0)
                        return 1;
        /* Ready: the caller may start replacing snapshots. */
        printf("ready\n");
        fflush(stdout);
        while (atomic_load(&done_threads) < (unsigned) threads && time(NULL) < deadline)
                usleep(10000);
        atomic_store(&stop, true);
        for (int i = 0; i < threads; i++)
                pthread_join(t[i], NULL);
        printf("rounds=%lu errors=%u marker_seen_by=%u/%d\n", atomic_load(&rounds), atomic_load(&errors),
               atomic_load(&done_threads), threads);
        return atomic_load(&errors) == 0 && atomic_load(&done_threads) == (unsigned) threads ? 0 : 1;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * grants_bench: approval -> membership visible through NSS, at directory scale.
 *
 * A directory of --users users (default 100,000; 10 per group) is written as
 * the identity snapshot, and a grants file with --grants grants beside it. A
 * reader process dlopen()s libnss_phi.so.2 with PHI_NSS_SNAPSHOT pointing
 * there and calls _nss_phi_getgrnam_r("phi-bench") every 50 us (POLL_NS), as a
 * process resolving the role's group would, without taking a whole CPU. Each run, the writer (this process) adds
 * one grant (user bNNNNNN to phi-bench) to the list it holds and publishes the
 * whole grants file with phi_grants_write(), what phiaccessd does at approval:
 * encode, temp file, fsync, rename, fsync of the directory, superseded mark.
 * The figure is the time from the start of the publication to the reader's
 * first lookup that lists the new grantee (both on CLOCK_MONOTONIC), over
 * --runs runs; the identity snapshot is never rewritten.
 *
 * Also printed: publish (the writer's call alone), publish->seen (from its
 * return to the reader's lookup that saw the grant: the polling interval and
 * the reader's wake-up), switching lookup (that lookup's own duration: the
 * module mapping and verifying the new grants file), and identity rewrite
 * (IDENTITY_RUNS publications of the whole identity snapshot: what each grant
 * would cost without the grants file), and verify full file (what a reader's
 * switch costs at the format's bound, PHI_GRANTS_MAX grants, in memory).
 *
 * Floors, measured in the same run, alternating with the runs above on files of
 * the grants file's size in the same directory:
 *   floor_fdatasync   write + fdatasync + rename (no directory sync)
 *   floor_protocol    write + fsync + rename + fsync of the directory: the
 *                     durability the publication needs, without phi's encode
 *                     and without any reader
 *
 *   grants_bench --module libnss_phi.so.2 [--dir DIR] [--users N] [--grants G] [--runs R]
 *
 * DIR (default /var/tmp) should be on the disk the daemon's state lives on:
 * on tmpfs every fsync is free and the figures say nothing about a host.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <nss.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "phi/fs.h"
#include "phi/grants.h"
#include "phi/snapshot.h"

#define POLL_NS 50000L
#define IDENTITY_RUNS 5

typedef enum nss_status (*grnam_fn)(const char *, struct group *, char *, size_t, int *);

struct shared {
        atomic_uint_fast64_t want;      /* run whose grantee the reader looks for */
        atomic_uint_fast64_t seen;      /* last run the reader saw */
        atomic_uint_fast64_t seen_ns;   /* when it saw it */
        atomic_uint_fast64_t seen_cost; /* how long that lookup took (the switch) */
        atomic_uint_fast64_t lookups;
        atomic_bool stop, ready;
};

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return (x > y) - (x < y);
}

static void print_stats(const char *what, uint64_t *v, size_t n) {
        qsort(v, n, sizeof(*v), cmp_u64);
        printf("%-18s p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f runs=%zu\n", what,
               (double) v[n / 2] / 1000, (double) v[n * 9 / 10] / 1000,
               (double) v[n * 99 / 100 < n ? n * 99 / 100 : n - 1] / 1000, (double) v[n - 1] / 1000, n);
}

static void die(const char *what, int r) {
        fprintf(stderr, "grants_bench: %s: %s\n", what, strerror(r < 0 ? -r : r));
        exit(1);
}

/* The reader: looks the role's group up until the writer's latest grantee is
 * listed, notes when, and goes on looking for the next. */
static void reader(const char *module, struct shared *sh) {
        static char buf[1 << 20];
        char want_name[32] = "";
        uint64_t want_run = 0;
        grnam_fn grnam;
        void *h = dlopen(module, RTLD_NOW | RTLD_LOCAL);

        if (!h || !(*(void **) &grnam = dlsym(h, "_nss_phi_getgrnam_r"))) {
                fprintf(stderr, "grants_bench: %s\n", dlerror());
                _exit(1);
        }
        /* Both files mapped before the first run, as in a running process. */
        {
                struct group gr;
                int err = 0;
                (void) grnam("phi-bench", &gr, buf, sizeof(buf), &err);
        }
        atomic_store(&sh->ready, true);
        while (!atomic_load(&sh->stop)) {
                uint64_t w = atomic_load(&sh->want);
                struct group gr;
                int err = 0;
                uint64_t t;

                if (w != want_run) {
                        want_run = w;
                        snprintf(want_name, sizeof(want_name), "b%06" PRIu64, w);
                }
                if (want_run == atomic_load(&sh->seen))
                        goto next;   /* nothing new to look for */
                atomic_fetch_add(&sh->lookups, 1);
                t = now_ns();
                if (grnam("phi-bench", &gr, buf, sizeof(buf), &err) != NSS_STATUS_SUCCESS)
                        goto next;
                for (char **m = gr.gr_mem; *m; m++)
                        if (strcmp(*m, want_name) == 0) {
                                uint64_t seen = now_ns();
                                atomic_store(&sh->seen_cost, seen - t);
                                atomic_store(&sh->seen_ns, seen);
                                atomic_store(&sh->seen, want_run);
                                break;
                        }
next:
                /* A lookup every POLL_NS, not a spinning core: on a small
                 * machine a spinning reader would slow the writer it waits
                 * for. The figure's resolution is this interval. */
                {
                        struct timespec ts = { 0, POLL_NS };
                        (void) nanosleep(&ts, NULL);
                }
        }
        _exit(0);
}

static void write_all(int fd, const uint8_t *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        die("write", errno);
                }
                p += k;
                n -= (size_t) k;
        }
}

/* A same-size file written, synced and renamed into place: the floor. */
static uint64_t floor_run(const char *dir, const uint8_t *data, size_t size, bool protocol) {
        char tmp[PATH_MAX], dst[PATH_MAX];
        uint64_t t0;
        int fd;

        snprintf(tmp, sizeof(tmp), "%s/floor.tmp", dir);
        snprintf(dst, sizeof(dst), "%s/floor.file", dir);
        t0 = now_ns();
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                die("open floor file", errno);
        write_all(fd, data, size);
        if ((protocol ? fsync(fd) : fdatasync(fd)) < 0)
                die("sync floor file", errno);
        close(fd);
        if (rename(tmp, dst) < 0)
                die("rename floor file", errno);
        if (protocol && phi_fs_fsync_dir(dir) < 0)
                die("fsync dir", errno);
        return now_ns() - t0;
}

int main(int argc, char **argv) {
        const char *module = NULL, *base = "/var/tmp";
        unsigned users = 100000, base_grants = 100, runs = 300;
        char dir[PATH_MAX], snap[PATH_MAX + 32], grants[PATH_MAX + 32];
        struct phi_grant_entry *e;
        char (*user_names)[16];
        uint64_t *visible, *publish, *notice, *cost, *floor_a, *floor_b, now = (uint64_t) time(NULL);
        uint64_t rewrite[IDENTITY_RUNS], full[IDENTITY_RUNS];
        struct shared *sh;
        struct statfs sfs;
        struct stat sb;
        pid_t pid;
        int r, status = 0;

        for (int i = 1; i + 1 < argc; i += 2) {
                if (strcmp(argv[i], "--module") == 0)
                        module = argv[i + 1];
                else if (strcmp(argv[i], "--dir") == 0)
                        base = argv[i + 1];
                else if (strcmp(argv[i], "--users") == 0)
                        users = (unsigned) strtoul(argv[i + 1], NULL, 10);
                else if (strcmp(argv[i], "--grants") == 0)
                        base_grants = (unsigned) strtoul(argv[i + 1], NULL, 10);
                else if (strcmp(argv[i], "--runs") == 0)
                        runs = (unsigned) strtoul(argv[i + 1], NULL, 10);
                else
                        break;
        }
        if (!module || runs < 10 || base_grants + runs + 10 > PHI_GRANTS_MAX) {
                fprintf(stderr, "usage: grants_bench --module libnss_phi.so.2 [--dir DIR] [--users N] "
                                "[--grants G] [--runs R>=10]\n");
                return 2;
        }
        snprintf(dir, sizeof(dir), "%s/phi-grants-bench.XXXXXX", base);
        if (!mkdtemp(dir))
                die("mkdtemp", errno);
        snprintf(snap, sizeof(snap), "%s/nss.snapshot", dir);
        snprintf(grants, sizeof(grants), "%s/%s", dir, PHI_GRANTS_FILE_NAME);

        /* The directory: users userNNNNNN, 10 per group. Kept, to time what a
         * grant would cost if it rewrote the identity snapshot. */
        _cleanup_snapshot_builder_ phi_snapshot_builder *b = NULL;
        {
                char name[32], home[48];
                if ((r = phi_snapshot_builder_new(&b)) < 0)
                        die("builder", r);
                for (unsigned i = 1; i <= users; i++) {
                        snprintf(name, sizeof(name), "user%06u", i);
                        snprintf(home, sizeof(home), "/home/%s", name);
                        if ((r = phi_snapshot_add_user(b, name, 100000 + i, 20000 + (i - 1) / 10 + 1, "",
                                                       home, "/bin/bash")) < 0)
                                die("add user", r);
                }
                for (unsigned j = 1; j <= (users + 9) / 10; j++) {
                        snprintf(name, sizeof(name), "grp%06u", j);
                        if ((r = phi_snapshot_add_group(b, name, 20000 + j)) < 0)
                                die("add group", r);
                        for (unsigned t = 0; t < 10 && (j - 1) * 10 + t < users; t++) {
                                snprintf(home, sizeof(home), "user%06u", (j - 1) * 10 + t + 1);
                                if ((r = phi_snapshot_add_member(b, name, home, 0)) < 0)
                                        die("add member", r);
                        }
                }
                if ((r = phi_snapshot_write(b, snap, 1)) < 0)
                        die("write identity snapshot", r);
        }

        /* The grants in force before the runs: base_grants users of the
         * directory in other roles. */
        e = calloc(base_grants + runs + 10, sizeof(*e));
        user_names = calloc(base_grants + runs + 10, sizeof(*user_names));
        visible = calloc(runs, sizeof(uint64_t));
        publish = calloc(runs, sizeof(uint64_t));
        notice = calloc(runs, sizeof(uint64_t));
        cost = calloc(runs, sizeof(uint64_t));
        floor_a = calloc(runs, sizeof(uint64_t));
        floor_b = calloc(runs, sizeof(uint64_t));
        if (!e || !user_names || !visible || !publish || !notice || !cost || !floor_a || !floor_b)
                die("calloc", ENOMEM);
        for (unsigned i = 0; i < base_grants; i++) {
                snprintf(user_names[i], sizeof(user_names[i]), "user%06u", i % users + 1);
                e[i] = (struct phi_grant_entry) { i % 2 ? "phi-dba" : "phi-ops", i % 2 ? 30000 : 30001,
                                                  user_names[i], now + 3600, i + 1 };
        }
        /* phi-bench holds one grant from the start, so that the group exists. */
        snprintf(user_names[base_grants], sizeof(user_names[0]), "b%06u", 0);
        e[base_grants] = (struct phi_grant_entry) { "phi-bench", 30002, user_names[base_grants],
                                                    now + 3600, base_grants + 1 };
        if ((r = phi_grants_write(grants, e, base_grants + 1, 1000, 1)) < 0)
                die("write grants", r);

        sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (sh == MAP_FAILED)
                die("mmap", errno);
        memset(sh, 0, sizeof(*sh));
        if (setenv("PHI_NSS_SNAPSHOT", snap, 1) < 0)
                die("setenv", errno);
        pid = fork();
        if (pid < 0)
                die("fork", errno);
        if (pid == 0)
                reader(module, sh);
        while (!atomic_load(&sh->ready))
                sched_yield();

        for (unsigned k = 1; k <= runs; k++) {
                size_t n = base_grants + 1 + k, size;
                uint64_t t0, t1, deadline;
                _cleanup_free_ uint8_t *copy = NULL;

                /* Approval of run k: one more grant than the file held. */
                snprintf(user_names[n - 1], sizeof(user_names[0]), "b%06u", k);
                e[n - 1] = (struct phi_grant_entry) { "phi-bench", 30002, user_names[n - 1], now + 3600,
                                                      1000000 + k };
                atomic_store(&sh->want, k);
                t0 = now_ns();
                if ((r = phi_grants_write(grants, e, n, 1000, 1 + k)) < 0)
                        die("publish", r);
                t1 = now_ns();
                deadline = t1 + 10000000000ull;
                while (atomic_load(&sh->seen) != k) {
                        if (now_ns() > deadline) {
                                fprintf(stderr, "grants_bench: run %u: grant not visible after 10 s\n", k);
                                return 1;
                        }
                        sched_yield();
                }
                visible[k - 1] = atomic_load(&sh->seen_ns) - t0;
                notice[k - 1] = atomic_load(&sh->seen_ns) > t1 ? atomic_load(&sh->seen_ns) - t1 : 0;
                cost[k - 1] = atomic_load(&sh->seen_cost);
                publish[k - 1] = t1 - t0;

                /* The floors on a file of the same size, between runs. */
                if (stat(grants, &sb) < 0)
                        die("stat", errno);
                size = (size_t) sb.st_size;
                copy = calloc(1, size);
                if (!copy)
                        die("calloc", ENOMEM);
                floor_a[k - 1] = floor_run(dir, copy, size, false);
                floor_b[k - 1] = floor_run(dir, copy, size, true);
        }
        atomic_store(&sh->stop, true);
        (void) waitpid(pid, &status, 0);

        /* The worst case of the switch: a reader verifying a grants file of
         * PHI_GRANTS_MAX grants when it maps it. */
        {
                struct phi_grant_entry *m = calloc(PHI_GRANTS_MAX, sizeof(*m));
                char (*mn)[16] = calloc(PHI_GRANTS_MAX, sizeof(*mn));
                _cleanup_free_ uint8_t *data = NULL;
                size_t size = 0;
                if (!m || !mn)
                        die("calloc", ENOMEM);
                for (uint32_t i = 0; i < PHI_GRANTS_MAX; i++) {
                        snprintf(mn[i], sizeof(mn[i]), "user%06u", i);
                        m[i] = (struct phi_grant_entry) { i % 2 ? "phi-dba" : "phi-ops", i % 2 ? 30000 : 30001,
                                                          mn[i], now + 3600, i };
                }
                if ((r = phi_grants_encode(m, PHI_GRANTS_MAX, 1000, 1, now, &data, &size)) < 0)
                        die("encode full file", r);
                for (unsigned k = 0; k < IDENTITY_RUNS; k++) {
                        phi_grants g;
                        uint64_t t0 = now_ns();
                        if ((r = phi_grants_open_buffer(&g, data, size)) < 0)
                                die("verify full file", r);
                        full[k] = now_ns() - t0;
                }
                free(m);
                free(mn);
        }

        /* The peer the grants file avoids: one identity snapshot rewrite per
         * grant (encode and publish 100,000 users), a few times. */
        for (unsigned k = 0; k < IDENTITY_RUNS; k++) {
                uint64_t t0 = now_ns();
                if ((r = phi_snapshot_write(b, snap, 2 + k)) < 0)
                        die("rewrite identity snapshot", r);
                rewrite[k] = now_ns() - t0;
        }

        if (stat(snap, &sb) < 0)
                die("stat", errno);
        printf("identity snapshot: %u users, %lld bytes (never rewritten); ", users, (long long) sb.st_size);
        if (stat(grants, &sb) < 0)
                die("stat", errno);
        printf("grants file: %u grants at the end, %lld bytes; dir %s (fs magic 0x%lx)\n", base_grants + 1 + runs,
               (long long) sb.st_size, base, statfs(dir, &sfs) == 0 ? (unsigned long) sfs.f_type : 0ul);
        print_stats("approval->visible", visible, runs);
        print_stats("publish (write)", publish, runs);
        print_stats("publish->seen", notice, runs);
        print_stats("switching lookup", cost, runs);
        print_stats("identity rewrite", rewrite, IDENTITY_RUNS);
        print_stats("verify full file", full, IDENTITY_RUNS);
        print_stats("floor_fdatasync", floor_a, runs);
        print_stats("floor_protocol", floor_b, runs);
        printf("reader lookups: %" PRIu64 "\n", (uint64_t) atomic_load(&sh->lookups));
        printf("target approval->visible p50 <= 50 ms at %u users: %s\n", users,
               visible[runs / 2] <= 50000000ull ? "met" : "missed");

        {
                char cmd[PATH_MAX + 16];
                snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
                if (system(cmd) != 0)
                        fprintf(stderr, "grants_bench: could not remove %s\n", dir);
        }
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

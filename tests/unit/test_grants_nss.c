/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Grants through libnss_phi.so.2's entry points, loaded with dlopen() as glibc
 * loads it, with an identity snapshot and the grants snapshot beside it:
 * members merged into a directory group (once each), a group only the grants
 * file knows, initgroups, what is never served (a gid below either file's
 * floor, a grants group whose name or gid the directory gives to another
 * group), expiry with nobody rewriting the file, and a missing or corrupt
 * grants file, which serves no grant while the identity snapshot still
 * answers; and the grants file replaced while four threads look up. The
 * module keeps process-wide state, so the tests run in order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <grp.h>
#include <limits.h>
#include <nss.h>
#include <pthread.h>
#include <stdatomic.h>
#include <pwd.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "phi/grants.h"
#include "phi/snapshot.h"

#ifndef NSS_PHI_SO
#error "NSS_PHI_SO must name the built module"
#endif

typedef enum nss_status (*getpwnam_fn)(const char *, struct passwd *, char *, size_t, int *);
typedef enum nss_status (*getgrnam_fn)(const char *, struct group *, char *, size_t, int *);
typedef enum nss_status (*getgrgid_fn)(gid_t, struct group *, char *, size_t, int *);
typedef enum nss_status (*setent_fn)(int);
typedef enum nss_status (*endent_fn)(void);
typedef enum nss_status (*getgrent_fn)(struct group *, char *, size_t, int *);
typedef enum nss_status (*initgroups_fn)(const char *, gid_t, long int *, long int *, gid_t **,
                                         long int, int *);

static struct {
        getpwnam_fn getpwnam;
        getgrnam_fn getgrnam;
        getgrgid_fn getgrgid;
        setent_fn setgrent;
        endent_fn endgrent;
        getgrent_fn getgrent;
        initgroups_fn initgroups;
} nss;

static char dir[PATH_MAX], snap_path[PATH_MAX + 32], grants_path[PATH_MAX + 32];

static void sleep_ms(long ms) {
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* Polls cond for up to 10 s: the exact moment a file is picked up is not what
 * these tests assert. */
#define WAIT_FOR(cond)                                                   \
        do {                                                             \
                int _n = 0;                                              \
                while (!(cond) && _n++ < 200)                            \
                        sleep_ms(50);                                    \
                assert_true(cond);                                       \
        } while (0)

/* Directory users alice, bob, carol; groups staff (5000: alice, bob) and dba
 * (5001: alice). dave is nobody in the directory (a local account). */
static void publish_identity(void) {
        _cleanup_snapshot_builder_ phi_snapshot_builder *b = NULL;

        assert_int_equal(phi_snapshot_builder_new(&b), 0);
        assert_int_equal(phi_snapshot_builder_set_min_ids(b, 1000, 1000), 0);
        assert_int_equal(phi_snapshot_add_user(b, "alice", 1001, 5000, "", "/home/alice", "/bin/sh"), 0);
        assert_int_equal(phi_snapshot_add_user(b, "bob", 1002, 5000, "", "/home/bob", "/bin/sh"), 0);
        assert_int_equal(phi_snapshot_add_user(b, "carol", 1003, 5000, "", "/home/carol", "/bin/sh"), 0);
        assert_int_equal(phi_snapshot_add_group(b, "staff", 5000), 0);
        assert_int_equal(phi_snapshot_add_group(b, "dba", 5001), 0);
        assert_int_equal(phi_snapshot_add_member(b, "staff", "alice", 0), 0);
        assert_int_equal(phi_snapshot_add_member(b, "staff", "bob", 0), 0);
        assert_int_equal(phi_snapshot_add_member(b, "dba", "alice", 0), 0);
        assert_int_equal(phi_snapshot_write(b, snap_path, 1), 0);
}

/* The usual set: generation is a marker, visible as the request id of the
 * marker grant (group phi-mark, gid 7000 + generation). */
static void publish_grants(uint64_t generation, uint64_t carol_expires, gid_t min_gid) {
        uint64_t now = (uint64_t) time(NULL);
        const struct phi_grant_entry e[] = {
                { "dba", 5001, "bob", now + 600, 1 },          /* merged into dba */
                { "dba", 5001, "alice", now + 600, 2 },        /* already a member */
                { "phi-ops", 6000, "carol", carol_expires, 3 },  /* a local group */
                { "phi-ops", 6000, "carol", now + 900, 30 },   /* a second grant, listed once */
                { "phi-ops", 6000, "alice", now - 5, 4 },      /* over */
                { "phi-ops", 6000, "dave", now + 600, 5 },     /* a local user */
                { "conflict", 5000, "bob", now + 600, 6 },     /* staff's gid */
                { "staff", 6500, "carol", now + 600, 7 },      /* staff's name */
                { "low", 900, "bob", now + 600, 8 },           /* below the directory's floor */
                { "phi-mark", (gid_t) (7000 + generation), "marker", now + 600, generation },
        };
        const struct phi_grant_entry *use;
        size_t n = PHI_ELEMENTSOF(e);
        struct phi_grant_entry copy[PHI_ELEMENTSOF(e)];

        /* carol_expires 0: carol's first grant is left out (the second still
         * holds phi-ops for her); "low" only where the grants file's own floor
         * lets the writer put it. */
        {
                size_t k = 0;
                for (size_t i = 0; i < n; i++)
                        if (!(carol_expires == 0 && strcmp(e[i].user, "carol") == 0 && e[i].request_id == 3) &&
                            e[i].gid >= min_gid)
                                copy[k++] = e[i];
                use = copy;
                n = k;
        }
        assert_int_equal(phi_grants_write(grants_path, use, n, min_gid, generation), 0);
}

/* The generation the module currently serves, read from the marker group. */
static uint64_t marker(void) {
        struct group gr;
        char buf[1024];
        int err = 0;

        for (uint64_t g = 1; g < 100; g++)
                if (nss.getgrgid((gid_t) (7000 + g), &gr, buf, sizeof(buf), &err) == NSS_STATUS_SUCCESS)
                        return g;
        return 0;
}

/* The members of group name, "a,b,c", or "-" when not found. */
static const char *members(const char *name) {
        static char out[1024];
        struct group gr;
        char buf[2048];
        int err = 0;

        if (nss.getgrnam(name, &gr, buf, sizeof(buf), &err) != NSS_STATUS_SUCCESS)
                return "-";
        out[0] = '\0';
        for (char **m = gr.gr_mem; *m; m++) {
                if (out[0])
                        strcat(out, ",");
                strcat(out, *m);
        }
        return out;
}

/* initgroups_dyn's gids for user beyond primary, "g1,g2" ("" if none). */
static const char *groups_of(const char *user, gid_t primary) {
        static char out[256];
        long start = 1, size = 1;
        gid_t *groups = malloc(sizeof(gid_t));
        int err = 0;

        assert_non_null(groups);
        groups[0] = primary;
        (void) nss.initgroups(user, primary, &start, &size, &groups, 0, &err);
        out[0] = '\0';
        for (long i = 1; i < start; i++)
                snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%u", i > 1 ? "," : "",
                         (unsigned) groups[i]);
        free(groups);
        return out;
}

static void replace_grants_with(const void *content, size_t len) {
        char tmp[PATH_MAX + 48];
        FILE *f;

        snprintf(tmp, sizeof(tmp), "%s.tmp", grants_path);
        f = fopen(tmp, "we");
        assert_non_null(f);
        assert_int_equal(fwrite(content, 1, len, f), len);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(rename(tmp, grants_path), 0);
}

static int setup(void **state) {
        void *h;

        (void) state;
        snprintf(dir, sizeof(dir), "/tmp/phi-grants-nss-XXXXXX");
        if (!mkdtemp(dir))
                return -1;
        snprintf(snap_path, sizeof(snap_path), "%s/nss.snapshot", dir);
        snprintf(grants_path, sizeof(grants_path), "%s/grants.snapshot", dir);
        if (setenv("PHI_NSS_SNAPSHOT", snap_path, 1) < 0)
                return -1;
        h = dlopen(NSS_PHI_SO, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
                fprintf(stderr, "dlopen: %s\n", dlerror());
                return -1;
        }
#define SYM(field, name) *(void **) &nss.field = dlsym(h, name)
        SYM(getpwnam, "_nss_phi_getpwnam_r");
        SYM(getgrnam, "_nss_phi_getgrnam_r");
        SYM(getgrgid, "_nss_phi_getgrgid_r");
        SYM(setgrent, "_nss_phi_setgrent");
        SYM(endgrent, "_nss_phi_endgrent");
        SYM(getgrent, "_nss_phi_getgrent_r");
        SYM(initgroups, "_nss_phi_initgroups_dyn");
#undef SYM
        return nss.getpwnam && nss.getgrnam && nss.getgrgid && nss.setgrent && nss.endgrent &&
                               nss.getgrent && nss.initgroups
                       ? 0
                       : -1;
}

static int teardown(void **state) {
        char cmd[PATH_MAX + 16];

        (void) state;
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        return system(cmd) == 0 ? 0 : -1;
}

/* Runs first: an identity snapshot and no grants file is the state before the
 * first grant; it is not an error. Then the file appears and is picked up. */
static void test_no_grants_file(void **state) {
        (void) state;
        publish_identity();
        assert_string_equal(members("dba"), "alice");
        assert_string_equal(members("staff"), "alice,bob");
        assert_string_equal(members("phi-ops"), "-");
        assert_string_equal(groups_of("alice", 5000), "5001");
        assert_string_equal(groups_of("carol", 5000), "");

        publish_grants(1, (uint64_t) time(NULL) + 600, 1000);
        WAIT_FOR(marker() == 1);
}

static void test_merged_and_alone(void **state) {
        struct group gr;
        char buf[1024];
        int err = 0;

        (void) state;
        /* A directory group lists its grantees after its members, each once. */
        assert_string_equal(members("dba"), "alice,bob");
        assert_int_equal(nss.getgrgid(5001, &gr, buf, sizeof(buf), &err), NSS_STATUS_SUCCESS);
        assert_string_equal(gr.gr_name, "dba");
        assert_string_equal(gr.gr_mem[1], "bob");
        assert_null(gr.gr_mem[2]);
        /* A group only the grants file has: its gid, its grantees in force
         * (carol once for two grants, dave a local user, alice's is over). */
        assert_string_equal(members("phi-ops"), "carol,dave");
        assert_int_equal(nss.getgrgid(6000, &gr, buf, sizeof(buf), &err), NSS_STATUS_SUCCESS);
        assert_string_equal(gr.gr_name, "phi-ops");
        assert_string_equal(gr.gr_passwd, "*");
        assert_int_equal(gr.gr_gid, 6000);
        /* Never served: a grants group whose gid or name the directory gives to
         * another group, and one below the identity snapshot's min_gid (the
         * grants file's own floor is 1000; see test_floor for a lower one). */
        assert_string_equal(members("conflict"), "-");
        assert_string_equal(members("staff"), "alice,bob");
        assert_int_equal(nss.getgrgid(6500, &gr, buf, sizeof(buf), &err), NSS_STATUS_NOTFOUND);
        assert_int_equal(nss.getgrgid(5000, &gr, buf, sizeof(buf), &err), NSS_STATUS_SUCCESS);
        assert_string_equal(gr.gr_name, "staff");
        assert_null(gr.gr_mem[2]);
        assert_int_equal(nss.getgrnam("root", &gr, buf, sizeof(buf), &err), NSS_STATUS_NOTFOUND);
        assert_int_equal(nss.getgrgid(0, &gr, buf, sizeof(buf), &err), NSS_STATUS_NOTFOUND);
        /* Too small a buffer: try again with ERANGE, as for any group. */
        err = 0;
        assert_int_equal(nss.getgrnam("phi-ops", &gr, buf, 16, &err), NSS_STATUS_TRYAGAIN);
        assert_int_equal(err, ERANGE);
}

static void test_initgroups(void **state) {
        (void) state;
        /* bob: dba from his grant; not conflict (5000 is staff, already his
         * primary) nor low. */
        assert_string_equal(groups_of("bob", 5000), "5001");
        assert_string_equal(groups_of("bob", 100), "5000,5001");
        /* alice: dba through the directory and a grant, once; her phi-ops grant is over. */
        assert_string_equal(groups_of("alice", 5000), "5001");
        /* carol: phi-ops, not staff under the name "staff" with gid 6500. */
        assert_string_equal(groups_of("carol", 5000), "6000");
        /* dave is not in the directory: his grant alone. */
        assert_string_equal(groups_of("dave", 100), "6000");
        assert_string_equal(groups_of("root", 0), "");
        assert_string_equal(groups_of("nobody-here", 100), "");
}

static void test_enumeration(void **state) {
        struct group gr;
        char buf[1024], seen[256] = "";
        int err = 0;
        enum nss_status st;

        (void) state;
        assert_int_equal(nss.setgrent(0), NSS_STATUS_SUCCESS);
        while ((st = nss.getgrent(&gr, buf, sizeof(buf), &err)) == NSS_STATUS_SUCCESS) {
                strcat(seen, gr.gr_name);
                strcat(seen, " ");
        }
        assert_int_equal(st, NSS_STATUS_NOTFOUND);
        /* The directory's groups, then the grants-only ones in name order. */
        assert_string_equal(seen, "staff dba phi-mark phi-ops ");
        assert_int_equal(nss.endgrent(), NSS_STATUS_SUCCESS);
}

/* A grants file whose own floor is lower still gets nothing below the
 * identity snapshot's. */
static void test_floor(void **state) {
        (void) state;
        publish_grants(2, (uint64_t) time(NULL) + 600, 500);
        WAIT_FOR(marker() == 2);
        assert_string_equal(members("low"), "-");
        assert_string_equal(groups_of("bob", 5000), "5001");
}

/* Grants ending two seconds from now vanish from getgr* and initgroups with
 * nobody rewriting the file: the module compares with the clock at each call. */
static void test_expiry(void **state) {
        uint64_t expires = (uint64_t) time(NULL) + 2;
        uint64_t now = (uint64_t) time(NULL);
        const struct phi_grant_entry e[] = {
                { "dba", 5001, "bob", expires, 1 },
                { "phi-ops", 6000, "carol", expires, 3 },
                { "phi-mark", 7003, "marker", now + 600, 3 },
        };

        (void) state;
        assert_int_equal(phi_grants_write(grants_path, e, PHI_ELEMENTSOF(e), 1000, 3), 0);
        WAIT_FOR(marker() == 3);
        /* In force until the second of expiry: checked only when the lookup
         * ended before it (the module's coarse clock never runs ahead). */
        {
                const char *got = members("dba");
                bool present = strcmp(got, "alice,bob") == 0;
                if ((uint64_t) time(NULL) < expires)
                        assert_true(present);
        }
        WAIT_FOR(strcmp(members("dba"), "alice") == 0);
        assert_string_equal(members("phi-ops"), "");   /* the group stays, empty */
        assert_string_equal(groups_of("bob", 5000), "");
        assert_string_equal(groups_of("carol", 5000), "");
}

/* A corrupt grants file serves no grant at all; the identity snapshot goes
 * on answering. A valid one put back is used again. */
static void test_corrupt_grants(void **state) {
        static const char garbage[] = "PHIGRNT\nthis is not a grants file";
        struct passwd pw;
        char buf[1024];
        int err = 0;

        (void) state;
        publish_grants(4, (uint64_t) time(NULL) + 600, 1000);
        WAIT_FOR(marker() == 4);
        assert_string_equal(members("dba"), "alice,bob");
        replace_grants_with(garbage, sizeof(garbage) - 1);
        WAIT_FOR(strcmp(members("dba"), "alice") == 0);
        assert_string_equal(members("phi-ops"), "-");
        assert_string_equal(groups_of("carol", 5000), "");
        assert_string_equal(groups_of("bob", 5000), "");
        assert_int_equal(nss.getpwnam("alice", &pw, buf, sizeof(buf), &err), NSS_STATUS_SUCCESS);

        /* One flipped byte of a real file: the same. */
        {
                _cleanup_free_ uint8_t *data = NULL;
                const struct phi_grant_entry e = { "dba", 5001, "bob", (uint64_t) time(NULL) + 600, 1 };
                size_t size = 0;
                publish_grants(5, (uint64_t) time(NULL) + 600, 1000);
                WAIT_FOR(marker() == 5);
                assert_int_equal(phi_grants_encode(&e, 1, 1000, 6, (uint64_t) time(NULL), &data, &size), 0);
                data[size - 2] ^= 1;
                replace_grants_with(data, size);
                WAIT_FOR(marker() == 0);
                assert_string_equal(members("dba"), "alice");
        }

        /* Writable by others: not used either. */
        publish_grants(7, (uint64_t) time(NULL) + 600, 1000);
        WAIT_FOR(marker() == 7);
        assert_int_equal(chmod(grants_path, 0666), 0);
        /* A chmod changes no inode: the module keeps what it verified when it
         * mapped the file until the next replacement. */
        {
                char tmp[PATH_MAX + 48];
                snprintf(tmp, sizeof(tmp), "%s/other.snapshot", dir);
                const struct phi_grant_entry m = { "phi-mark", 7008, "marker", (uint64_t) time(NULL) + 600, 8 };
                assert_int_equal(phi_grants_write(tmp, &m, 1, 1000, 8), 0);
                assert_int_equal(chmod(tmp, 0666), 0);
                assert_int_equal(rename(tmp, grants_path), 0);
        }
        WAIT_FOR(marker() == 0);
        sleep_ms(1200);
        assert_int_equal(marker(), 0);
        assert_int_equal(chmod(grants_path, 0644), 0);
        WAIT_FOR(marker() == 8);

        /* Removed: no grants, and back when published again. */
        assert_int_equal(unlink(grants_path), 0);
        WAIT_FOR(marker() == 0);
        assert_string_equal(members("dba"), "alice");
        publish_grants(9, (uint64_t) time(NULL) + 600, 1000);
        WAIT_FOR(marker() == 9);
        assert_string_equal(members("dba"), "alice,bob");
}

/* Replacement through the superseded mark: a process that has the grants file
 * mapped sees each new one, several in a row. */
static void test_replacements(void **state) {
        (void) state;
        for (uint64_t g = 10; g < 20; g++) {
                publish_grants(g, g % 2 ? (uint64_t) time(NULL) + 600 : 0, 1000);
                WAIT_FOR(marker() == g);
        }
}

/* Four threads look up while the grants file is replaced 40 times: every
 * answer is whole (bob's grant is in every file), generations only move
 * forward, and every thread reaches the last one. */
#define SWAPS 40
static atomic_bool stop;
static atomic_uint final_seen, errors;
static atomic_ulong lookups;

static void *reader(void *arg) {
        uint64_t last = 0;
        bool seen_final = false;

        (void) arg;
        while (!atomic_load(&stop)) {
                char buf[2048], got[256];
                struct group gr;
                long start = 1, size = 1;
                gid_t *groups = malloc(sizeof(gid_t));
                int err = 0;
                uint64_t m = 0;
                bool dba = false;

                if (!groups)
                        break;
                groups[0] = 5000;
                if (nss.getgrgid(5001, &gr, buf, sizeof(buf), &err) == NSS_STATUS_SUCCESS) {
                        got[0] = '\0';
                        for (char **p = gr.gr_mem; *p; p++)
                                snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s,", *p);
                        dba = strcmp(got, "alice,bob,") == 0;
                }
                if (!dba)
                        atomic_fetch_add(&errors, 1);
                if (nss.initgroups("bob", 5000, &start, &size, &groups, 0, &err) != NSS_STATUS_SUCCESS ||
                    start != 2 || groups[1] != 5001)
                        atomic_fetch_add(&errors, 1);
                free(groups);
                /* The marker: the one phi-mark group of this file. */
                for (uint64_t g = 100; g <= 100 + SWAPS && !m; g++)
                        if (nss.getgrgid((gid_t) (7000 + g), &gr, buf, sizeof(buf), &err) == NSS_STATUS_SUCCESS)
                                m = g;
                if (m < last || m == 0)
                        atomic_fetch_add(&errors, 1);
                last = m;
                if (m == 100 + SWAPS && !seen_final) {
                        seen_final = true;
                        atomic_fetch_add(&final_seen, 1);
                }
                atomic_fetch_add(&lookups, 3);
        }
        return NULL;
}

static void test_swap_under_load(void **state) {
        pthread_t t[4];

        (void) state;
        publish_grants(100, (uint64_t) time(NULL) + 600, 1000);
        WAIT_FOR(strcmp(members("phi-mark"), "marker") == 0 && marker() == 0);   /* generation 100 */
        for (int i = 0; i < 4; i++)
                assert_int_equal(pthread_create(&t[i], NULL, reader, NULL), 0);
        for (int g = 1; g <= SWAPS; g++) {
                /* Sizes change from one file to the next, so records move. */
                publish_grants(100 + (uint64_t) g, g % 2 ? (uint64_t) time(NULL) + 600 : 0, 1000);
                sleep_ms(5);
        }
        WAIT_FOR(atomic_load(&final_seen) == 4);
        atomic_store(&stop, true);
        for (int i = 0; i < 4; i++)
                assert_int_equal(pthread_join(t[i], NULL), 0);
        print_message("%lu lookups across %d grants files\n", atomic_load(&lookups), SWAPS);
        assert_int_equal(atomic_load(&errors), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_no_grants_file),
                cmocka_unit_test(test_merged_and_alone),
                cmocka_unit_test(test_initgroups),
                cmocka_unit_test(test_enumeration),
                cmocka_unit_test(test_floor),
                cmocka_unit_test(test_expiry),
                cmocka_unit_test(test_corrupt_grants),
                cmocka_unit_test(test_replacements),
                cmocka_unit_test(test_swap_under_load),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libnss_phi.so.2 through its entry points, loaded with dlopen() as glibc loads
 * it: NSS status and errno rules, what is never served, enumeration,
 * initgroups_dyn, expiry with nobody rewriting the file, a missing or corrupt
 * snapshot, fork(), and the snapshot replaced while four threads look up. The
 * module keeps process-wide state, so the tests run in order in one process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <endian.h>
#include <grp.h>
#include <limits.h>
#include <nss.h>
#include <pthread.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "phi/snapshot.h"

#ifndef NSS_PHI_SO
#error "NSS_PHI_SO must name the built module"
#endif

typedef enum nss_status (*getpwnam_fn)(const char *, struct passwd *, char *, size_t, int *);
typedef enum nss_status (*getpwuid_fn)(uid_t, struct passwd *, char *, size_t, int *);
typedef enum nss_status (*getgrnam_fn)(const char *, struct group *, char *, size_t, int *);
typedef enum nss_status (*getgrgid_fn)(gid_t, struct group *, char *, size_t, int *);
typedef enum nss_status (*setent_fn)(int);
typedef enum nss_status (*endent_fn)(void);
typedef enum nss_status (*getpwent_fn)(struct passwd *, char *, size_t, int *);
typedef enum nss_status (*getgrent_fn)(struct group *, char *, size_t, int *);
typedef enum nss_status (*initgroups_fn)(const char *, gid_t, long int *, long int *, gid_t **,
                                         long int, int *);

static struct {
        getpwnam_fn getpwnam;
        getpwuid_fn getpwuid;
        getgrnam_fn getgrnam;
        getgrgid_fn getgrgid;
        setent_fn setpwent, setgrent;
        endent_fn endpwent, endgrent;
        getpwent_fn getpwent;
        getgrent_fn getgrent;
        initgroups_fn initgroups;
} nss;

static char dir[PATH_MAX], path[PATH_MAX + 32];

/* ---- helpers ---- */

static void sleep_ms(long ms) {
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* Users alice (1001) and bob (1002), a user below min_uid, groups staff (5000:
 * alice, bob) and dba (5001: alice until expires_alice), plus `extra` users
 * extraN (uid 3000+N) and a marker user whose uid is 2000 + generation. */
static void publish_at(const char *where, uint64_t generation, uint64_t expires_alice, unsigned extra) {
        _cleanup_snapshot_builder_ phi_snapshot_builder *b = NULL;
        char name[32];

        assert_int_equal(phi_snapshot_builder_new(&b), 0);
        assert_int_equal(phi_snapshot_builder_set_min_ids(b, 1000, 1000), 0);
        assert_int_equal(phi_snapshot_add_user(b, "alice", 1001, 5000, "Alice", "/home/alice", "/bin/bash"), 0);
        assert_int_equal(phi_snapshot_add_user(b, "bob", 1002, 5000, "", "/home/bob", "/bin/sh"), 0);
        assert_int_equal(phi_snapshot_add_user(b, "lowuid", 999, 5000, "", "/", "/bin/sh"), 0);
        snprintf(name, sizeof(name), "marker");
        assert_int_equal(phi_snapshot_add_user(b, name, (uid_t) (2000 + generation), 5000, "", "/", "/bin/sh"), 0);
        for (unsigned i = 0; i < extra; i++) {
                snprintf(name, sizeof(name), "extra%u", i);
                assert_int_equal(phi_snapshot_add_user(b, name, 3000 + i, 5000, "", "/", "/bin/sh"), 0);
        }
        assert_int_equal(phi_snapshot_add_group(b, "staff", 5000), 0);
        assert_int_equal(phi_snapshot_add_group(b, "dba", 5001), 0);
        assert_int_equal(phi_snapshot_add_group(b, "lowgid", 999), 0);
        assert_int_equal(phi_snapshot_add_member(b, "staff", "alice", 0), 0);
        assert_int_equal(phi_snapshot_add_member(b, "staff", "bob", 0), 0);
        assert_int_equal(phi_snapshot_add_member(b, "dba", "alice", expires_alice), 0);
        assert_int_equal(phi_snapshot_add_member(b, "dba", "bob", 1), 0);  /* long expired */
        assert_int_equal(phi_snapshot_add_member(b, "lowgid", "alice", 0), 0);
        assert_int_equal(phi_snapshot_write(b, where, generation), 0);
}

static void publish(uint64_t generation, uint64_t expires_alice, unsigned extra) {
        publish_at(path, generation, expires_alice, extra);
}

/* Polls cond for up to 10 s: the module retries a missing file once a second
 * and checks the inode once a second, so the exact moment is not asserted. */
#define WAIT_FOR(cond)                                                   \
        do {                                                             \
                int _n = 0;                                              \
                while (!(cond) && _n++ < 200)                            \
                        sleep_ms(50);                                    \
                assert_true(cond);                                       \
        } while (0)

static enum nss_status pwnam(const char *name, struct passwd *pw, int *err) {
        static char buf[1024];
        return nss.getpwnam(name, pw, buf, sizeof(buf), err);
}

static uid_t marker_uid(void) {
        struct passwd pw;
        char buf[256];
        int err = 0;

        return nss.getpwnam("marker", &pw, buf, sizeof(buf), &err) == NSS_STATUS_SUCCESS ? pw.pw_uid : 0;
}

static bool in_group(const char *group, const char *user) {
        struct group gr;
        char buf[1024];
        int err = 0;

        if (nss.getgrnam(group, &gr, buf, sizeof(buf), &err) != NSS_STATUS_SUCCESS)
                return false;
        for (char **m = gr.gr_mem; *m; m++)
                if (strcmp(*m, user) == 0)
                        return true;
        return false;
}

/* The groups initgroups_dyn adds for user, besides primary. */
static long initgroups_list(const char *user, gid_t primary, gid_t *out, long max) {
        long start = 1, size = 1;
        gid_t *groups = malloc(sizeof(gid_t));
        int err = 0;
        enum nss_status st;

        assert_non_null(groups);
        groups[0] = primary;
        st = nss.initgroups(user, primary, &start, &size, &groups, 0, &err);
        if (st != NSS_STATUS_SUCCESS)
                start = st == NSS_STATUS_NOTFOUND ? 1 : -1;
        for (long i = 1; i < start && i - 1 < max; i++)
                out[i - 1] = groups[i];
        free(groups);
        return start < 0 ? -1 : start - 1;
}

/* ---- setup ---- */

static int setup(void **state) {
        void *h;

        (void) state;
        snprintf(dir, sizeof(dir), "/tmp/phi-nss-XXXXXX");
        if (!mkdtemp(dir))
                return -1;
        snprintf(path, sizeof(path), "%s/nss.snapshot", dir);
        if (setenv("PHI_NSS_SNAPSHOT", path, 1) < 0)
                return -1;
        h = dlopen(NSS_PHI_SO, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
                fprintf(stderr, "dlopen: %s\n", dlerror());
                return -1;
        }
#define SYM(field, name) *(void **) &nss.field = dlsym(h, name)
        SYM(getpwnam, "_nss_phi_getpwnam_r");
        SYM(getpwuid, "_nss_phi_getpwuid_r");
        SYM(getgrnam, "_nss_phi_getgrnam_r");
        SYM(getgrgid, "_nss_phi_getgrgid_r");
        SYM(setpwent, "_nss_phi_setpwent");
        SYM(endpwent, "_nss_phi_endpwent");
        SYM(getpwent, "_nss_phi_getpwent_r");
        SYM(setgrent, "_nss_phi_setgrent");
        SYM(endgrent, "_nss_phi_endgrent");
        SYM(getgrent, "_nss_phi_getgrent_r");
        SYM(initgroups, "_nss_phi_initgroups_dyn");
#undef SYM
        return nss.getpwnam && nss.getpwuid && nss.getgrnam && nss.getgrgid && nss.setpwent &&
                               nss.endpwent && nss.getpwent && nss.setgrent && nss.endgrent &&
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

/* ---- tests ---- */

/* Runs first: no file yet. */
static void test_no_snapshot(void **state) {
        struct passwd pw;
        struct group gr;
        char buf[256];
        int err = 0;

        (void) state;
        errno = 4242;
        assert_int_equal(nss.getpwnam("alice", &pw, buf, sizeof(buf), &err), NSS_STATUS_UNAVAIL);
        assert_int_equal(errno, 4242);
        assert_int_equal(nss.getpwuid(1001, &pw, buf, sizeof(buf), &err), NSS_STATUS_UNAVAIL);
        assert_int_equal(nss.getgrgid(5000, &gr, buf, sizeof(buf), &err), NSS_STATUS_UNAVAIL);

        /* Published later: picked up without a restart. */
        publish(1, 0, 0);
        WAIT_FOR(pwnam("alice", &pw, &err) == NSS_STATUS_SUCCESS);
}

static void test_lookups(void **state) {
        struct passwd pw;
        struct group gr;
        char buf[1024];
        int err = 0;

        (void) state;
        errno = 4242;
        assert_int_equal(nss.getpwnam("alice", &pw, buf, sizeof(buf), &err), NSS_STATUS_SUCCESS);
        assert_int_equal(errno, 4242);
        assert_string_equal(pw.pw_name, "alice");
        assert_string_equal(pw.pw_passwd, "*");
        assert_int_equal(pw.pw_uid, 1001);
        assert_int_equal(pw.pw_gid, 5000);
        assert_string_equal(pw.pw_gecos, "Alice");
        assert_string_equal(pw.pw_dir, "/home/alice");
        assert_string_equal(pw.pw_shell, "/bin/bash");
        assert_true(pw.pw_name >= buf && pw.pw_shell < buf + sizeof(buf));

        assert_int_equal(nss.getpwuid(1002, &pw, buf, sizeof(buf), &err), NSS_STATUS_SUCCESS);
        assert_string_equal(pw.pw_name, "bob");
        assert_string_equal(pw.pw_gecos, "");

        err = 0;
        assert_int_equal(nss.getpwnam("carol", &pw, buf, sizeof(buf), &err), NSS_STATUS_NOTFOUND);
        assert_int_equal(err, ENOENT);
        assert_int_equal(errno, 4242);
        assert_int_equal(nss.getpwuid(4242, &pw, buf, sizeof(buf), &err), NSS_STATUS_NOTFOUND);

        /* Never served, whatever the file says. */
        assert_int_equal(nss.getpwnam("root", &pw, buf, sizeof(buf), &err), NSS_STATUS_NOTFOUND);
        assert_int_equal(nss.getpwuid(0, &pw, buf, sizeof(buf), &err), NSS_STATUS_NOTFOUND);
        assert_int_equal(nss.getgrgid(0, &gr, buf, sizeof(buf), &err), NSS_STATUS_NOTFOUND);
        assert_int_equal(nss.getgrnam("root", &gr, buf, sizeof(buf), &err), NSS_STATUS_NOTFOUND);
        assert_int_equal(nss.getpwnam("lowuid", &pw, buf, sizeof(buf), &err), NSS_STATUS_NOTFOUND);
        assert_int_equal(nss.getpwuid(999, &pw, buf, sizeof(buf), &err), NSS_STATUS_NOTFOUND);
        assert_int_equal(nss.getgrnam("lowgid", &gr, buf, sizeof(buf), &err), NSS_STATUS_NOTFOUND);
        assert_int_equal(nss.getgrgid(999, &gr, buf, sizeof(buf), &err), NSS_STATUS_NOTFOUND);

        assert_int_equal(nss.getgrnam("staff", &gr, buf, sizeof(buf), &err), NSS_STATUS_SUCCESS);
        assert_int_equal(gr.gr_gid, 5000);
        assert_string_equal(gr.gr_passwd, "*");
        assert_string_equal(gr.gr_mem[0], "alice");
        assert_string_equal(gr.gr_mem[1], "bob");
        assert_null(gr.gr_mem[2]);
        assert_true((uintptr_t) gr.gr_mem % _Alignof(char *) == 0);
        /* bob's dba membership expired long ago: left out. */
        assert_int_equal(nss.getgrgid(5001, &gr, buf, sizeof(buf), &err), NSS_STATUS_SUCCESS);
        assert_string_equal(gr.gr_name, "dba");
        assert_string_equal(gr.gr_mem[0], "alice");
        assert_null(gr.gr_mem[1]);
}

/* Every buffer too small by any amount: TRYAGAIN + ERANGE and nothing else, and
 * the caller's struct untouched; at the exact size, success. */
static void test_erange(void **state) {
        struct passwd pw, untouched = { .pw_name = (char *) "sentinel" };
        struct group gr;
        char buf[512];
        size_t need_pw = 0, need_gr = 0;
        int err;

        (void) state;
        for (size_t len = 0; len < sizeof(buf) && !need_pw; len++) {
                pw = untouched;
                err = 0;
                enum nss_status st = nss.getpwnam("alice", &pw, buf, len, &err);
                if (st == NSS_STATUS_SUCCESS) {
                        need_pw = len;
                        break;
                }
                assert_int_equal(st, NSS_STATUS_TRYAGAIN);
                assert_int_equal(err, ERANGE);
                assert_string_equal(pw.pw_name, "sentinel");
        }
        assert_int_equal(need_pw, sizeof("alice") + sizeof("*") + sizeof("Alice") +
                                          sizeof("/home/alice") + sizeof("/bin/bash"));
        for (size_t len = 0; len < sizeof(buf); len++) {
                err = 0;
                enum nss_status st = nss.getgrnam("staff", &gr, buf, len, &err);
                if (st == NSS_STATUS_SUCCESS) {
                        need_gr = len;
                        break;
                }
                assert_int_equal(st, NSS_STATUS_TRYAGAIN);
                assert_int_equal(err, ERANGE);
        }
        assert_true(need_gr > 0);
        /* glibc passes &errno as errnop: the answer must survive in errno itself,
         * or glibc takes a too-small buffer for "not found" and never retries. */
        errno = 0;
        assert_int_equal(nss.getpwnam("alice", &pw, buf, 4, &errno), NSS_STATUS_TRYAGAIN);
        assert_int_equal(errno, ERANGE);
        errno = 0;
        assert_int_equal(nss.getgrnam("staff", &gr, buf, 4, &errno), NSS_STATUS_TRYAGAIN);
        assert_int_equal(errno, ERANGE);
        errno = 0;
        assert_int_equal(nss.getpwnam("carol", &pw, buf, sizeof(buf), &errno), NSS_STATUS_NOTFOUND);
        assert_int_equal(errno, ENOENT);
        /* Same answers through an unaligned buffer: the pointer array is aligned. */
        assert_int_equal(nss.getgrnam("staff", &gr, buf + 1, sizeof(buf) - 1, &err), NSS_STATUS_SUCCESS);
        assert_true((uintptr_t) gr.gr_mem % _Alignof(char *) == 0);
        assert_string_equal(gr.gr_mem[1], "bob");
}

static void test_enumeration(void **state) {
        struct passwd pw;
        struct group gr;
        char buf[1024];
        char seen[256] = "";
        int err = 0;
        enum nss_status st;

        (void) state;
        assert_int_equal(nss.setpwent(0), NSS_STATUS_SUCCESS);
        /* A too-small buffer does not advance the cursor. */
        assert_int_equal(nss.getpwent(&pw, buf, 4, &err), NSS_STATUS_TRYAGAIN);
        assert_int_equal(err, ERANGE);
        while ((st = nss.getpwent(&pw, buf, sizeof(buf), &err)) == NSS_STATUS_SUCCESS) {
                strcat(seen, pw.pw_name);
                strcat(seen, " ");
        }
        assert_int_equal(st, NSS_STATUS_NOTFOUND);
        assert_string_equal(seen, "alice bob marker ");   /* lowuid left out */
        assert_int_equal(nss.endpwent(), NSS_STATUS_SUCCESS);

        seen[0] = '\0';
        assert_int_equal(nss.setgrent(0), NSS_STATUS_SUCCESS);
        while ((st = nss.getgrent(&gr, buf, sizeof(buf), &err)) == NSS_STATUS_SUCCESS) {
                strcat(seen, gr.gr_name);
                strcat(seen, " ");
        }
        assert_int_equal(st, NSS_STATUS_NOTFOUND);
        assert_string_equal(seen, "staff dba ");
        assert_int_equal(nss.endgrent(), NSS_STATUS_SUCCESS);
}

static void test_initgroups(void **state) {
        gid_t got[8];
        long start, size;
        gid_t *groups;
        int err = 0;

        (void) state;
        /* Primary 5000 (staff) is not repeated; dba added; lowgid (999) never. */
        assert_int_equal(initgroups_list("alice", 5000, got, 8), 1);
        assert_int_equal(got[0], 5001);
        assert_int_equal(initgroups_list("alice", 100, got, 8), 2);
        assert_int_equal(got[0], 5000);
        assert_int_equal(got[1], 5001);
        /* bob's dba grant expired. */
        assert_int_equal(initgroups_list("bob", 100, got, 8), 1);
        assert_int_equal(got[0], 5000);
        assert_int_equal(initgroups_list("root", 0, got, 8), 0);
        assert_int_equal(initgroups_list("nobody-here", 100, got, 8), 0);

        /* Growing from size 0, and a gid another source already added. */
        start = 0;
        size = 0;
        groups = NULL;
        assert_int_equal(nss.initgroups("alice", 100, &start, &size, &groups, 0, &err), NSS_STATUS_SUCCESS);
        assert_int_equal(start, 2);
        assert_true(size >= 2);
        assert_int_equal(nss.initgroups("alice", 100, &start, &size, &groups, 0, &err), NSS_STATUS_SUCCESS);
        assert_int_equal(start, 2);   /* nothing twice */
        free(groups);
        /* The caller's limit caps the list. */
        start = 1;
        size = 1;
        groups = malloc(sizeof(gid_t));
        assert_non_null(groups);
        groups[0] = 100;
        assert_int_equal(nss.initgroups("alice", 100, &start, &size, &groups, 2, &err), NSS_STATUS_SUCCESS);
        assert_int_equal(start, 2);
        assert_int_equal(size, 2);
        free(groups);
}

/* A grant with an expiry two seconds ahead vanishes from getgr* and initgroups
 * with nobody rewriting the file. */
static void test_expiry(void **state) {
        uint64_t expires = (uint64_t) time(NULL) + 2;
        gid_t got[8];

        (void) state;
        publish(2, expires, 0);
        WAIT_FOR(marker_uid() == 2002);
        /* Whether the grant is still in force depends on the clock, not on how
         * fast this machine is: checked only when the lookup ended before the
         * expiry (the module's coarse clock never runs ahead of time()). */
        {
                bool present = in_group("dba", "alice");
                if ((uint64_t) time(NULL) < expires)
                        assert_true(present);
        }
        WAIT_FOR(!in_group("dba", "alice"));
        assert_int_equal(initgroups_list("alice", 5000, got, 8), 0);
        assert_true(in_group("staff", "alice"));
        assert_true(in_group("dba", "bob") == false);
}

static void replace_with(const char *content, size_t len);

/* A snapshot made by hand, whose user record gives alice primary gid 27 (sudo's
 * group on Debian) although the header allows nothing below min_gid: the
 * module serves no such user, by name, uid, enumeration or initgroups. The
 * writer never makes such a file, so the record is patched in place. */
static void test_low_primary_gid(void **state) {
        _cleanup_free_ uint8_t *data = NULL;
        struct passwd pw;
        char buf[1024], seen[256] = "";
        uint32_t gid = htole32(27);
        long start = 1, size = 1;
        gid_t *groups;
        phi_snapshot s;
        FILE *f;
        long len;
        int err = 0;
        enum nss_status st;

        (void) state;
        publish(50, 0, 0);
        f = fopen(path, "re");
        assert_non_null(f);
        assert_int_equal(fseek(f, 0, SEEK_END), 0);
        len = ftell(f);
        rewind(f);
        data = malloc((size_t) len);
        assert_non_null(data);
        assert_int_equal(fread(data, 1, (size_t) len, f), (size_t) len);
        fclose(f);
        assert_int_equal(phi_snapshot_open_buffer(&s, data, (size_t) len), 0);
        {
                struct phi_snapshot_user u;
                assert_int_equal(phi_snapshot_user_by_name(&s, "alice", &u), 0);
                memcpy(data + s.off[PHI_SNAP_USERS] + (size_t) u.index * sizeof(struct phi_snap_user) +
                               offsetof(struct phi_snap_user, gid),
                       &gid, 4);
        }
        replace_with((const char *) data, (size_t) len);
        WAIT_FOR(marker_uid() == 2050);

        assert_int_equal(nss.getpwnam("alice", &pw, buf, sizeof(buf), &err), NSS_STATUS_NOTFOUND);
        assert_int_equal(nss.getpwuid(1001, &pw, buf, sizeof(buf), &err), NSS_STATUS_NOTFOUND);
        assert_int_equal(nss.getpwnam("bob", &pw, buf, sizeof(buf), &err), NSS_STATUS_SUCCESS);
        assert_int_equal(nss.setpwent(0), NSS_STATUS_SUCCESS);
        while ((st = nss.getpwent(&pw, buf, sizeof(buf), &err)) == NSS_STATUS_SUCCESS) {
                strcat(seen, pw.pw_name);
                strcat(seen, " ");
        }
        assert_int_equal(st, NSS_STATUS_NOTFOUND);
        assert_string_equal(seen, "bob marker ");
        (void) nss.endpwent();
        groups = malloc(sizeof(gid_t));
        assert_non_null(groups);
        groups[0] = 27;
        assert_int_equal(nss.initgroups("alice", 27, &start, &size, &groups, 0, &err), NSS_STATUS_NOTFOUND);
        assert_int_equal(start, 1);
        free(groups);

        /* The same low gid written the proper way, with the header allowing it
         * (primary_gids_allowed = 100): served. */
        {
                _cleanup_snapshot_builder_ phi_snapshot_builder *b = NULL;
                static const gid_t allowed[] = { 100 };

                assert_int_equal(phi_snapshot_builder_new(&b), 0);
                assert_int_equal(phi_snapshot_builder_set_primary_gids(b, allowed, 1), 0);
                assert_int_equal(phi_snapshot_add_user(b, "alice", 1001, 100, "", "/", "/bin/sh"), 0);
                assert_int_equal(phi_snapshot_add_user(b, "marker", 2051, 5000, "", "/", "/bin/sh"), 0);
                assert_int_equal(phi_snapshot_write(b, path, 51), 0);
        }
        WAIT_FOR(marker_uid() == 2051);
        assert_int_equal(nss.getpwnam("alice", &pw, buf, sizeof(buf), &err), NSS_STATUS_SUCCESS);
        assert_int_equal(pw.pw_gid, 100);
}

static void replace_with(const char *content, size_t len) {
        char tmp[PATH_MAX + 40];
        FILE *f;

        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        f = fopen(tmp, "we");
        assert_non_null(f);
        assert_int_equal(fwrite(content, 1, len, f), len);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(rename(tmp, path), 0);
}

/* A corrupt or empty replacement gives UNAVAIL (the old snapshot is dropped
 * rather than kept with a revoked membership in it), then the module recovers. */
static void test_corrupt_file(void **state) {
        static const char garbage[] = "PHISNAP\nthis is not a snapshot";
        char tmp[PATH_MAX + 40];
        struct passwd pw;
        int err = 0;

        (void) state;
        publish(3, 0, 0);
        WAIT_FOR(marker_uid() == 2003);
        replace_with(garbage, sizeof(garbage) - 1);
        WAIT_FOR(pwnam("alice", &pw, &err) == NSS_STATUS_UNAVAIL);
        assert_int_equal(err, ENOENT);

        publish(4, 0, 0);
        WAIT_FOR(marker_uid() == 2004);
        replace_with("", 0);
        WAIT_FOR(pwnam("alice", &pw, &err) == NSS_STATUS_UNAVAIL);

        /* A file others may write is refused: it is retried every second, so
         * two seconds later it must still be refused. */
        snprintf(tmp, sizeof(tmp), "%s.new", path);
        publish_at(tmp, 5, 0, 0);
        assert_int_equal(chmod(tmp, 0666), 0);
        assert_int_equal(rename(tmp, path), 0);
        sleep_ms(2200);
        assert_int_equal(pwnam("alice", &pw, &err), NSS_STATUS_UNAVAIL);
        assert_int_equal(chmod(path, 0644), 0);
        WAIT_FOR(marker_uid() == 2005);
}

/* The child of a fork keeps answering from the inherited mapping and follows a
 * replacement on its own. */
static void test_fork(void **state) {
        int status = 0;
        pid_t pid;

        (void) state;
        publish(6, 0, 0);
        WAIT_FOR(marker_uid() == 2006);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct passwd pw;
                int err = 0, n = 0;
                if (pwnam("alice", &pw, &err) != NSS_STATUS_SUCCESS || marker_uid() != 2006)
                        _exit(1);
                publish(7, 0, 0);
                while (marker_uid() != 2007 && n++ < 200)
                        sleep_ms(50);
                _exit(marker_uid() == 2007 ? 0 : 2);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        WAIT_FOR(marker_uid() == 2007);
}

/* ---- four threads and a writer ---- */

#define SWAPS 40
static atomic_bool stop;
static atomic_uint final_seen;
static atomic_uint errors;
static atomic_ulong lookups;

static void *reader(void *arg) {
        char buf[2048];
        uid_t last = 0;
        bool seen_final = false;

        (void) arg;
        while (!atomic_load(&stop)) {
                struct passwd pw;
                struct group gr;
                int err = 0;
                gid_t got[8];
                uid_t m;

                if (nss.getpwnam("alice", &pw, buf, sizeof(buf), &err) != NSS_STATUS_SUCCESS ||
                    pw.pw_uid != 1001 || strcmp(pw.pw_dir, "/home/alice") != 0)
                        atomic_fetch_add(&errors, 1);
                if (nss.getpwuid(1002, &pw, buf, sizeof(buf), &err) != NSS_STATUS_SUCCESS ||
                    strcmp(pw.pw_name, "bob") != 0)
                        atomic_fetch_add(&errors, 1);
                if (nss.getgrgid(5000, &gr, buf, sizeof(buf), &err) != NSS_STATUS_SUCCESS ||
                    !gr.gr_mem[0] || strcmp(gr.gr_mem[0], "alice") != 0)
                        atomic_fetch_add(&errors, 1);
                if (initgroups_list("alice", 100, got, 8) != 2)
                        atomic_fetch_add(&errors, 1);
                /* Generations only move forward: never an older answer after a
                 * newer one was seen. */
                m = marker_uid();
                if (m < last || m == 0)
                        atomic_fetch_add(&errors, 1);
                last = m;
                if (m == 2000 + 100 + SWAPS && !seen_final) {
                        seen_final = true;
                        atomic_fetch_add(&final_seen, 1);
                }
                atomic_fetch_add(&lookups, 5);
        }
        return NULL;
}

static void test_swap_under_load(void **state) {
        pthread_t t[4];

        (void) state;
        publish(100, 0, 50);
        WAIT_FOR(marker_uid() == 2100);
        for (int i = 0; i < 4; i++)
                assert_int_equal(pthread_create(&t[i], NULL, reader, NULL), 0);
        for (int g = 1; g <= SWAPS; g++) {
                /* Sizes change between generations so records move in the file. */
                publish(100 + (uint64_t) g, 0, 50 + (unsigned) (g % 7) * 40);
                sleep_ms(5);
        }
        /* No stale answer after the swap: every thread reaches the last one. */
        WAIT_FOR(atomic_load(&final_seen) == 4);
        atomic_store(&stop, true);
        for (int i = 0; i < 4; i++)
                assert_int_equal(pthread_join(t[i], NULL), 0);
        print_message("%lu lookups across %d swaps\n", atomic_load(&lookups), SWAPS);
        assert_int_equal(atomic_load(&errors), 0);
        assert_true(atomic_load(&lookups) > 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_no_snapshot),
                cmocka_unit_test(test_lookups),
                cmocka_unit_test(test_erange),
                cmocka_unit_test(test_enumeration),
                cmocka_unit_test(test_initgroups),
                cmocka_unit_test(test_expiry),
                cmocka_unit_test(test_low_primary_gid),
                cmocka_unit_test(test_corrupt_file),
                cmocka_unit_test(test_fork),
                cmocka_unit_test(test_swap_under_load),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}

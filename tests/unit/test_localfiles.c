/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The host's passwd and group files as phiaccessd reads them: from several
 * threads at once (the sync thread publishing the snapshot, the event loop
 * identifying callers), with lines of any length, and a missing file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "localfiles.h"
#include "store.h"

#define USERS 400

static char dir[] = "/tmp/phi-localfiles.XXXXXX";
static char passwd_path[256], group_path[256];

static int setup(void **state) {
        FILE *f;

        (void) state;
        assert_non_null(mkdtemp(dir));
        snprintf(passwd_path, sizeof(passwd_path), "%s/passwd", dir);
        snprintf(group_path, sizeof(group_path), "%s/group", dir);
        f = fopen(passwd_path, "we");
        assert_non_null(f);
        fprintf(f, "root:x:0:0:root:/root:/bin/bash\n");
        fprintf(f, "this line is not an account\n");
        for (int i = 1; i <= USERS; i++)
                fprintf(f, "local%04d:x:%d:%d:Local %d with a long gecos field to fill the line:/home/local%04d:/bin/sh\n",
                        i, 1000 + i, 1000 + i, i, i);
        fclose(f);
        /* One group line far longer than any first buffer. */
        f = fopen(group_path, "we");
        assert_non_null(f);
        fprintf(f, "root:x:0:\nphi-admins:x:3000:local0007\nbig:x:3001:");
        for (int i = 1; i <= USERS; i++)
                fprintf(f, "%slocal%04d", i > 1 ? "," : "", i);
        fprintf(f, "\n");
        fclose(f);
        return 0;
}

static int teardown(void **state) {
        (void) state;
        unlink(passwd_path);
        unlink(group_path);
        rmdir(dir);
        return 0;
}

static void test_load(void **state) {
        struct phi_local_db users, groups;

        (void) state;
        assert_int_equal(phi_local_users_load(passwd_path, &users), 0);
        assert_int_equal(users.n_names, USERS + 1);
        assert_true(phi_local_db_has_name(&users, "local0400"));
        assert_true(phi_local_db_has_id(&users, 1400));
        assert_false(phi_local_db_has_name(&users, "this line is not an account"));
        phi_local_db_clear(&users);
        assert_int_equal(phi_local_groups_load(group_path, &groups), 0);
        assert_int_equal(groups.n_names, 3);
        assert_true(phi_local_db_has_name(&groups, "big"));
        phi_local_db_clear(&groups);
}

static void test_missing_file(void **state) {
        struct phi_local_db db;
        char *name = NULL;
        gid_t gid;

        (void) state;
        assert_int_equal(phi_local_users_load("/nonexistent/passwd", &db), 0);
        assert_int_equal(db.n_names, 0);
        assert_int_equal(phi_local_user_by_uid("/nonexistent/passwd", 1000, &name, &gid), -ENOENT);
        assert_false(phi_local_group_has_member("/nonexistent/group", "big", "local0001", 1));
}

static void test_lookups(void **state) {
        char *name = NULL;
        gid_t gid = 0;

        (void) state;
        assert_int_equal(phi_local_user_by_uid(passwd_path, 1250, &name, &gid), 0);
        assert_string_equal(name, "local0250");
        assert_int_equal(gid, 1250);
        free(name);
        assert_int_equal(phi_local_user_by_uid(passwd_path, 99999, &name, &gid), -ENOENT);
        /* The member at the end of the long line, by name and by primary gid. */
        assert_true(phi_local_group_has_member(group_path, "big", "local0400", 1400));
        assert_true(phi_local_group_has_member(group_path, "phi-admins", "nobody-listed", 3000));
        assert_true(phi_local_group_has_member(group_path, "phi-admins", "local0007", 1007));
        assert_false(phi_local_group_has_member(group_path, "phi-admins", "local0008", 1008));
}

/* By name, the whole entry: what user show prints and totp issue checks. */
static void test_user_get(void **state) {
        struct phi_user u = { 0 };

        (void) state;
        assert_int_equal(phi_local_user_get(passwd_path, "local0400", &u), 0);
        assert_string_equal(u.name, "local0400");
        assert_int_equal(u.uid, 1400);
        assert_int_equal(u.gid, 1400);
        assert_string_equal(u.gecos, "Local 400 with a long gecos field to fill the line");
        assert_string_equal(u.home, "/home/local0400");
        assert_string_equal(u.shell, "/bin/sh");
        assert_null(u.dn);
        phi_user_clear(&u);
        assert_int_equal(phi_local_user_get(passwd_path, "root", &u), 0);
        assert_int_equal(u.uid, 0);
        phi_user_clear(&u);
        /* A prefix is not the name; the line that is not an account is nobody's. */
        assert_int_equal(phi_local_user_get(passwd_path, "local040", &u), -ENOENT);
        assert_int_equal(phi_local_user_get(passwd_path, "this line is not an account", &u), -ENOENT);
        assert_int_equal(phi_local_user_get("/nonexistent/passwd", "root", &u), -ENOENT);
        assert_null(u.name);
}

static void write_file(const char *path, const char *text) {
        FILE *f = fopen(path, "we");

        assert_non_null(f);
        assert_int_equal(fputs(text, f) >= 0, 1);
        assert_int_equal(fclose(f), 0);
}

/* The lookups keep a parse of each file; an account added, renamed in place
 * (same size, the same moment) or removed is seen by the next lookup, and
 * where the file has a name or uid twice the first line wins, as in glibc. */
static void test_changes_seen(void **state) {
        char path[300], tmp[310], *name = NULL;
        struct phi_user u = { 0 };
        uid_t uid = 0;
        gid_t gid = 0;

        (void) state;
        snprintf(path, sizeof(path), "%s/passwd.changing", dir);
        snprintf(tmp, sizeof(tmp), "%s.new", path);
        write_file(path, "anna:x:2001:2001::/home/anna:/bin/sh\n");
        assert_int_equal(phi_local_user_by_name(path, "anna", &uid), 0);
        assert_int_equal(uid, 2001);
        /* in place, same size, at once */
        write_file(path, "anne:x:2001:2001::/home/anna:/bin/sh\n");
        assert_int_equal(phi_local_user_by_name(path, "anna", &uid), -ENOENT);
        assert_int_equal(phi_local_user_by_name(path, "anne", &uid), 0);
        /* a new file renamed over it, as vipw and useradd do */
        write_file(tmp, "anne:x:2001:2001::/home/anna:/bin/sh\nbert:x:2002:2002::/home/bert:/bin/sh\n"
                        "anne:x:2003:2003::/home/other:/bin/sh\nbertram:x:2002:2002::/:/bin/sh\n");
        assert_int_equal(rename(tmp, path), 0);
        assert_int_equal(phi_local_user_get(path, "anne", &u), 0);
        assert_int_equal(u.uid, 2001);
        phi_user_clear(&u);
        assert_int_equal(phi_local_user_by_uid(path, 2002, &name, &gid), 0);
        assert_string_equal(name, "bert");
        free(name);
        assert_int_equal(phi_local_user_by_name(path, "bertram", &uid), 0);
        assert_int_equal(uid, 2002);
        /* gone, then back */
        assert_int_equal(unlink(path), 0);
        assert_int_equal(phi_local_user_by_name(path, "anne", &uid), -ENOENT);
        write_file(path, "carl:x:2004:2004::/home/carl:/bin/sh\n");
        assert_int_equal(phi_local_user_by_name(path, "carl", &uid), 0);
        assert_int_equal(phi_local_user_by_name(path, "anne", &uid), -ENOENT);
        phi_local_cache_drop();
        assert_int_equal(phi_local_user_by_name(path, "carl", &uid), 0);
        assert_int_equal(unlink(path), 0);
}

/* Memberships follow the group file as it changes, too. */
static void test_group_changes_seen(void **state) {
        char path[300];
        char **v = NULL;
        size_t n = 0, cap = 0;

        (void) state;
        snprintf(path, sizeof(path), "%s/group.changing", dir);
        write_file(path, "ops:x:4000:dora\n");
        assert_true(phi_local_group_has_member(path, "ops", "dora", 1));
        write_file(path, "ops:x:4000:dorb\n");
        assert_false(phi_local_group_has_member(path, "ops", "dora", 1));
        write_file(path, "ops:x:4000:dora\nweb:x:4001:erik,dora\nops:x:4002:\n");
        assert_int_equal(phi_local_groups_of(path, "dora", 1, &v, &n, &cap), 0);
        assert_int_equal(n, 2);
        assert_string_equal(v[0], "ops");
        assert_string_equal(v[1], "web");
        phi_strv_free(v, n);
        assert_int_equal(unlink(path), 0);
}

static atomic_bool stop;

static void *loader(void *arg) {
        (void) arg;
        while (!atomic_load(&stop)) {
                struct phi_local_db db;
                if (phi_local_users_load(passwd_path, &db) == 0)
                        phi_local_db_clear(&db);
                if (phi_local_groups_load(group_path, &db) == 0)
                        phi_local_db_clear(&db);
        }
        return NULL;
}

/* The caller's name must be its own while another thread reads the same
 * files: with the non-reentrant readers the name could be copied out of a
 * buffer the other thread had just refilled, and roles are judged by name. */
static void test_concurrent_identity(void **state) {
        pthread_t threads[2];
        unsigned wrong = 0, wrong_role = 0;

        (void) state;
        atomic_store(&stop, false);
        for (size_t t = 0; t < 2; t++)
                assert_int_equal(pthread_create(&threads[t], NULL, loader, NULL), 0);
        for (int i = 0; i < 3000; i++) {
                int k = 1 + i % USERS;
                char expect[16], *name = NULL;
                gid_t gid = 0;

                snprintf(expect, sizeof(expect), "local%04d", k);
                if (phi_local_user_by_uid(passwd_path, (uid_t) (1000 + k), &name, &gid) != 0 ||
                    strcmp(name, expect) != 0 || gid != (gid_t) (1000 + k))
                        wrong++;
                free(name);
                if (k != 7 && phi_local_group_has_member(group_path, "phi-admins", expect, (gid_t) (1000 + k)))
                        wrong_role++;
        }
        atomic_store(&stop, true);
        for (size_t t = 0; t < 2; t++)
                pthread_join(threads[t], NULL);
        assert_int_equal(wrong, 0);
        assert_int_equal(wrong_role, 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_load),
                cmocka_unit_test(test_missing_file),
                cmocka_unit_test(test_lookups),
                cmocka_unit_test(test_user_get),
                cmocka_unit_test(test_concurrent_identity),
                cmocka_unit_test(test_changes_seen),
                cmocka_unit_test(test_group_changes_seen),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}

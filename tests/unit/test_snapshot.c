/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Snapshot writer and reader: what the builder accepts, that everything written
 * is found again by every index, and that replacing the file marks the old one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>

#include "phi/snapshot.h"

static phi_snapshot_builder *new_builder(void) {
        phi_snapshot_builder *b = NULL;

        assert_int_equal(phi_snapshot_builder_new(&b), 0);
        return b;
}

/* Encodes and opens; the buffer is handed back for freeing. */
static uint8_t *encode_open(phi_snapshot_builder *b, phi_snapshot *s) {
        uint8_t *data = NULL;
        size_t size = 0;

        assert_int_equal(phi_snapshot_encode(b, 7, 1700000000, &data, &size), 0);
        assert_int_equal(phi_snapshot_open_buffer(s, data, size), 0);
        assert_int_equal(phi_snapshot_verify(s), 0);
        return data;
}

static void test_builder_refuses(void **state) {
        _cleanup_snapshot_builder_ phi_snapshot_builder *b = new_builder();

        (void) state;
        assert_int_equal(phi_snapshot_add_user(b, "alice", 1001, 1001, "Alice", "/home/alice", "/bin/sh"), 0);
        /* Names as phi_name_valid() has them, and never root. */
        assert_int_equal(phi_snapshot_add_user(b, "al:ice", 1002, 1, "", "/", "/bin/sh"), -EINVAL);
        assert_int_equal(phi_snapshot_add_user(b, "", 1002, 1, "", "/", "/bin/sh"), -EINVAL);
        assert_int_equal(phi_snapshot_add_user(b, "1234", 1002, 1, "", "/", "/bin/sh"), -EINVAL);
        assert_int_equal(phi_snapshot_add_user(b, "root", 1002, 1, "", "/", "/bin/sh"), -EINVAL);
        /* Fields that would break getent's line format. */
        assert_int_equal(phi_snapshot_add_user(b, "bob", 1002, 1, "a:b", "/", "/bin/sh"), -EINVAL);
        assert_int_equal(phi_snapshot_add_user(b, "bob", 1002, 1, "a\nb", "/", "/bin/sh"), -EINVAL);
        assert_int_equal(phi_snapshot_add_user(b, "bob", 1002, 1, "", "/x:y", "/bin/sh"), -EINVAL);
        assert_int_equal(phi_snapshot_add_user(b, "bob", 1002, 1, "\xff", "/", "/bin/sh"), -EINVAL);
        /* Ids 0 and -1. */
        assert_int_equal(phi_snapshot_add_user(b, "bob", 0, 1, "", "/", "/bin/sh"), -EINVAL);
        assert_int_equal(phi_snapshot_add_user(b, "bob", 1002, 0, "", "/", "/bin/sh"), -EINVAL);
        assert_int_equal(phi_snapshot_add_user(b, "bob", UINT32_MAX, 1, "", "/", "/bin/sh"), -EINVAL);
        /* Duplicates by name or by id. */
        assert_int_equal(phi_snapshot_add_user(b, "alice", 1002, 1002, "", "/", "/bin/sh"), -EEXIST);
        assert_int_equal(phi_snapshot_add_user(b, "bob", 1001, 1002, "", "/", "/bin/sh"), -EEXIST);
        /* A primary gid below min_gid (1000 by default): 27 is sudo's group. */
        assert_int_equal(phi_snapshot_add_user(b, "mallory", 5000, 27, "", "/", "/bin/sh"), -EINVAL);
        assert_int_equal(phi_snapshot_add_user(b, "mallory", 5000, 999, "", "/", "/bin/sh"), -EINVAL);
        assert_int_equal(phi_snapshot_add_user(b, "bob", 1002, 1002, "Bob Ünïcode", "/home/bob", ""), 0);

        assert_int_equal(phi_snapshot_add_group(b, "staff", 5000), 0);
        assert_int_equal(phi_snapshot_add_group(b, "staff", 5001), -EEXIST);
        assert_int_equal(phi_snapshot_add_group(b, "other", 5000), -EEXIST);
        assert_int_equal(phi_snapshot_add_group(b, "root", 5002), -EINVAL);
        assert_int_equal(phi_snapshot_add_group(b, "zero", 0), -EINVAL);
        assert_int_equal(phi_snapshot_add_member(b, "staff", "bad name", 0), -EINVAL);
        assert_int_equal(phi_snapshot_builder_set_min_ids(b, 0, 1000), -EINVAL);
        assert_int_equal(phi_snapshot_builder_set_min_ids(b, 1000, 0), -EINVAL);
}

/* The low primary gids an admin allows travel in the header; the writer holds
 * users to them, and the reader reads them back. */
static void test_primary_gids(void **state) {
        _cleanup_snapshot_builder_ phi_snapshot_builder *b = new_builder();
        _cleanup_free_ uint8_t *data = NULL;
        static const gid_t users_gid[] = { 100 }, zero[] = { 0 }, twice[] = { 100, 100 },
                           nine[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
        size_t size = 0;
        phi_snapshot s;

        (void) state;
        assert_int_equal(phi_snapshot_builder_set_primary_gids(b, zero, 1), -EINVAL);
        assert_int_equal(phi_snapshot_builder_set_primary_gids(b, twice, 2), -EINVAL);
        assert_int_equal(phi_snapshot_builder_set_primary_gids(b, nine, 9), -E2BIG);
        assert_int_equal(phi_snapshot_add_user(b, "carol", 1003, 100, "", "/", "/bin/sh"), -EINVAL);
        assert_int_equal(phi_snapshot_builder_set_primary_gids(b, users_gid, 1), 0);
        assert_int_equal(phi_snapshot_add_user(b, "carol", 1003, 100, "", "/", "/bin/sh"), 0);
        assert_int_equal(phi_snapshot_add_user(b, "mallory", 5000, 27, "", "/", "/bin/sh"), -EINVAL);
        data = encode_open(b, &s);
        assert_int_equal(s.n_primary_gids, 1);
        assert_int_equal(s.primary_gids[0], 100);
        assert_true(phi_snapshot_primary_gid_allowed(&s, 100));
        assert_true(phi_snapshot_primary_gid_allowed(&s, 1000));
        assert_false(phi_snapshot_primary_gid_allowed(&s, 27));
        assert_false(phi_snapshot_primary_gid_allowed(&s, 0));
        assert_false(phi_snapshot_primary_gid_allowed(&s, (gid_t) -1));
        free(data);
        data = NULL;

        /* Bounds changed after the users were added: the file is refused, not
         * written with a user it forbids. So is a listed gid not below min_gid. */
        assert_int_equal(phi_snapshot_builder_set_primary_gids(b, NULL, 0), 0);
        assert_int_equal(phi_snapshot_encode(b, 1, 1, &data, &size), -EINVAL);
        assert_int_equal(phi_snapshot_builder_set_primary_gids(b, users_gid, 1), 0);
        assert_int_equal(phi_snapshot_builder_set_min_ids(b, 1000, 100), 0);
        assert_int_equal(phi_snapshot_encode(b, 1, 1, &data, &size), -EINVAL);
        assert_null(data);
}

static void test_round_trip(void **state) {
        _cleanup_snapshot_builder_ phi_snapshot_builder *b = new_builder();
        _cleanup_free_ uint8_t *data = NULL;
        struct phi_snapshot_user u;
        struct phi_snapshot_group g;
        struct phi_snapshot_memberof m;
        struct phi_snapshot_str name;
        uint64_t expires;
        gid_t gid;
        phi_snapshot s;

        (void) state;
        assert_int_equal(phi_snapshot_builder_set_min_ids(b, 500, 600), 0);
        assert_int_equal(phi_snapshot_add_user(b, "alice", 1001, 5000, "Alice A.", "/home/alice", "/bin/bash"), 0);
        assert_int_equal(phi_snapshot_add_user(b, "bob", 1002, 5000, "", "/home/bob", "/bin/bash"), 0);
        /* Members may be added before their group. */
        assert_int_equal(phi_snapshot_add_member(b, "dba", "alice", 1800000000), 0);
        assert_int_equal(phi_snapshot_add_group(b, "staff", 5000), 0);
        assert_int_equal(phi_snapshot_add_group(b, "dba", 5001), 0);
        assert_int_equal(phi_snapshot_add_group(b, "empty", 5002), 0);
        assert_int_equal(phi_snapshot_add_member(b, "staff", "alice", 0), 0);
        assert_int_equal(phi_snapshot_add_member(b, "staff", "bob", 0), 0);
        /* A local user listed in a directory group. */
        assert_int_equal(phi_snapshot_add_member(b, "staff", "localuser", 0), 0);
        /* Repeats merge: permanent wins over an expiry, later expiry over earlier. */
        assert_int_equal(phi_snapshot_add_member(b, "staff", "bob", 1700000100), 0);
        assert_int_equal(phi_snapshot_add_member(b, "dba", "alice", 1700000000), 0);
        assert_int_equal(phi_snapshot_add_member(b, "dba", "bob", 1700000000), 0);
        assert_int_equal(phi_snapshot_add_member(b, "dba", "bob", 0), 0);
        data = encode_open(b, &s);

        assert_int_equal(s.generation, 7);
        assert_int_equal(s.created, 1700000000);
        assert_int_equal(s.min_uid, 500);
        assert_int_equal(s.min_gid, 600);
        assert_int_equal(s.n_users, 2);
        assert_int_equal(s.n_groups, 3);
        assert_int_equal(s.n_members, 5);
        assert_false(phi_snapshot_superseded(&s));

        assert_int_equal(phi_snapshot_user_by_name(&s, "alice", &u), 0);
        assert_int_equal(u.uid, 1001);
        assert_int_equal(u.gid, 5000);
        assert_string_equal(u.name.s, "alice");
        assert_string_equal(u.gecos.s, "Alice A.");
        assert_string_equal(u.home.s, "/home/alice");
        assert_string_equal(u.shell.s, "/bin/bash");
        assert_int_equal(u.gecos.len, 8);
        assert_int_equal(phi_snapshot_user_by_uid(&s, 1002, &u), 0);
        assert_string_equal(u.name.s, "bob");
        assert_string_equal(u.gecos.s, "");
        assert_int_equal(phi_snapshot_user_by_name(&s, "carol", &u), -ENOENT);
        assert_int_equal(phi_snapshot_user_by_name(&s, "alic", &u), -ENOENT);
        assert_int_equal(phi_snapshot_user_by_name(&s, "", &u), -ENOENT);
        assert_int_equal(phi_snapshot_user_by_uid(&s, 1003, &u), -ENOENT);
        assert_int_equal(phi_snapshot_user_at(&s, 0, &u), 0);
        assert_string_equal(u.name.s, "alice");
        assert_int_equal(phi_snapshot_user_at(&s, 2, &u), -ENOENT);

        assert_int_equal(phi_snapshot_group_by_name(&s, "staff", &g), 0);
        assert_int_equal(g.gid, 5000);
        assert_int_equal(g.n_members, 3);
        assert_int_equal(phi_snapshot_group_member(&s, &g, 0, &name, &expires), 0);
        assert_string_equal(name.s, "alice");
        assert_int_equal(expires, 0);
        assert_int_equal(phi_snapshot_group_member(&s, &g, 1, &name, &expires), 0);
        assert_string_equal(name.s, "bob");
        assert_int_equal(expires, 0);
        assert_int_equal(phi_snapshot_group_member(&s, &g, 2, &name, &expires), 0);
        assert_string_equal(name.s, "localuser");
        assert_int_equal(phi_snapshot_group_member(&s, &g, 3, &name, &expires), -ENOENT);
        assert_int_equal(phi_snapshot_group_by_gid(&s, 5001, &g), 0);
        assert_string_equal(g.name.s, "dba");
        assert_int_equal(g.n_members, 2);
        assert_int_equal(phi_snapshot_group_member(&s, &g, 0, &name, &expires), 0);
        assert_string_equal(name.s, "alice");
        assert_true(expires == 1800000000);
        assert_int_equal(phi_snapshot_group_member(&s, &g, 1, &name, &expires), 0);
        assert_string_equal(name.s, "bob");
        assert_int_equal(expires, 0);
        assert_int_equal(phi_snapshot_group_by_gid(&s, 5002, &g), 0);
        assert_int_equal(g.n_members, 0);
        assert_int_equal(phi_snapshot_group_by_gid(&s, 5003, &g), -ENOENT);
        assert_int_equal(phi_snapshot_group_by_name(&s, "alice", &g), -ENOENT);

        /* The user -> groups index, in group order, with each membership's expiry. */
        assert_int_equal(phi_snapshot_memberof_by_name(&s, "alice", &m), 0);
        assert_int_equal(m.count, 2);
        assert_int_equal(phi_snapshot_memberof_at(&s, &m, 0, &gid, &expires), 0);
        assert_int_equal(gid, 5000);
        assert_int_equal(expires, 0);
        assert_int_equal(phi_snapshot_memberof_at(&s, &m, 1, &gid, &expires), 0);
        assert_int_equal(gid, 5001);
        assert_true(expires == 1800000000);
        assert_int_equal(phi_snapshot_memberof_at(&s, &m, 2, &gid, &expires), -ENOENT);
        assert_int_equal(phi_snapshot_memberof_by_name(&s, "localuser", &m), 0);
        assert_int_equal(m.count, 1);
        assert_int_equal(phi_snapshot_memberof_by_name(&s, "nobody", &m), -ENOENT);

        assert_true(phi_snapshot_membership_live(0, UINT64_MAX));
        assert_true(phi_snapshot_membership_live(1800000000, 1799999999));
        assert_false(phi_snapshot_membership_live(1800000000, 1800000000));
}

static void test_unknown_group(void **state) {
        _cleanup_snapshot_builder_ phi_snapshot_builder *b = new_builder();
        uint8_t *data = NULL;
        size_t size = 0;

        (void) state;
        assert_int_equal(phi_snapshot_add_member(b, "ghost", "alice", 0), 0);
        assert_int_equal(phi_snapshot_encode(b, 1, 1, &data, &size), -ENOENT);
        assert_null(data);
}

static void test_empty(void **state) {
        _cleanup_snapshot_builder_ phi_snapshot_builder *b = new_builder();
        _cleanup_free_ uint8_t *data = NULL;
        struct phi_snapshot_user u;
        struct phi_snapshot_group g;
        struct phi_snapshot_memberof m;
        phi_snapshot s;

        (void) state;
        data = encode_open(b, &s);
        assert_int_equal(s.n_users, 0);
        assert_int_equal(phi_snapshot_user_by_name(&s, "alice", &u), -ENOENT);
        assert_int_equal(phi_snapshot_user_by_uid(&s, 1000, &u), -ENOENT);
        assert_int_equal(phi_snapshot_group_by_gid(&s, 1000, &g), -ENOENT);
        assert_int_equal(phi_snapshot_memberof_by_name(&s, "alice", &m), -ENOENT);
        assert_int_equal(phi_snapshot_user_at(&s, 0, &u), -ENOENT);
}

/* The sizes the issue names: 10,000 users, and one user in 2,000 groups. */
static void test_large(void **state) {
        _cleanup_snapshot_builder_ phi_snapshot_builder *b = new_builder();
        _cleanup_free_ uint8_t *data = NULL;
        struct phi_snapshot_memberof m;
        struct phi_snapshot_group g;
        phi_snapshot s;
        char name[64], home[80];

        (void) state;
        for (unsigned i = 1; i <= 10000; i++) {
                snprintf(name, sizeof(name), "user%05u", i);
                snprintf(home, sizeof(home), "/home/%s", name);
                assert_int_equal(phi_snapshot_add_user(b, name, 10000 + i, 20001, name, home, "/bin/bash"), 0);
        }
        assert_int_equal(phi_snapshot_add_user(b, "biguser", 9999, 20001, "", "/home/biguser", "/bin/bash"), 0);
        for (unsigned j = 1; j <= 2000; j++) {
                snprintf(name, sizeof(name), "grp%05u", j);
                assert_int_equal(phi_snapshot_add_group(b, name, 20000 + j), 0);
                assert_int_equal(phi_snapshot_add_member(b, name, "biguser", 0), 0);
                for (unsigned t = 0; t < 5; t++) {
                        char user[64];
                        snprintf(user, sizeof(user), "user%05u", ((j - 1) * 5 + t) % 10000 + 1);
                        assert_int_equal(phi_snapshot_add_member(b, name, user, 0), 0);
                }
        }
        data = encode_open(b, &s);
        assert_int_equal(s.n_users, 10001);
        for (unsigned i = 1; i <= 10000; i++) {
                struct phi_snapshot_user u;
                snprintf(name, sizeof(name), "user%05u", i);
                assert_int_equal(phi_snapshot_user_by_name(&s, name, &u), 0);
                assert_int_equal(u.uid, 10000 + i);
                assert_int_equal(phi_snapshot_user_by_uid(&s, 10000 + i, &u), 0);
                assert_string_equal(u.name.s, name);
        }
        assert_int_equal(phi_snapshot_memberof_by_name(&s, "biguser", &m), 0);
        assert_int_equal(m.count, 2000);
        for (uint32_t k = 0; k < m.count; k++) {
                gid_t gid;
                uint64_t expires;
                assert_int_equal(phi_snapshot_memberof_at(&s, &m, k, &gid, &expires), 0);
                assert_int_equal(gid, 20001 + k);
        }
        assert_int_equal(phi_snapshot_group_by_name(&s, "grp02000", &g), 0);
        assert_int_equal(g.gid, 22000);
        assert_int_equal(g.n_members, 6);
}

static char tmpdir[PATH_MAX];

static int make_tmpdir(void **state) {
        (void) state;
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/phi-snapshot-XXXXXX");
        return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state) {
        char cmd[PATH_MAX + 16];

        (void) state;
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        return system(cmd) == 0 ? 0 : -1;
}

/* Replacing the file marks the old one for every process that still maps it. */
static void test_write_replace(void **state) {
        _cleanup_snapshot_builder_ phi_snapshot_builder *b1 = new_builder(), *b2 = new_builder();
        phi_snapshot old, cur;
        struct phi_snapshot_user u;
        struct stat sb;
        char path[PATH_MAX + 32];
        dev_t dev1, dev2;
        ino_t ino1, ino2;

        (void) state;
        snprintf(path, sizeof(path), "%s/nss.snapshot", tmpdir);
        assert_int_equal(phi_snapshot_add_user(b1, "alice", 1001, 1001, "", "/home/alice", "/bin/sh"), 0);
        assert_int_equal(phi_snapshot_write(b1, path, 1), 0);
        assert_int_equal(stat(path, &sb), 0);
        assert_int_equal(sb.st_mode & 07777, 0644);
        assert_int_equal(phi_snapshot_map(path, &old, &dev1, &ino1), 0);
        assert_int_equal(old.generation, 1);
        assert_false(phi_snapshot_superseded(&old));

        assert_int_equal(phi_snapshot_add_user(b2, "bob", 1002, 1002, "", "/home/bob", "/bin/sh"), 0);
        assert_int_equal(phi_snapshot_write(b2, path, 2), 0);
        assert_true(phi_snapshot_superseded(&old));
        /* The old mapping still answers with the old data until it is dropped. */
        assert_int_equal(phi_snapshot_user_by_name(&old, "alice", &u), 0);
        assert_int_equal(phi_snapshot_map(path, &cur, &dev2, &ino2), 0);
        assert_true(ino1 != ino2 || dev1 != dev2);
        assert_int_equal(cur.generation, 2);
        assert_false(phi_snapshot_superseded(&cur));
        assert_int_equal(phi_snapshot_user_by_name(&cur, "alice", &u), -ENOENT);
        assert_int_equal(phi_snapshot_user_by_name(&cur, "bob", &u), 0);
        assert_int_equal(phi_snapshot_verify(&cur), 0);
        phi_snapshot_unmap(&old);
        phi_snapshot_unmap(&cur);

        /* No temp file left behind. */
        {
                char cmd[PATH_MAX + 64];
                snprintf(cmd, sizeof(cmd), "test $(ls -A '%s' | wc -l) = 1", tmpdir);
                assert_int_equal(system(cmd), 0);
        }
        /* A failed write leaves the file in place. */
        snprintf(path, sizeof(path), "%s/missing-dir/nss.snapshot", tmpdir);
        assert_int_equal(phi_snapshot_write(b2, path, 3), -ENOENT);
}

/* Files anyone but root (or the reader) may write are refused: they decide
 * who everyone is. */
static void test_map_refuses(void **state) {
        _cleanup_snapshot_builder_ phi_snapshot_builder *b = new_builder();
        char path[PATH_MAX + 32];
        phi_snapshot s;

        (void) state;
        snprintf(path, sizeof(path), "%s/perm.snapshot", tmpdir);
        assert_int_equal(phi_snapshot_write(b, path, 1), 0);
        assert_int_equal(chmod(path, 0664), 0);
        assert_int_equal(phi_snapshot_map(path, &s, NULL, NULL), -EPERM);
        assert_int_equal(chmod(path, 0644), 0);
        assert_int_equal(phi_snapshot_map(path, &s, NULL, NULL), 0);
        phi_snapshot_unmap(&s);
        assert_int_equal(phi_snapshot_map(tmpdir, &s, NULL, NULL), -EPERM);
        /* Owned by another user: that user could rewrite it. */
        if (geteuid() == 0) {
                assert_int_equal(chown(path, 65534, 65534), 0);
                assert_int_equal(phi_snapshot_map(path, &s, NULL, NULL), -EPERM);
                assert_int_equal(chown(path, 0, 0), 0);
                assert_int_equal(phi_snapshot_map(path, &s, NULL, NULL), 0);
                phi_snapshot_unmap(&s);
        }
        snprintf(path, sizeof(path), "%s/none", tmpdir);
        assert_int_equal(phi_snapshot_map(path, &s, NULL, NULL), -ENOENT);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_builder_refuses),
                cmocka_unit_test(test_primary_gids),
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_unknown_group),
                cmocka_unit_test(test_empty),
                cmocka_unit_test(test_large),
                cmocka_unit_test(test_write_replace),
                cmocka_unit_test(test_map_refuses),
        };
        return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* phiaccessd's side of the grants snapshot (grants_publish.h): the file lands
 * beside the configured identity snapshot, with the configured floor; a role's
 * group's gid is read from the host's group file, lines of any length. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>

#include "grants_publish.h"

static void test_publish(void **state) {
        char dir[] = "/tmp/phi-grants-publish.XXXXXX", snap[64], group[64], path[PATH_MAX];
        struct phi_config c = { 0 };
        struct phi_grant_entry e = { "phi-dba", 30000, "alice", 1900000000, 42 };
        struct phi_grants_group_view gr;
        struct phi_grant_view v;
        phi_grants g;
        gid_t gid = 0;
        FILE *f;

        (void) state;
        assert_non_null(mkdtemp(dir));
        snprintf(snap, sizeof(snap), "%s/nss.snapshot", dir);
        snprintf(group, sizeof(group), "%s/group", dir);
        c.snapshot_path = snap;
        c.group_file = group;
        c.min_gid = 1000;

        assert_int_equal(phi_grants_publish_path(&c, path, sizeof(path)), 0);
        assert_true(strncmp(path, dir, strlen(dir)) == 0);
        assert_string_equal(path + strlen(dir), "/grants.snapshot");

        /* Start-up: no grants; then one. */
        assert_int_equal(phi_grants_publish(&c, NULL, 0, 1), 0);
        assert_int_equal(phi_grants_map(path, &g, NULL, NULL), 0);
        assert_int_equal(g.n_grants, 0);
        assert_int_equal(phi_grants_publish(&c, &e, 1, 2), 0);
        assert_true(phi_grants_superseded(&g));
        phi_grants_unmap(&g);
        assert_int_equal(phi_grants_map(path, &g, NULL, NULL), 0);
        assert_int_equal(g.generation, 2);
        assert_int_equal(g.min_gid, 1000);
        assert_int_equal(phi_grants_group_by_name(&g, "phi-dba", &gr), 0);
        assert_int_equal(phi_grants_group_grant(&g, &gr, 0, &v), 0);
        assert_string_equal(v.user.s, "alice");
        assert_int_equal(v.request_id, 42);
        phi_grants_unmap(&g);

        /* The configured floor holds: a system group cannot be granted. */
        e.gid = 27;
        assert_int_equal(phi_grants_publish(&c, &e, 1, 3), -EINVAL);
        c.min_gid = 0;
        assert_int_equal(phi_grants_publish(&c, NULL, 0, 3), -EINVAL);

        /* The local gid of a role's group, after a group line far longer than
         * any first buffer. */
        assert_int_equal(phi_grants_local_gid(&c, "phi-dba", &gid), -ENOENT);
        f = fopen(group, "we");
        assert_non_null(f);
        fprintf(f, "root:x:0:\nbig:x:2000:");
        for (int i = 0; i < 3000; i++)
                fprintf(f, "%suser%05d", i ? "," : "", i);
        fprintf(f, "\nphi-dba:x:30000:opsadmin\n");
        assert_int_equal(fclose(f), 0);
        assert_int_equal(phi_grants_local_gid(&c, "phi-dba", &gid), 0);
        assert_int_equal(gid, 30000);
        assert_int_equal(phi_grants_local_gid(&c, "big", &gid), 0);
        assert_int_equal(gid, 2000);
        assert_int_equal(phi_grants_local_gid(&c, "phi-ops", &gid), -ENOENT);

        assert_int_equal(unlink(path), 0);
        assert_int_equal(unlink(group), 0);
        assert_int_equal(rmdir(dir), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_publish),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

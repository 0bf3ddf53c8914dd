/* SPDX-License-Identifier: GPL-2.0-or-later */
/* phiaccessd's side of the grants snapshot (grants_publish.h): the file lands
 * beside the configured identity snapshot, with the configured floor; a role's
 * group's gid is read from the host's group file, lines of any length. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <signal.h>
#include <sys/resource.h>
#include <limits.h>
#include <stdio.h>

#include "grants_publish.h"
#include "phi/policy.h"
#include "store.h"

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

        /* The configured floor holds: a system group cannot be granted; and a
         * list that cannot be published takes the old one with it (it may
         * hold a grant just revoked): no grants until the next success. */
        e.gid = 27;
        assert_int_equal(phi_grants_publish(&c, &e, 1, 3), -EINVAL);
        assert_int_equal(phi_grants_map(path, &g, NULL, NULL), -ENOENT);
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

        assert_int_equal(unlink(group), 0);
        assert_int_equal(rmdir(dir), 0);
}

static struct phi_elev_request active(const char *id, const char *role, const char *group, const char *user,
                                      enum phi_elev_state state, uint64_t expires) {
        struct phi_elev_request r = { .state = state, .duration = 600, .created = 1000, .starts = 1000,
                                      .expires = expires, .approvals_needed = 1, .approvals = 1 };

        snprintf(r.id, sizeof(r.id), "%s", id);
        snprintf(r.requester, sizeof(r.requester), "%s", user);
        snprintf(r.role, sizeof(r.role), "%s", role);
        snprintf(r.grant_group, sizeof(r.grant_group), "%s", group);
        snprintf(r.host, sizeof(r.host), "host1");
        snprintf(r.reason, sizeof(r.reason), "incident");
        return r;
}

/* From the store: the grants in force on this host, each with its group's gid
 * from the group file or the directory snapshot; what cannot be served is left
 * out and counted, and the rest is still published. */
static void test_publish_active(void **state) {
        static const char policy_text[] =
                "[role:dba]\ngrant_group = phi-dba\neligible_groups = oncall\napprover_groups = approvers\n"
                "max_duration = 4h\nhosts = *\n\n"
                "[role:ops]\ngrant_group = phi-ops\neligible_groups = oncall\napprover_groups = approvers\n"
                "max_duration = 4h\nhosts = *\n\n"
                "[role:sys]\ngrant_group = sudo\neligible_groups = oncall\napprover_groups = approvers\n"
                "max_duration = 4h\nhosts = *\n\n"
                "[role:dir]\ngrant_group = dirgroup\neligible_groups = oncall\napprover_groups = approvers\n"
                "max_duration = 4h\nhosts = *\n\n"
                "[role:dup]\ngrant_group = phi-dup\neligible_groups = oncall\napprover_groups = approvers\n"
                "max_duration = 4h\nhosts = *\n\n"
                "[role:elsewhere]\ngrant_group = phi-far\neligible_groups = oncall\napprover_groups = approvers\n"
                "max_duration = 4h\nhosts = db-*\n";
        char dir[] = "/tmp/phi-grants-active.XXXXXX", snap[64], group[64], db[64], path[PATH_MAX], line[128];
        _cleanup_store_ phi_store *store = NULL;
        _cleanup_policy_ struct phi_policy *policy = NULL;
        struct phi_policy_errors errors = { 0 };
        struct phi_grants_publish_stats st;
        struct phi_config c = { 0 };
        struct phi_grants_group_view gr;
        struct phi_grant_view v;
        phi_grants g;
        FILE *f;

        (void) state;
        assert_non_null(mkdtemp(dir));
        snprintf(snap, sizeof(snap), "%s/nss.snapshot", dir);
        snprintf(group, sizeof(group), "%s/group", dir);
        snprintf(db, sizeof(db), "%s/phi.db", dir);
        c = (struct phi_config) { .snapshot_path = snap, .group_file = group, .min_gid = 1000 };
        f = fopen(group, "we");
        assert_non_null(f);
        fprintf(f, "root:x:0:\nsudo:x:27:\nphi-dba:x:30000:opsadmin\nphi-far:x:30005:\nphi-dup:x:30000:\n");
        assert_int_equal(fclose(f), 0);
        {
                _cleanup_snapshot_builder_ phi_snapshot_builder *b = NULL;
                assert_int_equal(phi_snapshot_builder_new(&b), 0);
                assert_int_equal(phi_snapshot_add_group(b, "dirgroup", 20001), 0);
                assert_int_equal(phi_snapshot_write(b, snap, 1), 0);
        }
        if (phi_policy_parse(policy_text, sizeof(policy_text) - 1, "policy", &policy, &errors) < 0) {
                phi_policy_errors_print(&errors, stderr);
                fail();
        }
        assert_int_equal(phi_store_open("sqlite", db, PHI_IDENTITIES_NONE, &store), 0);

        {
                const struct phi_elev_request reqs[] = {
                        active("00000000000a", "dba", "phi-dba", "alice", PHI_ELEV_ACTIVE, 5000),
                        active("00000000000b", "dba", "phi-dba", "bob", PHI_ELEV_ACTIVE, 1500),   /* over at 2000 */
                        active("00000000000c", "ops", "phi-ops", "carol", PHI_ELEV_ACTIVE, 5000), /* no gid */
                        active("00000000000d", "sys", "sudo", "dave", PHI_ELEV_ACTIVE, 5000),     /* gid 27 */
                        active("00000000000e", "dir", "dirgroup", "erin", PHI_ELEV_ACTIVE, 5000),
                        active("00000000000f", "gone", "phi-dba", "frank", PHI_ELEV_ACTIVE, 5000), /* no such role */
                        active("000000000010", "elsewhere", "phi-far", "gina", PHI_ELEV_ACTIVE, 5000),
                        active("000000000011", "dba", "phi-dba", "hank", PHI_ELEV_PENDING, 0),
                        active("ffffffffffff", "dba", "phi-dba", "ivan", PHI_ELEV_ACTIVE, 6000),
                        /* phi-dba's gid under another name: left out, the rest goes on. */
                        active("000000000012", "dup", "phi-dup", "judy", PHI_ELEV_ACTIVE, 5000),
                };
                assert_int_equal(phi_store_begin(store), 0);
                for (size_t i = 0; i < PHI_ELEMENTSOF(reqs); i++)
                        assert_int_equal(phi_store_elev_put(store, &reqs[i]), 0);
                assert_int_equal(phi_store_commit(store), 0);
        }

        {
                const struct phi_elev_ctx ctx = { .store = store, .policy = policy, .host = "host1", .now = 2000 };
                assert_int_equal(phi_grants_publish_active(&c, &ctx, &st), 0);
        }
        assert_int_equal(st.published, 3);
        assert_int_equal(st.no_gid, 1);
        assert_int_equal(st.refused, 2);
        assert_int_equal(st.over, 0);
        assert_int_equal(phi_grants_publish_path(&c, path, sizeof(path)), 0);
        assert_int_equal(phi_grants_map(path, &g, NULL, NULL), 0);
        assert_int_equal(g.generation, st.generation);
        assert_int_equal(g.n_grants, 3);
        assert_int_equal(phi_grants_group_by_name(&g, "phi-dba", &gr), 0);
        assert_int_equal(gr.gid, 30000);
        assert_int_equal(gr.count, 2);
        assert_int_equal(phi_grants_group_grant(&g, &gr, 0, &v), 0);
        snprintf(line, sizeof(line), "%s:%" PRIu64 ":%012" PRIx64, v.user.s, v.expires, v.request_id);
        assert_string_equal(line, "alice:5000:00000000000a");
        assert_int_equal(phi_grants_group_grant(&g, &gr, 1, &v), 0);
        snprintf(line, sizeof(line), "%s:%" PRIu64 ":%012" PRIx64, v.user.s, v.expires, v.request_id);
        assert_string_equal(line, "ivan:6000:ffffffffffff");
        assert_int_equal(phi_grants_group_by_name(&g, "dirgroup", &gr), 0);
        assert_int_equal(gr.gid, 20001);
        phi_grants_unmap(&g);

        /* Each publication a newer generation. */
        {
                const struct phi_elev_ctx ctx = { .store = store, .policy = policy, .host = "host1", .now = 5500 };
                uint64_t before = st.generation;
                assert_int_equal(phi_grants_publish_active(&c, &ctx, &st), 0);
                assert_true(st.generation > before);
                assert_int_equal(st.published, 1);   /* ivan's only */
        }
        /* A publication that fails (here: no file may grow past 100 bytes)
         * removes the file in place rather than leave a revoked grant in it;
         * a reader that had it mapped sees it superseded. */
        {
                const struct phi_elev_ctx ctx = { .store = store, .policy = policy, .host = "host1", .now = 5500 };
                struct rlimit old_limit, small;
                phi_grants mapped;
                assert_int_equal(phi_grants_map(path, &mapped, NULL, NULL), 0);
                assert_int_equal(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
                small = (struct rlimit) { 100, old_limit.rlim_max };   /* the soft limit only */
                assert_ptr_not_equal(signal(SIGXFSZ, SIG_IGN), SIG_ERR);
                assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
                assert_int_equal(phi_grants_publish_active(&c, &ctx, &st), -EFBIG);
                assert_int_equal(setrlimit(RLIMIT_FSIZE, &old_limit), 0);
                assert_true(phi_grants_superseded(&mapped));
                phi_grants_unmap(&mapped);
                assert_int_equal(phi_grants_map(path, &mapped, NULL, NULL), -ENOENT);
                /* And the next one that succeeds puts the list back. */
                assert_int_equal(phi_grants_publish_active(&c, &ctx, &st), 0);
                assert_int_equal(phi_grants_map(path, &mapped, NULL, NULL), 0);
                assert_int_equal(mapped.n_grants, 1);
                phi_grants_unmap(&mapped);
        }
        phi_store_free(PHI_TAKE_PTR(store));
        {
                char cmd[128];
                snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
                assert_int_equal(system(cmd), 0);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_publish),
                cmocka_unit_test(test_publish_active),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

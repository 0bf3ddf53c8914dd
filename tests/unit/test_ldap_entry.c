/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Directory entries are validated before anything is stored. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ldap_entry.h"

static struct phi_config *config;
static struct phi_ldap_scope scope;

#define V(s) { s, sizeof(s) - 1 }
#define ATTR(name, ...)                                                                        \
        { name, (const struct phi_ldap_value[]){ __VA_ARGS__ },                                 \
          sizeof((const struct phi_ldap_value[]){ __VA_ARGS__ }) / sizeof(struct phi_ldap_value) }

static int setup(void **state) {
        struct phi_config_errors e = { 0 };

        (void) state;
        if (phi_config_load_string("t",
                                   "[ldap]\nuri = ldap://127.0.0.1\nbase = dc=example,dc=org\n"
                                   "user_base = ou=people,dc=example,dc=org\n"
                                   "group_base = ou=groups,dc=example,dc=org\ntls = none\n",
                                   &config, &e) < 0)
                return -1;
        return phi_ldap_scope_init(config, &scope);
}

static int teardown(void **state) {
        (void) state;
        phi_ldap_scope_clear(&scope);
        phi_config_unref(config);
        return 0;
}

static void test_user(void **state) {
        const struct phi_ldap_attr attrs[] = {
                ATTR("uid", V("alice")),
                ATTR("uidNumber", V("10001")),
                ATTR("GIDNUMBER", V("20001")),   /* attribute names are case-insensitive */
                ATTR("gecos", V("Alice Example")),
                ATTR("homeDirectory", V("/home/alice")),
        };
        struct phi_ldap_entry e = { "UID=alice, OU=People,dc=example,dc=org",
                                    "0A1B2C3D-0000-4000-8000-000000000001", attrs, PHI_ELEMENTSOF(attrs) };
        struct phi_user u;
        const char *reason;

        (void) state;
        assert_int_equal(phi_ldap_entry_classify(&e, config, &scope), PHI_ENTRY_USER);
        assert_int_equal(phi_ldap_entry_to_user(&e, config, &u, &reason), 0);
        assert_string_equal(u.name, "alice");
        assert_int_equal(u.uid, 10001);
        assert_int_equal(u.gid, 20001);
        assert_string_equal(u.shell, "/bin/sh");   /* loginShell is optional */
        assert_string_equal(u.dn, "uid=alice,ou=people,dc=example,dc=org");
        phi_user_clear(&u);
}

static void test_user_refused(void **state) {
        static const struct {
                const char *uid, *uid_number, *gecos, *home, *why;
        } cases[] = {
                { "alice", "999", "x", "/home/a", "below min_uid" },
                { "alice", "65534", "x", "/home/a", "nobody" },
                { "alice", "4294967295", "x", "/home/a", "(uid_t) -1" },
                { "alice", "010001", "x", "/home/a", "leading zero" },
                { "alice", "10001", "a:b", "/home/a", "colon in gecos" },
                { "alice", "10001", "a\nb", "/home/a", "newline in gecos" },
                { "alice", "10001", "x", "home/a", "relative home" },
                { "al ice", "10001", "x", "/home/a", "space in name" },
                { "123", "10001", "x", "/home/a", "numeric name" },
                { "averyveryveryveryverylongusername1", "10001", "x", "/home/a", "name too long" },
        };
        (void) state;
        for (size_t i = 0; i < PHI_ELEMENTSOF(cases); i++) {
                struct phi_ldap_value uid = { cases[i].uid, strlen(cases[i].uid) };
                struct phi_ldap_value num = { cases[i].uid_number, strlen(cases[i].uid_number) };
                struct phi_ldap_value gecos = { cases[i].gecos, strlen(cases[i].gecos) };
                struct phi_ldap_value home = { cases[i].home, strlen(cases[i].home) };
                const struct phi_ldap_value gid = V("20001");
                const struct phi_ldap_attr attrs[] = {
                        { "uid", &uid, 1 }, { "uidNumber", &num, 1 }, { "gidNumber", &gid, 1 },
                        { "gecos", &gecos, 1 }, { "homeDirectory", &home, 1 },
                };
                struct phi_ldap_entry e = { "uid=x,ou=people,dc=example,dc=org", NULL, attrs,
                                            PHI_ELEMENTSOF(attrs) };
                struct phi_user u;
                const char *reason = NULL;
                int r = phi_ldap_entry_to_user(&e, config, &u, &reason);
                if (r != -EINVAL)
                        fail_msg("accepted: %s", cases[i].why);
                assert_non_null(reason);
        }
}

/* user_gid returns what phi_ldap_entry_to_user() makes of gidNumber gid under c. */
static int user_gid(const struct phi_config *c, const char *gid, uint32_t *ret_gid, const char **ret_reason) {
        struct phi_ldap_value g = { gid, strlen(gid) };
        const struct phi_ldap_attr attrs[] = {
                ATTR("uid", V("mallory")), ATTR("uidNumber", V("5000")), { "gidNumber", &g, 1 },
                ATTR("homeDirectory", V("/home/mallory")),
        };
        struct phi_ldap_entry e = { "uid=mallory,ou=people,dc=example,dc=org", NULL, attrs,
                                    PHI_ELEMENTSOF(attrs) };
        struct phi_user u;
        int r = phi_ldap_entry_to_user(&e, c, &u, ret_reason);

        if (r == 0) {
                *ret_gid = u.gid;
                phi_user_clear(&u);
        }
        return r;
}

/* A primary group below min_gid would give every login of the user a local
 * system group (27 is sudo on Debian): refused unless the admin lists it. */
static void test_primary_gid(void **state) {
        struct phi_config_errors e = { 0 };
        struct phi_config *allow = NULL;
        const char *reason = NULL;
        uint32_t gid = 0;

        (void) state;
        assert_int_equal(user_gid(config, "27", &gid, &reason), -EINVAL);
        assert_non_null(strstr(reason, "below min_gid"));
        assert_int_equal(user_gid(config, "100", &gid, &reason), -EINVAL);
        assert_int_equal(user_gid(config, "999", &gid, &reason), -EINVAL);
        assert_int_equal(user_gid(config, "0", &gid, &reason), -EINVAL);
        assert_int_equal(user_gid(config, "1000", &gid, &reason), 0);
        assert_int_equal(gid, 1000);

        assert_int_equal(phi_config_load_string("t",
                                                "[ldap]\nuri = ldap://127.0.0.1\nbase = dc=example,dc=org\n"
                                                "user_base = ou=people,dc=example,dc=org\ntls = none\n"
                                                "primary_gids_allowed = 100, 50\n",
                                                &allow, &e),
                         0);
        assert_int_equal(user_gid(allow, "100", &gid, &reason), 0);
        assert_int_equal(gid, 100);
        assert_int_equal(user_gid(allow, "50", &gid, &reason), 0);
        assert_int_equal(user_gid(allow, "27", &gid, &reason), -EINVAL);
        assert_int_equal(user_gid(allow, "0", &gid, &reason), -EINVAL);
        phi_config_unref(allow);
}

static void test_two_uids(void **state) {
        const struct phi_ldap_attr attrs[] = {
                ATTR("uid", V("alias"), V("bob")),
                ATTR("uidNumber", V("10002")),
                ATTR("gidNumber", V("20001")),
                ATTR("homeDirectory", V("/home/bob")),
        };
        struct phi_ldap_entry e = { "uid=bob,ou=people,dc=example,dc=org", NULL, attrs, PHI_ELEMENTSOF(attrs) };
        struct phi_ldap_entry e2 = { "cn=Bob,ou=people,dc=example,dc=org", NULL, attrs, PHI_ELEMENTSOF(attrs) };
        struct phi_user u;
        const char *reason;

        (void) state;
        /* Several values: the one the RDN names wins; without one, the entry is refused. */
        assert_int_equal(phi_ldap_entry_to_user(&e, config, &u, &reason), 0);
        assert_string_equal(u.name, "bob");
        assert_string_equal(u.key, "dn:uid=bob,ou=people,dc=example,dc=org");
        phi_user_clear(&u);
        assert_int_equal(phi_ldap_entry_to_user(&e2, config, &u, &reason), -EINVAL);
}

static void test_group(void **state) {
        const struct phi_ldap_attr attrs[] = {
                ATTR("cn", V("Admins"), V("admins")),
                ATTR("gidNumber", V("30000")),
                ATTR("memberUid", V("alice"), V("bad name"), V("")),
                ATTR("member", V("UID=Bob,OU=People,DC=Example,DC=Org"), V("not a dn")),
        };
        struct phi_ldap_entry e = { "cn=admins,ou=groups,dc=example,dc=org", NULL, attrs, PHI_ELEMENTSOF(attrs) };
        struct phi_ldap_entry outside = { "cn=admins,ou=other,dc=example,dc=org", NULL, attrs,
                                          PHI_ELEMENTSOF(attrs) };
        struct phi_group g;
        const char *reason;
        size_t skipped = 0;

        (void) state;
        assert_int_equal(phi_ldap_entry_classify(&e, config, &scope), PHI_ENTRY_GROUP);
        assert_int_equal(phi_ldap_entry_classify(&outside, config, &scope), PHI_ENTRY_NONE);
        assert_int_equal(phi_ldap_entry_to_group(&e, config, &g, &skipped, &reason), 0);
        assert_string_equal(g.name, "admins");
        assert_int_equal(g.gid, 30000);
        assert_int_equal(g.n_member_uids, 1);
        assert_string_equal(g.member_uids[0], "alice");
        assert_int_equal(g.n_member_dns, 1);
        assert_string_equal(g.member_dns[0], "uid=bob,ou=people,dc=example,dc=org");
        assert_int_equal(skipped, 3);
        phi_group_clear(&g);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_user),
                cmocka_unit_test(test_user_refused),
                cmocka_unit_test(test_primary_gid),
                cmocka_unit_test(test_two_uids),
                cmocka_unit_test(test_group),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}

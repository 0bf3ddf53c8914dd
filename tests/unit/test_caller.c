/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Who is calling: phi_caller_identify() and phi_caller_resolve_roles() over a
 * real store and local files. A directory user whose primary gid is a local
 * group's (the admin group here has gid 27, sudo's on Debian) is not made a
 * member of it through that gid unless the configuration allows the gid as a
 * primary group: a store written before the rule may still hold such a user. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <sys/socket.h>

#include "config.h"
#include "daemon.h"
#include "dispatch.h"
#include "store.h"

static char dir[] = "/tmp/phi-test-caller.XXXXXX";

static void write_file(const char *name, const char *text) {
        char path[256];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, "we");
        assert_non_null(f);
        fputs(text, f);
        assert_int_equal(fclose(f), 0);
}

static struct phi_config *load(const char *extra) {
        struct phi_config_errors e = { 0 };
        struct phi_config *c = NULL;
        char text[1024];

        snprintf(text, sizeof(text),
                 "[ldap]\nuri = ldap://127.0.0.1:9\nbase = dc=example,dc=org\ntls = none\n%s\n"
                 "[store]\npath = %s/phi.db\n[daemon]\nsnapshot = %s/snap\nadmin_group = phi-admins\n"
                 "passwd_file = %s/passwd\ngroup_file = %s/group\n",
                 extra, dir, dir, dir, dir);
        assert_int_equal(phi_config_load_string("test", text, &c, &e), 0);
        return c;
}

static void put_user(phi_store *s, const char *name, uint32_t uid, uint32_t gid) {
        char key[64], dn[128];
        struct phi_user u = { .uid = uid, .gid = gid };

        snprintf(key, sizeof(key), "key-%s", name);
        snprintf(dn, sizeof(dn), "uid=%s,ou=people,dc=example,dc=org", name);
        u.key = strdup(key);
        u.dn = strdup(dn);
        u.name = strdup(name);
        u.gecos = strdup("");
        u.home = strdup("/home/x");
        u.shell = strdup("/bin/sh");
        assert_int_equal(phi_store_identities_begin(s), 0);
        assert_int_equal(phi_store_user_put(s, &u), 0);
        assert_int_equal(phi_store_identities_commit(s), 0);
        phi_user_clear(&u);
}

static unsigned classes_of(struct phi_daemon *d, uid_t uid, gid_t gid, gid_t *ret_user_gid) {
        struct ucred cred = { .pid = 1, .uid = uid, .gid = gid };
        struct phi_caller who;

        phi_caller_identify(d, &cred, &who);
        phi_caller_resolve_roles(d, &who);
        assert_true(who.known);
        *ret_user_gid = who.user_gid;
        return who.classes;
}

static void test_primary_gid_no_admin(void **state) {
        struct phi_daemon d = { 0 };
        char path[256];
        gid_t user_gid;

        (void) state;
        assert_non_null(mkdtemp(dir));
        write_file("passwd", "root:x:0:0::/root:/bin/sh\n");
        write_file("group", "root:x:0:\nphi-admins:x:27:\nstaff:x:1600:\n");
        snprintf(path, sizeof(path), "%s/phi.db", dir);
        assert_int_equal(phi_store_open("sqlite", path, PHI_IDENTITIES_WRITE, &d.store), 0);
        /* As an old store may hold them: gid 27, and an ordinary one. */
        put_user(d.store, "mallory", 5000, 27);
        put_user(d.store, "alice", 5001, 20001);

        d.config = load("");
        assert_false(classes_of(&d, 5000, 27, &user_gid) & PHI_CALLER_ADMIN);
        assert_int_equal(user_gid, (gid_t) -1);
        assert_false(classes_of(&d, 5001, 20001, &user_gid) & PHI_CALLER_ADMIN);
        assert_int_equal(user_gid, 20001);
        phi_config_unref(d.config);

        /* The admin lists 27 as an allowed primary group: then it counts. */
        d.config = load("primary_gids_allowed = 27");
        assert_true(classes_of(&d, 5000, 27, &user_gid) & PHI_CALLER_ADMIN);
        assert_int_equal(user_gid, 27);
        phi_config_unref(d.config);

        /* A local account keeps its own primary group, whatever its gid. */
        write_file("passwd", "root:x:0:0::/root:/bin/sh\nops:x:1700:27::/home/ops:/bin/sh\n");
        d.config = load("");
        assert_true(classes_of(&d, 1700, 27, &user_gid) & PHI_CALLER_ADMIN);
        phi_config_unref(d.config);

        phi_store_free(d.store);
        snprintf(path, sizeof(path), "rm -rf '%s'", dir);
        assert_int_equal(system(path), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_primary_gid_no_admin),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

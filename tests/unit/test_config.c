/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "config.h"

static const char minimal[] = "[ldap]\nuri = ldap://127.0.0.1:3890\nbase = dc=example,dc=org\ntls = none\n";

static bool has_error(const struct phi_config_errors *e, unsigned line, const char *needle) {
        for (size_t i = 0; i < e->n; i++)
                if (e->items[i].line == line && strstr(e->items[i].message, needle))
                        return true;
        return false;
}

static void test_defaults(void **state) {
        struct phi_config_errors e = { 0 };
        struct phi_config *c = NULL;

        (void) state;
        assert_int_equal(phi_config_load_string("t", minimal, &c, &e), 0);
        assert_int_equal(c->n_uris, 1);
        assert_string_equal(c->user_base, "dc=example,dc=org");
        assert_string_equal(c->group_base, "dc=example,dc=org");
        assert_string_equal(c->user_filter, "(objectClass=posixAccount)");
        assert_string_equal(c->attrs.member_uid, "memberUid");
        assert_int_equal(c->min_uid, 1000);
        assert_int_equal(c->shrink_threshold, 50);
        assert_int_equal(c->refresh_interval, 900);
        assert_string_equal(c->socket_path, "/run/phiaccessd/socket");
        assert_string_equal(c->admin_group, "phi-admins");
        phi_config_unref(c);
}

static void test_values(void **state) {
        static const char text[] =
                "; comment\n[ldap]\nuri = ldap://127.0.0.1:1 ldap://localhost:2\nuri = ldap://[::1]:3\n"
                "base = dc=example,dc=org\ntls = none\nshrink_threshold = 20%\nrefresh_interval = 4h\n"
                "membership = member\nsync = paged\nmin_uid = 5000\n[daemon]\nauditor_group = audit.team\n";
        struct phi_config_errors e = { 0 };
        struct phi_config *c = NULL;

        (void) state;
        assert_int_equal(phi_config_load_string("t", text, &c, &e), 0);
        assert_int_equal(c->n_uris, 3);
        assert_string_equal(c->uris[2], "ldap://[::1]:3");
        assert_int_equal(c->shrink_threshold, 20);
        assert_int_equal(c->refresh_interval, 4 * 3600);
        assert_int_equal(c->membership, PHI_MEMBERSHIP_MEMBER);
        assert_int_equal(c->sync_mode, PHI_SYNC_PAGED);
        assert_int_equal(c->min_uid, 5000);
        assert_string_equal(c->auditor_group, "audit.team");
        phi_config_unref(c);
}

/* A filter of a few hundred bytes is ordinary (a list of departments); the
 * line limit is PHI_CONFIG_MAX_LINE, not inih's 200-byte default buffer. */
static void test_long_line(void **state) {
        char text[2048], filter[1200];
        struct phi_config_errors e = { 0 };
        struct phi_config *c = NULL;
        size_t n = 0;

        (void) state;
        n += (size_t) snprintf(filter + n, sizeof(filter) - n, "(&(objectClass=posixAccount)(|");
        while (n < 1000)
                n += (size_t) snprintf(filter + n, sizeof(filter) - n, "(departmentNumber=%zu)", n);
        (void) snprintf(filter + n, sizeof(filter) - n, "))");
        (void) snprintf(text, sizeof(text), "%suser_filter = %s\n", minimal, filter);
        assert_int_equal(phi_config_load_string("t", text, &c, &e), 0);
        assert_string_equal(c->user_filter, filter);
        phi_config_unref(c);
}

static void test_errors_have_lines(void **state) {
        static const char text[] = "[ldap]\n"                            /* 1 */
                                   "uri = ldap://127.0.0.1\n"            /* 2 */
                                   "base = dc=example,dc=org\n"          /* 3 */
                                   "tls = maybe\n"                       /* 4 */
                                   "min_uid = 0\n"                       /* 5 */
                                   "shrink_threshold = 101\n"            /* 6 */
                                   "user_filter = uid=*\n"               /* 7 */
                                   "attr_uid = has space\n"              /* 8 */
                                   "base = dc=other\n"                   /* 9 */
                                   "[store]\n"                           /* 10 */
                                   "backend = postgres\n"                /* 11 */
                                   "path = relative.db\n"                /* 12 */
                                   "this line is nonsense\n";            /* 13 */
        struct phi_config_errors e = { 0 };
        struct phi_config *c = NULL;

        (void) state;
        assert_int_equal(phi_config_load_string("t", text, &c, &e), -EINVAL);
        assert_null(c);
        assert_true(has_error(&e, 4, "tls must be starttls, ldaps or none"));
        assert_true(has_error(&e, 5, "min_uid must be a whole number from 1"));
        assert_true(has_error(&e, 6, "shrink_threshold must be a percentage"));
        assert_true(has_error(&e, 7, "not a parenthesised LDAP filter"));
        assert_true(has_error(&e, 8, "not an attribute name"));
        assert_true(has_error(&e, 9, "base is set twice (first on line 3)"));
        assert_true(has_error(&e, 11, "backend 'postgres' is not available"));
        assert_true(has_error(&e, 12, "must be an absolute path"));
        assert_true(has_error(&e, 13, "syntax error"));
        phi_config_errors_clear(&e);
}

static void test_primary_gids_allowed(void **state) {
        struct phi_config_errors e = { 0 };
        struct phi_config *c = NULL;
        char text[512];

        (void) state;
        /* Not set: none allowed below min_gid. */
        assert_int_equal(phi_config_load_string("t", minimal, &c, &e), 0);
        assert_int_equal(c->n_primary_gids_allowed, 0);
        assert_false(phi_config_primary_gid_allowed(c, 100));
        assert_false(phi_config_primary_gid_allowed(c, 0));
        assert_true(phi_config_primary_gid_allowed(c, 1000));
        phi_config_unref(c);

        snprintf(text, sizeof(text), "%sprimary_gids_allowed = 100 50\n", minimal);
        assert_int_equal(phi_config_load_string("t", text, &c, &e), 0);
        assert_int_equal(c->n_primary_gids_allowed, 2);
        assert_true(phi_config_primary_gid_allowed(c, 100));
        assert_true(phi_config_primary_gid_allowed(c, 50));
        assert_false(phi_config_primary_gid_allowed(c, 27));
        phi_config_unref(c);

        /* 0 never, even listed; a gid not below min_gid, a repeat, junk, too many. */
        static const struct {
                const char *value, *needle;
        } bad[] = {
                { "0", "gid 0 is root's group" },
                { "100, 0", "gid 0 is root's group" },
                { "1000", "not below min_gid" },
                { "100 100", "listed twice" },
                { "users", "not a gid" },
                { "4294967295", "not a gid" },
                { "1 2 3 4 5 6 7 8 9", "more than 8 gids" },
                { ", ,", "needs at least one gid" },
        };
        for (size_t i = 0; i < PHI_ELEMENTSOF(bad); i++) {
                snprintf(text, sizeof(text), "%sprimary_gids_allowed = %s\n", minimal, bad[i].value);
                c = NULL;
                assert_int_equal(phi_config_load_string("t", text, &c, &e), -EINVAL);
                if (!has_error(&e, 5, bad[i].needle))
                        fail_msg("'%s': no error '%s' on line 5", bad[i].value, bad[i].needle);
                phi_config_errors_clear(&e);
        }
}

static void test_tls_rules(void **state) {
        static const char remote_plain[] = "[ldap]\nuri = ldap://ldap.example.org\nbase = dc=x\ntls = none\n";
        static const char remote_insecure[] =
                "[ldap]\nuri = ldap://ldap.example.org\nbase = dc=x\ntls = none\nallow_insecure = yes\n";
        static const char remote_default[] = "[ldap]\nuri = ldap://ldap.example.org\nbase = dc=x\n";
        struct phi_config_errors e = { 0 };
        struct phi_config *c = NULL;

        (void) state;
        assert_int_equal(phi_config_load_string("t", remote_plain, &c, &e), -EINVAL);
        assert_true(has_error(&e, 1, "tls = none with non-local uri"));
        phi_config_errors_clear(&e);
        assert_int_equal(phi_config_load_string("t", remote_insecure, &c, &e), 0);
        phi_config_unref(c);
        assert_int_equal(phi_config_load_string("t", remote_default, &c, &e), 0);
        assert_int_equal(c->tls, PHI_TLS_STARTTLS);
        phi_config_unref(c);
        assert_true(phi_config_uri_is_loopback("ldap://127.0.0.1:389"));
        assert_true(phi_config_uri_is_loopback("ldap://localhost"));
        assert_false(phi_config_uri_is_loopback("ldap://127.0.0.1.evil.example"));
        assert_false(phi_config_uri_is_loopback("ldap://ldap.example.org"));
}

/* [store] on PostgreSQL: the connection string is required, and one to a
 * TCP host must check the server's certificate; the errors name the line. */
static void test_store_postgresql(void **state) {
        static const char *const refused[][3] = {
                { "backend = postgresql\n", "5", "needs uri =" },
                { "backend = postgresql\nuri = host=db.example.org dbname=phi\n", "7", "sslmode=prefer (the default)" },
                { "backend = postgresql\nuri = host=db.example.org sslmode=require\n", "7", "sslmode=require: add" },
                { "backend = postgresql\nuri = host=/run/postgresql,db.example.org sslmode=disable\n", "7",
                  "over TCP" },
                { "backend = postgresql\nuri = hostaddr=192.0.2.7 host=/tmp\n", "7", "(hostaddr)" },
                { "backend = postgresql\nuri = postgresql://u:pw@db/phi?sslmode=bogus-pw\n", "7",
                  "(not one libpq knows)" },
                { "backend = postgresql\nuri = host=/run/postgresql\nsynchronous_commit = off\n", "8",
                  "off is refused" },
                { "uri = host=/run/postgresql\n", "6", "uri is for backend = postgresql" },
                { "backend = mysql\n", "6", "not available" },
                { "backend = postgresql\nuri = host='unterminated\n", "7", "libpq cannot read" },
        };
        static const char *const accepted[] = {
                "backend = postgresql\nuri = host=/run/postgresql dbname=phi\n",
                "backend = postgresql\nuri = dbname=phi\n",
                "backend = postgresql\nuri = host=db1,db2 sslmode=verify-full target_session_attrs=read-write\n"
                "synchronous_commit = remote_apply\n",
                "backend = postgresql\nuri = postgresql://phid@db.example.org/phi?sslmode=verify-ca\n",
        };
        struct phi_config_errors e = { 0 };
        struct phi_config *c = NULL;
        char text[1024];

        (void) state;
        for (size_t i = 0; i < PHI_ELEMENTSOF(refused); i++) {
                snprintf(text, sizeof(text), "%s[store]\n%s", minimal, refused[i][0]);
                assert_int_equal(phi_config_load_string("t", text, &c, &e), -EINVAL);
                if (!has_error(&e, (unsigned) atoi(refused[i][1]), refused[i][2]))
                        fail_msg("case %zu: no error '%s' on line %s (first: %u: %s)", i, refused[i][2],
                                 refused[i][1], e.n ? e.items[0].line : 0, e.n ? e.items[0].message : "none");
                for (size_t k = 0; k < e.n; k++)
                        assert_null(strstr(e.items[k].message, "pw"));
                phi_config_errors_clear(&e);
        }
        for (size_t i = 0; i < PHI_ELEMENTSOF(accepted); i++) {
                snprintf(text, sizeof(text), "%s[store]\n%s", minimal, accepted[i]);
                if (phi_config_load_string("t", text, &c, &e) != 0)
                        fail_msg("case %zu refused: %s", i, e.n ? e.items[0].message : "?");
                assert_string_equal(c->store_backend, "postgresql");
                phi_config_unref(c);
        }
        assert_int_equal(phi_config_load_string("t", minimal, &c, &e), 0);
        assert_string_equal(c->store_backend, "sqlite");
        assert_string_equal(c->store_uri, "");
        assert_string_equal(c->store_synchronous_commit, "on");
        phi_config_unref(c);
}

static void test_trusted_files(void **state) {
        char dir[] = "/tmp/phi-test-config.XXXXXX", path[256];
        const char *reason = NULL;
        char *pw = NULL;
        int fd;

        (void) state;
        if (geteuid() != 0)
                skip();
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/pw", dir);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "s3cret\nignored\n", 15), 15);
        close(fd);
        assert_int_equal(phi_config_read_password(path, &pw), 0);
        assert_string_equal(pw, "s3cret");
        free(pw);
        assert_int_equal(chmod(path, 0604), 0);
        assert_int_equal(phi_config_open_trusted(path, true, &reason), -EPERM);
        assert_non_null(strstr(reason, "readable by others"));
        assert_int_equal(chmod(path, 0620), 0);
        assert_int_equal(phi_config_open_trusted(path, false, &reason), -EPERM);
        assert_non_null(strstr(reason, "writable by group or others"));
        assert_int_equal(chown(path, 65534, 0), 0);
        assert_int_equal(chmod(path, 0600), 0);
        assert_int_equal(phi_config_open_trusted(path, false, &reason), -EPERM);
        assert_non_null(strstr(reason, "not owned by root"));
        unlink(path);
        rmdir(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_values),
                cmocka_unit_test(test_long_line),
                cmocka_unit_test(test_errors_have_lines),
                cmocka_unit_test(test_primary_gids_allowed),
                cmocka_unit_test(test_tls_rules),
                cmocka_unit_test(test_trusted_files),
                cmocka_unit_test(test_store_postgresql),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

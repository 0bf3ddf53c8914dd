/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Access decisions of libphi_policy: every rule kind, deny over allow, host
 * patterns, unknown users, every refusal of an access question, the shipped
 * policies, and the name index agreeing with a scan of every rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>

#include <fnmatch.h>
#include <locale.h>

#include "phi/policy.h"
#include "policy_internal.h"

#define NOW 1790000000   /* 2026-09-21, inside every window below but the dated ones */

static struct phi_policy *parse_ok(const char *text) {
        struct phi_policy_errors e = { 0 };
        struct phi_policy *p = NULL;
        int r = phi_policy_parse(text, strlen(text), "t.conf", &p, &e);

        if (r != 0)
                phi_policy_errors_print(&e, stderr);
        assert_int_equal(r, 0);
        assert_int_equal(e.n, 0);
        assert_non_null(p);
        return p;
}

/* Asks with both evaluators and checks that they agree in every field. */
static struct phi_policy_decision ask(const struct phi_policy *p, const char *user, uint32_t uid,
                                      const char *groups_csv, const char *service, const char *host, int64_t now) {
        struct phi_policy_decision d, lin;
        const char *groups[16];
        char buf[256];
        size_t n = 0;
        int r1, r2;

        snprintf(buf, sizeof(buf), "%s", groups_csv ? groups_csv : "");
        for (char *save = NULL, *g = strtok_r(buf, ",", &save); g && n < 16; g = strtok_r(NULL, ",", &save))
                groups[n++] = g;
        struct phi_policy_subject who = { user, uid, groups, n };
        r1 = phi_policy_check_access(p, &who, service, host, now, &d);
        r2 = phi_policy_check_access_linear(p, &who, service, host, now, &lin);
        assert_int_equal(r1, r2);
        assert_int_equal(d.allowed, lin.allowed);
        assert_int_equal(d.refusal, lin.refusal);
        assert_string_equal(d.rule, lin.rule);
        assert_string_equal(d.reason, lin.reason);
        assert_true(d.allowed == (d.refusal == PHI_POLICY_OK));
        assert_true(d.reason[0] != 0);
        return d;
}

#define assert_decision(d, ok, refusal_, rule_, reason_)        \
        do {                                                    \
                assert_int_equal((d).allowed, ok);              \
                assert_int_equal((d).refusal, refusal_);        \
                assert_string_equal((d).rule, rule_);           \
                assert_string_equal((d).reason, reason_);       \
        } while (0)

static const char rules[] =
        "[access:by-name]\n"
        "action = allow\nusers = alice\nservices = sshd\nhosts = web1\n"
        "[access:by-group]\n"
        "action = allow\ngroups = staff\nservices = sshd openvpn\nhosts = app*\n"
        "[access:by-uid]\n"
        "action = allow\nuids = 0 100-199\nservices = *\nhosts = *\n"
        "[access:everyone-vpn]\n"
        "action = allow\nusers = *\nservices = openvpn\nhosts = vpn?.example.org\n"
        "[access:contractors-deny]\n"
        "action = deny\ngroups = contractors\nservices = *\nhosts = db*\n"
        "[access:dba]\n"
        "action = allow\ngroups = dba contractors\nservices = sshd\nhosts = db[12] DB-[!x]*\n"
        "[access:summer]\n"
        "action = allow\nusers = intern\nservices = sshd\nhosts = lab1\n"
        "valid_from = 2027-06-01\nvalid_until = 2027-09-01T00:00:00Z\n"
        "[access:spring]\n"
        "action = allow\nusers = temp\nservices = sshd\nhosts = lab1\nvalid_until = 2026-04-01\n";

static void test_rule_kinds(void **state) {
        _cleanup_policy_ struct phi_policy *p = parse_ok(rules);
        struct phi_policy_decision d;

        (void) state;
        assert_int_equal(phi_policy_n_rules(p), 8);
        d = ask(p, "alice", 1000, NULL, "sshd", "web1", NOW);
        assert_decision(d, true, PHI_POLICY_OK, "by-name", "rule 'by-name' allows alice on web1 via sshd");
        d = ask(p, "bob", 1001, "users,staff", "openvpn", "app3", NOW);
        assert_decision(d, true, PHI_POLICY_OK, "by-group",
                        "rule 'by-group' allows bob (group staff) on app3 (hosts app*) via openvpn");
        d = ask(p, "root", 0, "root", "login", "anything", NOW);
        assert_decision(d, true, PHI_POLICY_OK, "by-uid", "rule 'by-uid' allows root (uid 0) on anything (hosts *) via login");
        d = ask(p, "daemon7", 150, NULL, "su", "h", NOW);
        assert_decision(d, true, PHI_POLICY_OK, "by-uid",
                        "rule 'by-uid' allows daemon7 (uid 150 in 100-199) on h (hosts *) via su");
        d = ask(p, "carol", 2000, NULL, "openvpn", "vpn1.example.org", NOW);
        assert_decision(d, true, PHI_POLICY_OK, "everyone-vpn",
                        "rule 'everyone-vpn' allows carol (every user) on vpn1.example.org (hosts vpn?.example.org) "
                        "via openvpn");
        /* the rule's service list is exact: alice by name has sshd only */
        d = ask(p, "alice", 1000, NULL, "sudo", "web1", NOW);
        assert_decision(d, false, PHI_POLICY_NO_RULE, "default-deny", "no rule allows alice on web1 via sudo");
        /* uid ranges are inclusive at both ends */
        assert_true(ask(p, "u", 199, NULL, "x", "h", NOW).allowed);
        assert_false(ask(p, "u", 200, NULL, "x", "h", NOW).allowed);
        assert_false(ask(p, "u", 99, NULL, "x", "h", NOW).allowed);
}

static void test_deny_wins(void **state) {
        _cleanup_policy_ struct phi_policy *p = parse_ok(rules);
        struct phi_policy_decision d;

        (void) state;
        /* dba (after the deny rule in the file) allows on db1; the deny rule wins anyway */
        d = ask(p, "dave", 1002, "dba", "sshd", "db1", NOW);
        assert_decision(d, true, PHI_POLICY_OK, "dba", "rule 'dba' allows dave (group dba) on db1 (hosts db[12]) via sshd");
        d = ask(p, "eve", 1003, "dba,contractors", "sshd", "db1", NOW);
        assert_decision(d, false, PHI_POLICY_DENY_RULE, "contractors-deny",
                        "rule 'contractors-deny' denies eve (group contractors) on db1 (hosts db*) via sshd");
        /* deny wins over uid 0 too: root is governed like anyone else */
        d = ask(p, "root", 0, "contractors", "sshd", "db2", NOW);
        assert_decision(d, false, PHI_POLICY_DENY_RULE, "contractors-deny",
                        "rule 'contractors-deny' denies root (group contractors) on db2 (hosts db*) via sshd");
        /* and whichever order the user's groups come in */
        d = ask(p, "eve", 1003, "contractors,dba", "sshd", "db1", NOW);
        assert_int_equal(d.refusal, PHI_POLICY_DENY_RULE);
}

static void test_deny_first_in_file(void **state) {
        static const char text[] =
                "[access:allow-all]\naction = allow\nusers = *\nservices = *\nhosts = *\n"
                "[access:deny-b]\naction = deny\ngroups = b\nservices = *\nhosts = *\n"
                "[access:deny-a]\naction = deny\nusers = x\nservices = *\nhosts = *\n";
        _cleanup_policy_ struct phi_policy *p = parse_ok(text);
        struct phi_policy_decision d;

        (void) state;
        /* two deny rules match: the one earlier in the file is named */
        d = ask(p, "x", 5000, "b", "sshd", "h", NOW);
        assert_decision(d, false, PHI_POLICY_DENY_RULE, "deny-b",
                        "rule 'deny-b' denies x (group b) on h (hosts *) via sshd");
        d = ask(p, "y", 5001, NULL, "sshd", "h", NOW);
        assert_decision(d, true, PHI_POLICY_OK, "allow-all", "rule 'allow-all' allows y (every user) on h (hosts *) via sshd");
}

static void test_host_patterns(void **state) {
        _cleanup_policy_ struct phi_policy *p = parse_ok(rules);

        (void) state;
        assert_true(ask(p, "dave", 1, "dba", "sshd", "db2", NOW).allowed);
        assert_false(ask(p, "dave", 1, "dba", "sshd", "db3", NOW).allowed);     /* [12] */
        assert_false(ask(p, "dave", 1, "dba", "sshd", "db12", NOW).allowed);
        assert_true(ask(p, "dave", 1, "dba", "sshd", "db-a", NOW).allowed);     /* DB-[!x]*, any case */
        assert_false(ask(p, "dave", 1, "dba", "sshd", "db-x1", NOW).allowed);
        assert_true(ask(p, "bob", 2, "staff", "sshd", "APP1.example.org", NOW).allowed); /* * crosses dots */
        assert_false(ask(p, "bob", 2, "staff", "sshd", "myapp1", NOW).allowed);  /* anchored */
        assert_true(ask(p, "c", 3, NULL, "openvpn", "vpn2.example.org", NOW).allowed);
        assert_false(ask(p, "c", 3, NULL, "openvpn", "vpn22.example.org", NOW).allowed); /* ? is one */
        assert_false(ask(p, "c", 3, NULL, "openvpn", "vpn2xexample.org", NOW).allowed);  /* . is literal */
        assert_false(ask(p, "alice", 4, NULL, "sshd", "web10", NOW).allowed);    /* exact name */
}

static void test_time_windows(void **state) {
        _cleanup_policy_ struct phi_policy *p = parse_ok(rules);
        struct phi_policy_decision d;

        (void) state;
        d = ask(p, "intern", 7, NULL, "sshd", "lab1", NOW);
        assert_decision(d, false, PHI_POLICY_NOT_YET_VALID, "summer",
                        "no rule allows intern on lab1 via sshd now: rule 'summer' starts at 2027-06-01T00:00:00Z");
        assert_true(ask(p, "intern", 7, NULL, "sshd", "lab1", 1811808000).allowed);
        assert_true(ask(p, "intern", 7, NULL, "sshd", "lab1", 1819756799).allowed);  /* last second */
        d = ask(p, "intern", 7, NULL, "sshd", "lab1", 1819756800);                 /* valid_until is the end */
        assert_decision(d, false, PHI_POLICY_EXPIRED, "summer",
                        "no rule allows intern on lab1 via sshd now: rule 'summer' ended at 2027-09-01T00:00:00Z");
        d = ask(p, "temp", 8, NULL, "sshd", "lab1", NOW);
        assert_decision(d, false, PHI_POLICY_EXPIRED, "spring",
                        "no rule allows temp on lab1 via sshd now: rule 'spring' ended at 2026-04-01T00:00:00Z");
        assert_true(ask(p, "temp", 8, NULL, "sshd", "lab1", 1775001599).allowed);
}

static void test_unknown_user(void **state) {
        _cleanup_policy_ struct phi_policy *p = parse_ok(rules);
        struct phi_policy_decision d;

        (void) state;
        /* users = * and a named rule must not let in a user the caller did not find */
        d = ask(p, "alice", PHI_POLICY_UID_UNKNOWN, NULL, "sshd", "web1", NOW);
        assert_decision(d, false, PHI_POLICY_UNKNOWN_USER, "default-deny", "alice is not a known user");
        d = ask(p, "ghost", PHI_POLICY_UID_UNKNOWN, NULL, "openvpn", "vpn1.example.org", NOW);
        assert_decision(d, false, PHI_POLICY_UNKNOWN_USER, "default-deny", "ghost is not a known user");
        /* a known user that no rule names */
        d = ask(p, "ghost", 3000, "nobody-group", "sshd", "web1", NOW);
        assert_decision(d, false, PHI_POLICY_NO_RULE, "default-deny", "no rule allows ghost on web1 via sshd");
}

static void test_bad_input(void **state) {
        _cleanup_policy_ struct phi_policy *p = parse_ok(rules);
        const char *bad_group[] = { "staff", "no good" };
        struct phi_policy_subject who = { "alice", 1000, NULL, 0 };
        struct phi_policy_decision d;

        (void) state;
        d = ask(p, "al ice", 1000, NULL, "sshd", "web1", NOW);
        assert_decision(d, false, PHI_POLICY_BAD_INPUT, "default-deny", "'al ice' is not a valid user name");
        d = ask(p, "alice", 1000, NULL, "ssh d", "web1", NOW);
        assert_decision(d, false, PHI_POLICY_BAD_INPUT, "default-deny", "'ssh d' is not a valid PAM service name");
        d = ask(p, "alice", 1000, NULL, "sshd", "web1;rm", NOW);
        assert_decision(d, false, PHI_POLICY_BAD_INPUT, "default-deny", "'web1;rm' is not a valid host name");
        d = ask(p, "alice", 1000, NULL, "sshd", "", NOW);
        assert_int_equal(d.refusal, PHI_POLICY_BAD_INPUT);
        who.groups = bad_group;
        who.n_groups = 2;
        assert_int_equal(phi_policy_check_access(p, &who, "sshd", "web1", NOW, &d), -EINVAL);
        assert_decision(d, false, PHI_POLICY_BAD_INPUT, "default-deny", "'no good' is not a valid group name");
        who.user = NULL;
        assert_int_equal(phi_policy_check_access(p, &who, "sshd", "web1", NOW, &d), -EINVAL);
        assert_false(d.allowed);
}

static void test_empty_policy_denies(void **state) {
        _cleanup_policy_ struct phi_policy *p = parse_ok("");
        _cleanup_policy_ struct phi_policy *q = parse_ok("# only comments\n\n; and blanks\n");
        struct phi_policy_decision d;

        (void) state;
        d = ask(p, "root", 0, "root", "login", "h", NOW);
        assert_decision(d, false, PHI_POLICY_NO_RULE, "default-deny", "no rule allows root on h via login");
        assert_false(ask(q, "root", 0, "root", "login", "h", NOW).allowed);
        assert_int_equal(phi_policy_n_rules(q), 0);
}

static void test_refcount_and_independence(void **state) {
        struct phi_policy *old = parse_ok(rules), *held = phi_policy_ref(old), *next;
        struct phi_policy_errors e = { 0 };
        const char bad[] = "[access:x]\naction = maybe\n";

        (void) state;
        /* a refused reload leaves the old policy answering as before */
        next = NULL;
        assert_int_equal(phi_policy_parse(bad, strlen(bad), "t.conf", &next, &e), -EINVAL);
        assert_null(next);
        phi_policy_errors_clear(&e);
        assert_true(ask(held, "alice", 1000, NULL, "sshd", "web1", NOW).allowed);
        phi_policy_unref(old);
        assert_true(ask(held, "alice", 1000, NULL, "sshd", "web1", NOW).allowed);
        phi_policy_unref(held);
        phi_policy_unref(NULL);
}

/* More services than the service bits hold: the names are compared one by
 * one, and a deny rule after the overflow still wins. */
static void test_many_services(void **state) {
        size_t cap = 16384, len = 0;
        char *text = malloc(cap);
        struct phi_policy_decision d;

        (void) state;
        assert_non_null(text);
        for (int i = 0; i < 70; i++)
                len += (size_t) snprintf(text + len, cap - len,
                                         "[access:s%d]\naction = allow\nusers = x\nservices = svc%d\nhosts = *\n", i, i);
        len += (size_t) snprintf(text + len, cap - len,
                                 "[access:no]\naction = deny\nusers = x\nservices = svc69 svc3\nhosts = h\n");
        {
                _cleanup_policy_ struct phi_policy *p = parse_ok(text);
                d = ask(p, "x", 1, NULL, "svc69", "h", NOW);
                assert_decision(d, false, PHI_POLICY_DENY_RULE, "no", "rule 'no' denies x on h via svc69");
                d = ask(p, "x", 1, NULL, "svc3", "h", NOW);
                assert_int_equal(d.refusal, PHI_POLICY_DENY_RULE);
                d = ask(p, "x", 1, NULL, "svc68", "h", NOW);
                assert_decision(d, true, PHI_POLICY_OK, "s68", "rule 's68' allows x on h (hosts *) via svc68");
                assert_false(ask(p, "x", 1, NULL, "svc70", "h", NOW).allowed);
        }
        free(text);
}

static char *slurp(const char *path, size_t *ret_len) {
        FILE *f = fopen(path, "re");
        char *buf = calloc(1, 1 << 16);
        size_t n;

        assert_non_null(f);
        assert_non_null(buf);
        n = fread(buf, 1, (1 << 16) - 1, f);
        fclose(f);
        *ret_len = n;
        return buf;
}

static struct phi_policy *parse_file(const char *name) {
        char path[4096];
        struct phi_policy_errors e = { 0 };
        struct phi_policy *p = NULL;
        size_t len;
        char *text;
        int r;

        snprintf(path, sizeof(path), "%s/%s", PHI_POLICY_DIR, name);
        text = slurp(path, &len);
        r = phi_policy_parse(text, len, path, &p, &e);
        phi_policy_errors_print(&e, stderr);
        free(text);
        assert_int_equal(r, 0);
        return p;
}

/* The shipped default does what its comments say: local root and phi-admins only. */
static void test_shipped_default(void **state) {
        _cleanup_policy_ struct phi_policy *p = parse_file("policy.conf");
        struct phi_policy_decision d;

        (void) state;
        d = ask(p, "root", 0, "root", "login", "db1", NOW);
        assert_decision(d, true, PHI_POLICY_OK, "local-root", "rule 'local-root' allows root (uid 0) on db1 (hosts *) via login");
        d = ask(p, "ann", 5000, "staff,phi-admins", "sshd", "db1", NOW);
        assert_decision(d, true, PHI_POLICY_OK, "phi-admins",
                        "rule 'phi-admins' allows ann (group phi-admins) on db1 (hosts *) via sshd");
        assert_true(ask(p, "ann", 5000, "phi-admins", "sudo", "db1", NOW).allowed);
        assert_false(ask(p, "ann", 5000, "phi-admins", "openvpn", "db1", NOW).allowed);
        d = ask(p, "bob", 5001, "staff", "sshd", "db1", NOW);
        assert_decision(d, false, PHI_POLICY_NO_RULE, "default-deny", "no rule allows bob on db1 via sshd");
        /* a directory user called root is not uid 0 and gets nothing */
        assert_false(ask(p, "root", 5002, NULL, "sshd", "db1", NOW).allowed);
}

static void test_shipped_clinic(void **state) {
        _cleanup_policy_ struct phi_policy *p = parse_file("policy.conf.clinic-example");
        const struct phi_policy_role *dba;

        (void) state;
        assert_true(ask(p, "it1", 5000, "clinic-it", "sudo", "ehr-db1", NOW).allowed);
        assert_true(ask(p, "nurse", 5001, "clinic-staff", "openvpn", "vpn1", NOW).allowed);
        assert_false(ask(p, "nurse", 5001, "clinic-staff", "sshd", "ehr-db1", NOW).allowed);
        assert_true(ask(p, "acme", 5002, "contractors", "sshd", "billing1", NOW).allowed);
        assert_int_equal(ask(p, "acme", 5002, "contractors", "sshd", "billing1", 1835481600).refusal,
                         PHI_POLICY_EXPIRED);  /* 2028-03-01 */
        assert_int_equal(ask(p, "acme", 5002, "contractors,clinic-it", "sshd", "ehr-db2", NOW).refusal,
                         PHI_POLICY_DENY_RULE);
        assert_int_equal(ask(p, "leaver", 5003, "clinic-it,offboarding", "sshd", "ws-3", NOW).refusal,
                         PHI_POLICY_DENY_RULE);
        dba = phi_policy_role_find(p, "dba");
        assert_non_null(dba);
        assert_string_equal(dba->grant_group, "ehr-dba");
        assert_true(dba->breakglass);
        assert_int_equal(dba->breakglass_max, 3600);
        assert_int_equal(phi_policy_role_count(p), 2);
}

static uint32_t rnd_state = 12345;
static unsigned rnd(void) {
        rnd_state = rnd_state * 1103515245u + 12345u;
        return (rnd_state >> 8) & 0xffff;
}

/* A large generated policy: the index answers exactly as the scan of every
 * rule does, for many users, groups, services and hosts (ask() compares). */
static void test_index_matches_scan(void **state) {
        static const char *const services[] = { "sshd", "sudo", "openvpn", "login" };
        static const char *const hosts[] = { "db1", "db22", "app3", "web1", "vpn1", "x" };
        size_t cap = 1 << 20, len = 0;
        char *text = malloc(cap);
        struct phi_policy *p;

        (void) state;
        assert_non_null(text);
        for (int i = 0; i < 300; i++) {
                len += (size_t) snprintf(text + len, cap - len,
                                         "[access:r%d]\naction = %s\nusers = u%u u%u\ngroups = g%u\n"
                                         "services = %s\nhosts = %s\n%s",
                                         i, rnd() % 5 == 0 ? "deny" : "allow", rnd() % 200, rnd() % 200,
                                         rnd() % 40, rnd() % 7 == 0 ? "*" : services[rnd() % 4],
                                         rnd() % 3 == 0 ? "db* app?" : hosts[rnd() % 6],
                                         rnd() % 11 == 0 ? "uids = 0-10\n" : rnd() % 13 == 0 ? "valid_until = 2026-01-01\n" : "");
        }
        p = parse_ok(text);
        for (int q = 0; q < 3000; q++) {
                char user[16], groups[64];
                snprintf(user, sizeof(user), "u%u", rnd() % 220);
                snprintf(groups, sizeof(groups), "g%u,g%u,g%u", rnd() % 45, rnd() % 45, rnd() % 45);
                (void) ask(p, user, rnd() % 20, groups, services[rnd() % 4], hosts[rnd() % 6], NOW);
        }
        phi_policy_unref(p);
        free(text);
}

/* The library's own matcher agrees with fnmatch(FNM_CASEFOLD) in the C locale
 * on every pattern the parser accepts (random ones from a small alphabet). */
static void test_matcher_is_fnmatch(void **state) {
        static const char *const atoms[] = { "a", "b", "A", "B", ".", "-", "1", "*", "?", "[ab]", "[!a]",
                                             "[a-c]", "[-b]", "[B-]", "[!0-9]", "**" };
        static const char chars[] = "abAB.-19z";
        unsigned checked = 0;

        (void) state;
        assert_non_null(setlocale(LC_ALL, "C"));
        for (int i = 0; i < 200000; i++) {
                char pat[64] = "", host[16];
                unsigned np = 1 + rnd() % 5, nh = 1 + rnd() % 7;
                for (unsigned k = 0; k < np; k++)
                        strcat(pat, atoms[rnd() % (sizeof(atoms) / sizeof(atoms[0]))]);
                for (unsigned k = 0; k < nh; k++)
                        host[k] = chars[rnd() % (sizeof(chars) - 1)];
                host[nh] = 0;
                if (!policy_host_pattern_valid(pat))
                        continue;
                if (policy_host_match(pat, host) != (fnmatch(pat, host, FNM_CASEFOLD) == 0))
                        fail_msg("pattern '%s' host '%s': ours %d, fnmatch %d", pat, host,
                                 policy_host_match(pat, host), fnmatch(pat, host, FNM_CASEFOLD) == 0);
                checked++;
        }
        assert_true(checked > 100000);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rule_kinds),
                cmocka_unit_test(test_deny_wins),
                cmocka_unit_test(test_deny_first_in_file),
                cmocka_unit_test(test_host_patterns),
                cmocka_unit_test(test_time_windows),
                cmocka_unit_test(test_unknown_user),
                cmocka_unit_test(test_bad_input),
                cmocka_unit_test(test_empty_policy_denies),
                cmocka_unit_test(test_refcount_and_independence),
                cmocka_unit_test(test_many_services),
                cmocka_unit_test(test_shipped_default),
                cmocka_unit_test(test_shipped_clinic),
                cmocka_unit_test(test_index_matches_scan),
                cmocka_unit_test(test_matcher_is_fnmatch),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

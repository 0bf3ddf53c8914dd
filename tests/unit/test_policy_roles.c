/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Role questions of libphi_policy (for JIT elevation and break-glass): each
 * yes and every refusal, with its reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>

#include "phi/policy.h"

static const char text[] =
        "[role:dba]\n"
        "grant_group = phi-dba\n"
        "eligible_groups = dba-oncall dev-leads\n"
        "approver_groups = dba-leads\n"
        "max_duration = 4h\n"
        "hosts = db* pg?\n"
        "breakglass = yes\n"
        "breakglass_max = 1h\n"
        "[role:audit]\n"
        "grant_group = phi-audit-rw\n"
        "eligible_groups = auditors\n"
        "approver_groups = privacy leads\n"
        "reason_required = no\n"
        "approvals = 2\n"
        "hosts = *\n";

static struct phi_policy *policy;

static int setup(void **state) {
        struct phi_policy_errors e = { 0 };

        (void) state;
        if (phi_policy_parse(text, strlen(text), "t.conf", &policy, &e) != 0) {
                phi_policy_errors_print(&e, stderr);
                return -1;
        }
        return 0;
}

static int teardown(void **state) {
        (void) state;
        phi_policy_unref(policy);
        return 0;
}

static const char *const oncall[] = { "staff", "dba-oncall" };
static const char *const staff[] = { "staff" };
static const char *const leads[] = { "dba-leads", "dba-oncall" };
static const struct phi_policy_subject alice = { "alice", 1000, oncall, 2 };
static const struct phi_policy_subject bob = { "bob", 1001, staff, 1 };
static const struct phi_policy_subject lead = { "lena", 1002, leads, 2 };
static const struct phi_policy_subject ghost = { "ghost", PHI_POLICY_UID_UNKNOWN, oncall, 2 };

#define assert_decision(d, ok, refusal_, rule_, reason_)        \
        do {                                                    \
                assert_int_equal((d).allowed, ok);              \
                assert_int_equal((d).refusal, refusal_);        \
                assert_string_equal((d).rule, rule_);           \
                assert_string_equal((d).reason, reason_);       \
        } while (0)

static void test_eligible(void **state) {
        struct phi_policy_decision d;

        (void) state;
        assert_int_equal(phi_policy_role_eligible(policy, "dba", &alice, "db1", &d), 0);
        assert_decision(d, true, PHI_POLICY_OK, "dba", "alice may request role 'dba' on db1 (group dba-oncall)");
        assert_int_equal(phi_policy_role_eligible(policy, "dba", &alice, "PG1", &d), 0);
        assert_true(d.allowed);
        assert_int_equal(phi_policy_role_eligible(policy, "dba", &bob, "db1", &d), 0);
        assert_decision(d, false, PHI_POLICY_NOT_ELIGIBLE, "dba",
                        "bob is in none of the groups that may request role 'dba' (dba-oncall, dev-leads)");
        assert_int_equal(phi_policy_role_eligible(policy, "dba", &alice, "web1", &d), 0);
        assert_decision(d, false, PHI_POLICY_HOST_NOT_COVERED, "dba",
                        "role 'dba' does not cover host web1 (hosts db*, pg?)");
        assert_int_equal(phi_policy_role_eligible(policy, "dbx", &alice, "db1", &d), 0);
        assert_decision(d, false, PHI_POLICY_UNKNOWN_ROLE, "default-deny", "no role 'dbx' in the policy");
        assert_int_equal(phi_policy_role_eligible(policy, "dba", &ghost, "db1", &d), 0);
        assert_decision(d, false, PHI_POLICY_UNKNOWN_USER, "dba", "ghost is not a known user");
        assert_int_equal(phi_policy_role_eligible(policy, "dba", &alice, "db 1", &d), -EINVAL);
        assert_decision(d, false, PHI_POLICY_BAD_INPUT, "default-deny", "'db 1' is not a valid host name");
}

static void test_request(void **state) {
        struct phi_policy_decision d;

        (void) state;
        assert_int_equal(phi_policy_role_request_check(policy, "dba", &alice, "db1", 4 * 3600, true, &d), 0);
        assert_decision(d, true, PHI_POLICY_OK, "dba", "alice may request role 'dba' on db1 for 4h (group dba-oncall)");
        assert_int_equal(phi_policy_role_request_check(policy, "dba", &alice, "db1", 4 * 3600 + 1, true, &d), 0);
        assert_decision(d, false, PHI_POLICY_TOO_LONG, "dba",
                        "4h1s is longer than role 'dba' allows for a request (4h)");
        assert_int_equal(phi_policy_role_request_check(policy, "dba", &alice, "db1", 1800, false, &d), 0);
        assert_decision(d, false, PHI_POLICY_REASON_MISSING, "dba", "role 'dba' needs a reason with each request");
        assert_int_equal(phi_policy_role_request_check(policy, "dba", &alice, "db1", 0, true, &d), -EINVAL);
        assert_decision(d, false, PHI_POLICY_BAD_INPUT, "dba", "a request needs a duration longer than 0s");
        /* audit: no reason needed, default maximum 1h */
        {
                static const char *const aud[] = { "auditors" };
                const struct phi_policy_subject carl = { "carl", 1003, aud, 1 };
                assert_int_equal(phi_policy_role_request_check(policy, "audit", &carl, "any", 3600, false, &d), 0);
                assert_true(d.allowed);
                assert_int_equal(phi_policy_role_request_check(policy, "audit", &carl, "any", 3601, false, &d), 0);
                assert_int_equal(d.refusal, PHI_POLICY_TOO_LONG);
        }
        /* eligibility comes first */
        assert_int_equal(phi_policy_role_request_check(policy, "dba", &bob, "db1", 60, true, &d), 0);
        assert_int_equal(d.refusal, PHI_POLICY_NOT_ELIGIBLE);
}

static void test_breakglass(void **state) {
        static const char *const aud[] = { "auditors" };
        const struct phi_policy_subject carl = { "carl", 1003, aud, 1 };
        struct phi_policy_decision d;

        (void) state;
        assert_int_equal(phi_policy_role_breakglass_check(policy, "dba", &alice, "db2", 3600, &d), 0);
        assert_decision(d, true, PHI_POLICY_OK, "dba",
                        "alice may break glass for role 'dba' on db2 for 1h (group dba-oncall)");
        assert_int_equal(phi_policy_role_breakglass_check(policy, "dba", &alice, "db2", 5400, &d), 0);
        assert_decision(d, false, PHI_POLICY_TOO_LONG, "dba",
                        "1h30m is longer than role 'dba' allows for a break-glass (1h)");
        assert_int_equal(phi_policy_role_breakglass_check(policy, "audit", &carl, "h", 60, &d), 0);
        assert_decision(d, false, PHI_POLICY_NO_BREAKGLASS, "audit", "role 'audit' does not allow break-glass");
        assert_int_equal(phi_policy_role_breakglass_check(policy, "dba", &bob, "db2", 60, &d), 0);
        assert_int_equal(d.refusal, PHI_POLICY_NOT_ELIGIBLE);
        assert_int_equal(phi_policy_role_breakglass_check(policy, "dba", &alice, "db2", 0, &d), -EINVAL);
        assert_false(d.allowed);
}

static void test_approver(void **state) {
        struct phi_policy_decision d;

        (void) state;
        assert_int_equal(phi_policy_role_approver_check(policy, "dba", &lead, "alice", &d), 0);
        assert_decision(d, true, PHI_POLICY_OK, "dba", "lena may approve alice's request for role 'dba' (group dba-leads)");
        /* an approver who is also eligible still never approves their own request */
        assert_int_equal(phi_policy_role_approver_check(policy, "dba", &lead, "lena", &d), 0);
        assert_decision(d, false, PHI_POLICY_SELF_APPROVAL, "dba",
                        "lena may not approve their own request for role 'dba'");
        assert_int_equal(phi_policy_role_approver_check(policy, "dba", &alice, "bob", &d), 0);
        assert_decision(d, false, PHI_POLICY_NOT_APPROVER, "dba",
                        "alice is in none of the approver groups of role 'dba' (dba-leads)");
        assert_int_equal(phi_policy_role_approver_check(policy, "nope", &lead, "alice", &d), 0);
        assert_int_equal(d.refusal, PHI_POLICY_UNKNOWN_ROLE);
        assert_int_equal(phi_policy_role_approver_check(policy, "dba", &lead, "al/ice", &d), -EINVAL);
        assert_int_equal(d.refusal, PHI_POLICY_BAD_INPUT);
        assert_int_equal(phi_policy_role_approver_check(policy, "dba", &ghost, "alice", &d), 0);
        assert_int_equal(d.refusal, PHI_POLICY_UNKNOWN_USER);
        assert_int_equal(phi_policy_role_find(policy, "audit")->approvals, 2);
}

static void test_refusal_names(void **state) {
        (void) state;
        assert_string_equal(phi_policy_refusal_name(PHI_POLICY_OK), "allowed");
        assert_string_equal(phi_policy_refusal_name(PHI_POLICY_DENY_RULE), "deny-rule");
        assert_string_equal(phi_policy_refusal_name(PHI_POLICY_SELF_APPROVAL), "self-approval");
        for (int r = PHI_POLICY_OK; r <= PHI_POLICY_SELF_APPROVAL; r++)
                assert_string_not_equal(phi_policy_refusal_name((enum phi_policy_refusal) r), "?");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_eligible),
                cmocka_unit_test(test_request),
                cmocka_unit_test(test_breakglass),
                cmocka_unit_test(test_approver),
                cmocka_unit_test(test_refusal_names),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}

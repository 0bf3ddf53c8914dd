/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Feeds arbitrary text to the policy parser. Whatever the input, the parser
 * either builds a policy and reports nothing, or reports at least one error,
 * each at a line the text has; a policy it builds answers every question with
 * a reason, and its name index answers exactly as the scan of every rule. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "phi/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void ask(const struct phi_policy *p, const struct phi_policy_subject *who, const char *service,
                const char *host, int64_t now) {
        struct phi_policy_decision a, b;
        int ra = phi_policy_check_access(p, who, service, host, now, &a);
        int rb = phi_policy_check_access_linear(p, who, service, host, now, &b);

        if (ra != rb || a.allowed != b.allowed || a.refusal != b.refusal || strcmp(a.rule, b.rule) != 0 ||
            strcmp(a.reason, b.reason) != 0 || a.reason[0] == 0 || a.allowed != (a.refusal == PHI_POLICY_OK))
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const char *const groups[] = { "a", "staff", "dba", "contractors", "phi-admins", "g1" };
        static const char *const users[] = { "root", "a", "alice", "u1" };
        static const char *const services[] = { "sshd", "sudo", "openvpn", "login" };
        static const char *const hosts[] = { "h", "db1", "web1.example.org", "APP2", "x-1" };
        struct phi_policy_errors errors = { 0 };
        struct phi_policy *p = NULL;
        unsigned lines = 1;
        int r;

        if (size > 256 * 1024)
                return 0;
        for (size_t i = 0; i < size; i++)
                lines += data[i] == '\n';
        r = phi_policy_parse((const char *) data, size, "fuzz.conf", &p, &errors);
        if (r == 0) {
                if (!p || errors.n != 0 || errors.dropped != 0)
                        abort();
                for (size_t u = 0; u < 4; u++)
                        for (size_t s = 0; s < 4; s++)
                                for (size_t h = 0; h < 5; h++) {
                                        struct phi_policy_subject who = { users[u], (uint32_t) u * 500,
                                                                          groups + u, 6 - u - 1 };
                                        ask(p, &who, services[s], hosts[h], 1790000000 + (int64_t) h * 40000000);
                                }
                for (size_t i = 0; i < phi_policy_role_count(p); i++) {
                        const struct phi_policy_role *role = phi_policy_role_at(p, i);
                        struct phi_policy_subject who = { "alice", 1000, groups, 6 };
                        struct phi_policy_decision d;
                        if (!role || phi_policy_role_find(p, role->name) != role)
                                abort();
                        if (phi_policy_role_request_check(p, role->name, &who, "db1", 3600, true, &d) != 0 ||
                            d.reason[0] == 0)
                                abort();
                        if (phi_policy_role_breakglass_check(p, role->name, &who, "db1", 60, &d) != 0 ||
                            d.reason[0] == 0)
                                abort();
                        if (phi_policy_role_approver_check(p, role->name, &who, "bob", &d) != 0 || d.reason[0] == 0)
                                abort();
                }
                phi_policy_unref(p);
        } else {
                if (p || (r == -EINVAL && errors.n == 0 && errors.dropped == 0))
                        abort();
                for (size_t i = 0; i < errors.n; i++)
                        if (errors.items[i].line > lines || !errors.items[i].message[0])
                                abort();
        }
        phi_policy_errors_clear(&errors);
        return 0;
}

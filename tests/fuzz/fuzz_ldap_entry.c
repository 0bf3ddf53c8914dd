/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Directory entries are untrusted input. The input is read as
 *   line 1: DN, line 2: entryUUID (may be empty), then "attr: value" lines
 * and run through classification, user and group conversion and nested-group
 * resolution. An accepted user or group must satisfy the rules the snapshot
 * relies on: valid names, ids in range, no ':' or control bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "identity.h"
#include "ldap_entry.h"
#include "phi/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_LINES 64

static const char config_text[] =
        "[ldap]\nuri = ldap://127.0.0.1\nbase = dc=example,dc=org\ntls = none\nprimary_gids_allowed = 100\n";

static void check_text(const char *s) {
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (*p == ':' || *p < 0x20)
                        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static struct phi_config *config;
        static struct phi_ldap_scope scope;
        struct phi_ldap_value values[MAX_LINES];
        struct phi_ldap_attr attrs[MAX_LINES];
        char *lines[MAX_LINES + 2];
        size_t n_lines = 0, n_attrs = 0;
        char *buf, *p;

        if (!config) {
                struct phi_config_errors e = { 0 };
                if (phi_config_load_string("fuzz", config_text, &config, &e) < 0 ||
                    phi_ldap_scope_init(config, &scope) < 0)
                        abort();
        }
        if (size > 16 * 1024)
                return 0;
        buf = malloc(size + 1);
        if (!buf)
                return 0;
        memcpy(buf, data, size);
        buf[size] = 0;
        for (p = buf; n_lines < MAX_LINES + 2;) {
                char *nl = strchr(p, '\n');
                lines[n_lines++] = p;
                if (!nl)
                        break;
                *nl = 0;
                p = nl + 1;
        }
        for (size_t i = 2; i < n_lines; i++) {
                char *sep = strstr(lines[i], ": ");
                if (!sep)
                        continue;
                *sep = 0;
                values[n_attrs] = (struct phi_ldap_value){ sep + 2, strlen(sep + 2) };
                /* Repeated attribute names become one multi-valued attribute when
                 * adjacent, as libldap hands them over. */
                if (n_attrs > 0 && strcmp(attrs[n_attrs - 1].name, lines[i]) == 0 &&
                    attrs[n_attrs - 1].values + attrs[n_attrs - 1].n_values == &values[n_attrs]) {
                        attrs[n_attrs - 1].n_values++;
                        continue;
                }
                attrs[n_attrs] = (struct phi_ldap_attr){ lines[i], &values[n_attrs], 1 };
                n_attrs++;
        }
        {
                struct phi_ldap_entry e = { n_lines > 0 ? lines[0] : "",
                                            n_lines > 1 && lines[1][0] ? lines[1] : NULL, attrs,
                                            n_attrs };
                struct phi_identities ids = { 0 };
                struct phi_resolved res = { 0 };
                struct phi_user u = { 0 };
                struct phi_group g = { 0 };
                const char *reason = NULL;
                size_t skipped = 0;
                char *ndn = NULL;

                if (phi_ldap_dn_normalize(e.dn, &ndn) == 0)
                        free(ndn);
                (void) phi_ldap_entry_classify(&e, config, &scope);
                if (phi_ldap_entry_to_user(&e, config, &u, &reason) == 0) {
                        if (!phi_name_valid(u.name) || u.uid < config->min_uid || u.uid == 65534 ||
                            u.uid == UINT32_MAX || u.gid == 0 ||
                            (u.gid < config->min_gid && u.gid != 100) || u.home[0] != '/' || u.shell[0] != '/')
                                abort();
                        check_text(u.gecos);
                        check_text(u.home);
                        check_text(u.shell);
                        if (phi_identities_add_user(&ids, &u) < 0)
                                phi_user_clear(&u);
                } else if (!reason)
                        abort();
                if (phi_ldap_entry_to_group(&e, config, &g, &skipped, &reason) == 0) {
                        if (!phi_name_valid(g.name) || g.gid < config->min_gid)
                                abort();
                        for (size_t i = 0; i < g.n_member_uids; i++)
                                if (!phi_name_valid(g.member_uids[i]))
                                        abort();
                        if (phi_identities_add_group(&ids, &g) < 0)
                                phi_group_clear(&g);
                }
                if (phi_identities_resolve(&ids, PHI_RESOLVE_MEMBER_UID | PHI_RESOLVE_MEMBER_DN, &res) == 0)
                        phi_resolved_clear(&res);
                phi_identities_clear(&ids);
        }
        free(buf);
        return 0;
}

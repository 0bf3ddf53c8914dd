/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "access.h"
#include "localfiles.h"

static bool strv_has(char *const *v, size_t n, const char *s) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(v[i], s) == 0)
                        return true;
        return false;
}

/* The groups the host would give the user: the directory's (nesting
 * resolved, and the one of their primary gid, which glibc's initgroups adds
 * whether or not it lists them) and every local group that lists them or is
 * their primary one. */
static int subject_groups(phi_store *store, const char *group_file, const char *name, bool directory, gid_t gid,
                          char ***ret, size_t *ret_n) {
        char **v = NULL, *primary = NULL;
        size_t n = 0, cap = 0;
        int r = 0;

        if (directory) {
                r = phi_store_user_groups(store, name, &v, &n);
                if (r < 0)
                        return r;
                cap = n;
                r = phi_store_user_primary_group(store, name, &primary);
                if (r == 0 && !strv_has(v, n, primary)) {
                        char **nv = reallocarray(v, n + 1, sizeof(char *));
                        if (!nv)
                                r = -ENOMEM;
                        else {
                                v = nv;
                                v[n++] = PHI_TAKE_PTR(primary);
                                cap = n;
                        }
                }
                free(primary);
                if (r < 0 && r != -ENOENT) {
                        phi_strv_free(v, n);
                        return r;
                }
                r = 0;
        }
        r = phi_local_groups_of(group_file, name, gid, &v, &n, &cap);
        if (r < 0) {
                phi_strv_free(v, n);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static void deny_unreadable(struct phi_policy_decision *ret, const char *user, int error) {
        *ret = (struct phi_policy_decision){ .allowed = false, .refusal = PHI_POLICY_BAD_INPUT };
        snprintf(ret->rule, sizeof(ret->rule), "%s", PHI_POLICY_DEFAULT_RULE);
        snprintf(ret->reason, sizeof(ret->reason), "the identity or groups of %s could not be read: %s", user,
                 strerror(-error));
}

int phi_access_decide(const struct phi_policy *p, phi_store *store, const char *passwd_file,
                      const char *group_file, const char *user, const char *service, const char *host,
                      int64_t now, struct phi_policy_decision *ret) {
        struct phi_user u = { 0 };
        char **groups = NULL;
        size_t n_groups = 0;
        bool directory = false;
        int r;

        /* Local accounts first, as NSS resolves them. */
        r = phi_local_user_get(passwd_file, user, &u);
        if (r == -ENOENT) {
                r = phi_store_user_get(store, user, &u);
                directory = r == 0;
        }
        if (r < 0 && r != -ENOENT)
                goto out;
        if (r == 0 && (r = subject_groups(store, group_file, user, directory, u.gid, &groups, &n_groups)) < 0)
                goto out;
        {
                const struct phi_policy_subject who = {
                        .user = user,
                        .uid = u.name ? u.uid : PHI_POLICY_UID_UNKNOWN,
                        .groups = (const char *const *) groups,
                        .n_groups = n_groups,
                };
                /* A bad argument is answered too: the decision then says denied, and why. */
                (void) phi_policy_check_access(p, &who, service, host, now, ret);
        }
        r = 0;
out:
        if (r < 0)
                deny_unreadable(ret, user, r);
        phi_strv_free(groups, n_groups);
        phi_user_clear(&u);
        return r;
}

int phi_access_hostname(char *buf, size_t len) {
        if (gethostname(buf, len) < 0)
                return -errno;
        buf[len - 1] = '\0';
        return 0;
}

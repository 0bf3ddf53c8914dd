/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "access.h"
#include "localfiles.h"

/* The groups the host would give the user: the directory's (nesting
 * resolved) and every local group that lists them or is their primary one. */
static int subject_groups(phi_store *store, const char *group_file, const char *name, bool directory, gid_t gid,
                          char ***ret, size_t *ret_n) {
        char **v = NULL;
        size_t n = 0, cap = 0;
        int r = 0;

        if (directory) {
                r = phi_store_user_groups(store, name, &v, &n);
                if (r < 0)
                        return r;
                cap = n;
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

int phi_access_subject_resolve(phi_store *store, const char *passwd_file, const char *group_file, const char *name,
                               struct phi_access_subject *ret) {
        struct phi_access_subject s = { 0 };
        int r;

        /* Local accounts first, as NSS resolves them. */
        r = phi_local_user_get(passwd_file, name, &s.user);
        if (r == -ENOENT) {
                r = phi_store_user_get(store, name, &s.user);
                s.directory = r == 0;
        }
        if (r < 0 && r != -ENOENT)
                goto fail;
        if (r == 0 &&
            (r = subject_groups(store, group_file, name, s.directory, s.user.gid, &s.groups, &s.n_groups)) < 0)
                goto fail;
        s.who = (struct phi_policy_subject){
                .user = name,
                .uid = s.user.name ? s.user.uid : PHI_POLICY_UID_UNKNOWN,
                .groups = (const char *const *) s.groups,
                .n_groups = s.n_groups,
        };
        *ret = s;
        return 0;
fail:
        phi_access_subject_clear(&s);
        return r;
}

void phi_access_subject_clear(struct phi_access_subject *s) {
        phi_strv_free(s->groups, s->n_groups);
        phi_user_clear(&s->user);
        *s = (struct phi_access_subject){ 0 };
}

int phi_access_decide(const struct phi_policy *p, phi_store *store, const char *passwd_file,
                      const char *group_file, const char *user, const char *service, const char *host,
                      int64_t now, struct phi_policy_decision *ret) {
        struct phi_access_subject s;
        int r;

        r = phi_access_subject_resolve(store, passwd_file, group_file, user, &s);
        if (r < 0) {
                deny_unreadable(ret, user, r);
                return r;
        }
        /* A bad argument is answered too: the decision then says denied, and why. */
        (void) phi_policy_check_access(p, &s.who, service, host, now, ret);
        phi_access_subject_clear(&s);
        return 0;
}

int phi_access_hostname(char *buf, size_t len) {
        if (gethostname(buf, len) < 0)
                return -errno;
        buf[len - 1] = '\0';
        return 0;
}

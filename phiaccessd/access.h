/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The host-access question -- may this user use this PAM service on this
 * host? -- asked the same way by pam_phi's account check (on the verifier's
 * thread) and by `phictl policy check` (on the event loop), so that the two
 * can never disagree: the user resolved as NSS would ("passwd: files phi",
 * local accounts first), the groups as glibc merges "group: files phi", then
 * the policy library decides. */

#include <stdint.h>

#include "phi/policy.h"
#include "store.h"

/* Fills *ret with the decision. 0 when the question could be answered (ret
 * then says allowed or denied); a negative errno when the user's identity or
 * groups could not be read (ret then says denied, and why). */
int phi_access_decide(const struct phi_policy *p, phi_store *store, const char *passwd_file,
                      const char *group_file, const char *user, const char *service, const char *host,
                      int64_t now, struct phi_policy_decision *ret) _phi_warn_unused_ _phi_nonnull_;

/* A user as the policy sees them: resolved as NSS would, with their groups.
 * who.uid is PHI_POLICY_UID_UNKNOWN for a name nobody has. */
struct phi_access_subject {
        struct phi_policy_subject who;
        struct phi_user user;
        char **groups;
        size_t n_groups;
        bool directory;             /* the directory's, not a local account */
};
int phi_access_subject_resolve(phi_store *store, const char *passwd_file, const char *group_file, const char *name,
                               struct phi_access_subject *ret) _phi_warn_unused_ _phi_nonnull_;
void phi_access_subject_clear(struct phi_access_subject *s);

/* This host's name, as policies name hosts (gethostname(2), NUL-terminated). */
int phi_access_hostname(char *buf, size_t len) _phi_warn_unused_ _phi_nonnull_;

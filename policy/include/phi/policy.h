/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* libphi_policy: the access and elevation policy (/etc/phi/policy.conf, see
 * phi-policy.conf(5)) and the decisions it makes.
 *
 * Pure: the library parses text handed to it and answers questions from its
 * arguments alone. It reads no file, resolves no name (the caller passes the
 * user's uid and groups), has no clock (the caller passes `now`), reads no
 * environment and keeps no global state of its own. A parsed policy is
 * immutable and reference counted, so any number of threads may ask it
 * questions at once.
 *
 * How the daemon uses it (the integration comes with the daemon work):
 *  - start and --check-config: read the file named by [daemon] policy= with the
 *    same trust checks as its own config (phi_config_open_trusted: a regular
 *    file owned by root, not writable by group or others), read at most
 *    PHI_POLICY_MAX_SIZE + 1 bytes (so that a longer file is reported as too
 *    large rather than cut), hand the bytes to phi_policy_parse() and, on
 *    failure, print every error with
 *    phi_policy_errors_print() ("FILE:LINE: message") and refuse to run / exit 1;
 *  - reload: parse into a new object; on success swap the daemon's pointer
 *    (take a reference per request with phi_policy_ref(), drop it with
 *    phi_policy_unref()); on failure keep the old object, which nothing ever
 *    changes, and log the errors;
 *  - pam_phi account / phictl policy check: phi_policy_check_access() with the
 *    user's uid and groups as the daemon knows them (PHI_POLICY_UID_UNKNOWN
 *    for a name it does not know), the PAM service, and the local host's name
 *    (this host, not PAM_RHOST); the decision's rule and reason go to the
 *    journal as PHI_RULE and PHI_REASON;
 *  - JIT requests, approvals and break-glass: phi_policy_role_find() and the
 *    phi_policy_role_*() checks below; the daemon keeps the requests, counts
 *    approvals and runs the clock.
 *
 * inih (Debian's build) keeps its options in process-wide variables; the parser
 * sets every one it depends on for the length of each parse and puts the old
 * values back, so phi_policy_parse() must not run at the same time as another
 * inih parse in the same process (the daemon parses its config and its policy
 * from one thread). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "phi/macro.h"
#include "phi/parse.h"

/* Bounds of the file. Every one is checked and reported at its line. */
#define PHI_POLICY_MAX_SIZE (4u << 20)  /* bytes of policy text */
#define PHI_POLICY_MAX_LINE 4096        /* bytes of one line; longer is an error, never split */
#define PHI_POLICY_MAX_RULES 4096       /* [access:...] sections */
#define PHI_POLICY_MAX_ROLES 256        /* [role:...] sections */
#define PHI_POLICY_MAX_LIST 1024        /* entries of one list key in one section */
#define PHI_POLICY_MAX_ENTRIES 200000   /* entries of every list key in the whole file */
#define PHI_POLICY_NAME_MAX 32          /* rule and role names (fits inih's section buffer) */
#define PHI_POLICY_SERVICE_MAX 64       /* PAM service names */
#define PHI_POLICY_HOST_MAX 253         /* host names and host patterns (a DNS name) */
#define PHI_POLICY_TEXT_MAX 256         /* description = */
#define PHI_POLICY_MAX_ERRORS 64        /* errors kept; the rest are counted */
#define PHI_POLICY_MAX_APPROVALS 10
#define PHI_POLICY_REASON_MAX 512       /* bytes of a decision's reason, with its NUL */

/* A uid that names nobody: the caller did not find the user. */
#define PHI_POLICY_UID_UNKNOWN UINT32_MAX

struct phi_policy;

struct phi_policy_error {
        char *file;
        unsigned line;      /* 0: the file as a whole */
        char *message;
};

struct phi_policy_errors {
        struct phi_policy_error items[PHI_POLICY_MAX_ERRORS];
        size_t n;
        size_t dropped;     /* errors past PHI_POLICY_MAX_ERRORS (or out of memory) */
};

/* Parses len bytes of policy text (no NUL needed; a NUL inside is an error).
 * filename is only used in error messages. On success *ret is a new policy
 * with one reference and errors is untouched. On failure *ret is not set,
 * every problem found is appended to errors, sorted by line (what a section
 * lacks is reported at its header line; line 0 is the text as a whole), and
 * -EINVAL is returned (-ENOMEM if memory ran out). An empty text is a valid
 * policy that denies everyone. */
int phi_policy_parse(const char *text, size_t len, const char *filename, struct phi_policy **ret,
                     struct phi_policy_errors *errors) _phi_warn_unused_ _phi_nonnull_;

struct phi_policy *phi_policy_ref(struct phi_policy *p);
void phi_policy_unref(struct phi_policy *p);
PHI_DEFINE_TRIVIAL_CLEANUP_FUNC(struct phi_policy *, phi_policy_unref);
#define _cleanup_policy_ _cleanup_(phi_policy_unrefp)

/* "FILE:LINE: message" per error, then a count of the dropped ones. */
void phi_policy_errors_print(const struct phi_policy_errors *errors, FILE *f) _phi_nonnull_;
void phi_policy_errors_clear(struct phi_policy_errors *errors) _phi_nonnull_;

size_t phi_policy_n_rules(const struct phi_policy *p) _phi_nonnull_;
size_t phi_policy_n_roles(const struct phi_policy *p) _phi_nonnull_;

/* Who is asking, as the caller resolved it. groups are the user's group names
 * (primary and supplementary); user and every group must pass phi_name_valid(). */
struct phi_policy_subject {
        const char *user;
        uint32_t uid;                   /* PHI_POLICY_UID_UNKNOWN: no such user */
        const char *const *groups;
        size_t n_groups;
};

/* Why a question was answered no. Each has its own wording in the reason. */
enum phi_policy_refusal {
        PHI_POLICY_OK = 0,              /* allowed */
        PHI_POLICY_NO_RULE,             /* no rule allows it (default deny) */
        PHI_POLICY_DENY_RULE,           /* a deny rule matches (deny wins over allow) */
        PHI_POLICY_NOT_YET_VALID,       /* the only allowing rule starts later (valid_from) */
        PHI_POLICY_EXPIRED,             /* the only allowing rule has ended (valid_until) */
        PHI_POLICY_UNKNOWN_USER,        /* uid is PHI_POLICY_UID_UNKNOWN */
        PHI_POLICY_BAD_INPUT,           /* a name, service or host that cannot be one */
        PHI_POLICY_UNKNOWN_ROLE,
        PHI_POLICY_NOT_ELIGIBLE,        /* in none of the role's eligible groups */
        PHI_POLICY_HOST_NOT_COVERED,    /* the role does not cover this host */
        PHI_POLICY_TOO_LONG,            /* requested duration over the role's maximum */
        PHI_POLICY_REASON_MISSING,      /* the role wants a reason and none was given */
        PHI_POLICY_NO_BREAKGLASS,       /* the role does not allow break-glass */
        PHI_POLICY_NOT_APPROVER,        /* in none of the role's approver groups */
        PHI_POLICY_SELF_APPROVAL,       /* the requester may never approve their own request */
};

/* Every answer: what was decided, by which section, and why, in words a person
 * reads in the journal or in `phictl policy check`. rule is the deciding
 * section's name, or PHI_POLICY_DEFAULT_RULE when no section decided (default
 * deny, an unknown user or role, bad input); no section may take that name. */
#define PHI_POLICY_DEFAULT_RULE "default-deny"

struct phi_policy_decision {
        bool allowed;
        enum phi_policy_refusal refusal;
        char rule[PHI_POLICY_NAME_MAX + 1];
        char reason[PHI_POLICY_REASON_MAX];
};

/* The short name of a refusal ("no-rule", "deny-rule", ...), for logs and JSON. */
const char *phi_policy_refusal_name(enum phi_policy_refusal r);

/* May this user use this PAM service on this host at `now` (seconds since the
 * epoch, UTC)? A deny rule that matches wins over every allow rule; nothing
 * matching is a denial. *ret is always filled: on -EINVAL (bad input) it says
 * denied and why, so a caller that ignores the result still refuses.
 * Returns 0 when the question could be asked, whatever the answer. */
int phi_policy_check_access(const struct phi_policy *p, const struct phi_policy_subject *who,
                            const char *service, const char *host, int64_t now,
                            struct phi_policy_decision *ret) _phi_nonnull_;

/* The same answer computed by a scan of every rule, without the name index:
 * the reference the index is tested against, and the peer of the benchmark. */
int phi_policy_check_access_linear(const struct phi_policy *p, const struct phi_policy_subject *who,
                                   const char *service, const char *host, int64_t now,
                                   struct phi_policy_decision *ret) _phi_nonnull_;

/* A [role:NAME] section, as parsed and validated. Owned by the policy. */
struct phi_policy_role {
        const char *name;
        const char *description;        /* NULL when not set */
        unsigned line;                  /* the section's header line */
        const char *grant_group;        /* membership the grant confers */
        const char *const *eligible_groups;
        size_t n_eligible_groups;
        const char *const *approver_groups;
        size_t n_approver_groups;
        const char *const *hosts;       /* shell patterns (fnmatch(3)), case-insensitive */
        size_t n_hosts;
        unsigned approvals;             /* distinct approvers needed, 1..PHI_POLICY_MAX_APPROVALS */
        uint64_t max_duration;          /* seconds */
        uint64_t pending_lifetime;      /* seconds a request waits for approval */
        bool reason_required;
        bool approver_totp;             /* approvers confirm with a fresh TOTP code */
        bool breakglass;
        uint64_t breakglass_max;        /* seconds; 0 when breakglass is off */
};

/* The role of that name, or NULL. */
const struct phi_policy_role *phi_policy_role_find(const struct phi_policy *p, const char *name)
        _phi_nonnull_;
size_t phi_policy_role_count(const struct phi_policy *p) _phi_nonnull_;
const struct phi_policy_role *phi_policy_role_at(const struct phi_policy *p, size_t i) _phi_nonnull_;

/* Whether one of the role's host patterns matches host (this host, for an
 * active grant: the role must cover where it is used). */
bool phi_policy_role_covers_host(const struct phi_policy_role *r, const char *host) _phi_nonnull_;

/* May this user ask for the role on this host? In one of its eligible groups,
 * and the host is one the role covers. Same return convention as
 * phi_policy_check_access(). */
int phi_policy_role_eligible(const struct phi_policy *p, const char *role,
                             const struct phi_policy_subject *who, const char *host,
                             struct phi_policy_decision *ret) _phi_nonnull_;

/* A request for `duration` seconds: eligible, the duration within the role's
 * maximum, and a reason given when the role wants one. */
int phi_policy_role_request_check(const struct phi_policy *p, const char *role,
                                  const struct phi_policy_subject *who, const char *host,
                                  uint64_t duration, bool has_reason,
                                  struct phi_policy_decision *ret) _phi_nonnull_;

/* Break-glass for `duration` seconds: eligible, the role allows break-glass
 * and the duration is within its cap. */
int phi_policy_role_breakglass_check(const struct phi_policy *p, const char *role,
                                     const struct phi_policy_subject *who, const char *host,
                                     uint64_t duration, struct phi_policy_decision *ret)
        _phi_nonnull_;

/* May `approver` approve (or deny) `requester`'s request for the role? In one
 * of its approver groups and not the requester. Counting distinct approvers
 * against role->approvals is the daemon's, which keeps the approvals. */
int phi_policy_role_approver_check(const struct phi_policy *p, const char *role,
                                   const struct phi_policy_subject *approver, const char *requester,
                                   struct phi_policy_decision *ret) _phi_nonnull_;

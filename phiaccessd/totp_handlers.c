/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>
#include <unistd.h>
#include <string.h>

#include "journal.h"
#include "localfiles.h"
#include "phi/secret.h"
#include "server.h"
#include "totp_handlers.h"

#define TICKET_MIN (5 * 60)
#define TICKET_MAX (30 * 86400)

static void policy_from_config(const struct phi_config *c, struct phi_verifier_policy *ret) {
        *ret = (struct phi_verifier_policy){
                .algorithm = c->totp_algorithm,
                .digits = (unsigned) c->totp_digits,
                .window = (unsigned) c->totp_window,
                .max_failures = c->totp_max_failures,
                .host_max_failures = c->totp_host_max_failures,
                .failure_window = c->totp_failure_window,
                .lockout = c->totp_lockout,
                .ticket_lifetime = c->totp_ticket_lifetime,
                .enroll_at_login = c->totp_enroll_at_login,
        };
        snprintf(ret->issuer, sizeof(ret->issuer), "%s", c->totp_issuer);
        snprintf(ret->passwd_file, sizeof(ret->passwd_file), "%s", c->passwd_file);
        snprintf(ret->group_file, sizeof(ret->group_file), "%s", c->group_file);
        snprintf(ret->snapshot_path, sizeof(ret->snapshot_path), "%s", c->snapshot_path);
        ret->min_gid = c->min_gid;
        if (c->audit_key[0])
                snprintf(ret->audit_key, sizeof(ret->audit_key), "%s", c->audit_key);
        else {
                /* Beside the store, in the daemon's own state directory. */
                const char *slash = strrchr(c->store_path, '/');
                int dir_len = slash ? (int) (slash - c->store_path) : 1;
                snprintf(ret->audit_key, sizeof(ret->audit_key), "%.*s/audit.key", dir_len,
                         slash ? c->store_path : ".");
        }
        snprintf(ret->audit_origin, sizeof(ret->audit_origin), "%s", c->audit_origin);
        snprintf(ret->audit_trusted_keys, sizeof(ret->audit_trusted_keys), "%s", c->audit_trusted_keys);
        {
                /* The host names its key: "db1/phi-audit". One host's log
                 * takes the key's name as its origin; a fleet's names one. */
                char host[256];
                if (gethostname(host, sizeof(host)) < 0)
                        snprintf(host, sizeof(host), "localhost");
                host[sizeof(host) - 1] = '\0';
                snprintf(ret->audit_key_name, sizeof(ret->audit_key_name), "%.240s/phi-audit", host);
        }
        ret->audit_checkpoint_records = c->audit_checkpoint_records;
        ret->audit_checkpoint_interval = c->audit_checkpoint_interval;
}

void phi_totp_reconfigure(phi_verifier *v, const struct phi_config *old, const struct phi_config *c) {
        struct phi_verifier_policy p;

        policy_from_config(c, &p);
        phi_verifier_set_policy(v, &p);
        if (strcmp(old->totp_master_key, c->totp_master_key) != 0 ||
            old->totp_create_master_key != c->totp_create_master_key)
                phi_log(LOG_WARNING, "reload: the TOTP master key changes only on restart");
}

int phi_totp_start(const struct phi_config *c, int pam_fd, phi_verifier **ret) {
        struct phi_seal_options o = { .key_path = c->totp_master_key, .create = c->totp_create_master_key };
        struct phi_verifier_policy p;
        const char *source = NULL, *reason = NULL;
        phi_seal_key *key = NULL;
        int r;

        *ret = NULL;
        policy_from_config(c, &p);
        if ((r = phi_seal_init()) < 0 || (r = phi_totp_init()) < 0) {
                phi_log(LOG_CRIT, "cannot initialise libsodium or liboath; TOTP logins will be refused");
                return r;
        }
        r = phi_seal_key_load(&o, &key, &source, &reason);
        if (r < 0) {
                const char *why = phi_errno_text(r);

                /* A failed creation says where it failed: under the shipped unit
                 * /etc is read-only (ProtectSystem=strict), which is by design. */
                if (r == -ENOENT)
                        why = o.create ? "absent, and it cannot be created: its directory does not exist"
                                       : "absent, and [totp] create_master_key is off";
                else if (o.create && r == -EROFS)
                        why = "absent, and it cannot be created: its file system is read-only to the daemon "
                              "(phiaccessd.service has ProtectSystem=strict); create the key once by hand, "
                              "see phiaccessd.conf(5)";
                phi_log(LOG_CRIT, "no usable TOTP master key (%s%s%s): %s; TOTP logins will be refused",
                        source, reason ? " " : "", reason ? reason : "", why);
                return r;
        }
        r = phi_verifier_new(c, key, &p, pam_fd, c->pam_socket_path, ret);
        if (r < 0) {
                phi_log(LOG_CRIT, "cannot start the TOTP verifier: %s; TOTP logins will be refused",
                        phi_errno_text(r));
                return r;
        }
        phi_log(LOG_INFO, "TOTP verifier ready on %s (master key from %s)", c->pam_socket_path, source);
        return 0;
}

static int submit(struct phi_daemon *d, struct phi_verify_request *q, phi_msg **ret_reply,
                  uint64_t *ret_ticket) {
        int r;

        if (!d->verifier)
                r = phi_msg_new_error(-EIO, ret_reply, "TOTP is unavailable: the daemon has no master key");
        else if ((r = phi_verifier_submit(d->verifier, q, ret_ticket)) < 0)
                r = phi_msg_new_error(r == -ENOBUFS ? -EBUSY : r, ret_reply, "too many requests waiting; try again");
        phi_secret_wipe(q, sizeof(*q));
        return r;
}

int phi_handle_auth(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                    phi_msg **ret_reply, uint64_t *ret_ticket) {
        (void) caller, (void) req, (void) ret_ticket;
        return phi_msg_new_error(-EOPNOTSUPP, ret_reply,
                                 "codes are verified on the PAM socket %s, not on this one; "
                                 "check pam_phi's socket= option",
                                 d->config->pam_socket_path);
}

int phi_handle_pam_unavailable(void *userdata, const struct ucred *cred, const phi_msg *req, phi_msg **ret_reply,
                               uint64_t *ret_ticket) {
        (void) userdata, (void) cred, (void) ret_ticket;
        /* Account and session checks are served by the verifier's thread too:
         * without it every question is answered no. */
        return phi_msg_new_error(-EIO, ret_reply, "%s is unavailable: the daemon has no master key, so its "
                                 "verifier (which answers pam_phi) did not start", phi_msg_type_name(phi_msg_type(req)));
}

/* The caller of enroll/activate is the user, as SO_PEERCRED says. Each such
 * request ends in a journal entry of the verifier (auth_fail for a wrong code
 * or no pending token, a note for a missing ticket), so past its budget a
 * uid's are refused here and journaled as refusals, within their own budget. */
static int caller_user(struct phi_daemon *d, const struct phi_caller *caller, const char *verb,
                       struct phi_verify_request *q, phi_msg **ret_reply) {
        size_t n = strlen(caller->name);

        if (d->self_service && !phi_ratelimit_admit(d->self_service, caller->uid, caller->name)) {
                d->refused++;
                phi_dispatch_journal_refusal(d, caller, verb, "too_many_attempts");
                return phi_msg_new_error(-EBUSY, ret_reply, "too many enrolment requests: at most %d in %d s; "
                                         "try again shortly", PHI_SERVER_SELF_SERVICE_BURST,
                                         PHI_SERVER_JOURNAL_INTERVAL_S);
        }

        if (!phi_name_valid(caller->name) || n >= sizeof(q->user))
                return phi_msg_new_error(-EACCES, ret_reply, "phiaccessd does not know you (%s)", caller->name);
        memcpy(q->user, caller->name, n + 1);
        return 1;
}

int phi_handle_totp_enroll(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                           phi_msg **ret_reply, uint64_t *ret_ticket) {
        struct phi_verify_request q = { .kind = PHI_VERIFY_ENROLL };
        int r;

        (void) req;
        if ((r = caller_user(d, caller, "totp enroll", &q, ret_reply)) <= 0)
                return r;
        snprintf(q.actor, sizeof(q.actor), "%s", caller->name);
        return submit(d, &q, ret_reply, ret_ticket);
}

int phi_handle_totp_activate(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                             phi_msg **ret_reply, uint64_t *ret_ticket) {
        struct phi_verify_request q = { .kind = PHI_VERIFY_ACTIVATE };
        const char *code = NULL, *user = NULL;
        int r;

        if ((r = caller_user(d, caller, "totp enroll", &q, ret_reply)) <= 0)
                return r;
        /* USER is for pam_phi on the PAM socket; here the token is the caller's. */
        if (phi_msg_get_str(req, PHI_TAG_USER, &user) == 0)
                return phi_msg_new_error(-EINVAL, ret_reply, "on this socket a token is activated by its own "
                                                             "user; name no user");
        if (phi_msg_get_str(req, PHI_TAG_CODE, &code) < 0 || strlen(code) >= sizeof(q.code))
                return phi_msg_new_error(-EINVAL, ret_reply, "not a code");
        memcpy(q.code, code, strlen(code));
        snprintf(q.actor, sizeof(q.actor), "%s", caller->name);
        snprintf(q.service, sizeof(q.service), "phictl");
        return submit(d, &q, ret_reply, ret_ticket);
}

static int admin_request(const struct phi_caller *caller, const phi_msg *req, struct phi_verify_request *q,
                         phi_msg **ret_reply) {
        const char *user = NULL;

        if (phi_msg_get_str(req, PHI_TAG_USER, &user) < 0 || !phi_name_valid(user))
                return phi_msg_new_error(-EINVAL, ret_reply, "not a valid user name");
        snprintf(q->user, sizeof(q->user), "%s", user);
        snprintf(q->actor, sizeof(q->actor), "%s", caller->name);
        snprintf(q->service, sizeof(q->service), "phictl");
        return 1;
}

/* A ticket only for someone who can log in here and is a person: a directory
 * user (the sync takes none below [ldap] min_uid), or a local account at or
 * above min_uid. Root and the system accounts (daemon, www-data, ...) do not
 * enrol; a name nobody has gets no ticket that someone could later claim by
 * creating the account. Local accounts are looked up first, as "passwd: files
 * phi" and the caller check do. 1 when the user may have a ticket. */
static int ticket_user_check(struct phi_daemon *d, const char *name, phi_msg **ret_reply) {
        const struct phi_config *c = d->config;
        struct phi_user u = { 0 };
        int r;

        r = phi_local_user_get(c->passwd_file, name, &u);
        if (r == 0) {
                uint32_t uid = u.uid;
                phi_user_clear(&u);
                if (uid < c->min_uid)
                        return phi_msg_new_error(-EPERM, ret_reply,
                                                 "'%s' is a system account (uid %u, below [ldap] min_uid %llu): "
                                                 "system accounts and root do not enrol TOTP tokens",
                                                 name, (unsigned) uid, (unsigned long long) c->min_uid);
                return 1;
        }
        if (r != -ENOENT)
                return phi_msg_new_error(r, ret_reply, "cannot read %s: %s", c->passwd_file, phi_errno_text(r));
        r = phi_store_user_get(d->store, name, &u);
        phi_user_clear(&u);
        if (r == -ENOENT)
                return phi_msg_new_error(-ENOENT, ret_reply, "no user named '%s' in the directory or in %s",
                                         name, c->passwd_file);
        if (r < 0)
                return phi_msg_new_error(r, ret_reply, "cannot read the store: %s", phi_errno_text(r));
        return 1;
}

int phi_handle_totp_issue(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                          phi_msg **ret_reply, uint64_t *ret_ticket) {
        struct phi_verify_request q = { .kind = PHI_VERIFY_ISSUE };
        uint64_t duration = 0;
        int r;

        if ((r = admin_request(caller, req, &q, ret_reply)) <= 0)
                return r;
        if ((r = ticket_user_check(d, q.user, ret_reply)) <= 0)
                return r;
        if (phi_msg_get_u64(req, PHI_TAG_DURATION, &duration) == 0 &&
            (duration < TICKET_MIN || duration > TICKET_MAX))
                return phi_msg_new_error(-EINVAL, ret_reply, "a ticket lasts from 5 minutes to 30 days");
        q.duration = duration;
        return submit(d, &q, ret_reply, ret_ticket);
}

int phi_handle_totp_reset(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                          phi_msg **ret_reply, uint64_t *ret_ticket) {
        struct phi_verify_request q = { .kind = PHI_VERIFY_RESET };
        int r;

        if ((r = admin_request(caller, req, &q, ret_reply)) <= 0)
                return r;
        return submit(d, &q, ret_reply, ret_ticket);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The TOTP verifier: one thread that owns every TOTP read and write (logins,
 * enrolment, tickets, resets, failure counters) on its own store handle.
 *
 * Group commit: the thread takes every request queued since its last round,
 * serves them one after another inside ONE transaction, commits, and only
 * then hands the replies back. A reply therefore never leaves before the
 * acceptance it reports -- and the raised watermark that makes the code
 * unusable again -- is durable, and one fdatasync is shared by everyone who
 * arrived while the previous one ran. The round's journal entries follow
 * its replies (answer, then journal event). Requests in a round see each other's
 * writes, so of twenty concurrent logins with one code exactly one wins.
 *
 * If the transaction fails, every request of the round is answered with an
 * error (PAM denies); nothing is half-applied.
 *
 * Threading: the thread runs its own sd-event loop. It serves the PAM socket
 * itself (a login is read, checked, committed and answered on this one
 * thread: no hand-off between threads on the path of a login, which on a VM
 * costs a wake-up of 25-30 us each way); submit() and take() are called from
 * the main event loop for the verbs of the request socket (enrolment, admin),
 * which wake the thread through one eventfd and get their replies through
 * another.
 */

#include <stdbool.h>
#include <stdint.h>

#include "phi/authtok.h"
#include "phi/macro.h"
#include "phi/parse.h"
#include "phi/wire.h"
#include "phi/policy.h"
#include "seal.h"
#include "elevation.h"
#include "phi/audit.h"
#include "sessions.h"
#include "journal.h"
#include "totp.h"

struct phi_verifier_policy {
        enum phi_totp_algorithm algorithm;  /* for new tokens */
        unsigned digits;                    /* for new tokens */
        unsigned window;                    /* steps accepted either side of now */
        uint64_t max_failures;              /* per user name, within failure_window */
        uint64_t host_max_failures;         /* per remote host, within failure_window */
        uint64_t failure_window;            /* seconds */
        uint64_t lockout;                   /* seconds */
        uint64_t ticket_lifetime;           /* default for phictl totp issue, seconds */
        char issuer[65];                    /* label in otpauth URIs */
        bool enroll_at_login;               /* offer a ticket holder's login a new token */
        char passwd_file[4096];             /* local accounts: identity "local:UID" */
        char group_file[4096];              /* local groups, for the access policy */
        char snapshot_path[4096];           /* the grants file goes beside it (grants_publish.h) */
        uint64_t min_gid;
        char audit_key[4096];               /* [audit] (audit_log.h) */
        char audit_origin[PHI_AUDIT_NAME_MAX + 1]; /* "": the key's name (one host's log) */
        char audit_key_name[PHI_AUDIT_NAME_MAX + 1]; /* a new key's name: HOST/phi-audit */
        char audit_trusted_keys[4096];      /* "": none */
        uint64_t audit_checkpoint_records, audit_checkpoint_interval;
};

enum phi_verify_kind {
        PHI_VERIFY_LOGIN,       /* PAM auth: user, code, service, rhost, tty */
        PHI_VERIFY_ENROLL,      /* the caller: new pending token (needs a ticket) */
        PHI_VERIFY_ACTIVATE,    /* the caller: code for the pending token */
        PHI_VERIFY_ISSUE,       /* admin: ticket for user, duration */
        PHI_VERIFY_RESET,       /* admin: remove user's tokens */
        PHI_VERIFY_SHOW,        /* anyone: the user's token state, for phictl user show */
        PHI_VERIFY_ACCOUNT,     /* PAM account: may user use service on this host (access.h) */
        PHI_VERIFY_SESSION_OPEN,  /* PAM session open: a new session of the calling process */
        PHI_VERIFY_SESSION_CLOSE, /* PAM session close: the session of that id */
        PHI_VERIFY_SESSION_GONE,  /* the verifier's own: the session's process has ended */
        PHI_VERIFY_ELEV_REQUEST,  /* user (the caller) asks for role (elevation.h) */
        PHI_VERIFY_ELEV_DECIDE,   /* user approves or denies request_id (code: theirs) */
        PHI_VERIFY_ELEV_CANCEL,
        PHI_VERIFY_ELEV_REVOKE,
        PHI_VERIFY_ELEV_BREAKGLASS,
        PHI_VERIFY_ELEV_REVIEW,   /* reason: the review's note */
        PHI_VERIFY_ELEV_LIST,     /* list: pending, mine, all or grants; request_id: after */
        PHI_VERIFY_ELEV_TICK,     /* the verifier's own: transitions that are due */
        PHI_VERIFY_AUDIT,         /* an event of another thread, for the audit log (audit_*) */
        PHI_VERIFY_SUDO,          /* sudo_phi: may user run command (check, accept), or sudo refused it
                                   * (reject, error): sudo_state says which */
        PHI_VERIFY_SESSION_END,   /* the verifier's own: it signalled a sudo session whose grant ended */
};

struct phi_verify_request {
        enum phi_verify_kind kind;
        char user[PHI_NAME_MAX + 1];
        char code[PHI_CODE_MAX + 1];        /* secret: wiped with the request */
        char service[65];
        char rhost[256];
        char tty[65];
        char actor[64];                     /* who asked, for the journal */
        uint64_t duration;                  /* ISSUE: 0 = the policy's default */
        bool enroll;                        /* LOGIN: the PAM stack allows enrolment here */
        bool elevate;                       /* ACCOUNT: sudo's stack, which needs a grant */
        char session[PHI_SESSION_ID_LEN + 1]; /* SESSION_CLOSE, SESSION_GONE */
        const char *gone_reason;            /* SESSION_GONE: PHI_REASON (static text) */
        uint64_t pid;                       /* SESSION_OPEN: the PAM stack's process */
        char role[PHI_POLICY_NAME_MAX + 1];     /* ELEV_* */
        char request_id[PHI_REQUEST_ID_LEN + 1];
        char reason[PHI_ELEV_TEXT_MAX + 1];
        char ticket[PHI_ELEV_TICKET_MAX + 1];
        char list[16];
        uint64_t start;
        bool approve;                       /* ELEV_DECIDE */
        bool code_given;                    /* ELEV_DECIDE: a code came with it */
        bool admin;                         /* ELEV_REVOKE: root or the admin group */
        bool privileged;                    /* ELEV_LIST: sees everyone's (admin, approver, auditor) */
        char audit_event[PHI_AUDIT_EVENT_MAX + 1];  /* AUDIT: the record's fields; also user, actor, */
        char audit_rule[PHI_POLICY_NAME_MAX + 1];   /* service, rhost, tty, role, request_id, reason */
        uint64_t audit_expires, audit_time_us;
        bool audit_urgent;
        char ruser[PHI_NAME_MAX + 1];       /* SESSION_OPEN: PAM_RUSER (under sudo: who asked) */
        char runas[PHI_NAME_MAX + 1];       /* SUDO: the run-as user; SESSION_END: the session's user */
        char runas_group[PHI_NAME_MAX + 1]; /* SUDO */
        char sudo_state[8];                 /* SUDO: check, accept, reject or error */
        char *command, *cwd;                /* SUDO: the request's own copies (phi_verify_request_clear) */
        const char *signal_name;            /* SESSION_END: SIGTERM or SIGKILL (static text) */
        /* SHOW: the reply so far (USER_INFO with the identity); the verifier
         * adds the token's state and sends it. Once submitted it is the
         * verifier's; if submit() fails it stays the caller's. */
        phi_msg *info;
};

typedef struct phi_verifier phi_verifier;

struct phi_config;
/* Opens its own handle on the store the configuration names
 * (phi_store_open_config) and starts the thread, which serves the
 * PAM socket: pam_fd if systemd passed it (taken on success), else pam_path,
 * bound here (NULL: no PAM socket). Takes ownership of key (freed on failure
 * too). */
int phi_verifier_new(const struct phi_config *store_config, phi_seal_key *key,
                     const struct phi_verifier_policy *policy, int pam_fd, const char *pam_path,
                     phi_verifier **ret) _phi_warn_unused_ _phi_nonnull_args_(1, 2, 3, 6);
/* A frame on the PAM socket as a request: PHI_MSG_AUTH as a login,
 * PHI_MSG_TOTP_ACTIVATE (which names its user there) as the activation of a
 * token offered at login. 1, or 0 with an error in *ret_reply (negative only
 * when even that could not be built). */
int phi_verify_request_from_pam(const phi_msg *req, struct phi_verify_request *q, phi_msg **ret_reply)
        _phi_warn_unused_ _phi_nonnull_;
/* Frees what a request owns (a sudo command line and directory) and wipes it. */
void phi_verify_request_clear(struct phi_verify_request *q) _phi_nonnull_;
/* The access policy pam_phi's account check is judged by (a reference is
 * taken; NULL: none loaded, every question is answered no), in force from
 * the next round on. */
void phi_verifier_set_access(phi_verifier *v, struct phi_policy *policy) _phi_nonnull_args_(1);
/* A new policy (SIGHUP), in force from the next round on: requests already in
 * a round are judged by the old one. The master key and the store stay. */
void phi_verifier_set_policy(phi_verifier *v, const struct phi_verifier_policy *policy) _phi_nonnull_;
/* Finishes the round in progress, drops what is still queued (their clients
 * see the connection close and deny), stops the thread, wipes everything. */
void phi_verifier_free(phi_verifier *v);
PHI_DEFINE_TRIVIAL_CLEANUP_FUNC(phi_verifier *, phi_verifier_free);

/* Queues a copy of req (the caller wipes its own). *ret_ticket identifies the
 * reply; tickets have the top bit set so they never equal a sync ticket.
 * -ENOBUFS when PHI_VERIFIER_MAX_QUEUE requests are already waiting. */
#define PHI_VERIFIER_MAX_QUEUE 4096
/* A round starts at once when this many PAM requests are waiting, even if
 * more connections are still to be read. */
#define PHI_VERIFIER_ROUND_MAX 256
/* Answered requests whose journal entries are not written yet; past this the
 * verifier waits for the journal thread (about 1.5 KiB each). */
#define PHI_VERIFIER_JOURNAL_MAX 8192
#define PHI_VERIFIER_TICKET_BIT (UINT64_C(1) << 63)
int phi_verifier_submit(phi_verifier *v, const struct phi_verify_request *req, uint64_t *ret_ticket)
        _phi_warn_unused_ _phi_nonnull_;

/* Readable when replies are waiting; ack() clears it before take()ing them all. */
int phi_verifier_event_fd(const phi_verifier *v) _phi_nonnull_;
void phi_verifier_event_ack(phi_verifier *v) _phi_nonnull_;
/* One finished reply (caller frees it), or false when none is left. */
bool phi_verifier_take(phi_verifier *v, uint64_t *ret_ticket, phi_msg **ret_reply) _phi_nonnull_;

/* The audit hook of journal.h: an event of another thread, appended in the
 * verifier's next round. */
void phi_verifier_audit_hook(void *userdata, enum phi_event event, int priority, const struct phi_journal_field *fields,
                             size_t n_fields);
/* How many records the calling thread has handed to the hook so far. */
uint64_t phi_verifier_audit_queued_here(void);
/* Queues reply (taken on success; on failure still the caller's) behind the
 * records queued so far: it is the reply of *ret_ticket once they are
 * durable (an ERROR if their round fails). For a request whose events went
 * through the hook: its answer must not come before its record. -ENOBUFS:
 * the queue is full. */
int phi_verifier_submit_after_audit(phi_verifier *v, phi_msg *reply, uint64_t *ret_ticket) _phi_warn_unused_
        _phi_nonnull_;
/* The audit log's size and newest checkpoint, and its verifier key (copied). */
void phi_verifier_audit_state(phi_verifier *v, uint64_t *ret_size, uint64_t *ret_checkpoint, char *vkey,
                              size_t vkey_len) _phi_nonnull_;
/* Several daemons on one store, for status: the change feed's last seq this
 * daemon applied, the other hosts' changes it reacted to, and its rounds
 * that found the audit tree advanced by another writer. */
void phi_verifier_fleet_state(phi_verifier *v, uint64_t *ret_seen, uint64_t *ret_applied, uint64_t *ret_adopted)
        _phi_nonnull_;
/* The log's origin, and copies (strdup; the caller frees) of the fleet's
 * other trusted verifier keys: what the live verification checks against. */
int phi_verifier_audit_keys(phi_verifier *v, char *origin, size_t origin_len, char **trusted, size_t *ret_n)
        _phi_warn_unused_ _phi_nonnull_;

/* Counters for status: rounds committed and requests served. */
void phi_verifier_stats(phi_verifier *v, uint64_t *ret_rounds, uint64_t *ret_requests) _phi_nonnull_;

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The TOTP verifier thread and its rules; see verifier.h for the group commit.
 *
 * What a caller of PHI_MSG_AUTH can learn is one bit: accepted or not. A wrong
 * code, a replayed code, a locked-out user, a user without a token and a name
 * nobody has all get the same reply, and the last two do the same work as a
 * wrong code (a stand-in token is unsealed and checked), so neither the answer
 * nor its timing tells which names exist. The journal, which only admins read,
 * says why in PHI_REASON. */

#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "access.h"
#include "audit_log.h"
#include "grants_publish.h"
#include "journal.h"
#include "localfiles.h"
#include "phi/secret.h"
#include "qr.h"
#include "server.h"
#include "store.h"
#include "verifier.h"

/* The stand-in token is sealed for a name and identity no user can have. */
#define DUMMY_USER "\x01phi-no-such-user"
#define DUMMY_IDENTITY "\x01phi-no-identity"
/* Seconds between clean-ups of expired failure counters. By time, not by
 * rounds: the DELETE scans the whole table (a millisecond at 10,000
 * counters), and failure windows last minutes, so once a minute is enough,
 * however many logins arrive. */
#define PRUNE_INTERVAL 60
#define GENERIC_FAILURE "Verification failed."
/* Seconds a sudo session whose grant ended has to go after SIGTERM before
 * SIGKILL: sudo passes SIGTERM to the command, which may clean up. */
#define SESSION_END_GRACE 10
/* How often the change feed of a shared store is polled (SQLite). */
#define CHANGES_POLL_MS 250
/* How long a change stays in the feed (seconds). */
#define CHANGES_KEEP 86400
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
_Static_assert(sizeof(((struct phi_session *) 0)->request_id) == PHI_REQUEST_ID_LEN + 1,
               "a session's request_id holds one request id");

enum outcome {
        O_NONE,
        O_OK,               /* login accepted */
        O_WRONG,            /* no step in the window matches */
        O_REPLAY,           /* matches a step at or below the watermark */
        O_NO_TOKEN,         /* no active token: unknown or unenrolled name */
        O_LOCKED,           /* refused unchecked: user or host locked out */
        O_NO_TICKET,        /* enrolment without a valid ticket */
        O_NO_PENDING,       /* activation without a pending token */
        O_ENROLLED,         /* a pending token became active */
        O_PENDING,          /* a pending token was made (reply carries the URI) */
        O_ISSUED,
        O_RESET,
        O_UNSEAL,           /* a sealed seed did not open: wrong key or a tampered row */
        O_NO_USER,          /* ISSUE: the name is no user (directory or local) */
        O_ABANDONED,        /* its client hung up before the round: not served at all */
        O_SHOWN,            /* SHOW: the token's state was read */
        O_ALLOWED,          /* ACCOUNT: the policy lets the user in (j->decision) */
        O_DENIED,           /* ACCOUNT: it does not (j->decision) */
        O_UNDECIDED,        /* ACCOUNT: the user's identity could not be read: denied */
        O_SESSION_OPENED,   /* SESSION_OPEN: j->session recorded */
        O_SESSION_CLOSED,   /* SESSION_CLOSE, SESSION_GONE: j->session removed */
        O_SESSION_UNKNOWN,  /* SESSION_CLOSE: no open session of that id and user */
        O_SESSION_REFUSED,  /* SESSION_OPEN: the calling process could not be pinned */
        O_ELEV,             /* ELEV_*: answered; j->elev says how */
        O_SHOWN_LIST,       /* ELEV_LIST: the page is in j->reply */
        O_AUDITED,          /* AUDIT: appended (its origin journaled it) */
        O_SUDO_RECORDED,    /* SUDO reject, error: sudo's own refusal, recorded */
        O_SESSION_NO_GRANT, /* SESSION_OPEN with elevate: no active grant of the user's covers this host */
        O_SESSION_ENDED,    /* SESSION_END: journaled */
};

/* A finished reply on its way to the event loop. Allocated with its job (a job
 * from the request socket; PAM jobs are answered by the verifier thread
 * itself), so that handing it over after the commit cannot fail. */
struct answer {
        uint64_t ticket;
        phi_msg *reply;
        struct answer *next;
};

struct round_checkpoint {
        char host[256];
        char note[];
};

struct job {
        struct phi_verify_request req;
        char ident[PHI_IDENTITY_MAX + 1];   /* the name's identity now; "" for none */
        uint64_t ticket;
        bool from_pam;               /* answered on the PAM socket, by this thread */
        enum outcome outcome;
        bool lock_user, lock_host;   /* this request started a lockout */
        uint64_t locked_until;
        uint64_t expires;            /* ISSUE */
        bool login_enrolment;        /* ISSUE: the policy lets the ticket be used at a login */
        bool found;                  /* RESET */
        const char *token_state;     /* SHOW: "none", "pending" or "active" */
        bool internal;               /* the verifier's own (SESSION_GONE): nobody waits */
        /* The round's checkpoint, on its last job: journaled after the job's
         * events by the journal thread, so that a journald that falls behind
         * does not hold up the next round (whose replies wait for it). */
        struct round_checkpoint *checkpoint;
        struct phi_policy_decision decision;  /* ACCOUNT */
        struct phi_session session;  /* SESSION_*: the row opened or closed */
        int pidfd;                   /* SESSION_OPEN: the process, watched once committed */
        struct phi_elev_result elev; /* ELEV_* */
        enum outcome totp_outcome;   /* ELEV_DECIDE, ELEV_BREAKGLASS: the caller's code, if asked */
        uint64_t elev_next;          /* ELEV_TICK: when the next transition is due (0: none) */
        char sudo_role[PHI_POLICY_NAME_MAX + 1], sudo_request[PHI_REQUEST_ID_LEN + 1]; /* ACCOUNT elevate */
        phi_msg *reply;
        struct answer *answer;
        struct job *next;
};

struct queue {
        struct job *head, *tail;
        size_t n;
};

struct answers {
        struct answer *head, *tail;
};

struct phi_verifier {
        phi_store *store;
        phi_seal_key *key;
        struct phi_verifier_policy policy;
        struct phi_token dummy;
        int event_fd;               /* thread -> event loop: replies for the request socket */
        int wake_fd;                /* event loop -> thread: requests queued, or stop */
        pthread_t thread;
        bool thread_started;

        /* The thread's own loop and the PAM socket it serves. */
        int pam_fd;
        char *pam_bound;            /* the path this process bound, unlinked at the end */
        sd_event *event;
        phi_server *pam;
        sd_event_source *wake_src, *round_src;
        int start_result;
        bool start_done;

        /* The journal thread: a round's jobs are journaled there, so that the
         * verifier goes back to its socket as soon as the replies are out. */
        pthread_t journal_thread;
        bool journal_started, journal_stop;
        struct queue journal;
        pthread_mutex_t journal_lock;
        pthread_cond_t journal_wake, journal_room;

        pthread_mutex_t lock;
        pthread_cond_t started;
        struct queue todo;
        struct answers done;
        bool stop;
        uint64_t next_ticket;
        uint64_t rounds, requests;
        uint64_t last_prune;        /* the thread's: when failure counters were last pruned */
        /* A reloaded policy, taken by the thread between rounds: `policy` itself
         * is read by the thread alone, without the lock. */
        struct phi_verifier_policy next_policy;
        bool policy_changed;

        /* The access policy: `access` is the thread's, swapped for
         * next_access (under the lock) between rounds. */
        struct phi_policy *access, *next_access;
        bool access_changed;
        char hostname[256];         /* the thread's: this host, read each round */
        char boot_id[PHI_BOOT_ID_LEN + 1];

        /* The next elevation transition (a pending request lapsing, a grant
         * starting or ending): an internal ELEV_TICK job when it is due. */
        sd_event_source *elev_timer;
        bool elev_tick_queued;
        bool grants_dirty;          /* the last publication failed */

        /* The audit log: every job's events appended in its round's transaction. */
        phi_audit_log *audit;
        uint64_t audit_size, audit_checkpoint;  /* for status, under the lock */

        /* Sessions whose process the thread watches (a pidfd each). */
        struct watch *watches;
        size_t n_watches;

        /* The change feed of a shared store: the last seq applied, and what
         * wakes this daemon to read further (a poll of the newest seq). */
        uint64_t changes_seen;
        uint64_t changes_applied;   /* other hosts' changes reacted to */
        /* for status, under the lock: copies of those two, and the audit
         * log's rounds that found another writer's appends */
        uint64_t st_changes_seen, st_changes_applied, st_audit_adopted;
        sd_event_source *changes_src;
        sd_event_source *changes_wake_src;  /* the backend's own wake-up, if it has one */
};

struct watch {
        phi_verifier *v;
        char id[PHI_SESSION_ID_LEN + 1];
        int fd;
        sd_event_source *src;
        struct watch *prev, *next;
        /* A sudo session under a grant: ended (SIGTERM, then SIGKILL after
         * SESSION_END_GRACE on kill_src) when that grant ends. */
        char request_id[PHI_REQUEST_ID_LEN + 1];
        char user[PHI_NAME_MAX + 1], service[65], tty[65];
        uint64_t pid, pid_start;
        bool ending;
        const char *end_reason;
        char holder[PHI_NAME_MAX + 1], role[PHI_POLICY_NAME_MAX + 1];
        sd_event_source *kill_src;
};

static void format_time(uint64_t t, char buf[static 32]);

/*
 * Where a job's events go. The same functions that journal a finished round
 * (on the journal thread) first make its audit records (on the verifier's
 * thread, inside the round's transaction): with audit_sink set, emit()
 * appends a record instead of journaling, so the two can never differ in
 * what they say happened.
 */
struct audit_sink {
        phi_verifier *v;
        uint64_t time_us;
        int error;
};
static _Thread_local struct audit_sink *audit_sink;

static void audit_emit(struct audit_sink *k, enum phi_event event, const struct phi_journal_field *fields, size_t n);

static void emit(enum phi_event event, int priority, const struct phi_journal_field *fields, size_t n,
                 const char *fmt, ...) _phi_printf_(5, 6);
static void emit(enum phi_event event, int priority, const struct phi_journal_field *fields, size_t n,
                 const char *fmt, ...) {
        char msg[2048];
        va_list ap;

        if (audit_sink) {
                audit_emit(audit_sink, event, fields, n);
                return;
        }
        va_start(ap, fmt);
        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        phi_journal_event(event, priority, fields, n, "%s", msg);
}

static void answer_free(struct answer *a) {
        if (!a)
                return;
        phi_msg_free(a->reply);   /* wipes: an enrolment reply holds a seed */
        free(a);
}

static void job_free(struct job *j) {
        if (!j)
                return;
        free(j->checkpoint);
        phi_msg_free(j->reply);
        answer_free(j->answer);
        (void) phi_close_safe(j->pidfd);
        phi_elev_result_clear(&j->elev);
        phi_verify_request_clear(&j->req);
        phi_secret_wipe(j, sizeof(*j));
        free(j);
}

static void queue_push(struct queue *q, struct job *j) {
        j->next = NULL;
        if (q->tail)
                q->tail->next = j;
        else
                q->head = j;
        q->tail = j;
        q->n++;
}

static void queue_free(struct queue *q) {
        while (q->head) {
                struct job *j = q->head;
                q->head = j->next;
                job_free(j);
        }
        *q = (struct queue){ 0 };
}

static void answers_free(struct answers *q) {
        while (q->head) {
                struct answer *a = q->head;
                q->head = a->next;
                answer_free(a);
        }
        *q = (struct answers){ 0 };
}

/* ------------------------------------------------------------ the rules */

/* Counts one failure against a counter; true when it reaches the limit, which
 * starts a lockout and a new window. */
static bool failure_count(struct phi_failures *f, uint64_t max, const struct phi_verifier_policy *p,
                          uint64_t now) {
        if (f->window_start + p->failure_window <= now) {
                f->count = 0;
                f->window_start = now;
        }
        f->count++;
        if (f->count < max)
                return false;
        f->locked_until = now + p->lockout;
        f->count = 0;
        f->window_start = now;
        return true;
}

static int failures_record(phi_verifier *v, struct job *j, struct phi_failures *uf,
                           struct phi_failures *hf, bool count_host, uint64_t now) {
        int r;

        if (failure_count(uf, v->policy.max_failures, &v->policy, now)) {
                j->lock_user = true;
                j->locked_until = uf->locked_until;
        }
        if ((r = phi_store_failures_put(v->store, PHI_FAILURE_USER, j->req.user, uf)) < 0)
                return r;
        if (!count_host)
                return 0;
        if (failure_count(hf, v->policy.host_max_failures, &v->policy, now)) {
                j->lock_host = true;
                if (hf->locked_until > j->locked_until)
                        j->locked_until = hf->locked_until;
        }
        return phi_store_failures_put(v->store, PHI_FAILURE_HOST, j->req.rhost, hf);
}

/*
 * The identity a name has now: the local account's ("local:UID"; local
 * accounts first, as "passwd: files phi" resolves them and the snapshot keeps
 * directory users with a local name out), else the directory entry's key; ""
 * for neither. A token or ticket counts only for the identity it was made for,
 * so a new person given a departed person's name starts unenrolled, even
 * before the refresh that saw the departure has revoked the old token.
 */
static int identity_of(phi_verifier *v, const char *name, char out[static PHI_IDENTITY_MAX + 1]) {
        struct phi_user u = { 0 };
        uid_t uid;
        int r;

        out[0] = 0;
        r = phi_local_user_by_name(v->policy.passwd_file, name, &uid);
        if (r == 0) {
                snprintf(out, PHI_IDENTITY_MAX + 1, "local:%u", (unsigned) uid);
                return 0;
        }
        if (r != -ENOENT)
                return r;
        r = phi_store_user_get(v->store, name, &u);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (strlen(u.key) <= PHI_IDENTITY_MAX)
                snprintf(out, PHI_IDENTITY_MAX + 1, "%s", u.key);
        phi_user_clear(&u);
        return 0;
}

/*
 * Checks the code against the token (or the stand-in), and on success raises
 * the watermark. Returns a negative errno only for store failures, which abort
 * the round; everything else is an outcome.
 */
static int check_code(phi_verifier *v, struct job *j, enum phi_token_state state, uint64_t now,
                      bool *ret_accepted) {
        struct phi_token tok;
        const char *ad = j->req.user, *ad_identity = j->ident;
        uint8_t seed[PHI_SEAL_MAX_PLAIN];
        uint64_t step = 0;
        bool no_token = false;
        int r, vr;

        *ret_accepted = false;
        r = phi_store_token_get(v->store, j->req.user, state, &tok);
        if (r == 0 && (tok.legacy || !j->ident[0] || strcmp(tok.identity, j->ident) != 0)) {
                /* Another person's, under the same name: theirs is revoked
                 * when the refresh that saw them leave is applied. */
                phi_log(LOG_NOTICE, "TOTP token of %s was made for identity %s, and the name's identity is %s "
                                    "now; refused: the user enrols again",
                        j->req.user, tok.legacy ? "(not yet bound)" : tok.identity[0] ? tok.identity : "(none)",
                        j->ident[0] ? j->ident : "none");
                r = -ENOENT;
        }
        if (r == -ENOENT || r == -EUCLEAN) {
                if (r == -EUCLEAN)
                        phi_log(LOG_ERR, "TOTP token row of %s is malformed; treating it as absent",
                                j->req.user);
                tok = v->dummy;
                ad = DUMMY_USER;
                ad_identity = DUMMY_IDENTITY;
                no_token = true;
        } else if (r < 0)
                return r;

        r = phi_unseal(v->key, ad, ad_identity, tok.nonce, tok.sealed, tok.sealed_len, seed);
        if (r < 0) {
                j->outcome = O_UNSEAL;
                return 0;
        }
        struct phi_totp_params params = { tok.algorithm, tok.digits, v->policy.window };
        vr = phi_totp_verify(seed, tok.sealed_len - PHI_SEAL_TAG_BYTES, &params, (time_t) now,
                             j->req.code, tok.watermark, &step);
        phi_secret_wipe(seed, sizeof(seed));
        phi_secret_wipe(j->req.code, sizeof(j->req.code));

        if (no_token)
                j->outcome = state == PHI_TOKEN_ACTIVE ? O_NO_TOKEN : O_NO_PENDING;
        else if (vr == 0) {
                r = phi_store_token_advance(v->store, j->req.user, state, step);
                if (r == -ESTALE)
                        j->outcome = O_REPLAY;
                else if (r < 0)
                        return r;
                else
                        *ret_accepted = true;
        } else if (vr == -EALREADY)
                j->outcome = O_REPLAY;
        else
                j->outcome = O_WRONG;
        return 0;
}

/* A ticket counts for the identity it was issued to. */
static int ticket_valid(phi_verifier *v, const struct job *j, uint64_t now, bool *ret_valid) {
        struct phi_ticket t = { 0 };
        int r = phi_store_ticket_get(v->store, j->req.user, &t);

        if (r < 0 && r != -ENOENT)
                return r;
        *ret_valid = r == 0 && t.expires > now && !t.legacy && j->ident[0] && strcmp(t.identity, j->ident) == 0;
        return 0;
}

static int serve_activate(phi_verifier *v, struct job *j, uint64_t now) {
        struct phi_failures uf, hf = { 0 };
        bool valid, accepted;
        int r;

        if ((r = phi_store_failures_get(v->store, PHI_FAILURE_USER, j->req.user, &uf)) < 0)
                return r;
        if (uf.locked_until > now) {
                j->outcome = O_LOCKED;
                j->locked_until = uf.locked_until;
                return 0;
        }
        if ((r = ticket_valid(v, j, now, &valid)) < 0)
                return r;
        if (!valid) {
                j->outcome = O_NO_TICKET;
                return 0;
        }
        if ((r = check_code(v, j, PHI_TOKEN_PENDING, now, &accepted)) < 0)
                return r;
        if (accepted) {
                j->outcome = O_ENROLLED;
                if ((r = phi_store_token_activate(v->store, j->req.user, now)) < 0 ||
                    (r = phi_store_ticket_delete(v->store, j->req.user)) < 0)
                        return r;
                if (uf.count > 0)
                        return phi_store_failures_put(v->store, PHI_FAILURE_USER, j->req.user,
                                                      &(struct phi_failures){ 0 });
                return 0;
        }
        if (j->outcome == O_UNSEAL || j->outcome == O_NO_PENDING)
                return 0;
        return failures_record(v, j, &uf, &hf, false, now);
}

static int serve_enroll(phi_verifier *v, struct job *j, uint64_t now) {
        struct phi_token tok = {
                .state = PHI_TOKEN_PENDING,
                .algorithm = v->policy.algorithm,
                .digits = v->policy.digits,
                .created = now,
        };
        struct phi_totp_params params = { v->policy.algorithm, v->policy.digits, v->policy.window };
        uint8_t seed[PHI_SEAL_SEED_BYTES];
        _cleanup_msg_ phi_msg *m = NULL;
        char *uri = NULL, *qr = NULL;
        bool valid;
        int r;

        if ((r = ticket_valid(v, j, now, &valid)) < 0)
                return r;
        if (!valid) {
                j->outcome = O_NO_TICKET;
                return 0;
        }
        phi_seal_seed_new(seed);
        snprintf(tok.identity, sizeof(tok.identity), "%s", j->ident);
        r = phi_seal(v->key, j->req.user, j->ident, seed, sizeof(seed), tok.nonce, tok.sealed);
        if (r < 0)
                goto out;
        tok.sealed_len = sizeof(seed) + PHI_SEAL_TAG_BYTES;
        if ((r = phi_store_token_put(v->store, j->req.user, &tok)) < 0 ||
            (r = phi_totp_uri(v->policy.issuer, j->req.user, seed, sizeof(seed), &params, &uri)) < 0)
                goto out;
        m = phi_msg_new(PHI_MSG_TOTP_SECRET);
        if (!m) {
                r = -ENOMEM;
                goto out;
        }
        if ((r = phi_msg_put_str(m, PHI_TAG_USER, j->req.user)) < 0 ||
            (r = phi_msg_put_str(m, PHI_TAG_URI, uri)) < 0)
                goto out;
        /* pam_phi, inside sshd or a VPN server, draws nothing itself. */
        if (j->from_pam) {
                if ((r = phi_qr_draw(uri, &qr)) < 0 || (r = phi_msg_put_str(m, PHI_TAG_QR, qr)) < 0)
                        goto out;
        }
        /* Built now, while the seed exists; sent only if the round commits. */
        j->reply = PHI_TAKE_PTR(m);
        j->outcome = O_PENDING;
out:
        phi_secret_wipe(seed, sizeof(seed));
        phi_secret_free_str(uri);
        phi_secret_free_str(qr);
        return r;
}

/*
 * Enrolment at login: pam_phi's enroll option (the stack vouches that a first
 * factor was checked before it), the policy, a valid ticket (an admin's
 * consent), and no active token. A code of the user's pending token -- shown
 * to an earlier login, or by phictl totp enroll, and scanned -- activates it
 * and lets this login in; any other answer gets a new pending token, shown to
 * this login. Nothing is counted: no active token's code was tried.
 */
static int serve_login_enrolment(phi_verifier *v, struct job *j, const char *code, const struct phi_failures *uf,
                                 uint64_t now) {
        bool accepted = false;
        int r;

        if (*code) {
                memcpy(j->req.code, code, sizeof(j->req.code));
                if ((r = check_code(v, j, PHI_TOKEN_PENDING, now, &accepted)) < 0)
                        return r;
        }
        if (!accepted)
                return serve_enroll(v, j, now);
        j->outcome = O_ENROLLED;
        if ((r = phi_store_token_activate(v->store, j->req.user, now)) < 0 ||
            (r = phi_store_ticket_delete(v->store, j->req.user)) < 0)
                return r;
        if (uf->count > 0)
                return phi_store_failures_put(v->store, PHI_FAILURE_USER, j->req.user, &(struct phi_failures){ 0 });
        return 0;
}

static int serve_login(phi_verifier *v, struct job *j, uint64_t now) {
        struct phi_failures uf, hf = { 0 };
        bool count_host = j->req.rhost[0] != 0, accepted, enrolment = j->req.enroll && v->policy.enroll_at_login;
        char code[sizeof(j->req.code)] = "";
        int r;

        if ((r = phi_store_failures_get(v->store, PHI_FAILURE_USER, j->req.user, &uf)) < 0 ||
            (count_host && (r = phi_store_failures_get(v->store, PHI_FAILURE_HOST, j->req.rhost, &hf)) < 0))
                goto out;
        if (uf.locked_until > now || hf.locked_until > now) {
                j->outcome = O_LOCKED;
                j->locked_until = uf.locked_until > hf.locked_until ? uf.locked_until : hf.locked_until;
                goto out;
        }
        /* check_code wipes the code; enrolment may need it once more. */
        if (enrolment)
                memcpy(code, j->req.code, sizeof(code));
        if ((r = check_code(v, j, PHI_TOKEN_ACTIVE, now, &accepted)) < 0)
                goto out;
        if (j->outcome == O_NO_TOKEN && enrolment) {
                bool valid;

                if ((r = ticket_valid(v, j, now, &valid)) < 0)
                        goto out;
                if (valid) {
                        r = serve_login_enrolment(v, j, code, &uf, now);
                        goto out;
                }
        }
        if (accepted) {
                j->outcome = O_OK;
                /* A success clears the user's count; the host's decays with its window,
                 * so one good login from a host cannot reset a spray from it. */
                if (uf.count > 0)
                        r = phi_store_failures_put(v->store, PHI_FAILURE_USER, j->req.user,
                                                   &(struct phi_failures){ 0 });
                goto out;
        }
        if (j->outcome != O_UNSEAL)
                r = failures_record(v, j, &uf, &hf, count_host, now);
out:
        phi_secret_wipe(code, sizeof(code));
        phi_secret_wipe(j->req.code, sizeof(j->req.code));
        return r;
}

/* What phictl user show reports: which token the user has, whether a lockout
 * of the user is in force and until when, and an unused ticket's deadline.
 * Read here, like every other TOTP record; the sealed seed is read (the
 * store returns the row whole) but never opened, and wiped. */
static int serve_show(phi_verifier *v, struct job *j, uint64_t now) {
        static const enum phi_token_state states[] = { PHI_TOKEN_ACTIVE, PHI_TOKEN_PENDING };
        struct phi_failures uf;
        struct phi_token tok;
        int r = 0;

        j->outcome = O_SHOWN;
        j->token_state = "none";
        for (size_t i = 0; i < PHI_ELEMENTSOF(states) && r >= 0; i++) {
                r = phi_store_token_get(v->store, j->req.user, states[i], &tok);
                /* A token made for another person under this name is not
                 * this user's: a login would refuse it, so user show does. */
                if (r == 0 && (tok.legacy || !j->ident[0] || strcmp(tok.identity, j->ident) != 0))
                        r = -ENOENT;
                phi_secret_wipe(&tok, sizeof(tok));
                if (r == 0) {
                        j->token_state = phi_token_state_name(states[i]);
                        break;
                }
                if (r == -ENOENT || r == -EUCLEAN)
                        r = 0;   /* a malformed row is treated as absent, as at login */
        }
        if (r < 0 || (r = phi_store_failures_get(v->store, PHI_FAILURE_USER, j->req.user, &uf)) < 0)
                return r;
        if (uf.locked_until > now)
                j->locked_until = uf.locked_until;
        {
                bool valid = false;
                struct phi_ticket t = { 0 };
                if ((r = ticket_valid(v, j, now, &valid)) < 0)
                        return r;
                if (valid && phi_store_ticket_get(v->store, j->req.user, &t) == 0)
                        j->expires = t.expires;
        }
        return 0;
}

/* ------------------------------------------------------- access, sessions */

static int serve_account(phi_verifier *v, struct job *j, uint64_t now) {
        struct phi_policy_decision *dec = &j->decision;
        int r;

        if (!v->access) {
                *dec = (struct phi_policy_decision){ .refusal = PHI_POLICY_NO_RULE };
                snprintf(dec->rule, sizeof(dec->rule), "%s", PHI_POLICY_DEFAULT_RULE);
                snprintf(dec->reason, sizeof(dec->reason), "no policy is loaded; nobody is let in");
                j->outcome = O_DENIED;
                return 0;
        }
        r = phi_access_decide(v->access, v->store, v->policy.passwd_file, v->policy.group_file, j->req.user,
                              j->req.service, v->hostname, (int64_t) now, dec);
        if (r < 0) {
                /* Not a "no" but a "could not tell": denied all the same, and
                 * pam_phi says the daemon could not decide. */
                j->outcome = O_UNDECIDED;
                return 0;
        }
        if (dec->allowed && j->req.elevate) {
                /* sudo's stack: being let onto the host is not enough; an
                 * active grant of a role that covers this host is needed. */
                const struct phi_elev_ctx ctx = { .store = v->store, .policy = v->access, .host = v->hostname,
                                                  .now = now };
                bool has = false;
                if ((r = phi_elev_user_has_grant(&ctx, j->req.user, &has, j->sudo_role, sizeof(j->sudo_role),
                                                 j->sudo_request, sizeof(j->sudo_request))) < 0)
                        return r;
                if (!has) {
                        dec->allowed = false;
                        dec->refusal = PHI_POLICY_NO_RULE;
                        snprintf(dec->reason, sizeof(dec->reason),
                                 "%s may use %s here, but holds no active elevation grant for this host", j->req.user,
                                 j->req.service);
                } else
                        snprintf(dec->reason + strlen(dec->reason), sizeof(dec->reason) - strlen(dec->reason),
                                 "; under the grant of role %s (request %s)", j->sudo_role, j->sudo_request);
        }
        j->outcome = dec->allowed ? O_ALLOWED : O_DENIED;
        return 0;
}

static int serve_session_open(phi_verifier *v, struct job *j, uint64_t now) {
        struct phi_session *x = &j->session;
        int r;

        *x = (struct phi_session){ .pid = j->req.pid, .opened = now };
        /* sudo's session (its stack has elevate, or it is the sudo service):
         * tied to the grant it runs under, so that it ends with the grant.
         * The grant is the invoking user's (PAM_RUSER); PAM_USER is the
         * run-as user by then. With elevate, no grant is no session. */
        if (j->req.elevate || strcmp(j->req.service, "sudo") == 0 || strcmp(j->req.service, "sudo-i") == 0) {
                const struct phi_elev_ctx ctx = { .store = v->store, .policy = v->access, .host = v->hostname,
                                                  .now = now };
                const char *holder = j->req.ruser[0] ? j->req.ruser : j->req.user;
                bool has = false;
                if (v->access && (r = phi_elev_user_has_grant(&ctx, holder, &has, j->sudo_role, sizeof(j->sudo_role),
                                                              j->sudo_request, sizeof(j->sudo_request))) < 0)
                        return r;
                if (!has && j->req.elevate) {
                        j->outcome = O_SESSION_NO_GRANT;
                        return 0;
                }
                if (has)
                        snprintf(x->request_id, sizeof(x->request_id), "%s", j->sudo_request);
        }
        /* The process waits for this answer, so it is alive: pin it now, so
         * that its end is seen whenever it comes. */
        if ((r = phi_session_pid_start((pid_t) x->pid, &x->pid_start)) < 0 ||
            (r = phi_session_pidfd((pid_t) x->pid, x->pid_start, &j->pidfd)) < 0) {
                phi_log(LOG_WARNING, "session of %s (%s) not recorded: process %llu cannot be watched: %s", j->req.user,
                        j->req.service, (unsigned long long) x->pid, phi_errno_text(r));
                j->outcome = O_SESSION_REFUSED;
                return 0;
        }
        if ((r = phi_session_id_new(x->id)) < 0)
                return r;
        snprintf(x->user, sizeof(x->user), "%s", j->req.user);
        snprintf(x->service, sizeof(x->service), "%s", j->req.service);
        snprintf(x->rhost, sizeof(x->rhost), "%s", j->req.rhost);
        snprintf(x->tty, sizeof(x->tty), "%s", j->req.tty);
        snprintf(x->host, sizeof(x->host), "%s", v->hostname);
        snprintf(x->boot_id, sizeof(x->boot_id), "%s", v->boot_id);
        if ((r = phi_store_session_open(v->store, x)) < 0)
                return r;
        j->outcome = O_SESSION_OPENED;
        return 0;
}

static int serve_session_close(phi_verifier *v, struct job *j) {
        struct phi_session old;
        int r;

        /* The daemon's own close (its process gone) is anyone's; a
         * pam_close_session() only the session user's. */
        r = phi_store_session_close(v->store, j->req.session, j->internal ? NULL : j->req.user, &old);
        if (r == -EPERM) {
                /* Refused on its own, with nothing removed: a failure here
                 * would roll back, and fail, every request of the round. */
                phi_log(LOG_WARNING, "refusing to close session %s for %s: it is another user's", j->req.session,
                        j->req.user);
                r = -ENOENT;
        }
        if (r == -ENOENT) {
                j->outcome = j->internal ? O_NONE : O_SESSION_UNKNOWN;
                return 0;
        }
        if (r < 0)
                return r;
        j->session = old;
        j->outcome = O_SESSION_CLOSED;
        return 0;
}

/* sudo_phi: check and accept are judged as sudo's account check with
 * elevate (the access rule for the service, then an active grant covering
 * this host); reject and error are sudo's own refusals, recorded. */
static int serve_sudo(phi_verifier *v, struct job *j, uint64_t now) {
        if (strcmp(j->req.sudo_state, "reject") == 0 || strcmp(j->req.sudo_state, "error") == 0) {
                j->outcome = O_SUDO_RECORDED;
                return 0;
        }
        j->req.elevate = true;
        return serve_account(v, j, now);
}

/* --------------------------------------------------------------- elevation */

static struct phi_elev_ctx elev_ctx(phi_verifier *v, uint64_t now) {
        return (struct phi_elev_ctx){ .store = v->store, .policy = v->access, .passwd_file = v->policy.passwd_file,
                                      .group_file = v->policy.group_file, .host = v->hostname, .now = now };
}

/* The caller's own fresh code, checked as a login's is (replay, lockout,
 * failures counted): true when it was accepted. */
static int elev_code(phi_verifier *v, struct job *j, uint64_t now, bool *ret_ok) {
        int r;

        *ret_ok = false;
        if (!j->req.code[0])
                return 0;
        j->req.enroll = false;
        if ((r = serve_login(v, j, now)) < 0)
                return r;
        j->totp_outcome = j->outcome;
        *ret_ok = j->outcome == O_OK;
        return 0;
}

static int serve_elev(phi_verifier *v, struct job *j, uint64_t now) {
        const struct phi_elev_ctx ctx = elev_ctx(v, now);
        const struct phi_verify_request *q = &j->req;
        bool code_ok = false;
        int r = 0;

        switch (q->kind) {
        case PHI_VERIFY_ELEV_REQUEST:
                r = phi_elev_request(&ctx, q->user, q->role, q->duration, q->reason, q->start, q->ticket, &j->elev);
                break;
        case PHI_VERIFY_ELEV_DECIDE:
                if ((r = elev_code(v, j, now, &code_ok)) < 0)
                        break;
                if (q->code_given && !code_ok) {
                        /* A wrong code decides nothing. */
                        j->elev.error = -EACCES;
                        snprintf(j->elev.message, sizeof(j->elev.message), "wrong code; nothing was decided");
                        break;
                }
                r = phi_elev_decide(&ctx, q->user, q->request_id, q->approve, q->reason, code_ok, &j->elev);
                break;
        case PHI_VERIFY_ELEV_CANCEL:
                r = phi_elev_cancel(&ctx, q->user, q->request_id, &j->elev);
                break;
        case PHI_VERIFY_ELEV_REVOKE:
                r = phi_elev_revoke(&ctx, q->user, q->admin, q->request_id, q->reason, &j->elev);
                break;
        case PHI_VERIFY_ELEV_BREAKGLASS:
                if ((r = elev_code(v, j, now, &code_ok)) < 0)
                        break;
                if (!code_ok) {
                        j->elev.error = -EACCES;
                        snprintf(j->elev.message, sizeof(j->elev.message), "wrong code; no break-glass grant");
                        break;
                }
                r = phi_elev_breakglass(&ctx, q->user, q->role, q->reason, q->duration, true, &j->elev);
                break;
        case PHI_VERIFY_ELEV_REVIEW:
                r = phi_elev_review(&ctx, q->user, q->request_id, q->reason, &j->elev);
                break;
        case PHI_VERIFY_ELEV_TICK:
                r = phi_elev_tick(&ctx, &j->elev, &j->elev_next);
                break;
        default:
                r = -EINVAL;
        }
        if (r >= 0)
                j->outcome = O_ELEV;
        return r;
}

/* A time as ISO 8601, or "-" for none. */
static int put_time(phi_msg *m, const char *key, uint64_t t) {
        char buf[32];

        if (!t)
                return phi_msg_put_pair(m, key, "-");
        format_time(t, buf);
        return phi_msg_put_pair(m, key, buf);
}

/* Whether the caller may see request x: their own, one they may decide (an
 * approver of its role), or any for admins, auditors and the approver group. */
static bool elev_visible(const struct phi_verify_request *q, const struct phi_policy *policy,
                         const struct phi_access_subject *who, const struct phi_elev_request *x) {
        struct phi_policy_decision dec;

        if (q->privileged || strcmp(x->requester, q->user) == 0)
                return true;
        if (!policy || !who)
                return false;
        (void) phi_policy_role_approver_check(policy, x->role, &who->who, x->requester, &dec);
        return dec.allowed;
}

static int put_elev_row(phi_msg *m, const struct phi_elev_request *x, uint64_t now) {
        char approvals[24];
        int r;

        snprintf(approvals, sizeof(approvals), "%u/%u", x->approvals, x->approvals_needed);
        if ((r = phi_msg_put_pair(m, "id", x->id)) < 0 || (r = phi_msg_put_pair(m, "user", x->requester)) < 0 ||
            (r = phi_msg_put_pair(m, "role", x->role)) < 0 || (r = phi_msg_put_pair(m, "group", x->grant_group)) < 0 ||
            (r = phi_msg_put_pair(m, "state", phi_elev_state_name(x->state))) < 0 ||
            (r = phi_msg_put_flag(m, "breakglass", x->breakglass)) < 0 ||
            (r = phi_msg_put_flag(m, "reviewed", x->breakglass && x->reviewer[0])) < 0 ||
            (r = phi_msg_put_pair(m, "approvals", approvals)) < 0 ||
            (r = phi_msg_put_number(m, "duration", x->duration)) < 0 || (r = put_time(m, "created", x->created)) < 0 ||
            (r = put_time(m, "pending_until", x->state == PHI_ELEV_PENDING ? x->pending_until : UINT64_C(0))) < 0 ||
            (r = put_time(m, "starts", x->starts)) < 0 || (r = put_time(m, "expires", x->expires)) < 0 ||
            (r = phi_msg_put_number(m, "seconds_left",
                                    x->state == PHI_ELEV_ACTIVE && x->expires > now ? x->expires - now : UINT64_C(0))) <
                    0 ||
            (r = phi_msg_put_pair(m, "host", x->host)) < 0 || (r = phi_msg_put_pair(m, "reason", x->reason)) < 0 ||
            (r = phi_msg_put_pair(m, "ticket", x->ticket)) < 0 || (r = phi_msg_put_pair(m, "ended_by", x->ended_by)) < 0 ||
            (r = phi_msg_put_pair(m, "end_reason", x->end_reason)) < 0 ||
            (r = phi_msg_put_pair(m, "reviewer", x->reviewer)) < 0)
                return r;
        return 0;
}

/* Room one request takes at most in a reply, its texts at their bounds. */
#define ELEV_ROW_ROOM 5600

/* One page of requests for phictl requests / grants, scoped to the caller:
 * the requests after q->request_id that the caller may see, as many as fit;
 * "more" when the page stopped for room. */
static int serve_elev_list(phi_verifier *v, struct job *j, uint64_t now) {
        _cleanup_msg_ phi_msg *m = phi_msg_new(PHI_MSG_OK);
        const struct phi_verify_request *q = &j->req;
        struct phi_access_subject who;
        bool have_who = false, more = false, end = false;
        char after[PHI_REQUEST_ID_LEN + 1];
        unsigned mask = 0xff;
        const char *requester = "";
        int r = 0;

        if (!m)
                return -ENOMEM;
        if (strcmp(q->list, "pending") == 0)
                mask = PHI_ELEV_MASK(PHI_ELEV_PENDING);
        else if (strcmp(q->list, "grants") == 0)
                mask = PHI_ELEV_MASK(PHI_ELEV_ACTIVE) | PHI_ELEV_MASK(PHI_ELEV_APPROVED);
        else if (strcmp(q->list, "mine") == 0)
                requester = q->user;
        if (!q->privileged && !requester[0] && v->access) {
                if ((r = phi_access_subject_resolve(v->store, v->policy.passwd_file, v->policy.group_file, q->user,
                                                    &who)) < 0)
                        return r;
                have_who = true;
        }
        snprintf(after, sizeof(after), "%s", q->request_id);
        while (!end && !more && r >= 0) {
                struct phi_elev_request *list = NULL;
                size_t n = 0;

                if ((r = phi_store_elev_list(v->store, mask, requester, after, 64, &list, &n)) < 0)
                        break;
                end = n < 64;
                for (size_t i = 0; i < n && r >= 0; i++) {
                        if (!elev_visible(q, v->access, have_who ? &who : NULL, &list[i]))
                                continue;
                        if (phi_msg_room(m) < ELEV_ROW_ROOM + 64) {
                                more = true;
                                break;
                        }
                        r = put_elev_row(m, &list[i], now);
                        snprintf(after, sizeof(after), "%s", list[i].id);
                }
                if (!more && n > 0)
                        snprintf(after, sizeof(after), "%s", list[n - 1].id);
                free(list);
        }
        if (have_who)
                phi_access_subject_clear(&who);
        if (r >= 0)
                r = phi_msg_put_flag(m, "more", more);
        if (r < 0)
                return r;
        j->reply = PHI_TAKE_PTR(m);
        j->outcome = O_SHOWN_LIST;
        return 0;
}

static int serve_one(phi_verifier *v, struct job *j, uint64_t now) {
        int r;

        switch (j->req.kind) {
        case PHI_VERIFY_ACCOUNT:
                return serve_account(v, j, now);
        case PHI_VERIFY_SESSION_OPEN:
                return serve_session_open(v, j, now);
        case PHI_VERIFY_SESSION_CLOSE:
        case PHI_VERIFY_SESSION_GONE:
                return serve_session_close(v, j);
        case PHI_VERIFY_ELEV_LIST:
                return serve_elev_list(v, j, now);
        case PHI_VERIFY_AUDIT:
                j->outcome = O_AUDITED;
                return 0;
        case PHI_VERIFY_SUDO:
                return serve_sudo(v, j, now);
        case PHI_VERIFY_SESSION_END:
                j->outcome = O_SESSION_ENDED;
                return 0;
        case PHI_VERIFY_ELEV_REQUEST:
        case PHI_VERIFY_ELEV_CANCEL:
        case PHI_VERIFY_ELEV_REVOKE:
        case PHI_VERIFY_ELEV_REVIEW:
        case PHI_VERIFY_ELEV_TICK:
                return serve_elev(v, j, now);
        case PHI_VERIFY_ELEV_DECIDE:
        case PHI_VERIFY_ELEV_BREAKGLASS:
                /* These may check the caller's code: its identity first. */
                if ((r = identity_of(v, j->req.user, j->ident)) < 0)
                        return r;
                return serve_elev(v, j, now);
        default:
                break;
        }
        if (j->req.kind != PHI_VERIFY_RESET && (r = identity_of(v, j->req.user, j->ident)) < 0)
                return r;
        switch (j->req.kind) {
        case PHI_VERIFY_LOGIN:
                return serve_login(v, j, now);
        case PHI_VERIFY_ACTIVATE:
                return serve_activate(v, j, now);
        case PHI_VERIFY_ENROLL:
                return serve_enroll(v, j, now);
        case PHI_VERIFY_ISSUE: {
                struct phi_ticket t = { .created = now };
                if (!j->ident[0]) {
                        j->outcome = O_NO_USER;
                        return 0;
                }
                j->expires = t.expires = now + (j->req.duration ? j->req.duration : v->policy.ticket_lifetime);
                snprintf(t.identity, sizeof(t.identity), "%s", j->ident);
                j->outcome = O_ISSUED;
                j->login_enrolment = v->policy.enroll_at_login;
                return phi_store_ticket_put(v->store, j->req.user, &t);
        }
        case PHI_VERIFY_RESET:
                j->outcome = O_RESET;
                return phi_store_token_delete(v->store, j->req.user, &j->found);
        case PHI_VERIFY_SHOW:
                return serve_show(v, j, now);
        default:
                break;
        }
        return -EINVAL;
}

/* ---------------------------------------------------------- replies, journal */

static void format_time(uint64_t t, char buf[static 32]) {
        struct tm tm;
        time_t tt = (time_t) t;

        if (!gmtime_r(&tt, &tm) || strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(buf, 32, "%llu", (unsigned long long) t);
}

static int elev_reply(struct job *j, phi_msg **ret) {
        _cleanup_msg_ phi_msg *m = NULL;
        const struct phi_elev_request *x = &j->elev.req;
        char t[32], approvals[24];
        int r;

        if (j->req.kind == PHI_VERIFY_ELEV_TICK) {
                *ret = NULL;
                return 0;
        }
        if (j->elev.error)
                return phi_msg_new_error(j->elev.error, ret, "%s", j->elev.message);
        m = phi_msg_new(PHI_MSG_OK);
        if (!m)
                return -ENOMEM;
        snprintf(approvals, sizeof(approvals), "%u/%u", x->approvals, x->approvals_needed);
        if ((r = phi_msg_put_pair(m, "id", x->id)) < 0 || (r = phi_msg_put_pair(m, "user", x->requester)) < 0 ||
            (r = phi_msg_put_pair(m, "role", x->role)) < 0 ||
            (r = phi_msg_put_pair(m, "state", phi_elev_state_name(x->state))) < 0 ||
            (r = phi_msg_put_pair(m, "approvals", approvals)) < 0)
                return r;
        if (x->state == PHI_ELEV_PENDING) {
                format_time(x->pending_until, t);
                if ((r = phi_msg_put_pair(m, "pending_until", t)) < 0)
                        return r;
        }
        if (x->starts) {
                format_time(x->starts, t);
                if ((r = phi_msg_put_pair(m, "starts", t)) < 0)
                        return r;
                format_time(x->expires, t);
                if ((r = phi_msg_put_pair(m, "expires", t)) < 0)
                        return r;
        }
        *ret = PHI_TAKE_PTR(m);
        return 0;
}

static int reply_for(struct job *j, phi_msg **ret) {
        _cleanup_msg_ phi_msg *m = NULL;
        char until[32];
        int r;

        switch (j->outcome) {
        case O_OK:
        case O_ENROLLED:
        case O_RESET:
                m = phi_msg_new(PHI_MSG_OK);
                if (!m)
                        return -ENOMEM;
                if (j->outcome == O_RESET &&
                    (r = phi_msg_put_flag(m, "removed", j->found)) < 0)
                        return r;
                *ret = PHI_TAKE_PTR(m);
                return 0;
        case O_ISSUED:
                format_time(j->expires, until);
                m = phi_msg_new(PHI_MSG_OK);
                if (!m)
                        return -ENOMEM;
                if ((r = phi_msg_put_pair(m, "user", j->req.user)) < 0 ||
                    (r = phi_msg_put_pair(m, "ticket_expires", until)) < 0 ||
                    (r = phi_msg_put_pair(m, "next", j->login_enrolment
                                          ? "the user runs: phictl totp enroll; or logs in where pam_phi has "
                                            "the enroll option"
                                          : "the user runs: phictl totp enroll")) < 0)
                        return r;
                *ret = PHI_TAKE_PTR(m);
                return 0;
        case O_PENDING:
                *ret = PHI_TAKE_PTR(j->reply);
                return 0;
        case O_SHOWN:
                if (!j->reply)
                        return -EINVAL;
                if ((r = phi_msg_put_str(j->reply, PHI_TAG_TOKEN, j->token_state)) < 0)
                        return r;
                if (j->locked_until) {
                        format_time(j->locked_until, until);
                        if ((r = phi_msg_put_pair(j->reply, "locked_until", until)) < 0)
                                return r;
                }
                if (j->expires) {
                        format_time(j->expires, until);
                        if ((r = phi_msg_put_pair(j->reply, "ticket_expires", until)) < 0)
                                return r;
                }
                *ret = PHI_TAKE_PTR(j->reply);
                return 0;
        case O_UNSEAL:
                return phi_msg_new_error(-EIO, ret, "TOTP verification is unavailable; see the daemon's log");
        case O_NO_USER:
                return phi_msg_new_error(-ENOENT, ret, "no user %s: neither in the directory nor a local account",
                                         j->req.user);
        case O_NO_TICKET:
                if (j->req.kind == PHI_VERIFY_ACTIVATE || j->req.kind == PHI_VERIFY_ENROLL)
                        return phi_msg_new_error(-EACCES, ret,
                                                 "no valid enrolment ticket for %s; ask an admin "
                                                 "to run: phictl totp issue %s",
                                                 j->req.user, j->req.user);
                break;
        case O_NO_PENDING:
                /* pam_phi takes any errno but EACCES for "could not decide". */
                if (j->from_pam)
                        return phi_msg_new_error(-EACCES, ret, "no token waiting for activation");
                return phi_msg_new_error(-ENOENT, ret, "no token waiting for activation; run phictl totp enroll");
        case O_LOCKED:
                if (j->req.kind == PHI_VERIFY_ACTIVATE) {
                        format_time(j->locked_until, until);
                        return phi_msg_new_error(-EACCES, ret, "too many wrong codes; locked until %s", until);
                }
                break;
        case O_WRONG:
        case O_REPLAY:
                if (j->req.kind == PHI_VERIFY_ACTIVATE)
                        return phi_msg_new_error(-EACCES, ret, "wrong code; check the app and try again");
                break;
        case O_NO_TOKEN:
        case O_NONE:
                break;
        case O_ABANDONED:
                *ret = NULL;   /* nobody listens; the connection is closed */
                return 0;
        case O_ALLOWED:
                m = phi_msg_new(PHI_MSG_OK);
                if (!m)
                        return -ENOMEM;
                if (j->req.kind == PHI_VERIFY_SUDO &&
                    ((r = phi_msg_put_pair(m, "role", j->sudo_role)) < 0 ||
                     (r = phi_msg_put_pair(m, "request", j->sudo_request)) < 0))
                        return r;
                *ret = PHI_TAKE_PTR(m);
                return 0;
        case O_DENIED:
                return phi_msg_new_error(-EACCES, ret, "access denied by rule %s: %s", j->decision.rule,
                                         j->decision.reason);
        case O_UNDECIDED:
                return phi_msg_new_error(-EIO, ret, "access could not be decided: %s", j->decision.reason);
        case O_SESSION_OPENED:
                m = phi_msg_new(PHI_MSG_OK);
                if (!m)
                        return -ENOMEM;
                if ((r = phi_msg_put_str(m, PHI_TAG_SESSION, j->session.id)) < 0)
                        return r;
                *ret = PHI_TAKE_PTR(m);
                return 0;
        case O_SESSION_CLOSED:
                m = phi_msg_new(PHI_MSG_OK);
                if (!m)
                        return -ENOMEM;
                *ret = PHI_TAKE_PTR(m);
                return 0;
        case O_SESSION_UNKNOWN:
                return phi_msg_new_error(-ENOENT, ret, "no open session %s of %s", j->req.session, j->req.user);
        case O_SESSION_REFUSED:
                return phi_msg_new_error(-ESRCH, ret, "the calling process cannot be watched; session not recorded");
        case O_SHOWN_LIST:
                *ret = PHI_TAKE_PTR(j->reply);
                return 0;
        case O_AUDITED:
                /* An internal record: nobody waits. A barrier: the reply it
                 * holds back until the records before it are durable. */
                *ret = PHI_TAKE_PTR(j->reply);
                return 0;
        case O_SESSION_ENDED:
                *ret = NULL;
                return 0;
        case O_SUDO_RECORDED:
                m = phi_msg_new(PHI_MSG_OK);
                if (!m)
                        return -ENOMEM;
                *ret = PHI_TAKE_PTR(m);
                return 0;
        case O_SESSION_NO_GRANT:
                return phi_msg_new_error(-EACCES, ret,
                                         "%s holds no active elevation grant for this host; sudo session refused",
                                         j->req.ruser[0] ? j->req.ruser : j->req.user);
        case O_ELEV:
                return elev_reply(j, ret);
        }
        /* Logins learn one bit. */
        return phi_msg_new_error(-EACCES, ret, GENERIC_FAILURE);
}

static const char *reason_of(enum outcome o) {
        switch (o) {
        case O_WRONG: return "wrong_code";
        case O_REPLAY: return "replay";
        case O_NO_TOKEN: return "no_token";
        case O_LOCKED: return "locked_out";
        case O_NO_TICKET: return "no_ticket";
        case O_NO_PENDING: return "no_pending_token";
        case O_UNSEAL: return "unseal_failed";
        default: return NULL;
        }
}

/* Diagnostics and notes of the journal functions: not events, so not in
 * the audit log, and written only on the journal pass. */
#define jlog(...)                                 \
        do {                                      \
                if (!audit_sink)                  \
                        phi_log(__VA_ARGS__);     \
        } while (0)
#define jnote(...)                                \
        do {                                      \
                if (!audit_sink)                  \
                        phi_journal_note(__VA_ARGS__); \
        } while (0)

static void journal_elev(const struct job *j) {
        for (size_t i = 0; i < j->elev.n_events; i++) {
                const struct phi_elev_event *e = &j->elev.events[i];
                char expires[32] = "", starts[32] = "", approvals[24];
                if (e->expires && (e->event == PHI_EVENT_ELEVATION_APPROVED || e->event == PHI_EVENT_BREAKGLASS) &&
                    e->approvals >= e->approvals_needed)
                        format_time(e->expires, expires);
                if (e->starts && expires[0])
                        format_time(e->starts, starts);
                snprintf(approvals, sizeof(approvals), "%u/%u", e->approvals, e->approvals_needed);
                const struct phi_journal_field fields[] = {
                        { "PHI_USER", e->user },
                        { "PHI_ACTOR", e->actor[0] ? e->actor : NULL },
                        { "PHI_ROLE", e->role },
                        { "PHI_REQUEST_ID", e->id },
                        { "PHI_REASON", e->reason[0] ? e->reason : NULL },
                        { "PHI_EXPIRES", expires[0] ? expires : NULL },
                        { "PHI_STARTS", starts[0] ? starts : NULL },
                        { "PHI_APPROVALS", e->event == PHI_EVENT_ELEVATION_APPROVED ? approvals : NULL },
                        { "PHI_SERVICE", "phictl" },
                };
                emit(e->event, e->priority, fields, PHI_ELEMENTSOF(fields), "%s", e->message);
        }
}

/* sudo_phi's questions and records: sudo_escalation for a command the audit
 * plugin records under a grant, sudo_denied for each refusal (the approval
 * plugin's, the audit plugin's, and sudo's own, which the audit plugin
 * reports). An approval plugin's yes is not journaled: the audit plugin
 * records the command, and pam_phi's account check the escalation. */
static void journal_sudo(const struct job *j) {
        const struct phi_verify_request *q = &j->req;
        const bool sudo_own = j->outcome == O_SUDO_RECORDED;
        const char *reason = sudo_own ? (q->reason[0] ? q->reason : q->sudo_state) : j->decision.reason;
        const char *runas = q->runas[0] ? q->runas : "root";
        const struct phi_journal_field fields[] = {
                { "PHI_USER", q->user },
                { "PHI_TARGET_USER", runas },
                { "PHI_TARGET_GROUP", q->runas_group[0] ? q->runas_group : NULL },
                { "PHI_SERVICE", q->service[0] ? q->service : NULL },
                { "PHI_RHOST", q->rhost[0] ? q->rhost : NULL },
                { "PHI_TTY", q->tty[0] ? q->tty : NULL },
                { "PHI_COMMAND", q->command ? q->command : "" },
                { "PHI_CWD", q->cwd && q->cwd[0] ? q->cwd : NULL },
                { "PHI_RULE", sudo_own ? NULL : j->decision.rule },
                { "PHI_REASON", reason },
                { "PHI_STAGE", q->sudo_state },
                { "PHI_ROLE", j->sudo_role[0] ? j->sudo_role : NULL },
                { "PHI_REQUEST_ID", j->sudo_request[0] ? j->sudo_request : NULL },
        };
        const size_t n = PHI_ELEMENTSOF(fields);
        const char *command = q->command ? q->command : "";

        switch (j->outcome) {
        case O_ALLOWED:
                if (strcmp(q->sudo_state, "accept") == 0)
                        emit(PHI_EVENT_SUDO_ESCALATION, LOG_NOTICE, fields, n,
                             "%s runs as %s under the grant of role %s (request %s): %s", q->user, runas,
                             j->sudo_role, j->sudo_request, command);
                break;
        case O_DENIED:
        case O_UNDECIDED:
                emit(PHI_EVENT_SUDO_DENIED, j->outcome == O_UNDECIDED ? LOG_ERR : LOG_WARNING, fields, n,
                     "sudo_phi refused %s running as %s: %s: %s", q->user, runas, reason, command);
                break;
        case O_SUDO_RECORDED:
                emit(PHI_EVENT_SUDO_DENIED, LOG_WARNING, fields, n, "sudo refused %s running as %s (%s): %s: %s",
                     q->user, runas, q->sudo_state, reason, command);
                break;
        default:
                break;
        }
}

/* session_ended: a sudo session under a grant that ended was signalled. */
static void journal_session_end(const struct job *j) {
        const struct phi_verify_request *q = &j->req;
        char pid[24];

        snprintf(pid, sizeof(pid), "%llu", (unsigned long long) q->pid);
        const struct phi_journal_field fields[] = {
                { "PHI_USER", q->user },
                { "PHI_TARGET_USER", q->runas[0] ? q->runas : NULL },
                { "PHI_SERVICE", q->service[0] ? q->service : NULL },
                { "PHI_TTY", q->tty[0] ? q->tty : NULL },
                { "PHI_SESSION", q->session },
                { "PHI_PID", pid },
                { "PHI_ROLE", q->role[0] ? q->role : NULL },
                { "PHI_REQUEST_ID", q->request_id },
                { "PHI_REASON", q->gone_reason },
                { "PHI_SIGNAL", q->signal_name },
                { "PHI_ACTOR", "phiaccessd" },
        };
        emit(PHI_EVENT_SESSION_ENDED, LOG_NOTICE, fields, PHI_ELEMENTSOF(fields),
             "Session %s of %s (%s as %s, process %s) ended with %s: the grant %s of role %s %s", q->session,
             q->user, q->service, q->runas, pid, q->signal_name, q->request_id, q->role,
             strcmp(q->gone_reason, "grant_revoked") == 0 ? "was revoked" : "expired");
}

/* access_granted / access_denied, session_open / session_close. */
static void journal_access(const struct job *j) {
        const struct phi_verify_request *q = &j->req;
        const struct phi_session *x = &j->session;
        bool session = j->outcome == O_SESSION_OPENED || j->outcome == O_SESSION_CLOSED;
        /* A session closed by the daemon has only what its row recorded. */
        const char *service = session ? x->service : q->service, *rhost = session ? x->rhost : q->rhost,
                   *tty = session ? x->tty : q->tty, *user = session ? x->user : q->user;
        char pid[24];
        const char *reason = session ? (j->req.kind == PHI_VERIFY_SESSION_GONE ? q->gone_reason
                                        : j->outcome == O_SESSION_CLOSED ? "closed" : NULL)
                                     : j->decision.reason;

        snprintf(pid, sizeof(pid), "%llu", (unsigned long long) x->pid);
        const struct phi_journal_field fields[] = {
                { "PHI_USER", user },
                { "PHI_SERVICE", service[0] ? service : NULL },
                { "PHI_RHOST", rhost[0] ? rhost : NULL },
                { "PHI_TTY", tty[0] ? tty : NULL },
                { "PHI_RULE", session ? NULL : j->decision.rule },
                { "PHI_REASON", reason },
                { "PHI_SESSION", session ? x->id : NULL },
                { "PHI_PID", session ? pid : NULL },
                { "PHI_ACTOR", j->req.kind == PHI_VERIFY_SESSION_GONE ? "phiaccessd" : NULL },
                { "PHI_HOST", session ? x->host : NULL },
                { "PHI_ROLE", j->sudo_role[0] ? j->sudo_role : NULL },
                { "PHI_REQUEST_ID", j->sudo_request[0] ? j->sudo_request : NULL },
        };
        const size_t n = PHI_ELEMENTSOF(fields);
        const char *from = rhost[0] ? " from " : "";

        if (q->kind == PHI_VERIFY_SUDO) {
                journal_sudo(j);
                return;
        }
        switch (j->outcome) {
        case O_ALLOWED:
                if (q->elevate)
                        emit(PHI_EVENT_SUDO_ESCALATION, LOG_NOTICE, fields, n,
                                          "%s may use %s under the grant of role %s (request %s)", user, service,
                                          j->sudo_role, j->sudo_request);
                else
                        emit(PHI_EVENT_ACCESS_GRANTED, LOG_INFO, fields, n,
                                          "Access for %s to %s%s%s granted by rule %s", user, service, from, rhost,
                                          j->decision.rule);
                break;
        case O_DENIED:
                if (q->elevate) {
                        emit(PHI_EVENT_SUDO_DENIED, LOG_WARNING, fields, n, "%s refused %s: %s", service,
                                          user, j->decision.reason);
                        break;
                }
                emit(PHI_EVENT_ACCESS_DENIED, LOG_NOTICE, fields, n,
                                  "Access for %s to %s%s%s denied by rule %s: %s", user, service, from, rhost,
                                  j->decision.rule, j->decision.reason);
                break;
        case O_UNDECIDED:
                emit(PHI_EVENT_ACCESS_DENIED, LOG_ERR, fields, n,
                                  "Access for %s to %s%s%s denied: %s", user, service, from, rhost, j->decision.reason);
                break;
        case O_SESSION_OPENED:
                emit(PHI_EVENT_SESSION_OPEN, LOG_INFO, fields, n, "Session %s of %s opened (%s%s%s, process %s)",
                                  x->id, user, service, from, rhost, pid);
                break;
        case O_SESSION_CLOSED:
                if (j->req.kind == PHI_VERIFY_SESSION_GONE)
                        emit(PHI_EVENT_SESSION_CLOSE, LOG_NOTICE, fields, n,
                                          "Session %s of %s (%s%s%s) closed by phiaccessd: %s", x->id, user, service,
                                          from, rhost,
                                          strcmp(q->gone_reason, "rebooted") == 0
                                                  ? "it was recorded in an earlier boot"
                                                  : "its process ended without closing it");
                else
                        emit(PHI_EVENT_SESSION_CLOSE, LOG_INFO, fields, n, "Session %s of %s closed (%s%s%s)",
                                          x->id, user, service, from, rhost);
                break;
        default:
                break;
        }
}

static void journal_outcome(const struct job *j, enum outcome outcome) {
        const struct phi_verify_request *q = &j->req;
        const char *reason = reason_of(outcome);
        char until[32] = "", expires[32] = "";
        /* A ticket's deadline, or the end of the lockout that refused a code. */
        if (outcome == O_ISSUED || outcome == O_LOCKED)
                format_time(outcome == O_ISSUED ? j->expires : j->locked_until, expires);
        const struct phi_journal_field fields[] = {
                { "PHI_USER", q->user },
                { "PHI_SERVICE", q->service[0] ? q->service : NULL },
                { "PHI_RHOST", q->rhost[0] ? q->rhost : NULL },
                { "PHI_TTY", q->tty[0] ? q->tty : NULL },
                { "PHI_ACTOR", q->actor[0] ? q->actor : NULL },
                { "PHI_REASON", reason },
                { "PHI_EXPIRES", expires[0] ? expires : NULL },
        };
        const size_t n = PHI_ELEMENTSOF(fields);
        const char *what = q->kind == PHI_VERIFY_ACTIVATE ? "enrolment code" : "TOTP";

        switch (outcome) {
        case O_OK:
                emit(PHI_EVENT_AUTH_OK, LOG_INFO, fields, n, "TOTP accepted for %s (%s%s%s)",
                                  q->user, q->service, q->rhost[0] ? " from " : "", q->rhost);
                break;
        case O_LOCKED:
                /* Refused unchecked: whether the code was right is not known. */
                emit(PHI_EVENT_AUTH_FAIL, LOG_WARNING, fields, n,
                                  "%s refused for %s (%s%s%s): locked out until %s after too many failed codes",
                                  what, q->user, q->service, q->rhost[0] ? " from " : "", q->rhost, expires);
                break;
        case O_WRONG:
        case O_NO_TOKEN:
        case O_NO_PENDING:
                /* One message for all of them; PHI_REASON tells the admin which. */
                emit(PHI_EVENT_AUTH_FAIL, LOG_WARNING, fields, n, "%s verification failed for %s (%s%s%s)",
                                  what, q->user, q->service, q->rhost[0] ? " from " : "", q->rhost);
                break;
        case O_REPLAY:
                emit(PHI_EVENT_TOTP_REPLAY, LOG_WARNING, fields, n,
                                  "%s reused for %s (%s%s%s): a code is accepted once", what, q->user,
                                  q->service, q->rhost[0] ? " from " : "", q->rhost);
                break;
        case O_UNSEAL:
                emit(PHI_EVENT_AUTH_FAIL, LOG_ERR, fields, n,
                                  "TOTP seed of %s does not open with the master key (key replaced, or the row was altered)",
                                  q->user);
                break;
        case O_ENROLLED:
                if (j->from_pam)
                        emit(PHI_EVENT_ENROLLED, LOG_NOTICE, fields, n,
                                          "TOTP token of %s activated at login (%s%s%s); the login is let in",
                                          q->user, q->service, q->rhost[0] ? " from " : "", q->rhost);
                else
                        emit(PHI_EVENT_ENROLLED, LOG_NOTICE, fields, n, "TOTP token of %s activated",
                                          q->user);
                break;
        case O_RESET:
                emit(PHI_EVENT_TOKEN_RESET, LOG_NOTICE, fields, n, "TOTP token of %s %s by %s",
                                  q->user, j->found ? "removed" : "reset (there was none)", q->actor);
                break;
        case O_ISSUED:
                emit(PHI_EVENT_TICKET_ISSUED, LOG_NOTICE, fields, n,
                                  "Enrolment ticket for %s issued by %s, valid until %s", q->user, q->actor, expires);
                break;
        case O_NO_TICKET:
                jlog(LOG_NOTICE, "%s tried to enrol a token without a valid ticket", q->user);
                break;
        case O_NO_USER:
                jlog(LOG_NOTICE, "no enrolment ticket for %s (asked by %s): no such user", q->user, q->actor);
                break;
        case O_PENDING:
                /* Part of the user's access history, though not an event of its own. */
                if (q->kind == PHI_VERIFY_LOGIN)
                        jnote(LOG_NOTICE, fields, n, "TOTP enrolment offered to %s at login (%s%s%s), "
                                         "under a valid ticket: a new token waits for its first code", q->user,
                                         q->service, q->rhost[0] ? " from " : "", q->rhost);
                else
                        jlog(LOG_INFO, "new TOTP token for %s waits for its first code", q->user);
                break;
        case O_ALLOWED:
        case O_DENIED:
        case O_UNDECIDED:
        case O_SESSION_OPENED:
        case O_SESSION_CLOSED:
                journal_access(j);
                break;
        case O_SESSION_UNKNOWN:
                jlog(LOG_NOTICE, "pam_close_session() for %s (%s) named no open session (%s)", q->user, q->service,
                        q->session[0] ? q->session : "no id");
                break;
        case O_SUDO_RECORDED:
                journal_sudo(j);
                break;
        case O_SESSION_ENDED:
                journal_session_end(j);
                break;
        case O_SESSION_NO_GRANT: {
                const struct phi_journal_field f[] = {
                        { "PHI_USER", q->ruser[0] ? q->ruser : q->user },
                        { "PHI_TARGET_USER", q->user },
                        { "PHI_SERVICE", q->service },
                        { "PHI_TTY", q->tty[0] ? q->tty : NULL },
                        { "PHI_REASON", "no active grant covers this host" },
                        { "PHI_STAGE", "session" },
                };
                emit(PHI_EVENT_SUDO_DENIED, LOG_WARNING, f, PHI_ELEMENTSOF(f),
                     "%s refused the session of %s (as %s): no active grant covers this host", q->service,
                     q->ruser[0] ? q->ruser : q->user, q->user);
                break;
        }
        case O_SESSION_REFUSED:
        case O_NONE:
        case O_ABANDONED:
        case O_SHOWN:
        case O_SHOWN_LIST:
        case O_ELEV:
        case O_AUDITED:
                break;
        }
        if (j->lock_user || j->lock_host) {
                format_time(j->locked_until, until);
                const struct phi_journal_field lock_fields[] = {
                        { "PHI_USER", q->user },
                        { "PHI_SERVICE", q->service[0] ? q->service : NULL },
                        { "PHI_RHOST", q->rhost[0] ? q->rhost : NULL },
                        { "PHI_TTY", q->tty[0] ? q->tty : NULL },
                        { "PHI_REASON", j->lock_user && j->lock_host ? "user_and_host_failures"
                                        : j->lock_user ? "user_failures" : "host_failures" },
                        { "PHI_EXPIRES", until },
                };
                emit(PHI_EVENT_LOCKOUT, LOG_ALERT, lock_fields, PHI_ELEMENTSOF(lock_fields),
                                  "Too many failed codes for %s%s%s: locked out until %s", q->user,
                                  j->lock_host ? ", host " : "", j->lock_host ? q->rhost : "", until);
        }
}

static void journal_job(const struct job *j) {
        if (j->outcome == O_ELEV) {
                /* The code that confirmed it (or failed to) first, as for a login. */
                if (j->totp_outcome != O_NONE)
                        journal_outcome(j, j->totp_outcome);
                journal_elev(j);
                return;
        }
        journal_outcome(j, j->outcome);
}

/* ---------------------------------------------------------------- the thread */

/* ------------------------------------------------------ session processes */

static int enqueue_internal(phi_verifier *v, const struct phi_verify_request *req);
static void round_schedule(phi_verifier *v);

static void watch_free(struct watch *w) {
        phi_verifier *v;

        if (!w)
                return;
        v = w->v;
        if (w->prev)
                w->prev->next = w->next;
        else
                v->watches = w->next;
        if (w->next)
                w->next->prev = w->prev;
        v->n_watches--;
        sd_event_source_disable_unref(w->src);
        sd_event_source_disable_unref(w->kill_src);
        (void) phi_close_safe(w->fd);
        free(w);
}

static void session_gone(phi_verifier *v, const char *id, const char *reason) {
        struct phi_verify_request q = { .kind = PHI_VERIFY_SESSION_GONE, .gone_reason = reason };

        snprintf(q.session, sizeof(q.session), "%s", id);
        if (enqueue_internal(v, &q) < 0)
                phi_log(LOG_ERR, "session %s (%s) stays recorded as open until the next start: no room in the queue",
                        id, reason);
        round_schedule(v);
}

/* The pidfd is readable: the session's process has ended. */
static int on_watch(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        struct watch *w = userdata;

        (void) src, (void) fd, (void) revents;
        session_gone(w->v, w->id, "process_exited");
        watch_free(w);
        return 0;
}

/* Takes fd. */
static struct watch *watch_add(phi_verifier *v, const struct phi_session *x, int fd) {
        const char *id = x->id;
        struct watch *w = NULL;
        int r = -ENOMEM;

        if (v->n_watches >= PHI_SESSIONS_WATCHED_MAX) {
                phi_log(LOG_WARNING, "session %s is not watched: %d sessions already are; it is looked for at the "
                                     "next start", id, PHI_SESSIONS_WATCHED_MAX);
                (void) phi_close_safe(fd);
                return NULL;
        }
        w = calloc(1, sizeof(*w));
        if (w) {
                w->v = v;
                w->fd = fd;
                snprintf(w->id, sizeof(w->id), "%s", id);
                snprintf(w->request_id, sizeof(w->request_id), "%s", x->request_id);
                snprintf(w->user, sizeof(w->user), "%s", x->user);
                snprintf(w->service, sizeof(w->service), "%s", x->service);
                snprintf(w->tty, sizeof(w->tty), "%s", x->tty);
                w->pid = x->pid;
                w->pid_start = x->pid_start;
                r = sd_event_add_io(v->event, &w->src, fd, EPOLLIN, on_watch, w);
        }
        if (r < 0) {
                phi_log(LOG_ERR, "session %s is not watched: %s", id, phi_errno_text(r));
                if (w)
                        free(w);
                (void) phi_close_safe(fd);
                return NULL;
        }
        w->next = v->watches;
        if (v->watches)
                v->watches->prev = w;
        v->watches = w;
        v->n_watches++;
        return w;
}

/* ------------------------------------------- sudo sessions whose grant ended */

/* The record of a signal sent, journaled (and audited) in the next round. */
static void session_end_note(phi_verifier *v, const struct watch *w, const char *signal_name) {
        struct phi_verify_request q = { .kind = PHI_VERIFY_SESSION_END, .gone_reason = w->end_reason,
                                        .signal_name = signal_name, .pid = w->pid };

        snprintf(q.session, sizeof(q.session), "%s", w->id);
        snprintf(q.user, sizeof(q.user), "%s", w->holder);
        snprintf(q.runas, sizeof(q.runas), "%s", w->user);
        snprintf(q.service, sizeof(q.service), "%s", w->service);
        snprintf(q.tty, sizeof(q.tty), "%s", w->tty);
        snprintf(q.role, sizeof(q.role), "%s", w->role);
        snprintf(q.request_id, sizeof(q.request_id), "%s", w->request_id);
        if (enqueue_internal(v, &q) < 0)
                phi_log(LOG_ERR, "session_ended of session %s (%s) not journaled: no room in the queue", w->id,
                        signal_name);
        round_schedule(v);
}

/* Through the pidfd, so that a pid reused since cannot be hit. The daemon
 * has no capability: kill(2) lets a process of uid 0 signal sudo, whose
 * saved set-user-ID is 0. */
static int session_signal(const struct watch *w, int sig) {
        if (syscall(SYS_pidfd_send_signal, w->fd, sig, NULL, 0) < 0)
                return -errno;
        return 0;
}

/* The grace period is over and sudo still runs: sudo cannot pass SIGKILL
 * on, so what runs under it is killed first (frozen, then killed, so that
 * nothing forks away), then sudo. */
static int on_session_kill(sd_event_source *src, uint64_t usec, void *userdata) {
        struct watch *w = userdata;
        size_t killed = 0, refused = 0;
        uint64_t start = 0;
        int r;

        (void) src, (void) usec;
        /* Stopped through the pidfd, sudo is still the process it was: its
         * pid names its tree. */
        r = session_signal(w, SIGSTOP);
        if (r == 0 && (phi_session_pid_start((pid_t) w->pid, &start) < 0 || start != w->pid_start))
                r = -ESRCH;
        if (r == 0)
                r = phi_session_kill_tree((pid_t) w->pid, &killed, &refused);
        if (r == 0)
                r = session_signal(w, SIGKILL);
        if (r == 0) {
                phi_log(refused ? LOG_ERR : LOG_WARNING,
                        "sudo session %s (process %llu) still ran %d s after SIGTERM: killed it and %zu process%s "
                        "under it%s",
                        w->id, (unsigned long long) w->pid, SESSION_END_GRACE, killed, killed == 1 ? "" : "es",
                        refused ? "; kill(2) refused for some of another user's (the daemon has no CAP_KILL)" : "");
                session_end_note(w->v, w, "SIGKILL");
        } else if (r != -ESRCH)
                phi_log(LOG_ERR, "cannot kill sudo session %s (process %llu): %s", w->id,
                        (unsigned long long) w->pid, phi_errno_text(r));
        return 0;
}

/* Ends a session whose grant ended: SIGTERM now (sudo passes it to the
 * command), SIGKILL after the grace period. Its close follows when the pidfd
 * says the process has gone. */
static void session_end(phi_verifier *v, struct watch *w, const char *reason, const char *holder, const char *role) {
        int r;

        if (w->ending)
                return;
        w->ending = true;
        w->end_reason = reason;
        snprintf(w->holder, sizeof(w->holder), "%s", holder);
        snprintf(w->role, sizeof(w->role), "%s", role);
        r = session_signal(w, SIGTERM);
        if (r == -ESRCH)
                return;   /* gone already: its close is on the way */
        if (r < 0) {
                phi_log(LOG_ERR, "cannot end sudo session %s (process %llu) of grant %s: %s", w->id,
                        (unsigned long long) w->pid, w->request_id, phi_errno_text(r));
                return;
        }
        session_end_note(v, w, "SIGTERM");
        r = sd_event_add_time_relative(v->event, &w->kill_src, CLOCK_MONOTONIC, SESSION_END_GRACE * 1000000ULL, 0,
                                       on_session_kill, w);
        if (r < 0)
                phi_log(LOG_ERR, "no SIGKILL timer for sudo session %s: %s", w->id, phi_errno_text(r));
}

/* The sudo sessions opened under each grant this job ended. */
static void sessions_end_for_grants(phi_verifier *v, const struct job *j) {
        for (size_t i = 0; i < j->elev.n_events; i++) {
                const struct phi_elev_event *e = &j->elev.events[i];
                const char *reason;
                if (e->event == PHI_EVENT_ELEVATION_REVOKED)
                        reason = "grant_revoked";
                else if (e->event == PHI_EVENT_ELEVATION_EXPIRED && strcmp(e->reason, "expired") == 0)
                        reason = "grant_expired";
                else
                        continue;
                for (struct watch *w = v->watches; w; w = w->next)
                        if (w->request_id[0] && strcmp(w->request_id, e->id) == 0)
                                session_end(v, w, reason, e->user, e->role);
        }
}

static void watch_remove(phi_verifier *v, const char *id) {
        for (struct watch *w = v->watches; w; w = w->next)
                if (strcmp(w->id, id) == 0) {
                        watch_free(w);
                        return;
                }
}

/* A sudo session still running at start whose grant ended while the daemon
 * was not there to end it (stopped between the commit and the signal). */
static void session_recover_grant(phi_verifier *v, struct watch *w) {
        struct phi_elev_request r;

        if (phi_store_elev_get(v->store, w->request_id, &r) < 0)
                return;
        if (r.state == PHI_ELEV_EXPIRED || r.state == PHI_ELEV_REVOKED)
                session_end(v, w, r.state == PHI_ELEV_REVOKED ? "grant_revoked" : "grant_expired", r.requester,
                            r.role);
}

/* At start: the sessions this host recorded before. Those of an earlier boot,
 * or whose process is no longer the one that opened them, are closed; the
 * others are watched again. */
static int sessions_recover(phi_verifier *v) {
        char after[PHI_SESSION_ID_LEN + 1] = "";
        size_t closing = 0;
        int r = 0;

        for (;;) {
                struct phi_session *list = NULL;
                size_t n = 0;

                r = phi_store_session_list(v->store, v->hostname, after, 256, &list, &n);
                if (r < 0 || n == 0) {
                        free(list);
                        break;
                }
                for (size_t i = 0; i < n; i++) {
                        int fd = -1;
                        if (strcmp(list[i].boot_id, v->boot_id) != 0 ||
                            phi_session_pidfd((pid_t) list[i].pid, list[i].pid_start, &fd) < 0) {
                                /* Past half the queue, the rest wait for the next start. */
                                if (closing < PHI_VERIFIER_MAX_QUEUE / 2) {
                                        session_gone(v, list[i].id,
                                                     strcmp(list[i].boot_id, v->boot_id) != 0 ? "rebooted"
                                                                                              : "process_gone");
                                        closing++;
                                }
                        } else {
                                struct watch *w = watch_add(v, &list[i], fd);
                                if (w && w->request_id[0])
                                        session_recover_grant(v, w);
                        }
                }
                snprintf(after, sizeof(after), "%s", list[n - 1].id);
                free(list);
        }
        if (r < 0)
                phi_log(LOG_ERR, "cannot read the open sessions: %s", phi_errno_text(r));
        else if (v->n_watches > 0 || closing > 0)
                phi_log(LOG_INFO, "sessions recorded before this start: %zu still open and watched, %zu closed",
                        v->n_watches, closing);
        return r;
}

/* ------------------------------------------------------------- audit log */

static const char *field_of(const struct phi_journal_field *fields, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (fields[i].value && strcmp(fields[i].name, name) == 0 && fields[i].value[0])
                        return fields[i].value;
        return NULL;
}

/* PHI_EXPIRES as the journal writes it (ISO 8601 UTC) back to seconds. */
static uint64_t expires_of(const char *s) {
        struct tm tm = { 0 };
        const char *end;
        time_t t;

        if (!s || !(end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm)) || *end || (t = timegm(&tm)) < 0)
                return 0;
        return (uint64_t) t;
}

/* Records that want a checkpoint at once: a grant, a denial, a break-glass. */
static bool event_urgent(enum phi_event event) {
        switch (event) {
        case PHI_EVENT_ELEVATION_APPROVED:
        case PHI_EVENT_ELEVATION_DENIED:
        case PHI_EVENT_BREAKGLASS:
        case PHI_EVENT_ACCESS_DENIED:
        case PHI_EVENT_SUDO_DENIED:
        case PHI_EVENT_LOCKOUT:
        /* An auditor's read of the log, sealed at once; an export waits for
         * the checkpoint that covers its end (audit_handlers.c). */
        case PHI_EVENT_AUDIT_QUERY:
                return true;
        default:
                return false;
        }
}

static void audit_emit(struct audit_sink *k, enum phi_event event, const struct phi_journal_field *fields, size_t n) {
        struct phi_audit_record rec = {
                .time_us = k->time_us,
                .event = phi_events[event].name,
                .user = field_of(fields, n, "PHI_USER"),
                .actor = field_of(fields, n, "PHI_ACTOR"),
                .role = field_of(fields, n, "PHI_ROLE"),
                .request_id = field_of(fields, n, "PHI_REQUEST_ID"),
                .service = field_of(fields, n, "PHI_SERVICE"),
                .rhost = field_of(fields, n, "PHI_RHOST"),
                .tty = field_of(fields, n, "PHI_TTY"),
                .rule = field_of(fields, n, "PHI_RULE"),
                .reason = field_of(fields, n, "PHI_REASON"),
                .expires = expires_of(field_of(fields, n, "PHI_EXPIRES")),
                .host = k->v->hostname[0] ? k->v->hostname : NULL,
                .command = field_of(fields, n, "PHI_COMMAND"),
                .target = field_of(fields, n, "PHI_TARGET_USER"),
        };
        int r;

        if (k->error < 0)
                return;
        r = phi_audit_log_append(k->v->audit, &rec, event_urgent(event));
        if (r < 0)
                k->error = r;
}

/* The job's audit records, inside the round's transaction. */
static int audit_job(phi_verifier *v, const struct job *j, uint64_t time_us) {
        struct audit_sink k = { .v = v, .time_us = time_us };
        const struct phi_verify_request *q = &j->req;

        if (j->outcome == O_AUDITED && !q->audit_event[0])
                return 0;   /* a barrier (phi_verifier_submit_after_audit) */
        if (j->outcome == O_AUDITED) {
                struct phi_audit_record rec = {
                        .time_us = q->audit_time_us ? q->audit_time_us : time_us,
                        .event = q->audit_event,
                        .user = q->user[0] ? q->user : NULL,
                        .actor = q->actor[0] ? q->actor : NULL,
                        .role = q->role[0] ? q->role : NULL,
                        .request_id = q->request_id[0] ? q->request_id : NULL,
                        .service = q->service[0] ? q->service : NULL,
                        .rhost = q->rhost[0] ? q->rhost : NULL,
                        .tty = q->tty[0] ? q->tty : NULL,
                        .rule = q->audit_rule[0] ? q->audit_rule : NULL,
                        .reason = q->reason[0] ? q->reason : NULL,
                        .expires = q->audit_expires,
                        .host = v->hostname[0] ? v->hostname : NULL,
                };
                return phi_audit_log_append(v->audit, &rec, q->audit_urgent);
        }
        audit_sink = &k;
        journal_job(j);
        audit_sink = NULL;
        return k.error;
}

/* The checkpoint a committed round made, in the journal: a store later
 * rolled back or cut short disagrees with it. */
static void journal_checkpoint(const struct round_checkpoint *c) {
        const char *note = c->note;
        struct phi_audit_checkpoint cp;
        char size[24], root[64];
        const char *err = NULL;
        size_t len = strlen(note), text_len = strcspn(note, "\n");

        /* The text is the note up to its blank line. */
        const char *blank = strstr(note, "\n\n");
        text_len = blank ? (size_t) (blank - note) + 1 : len;
        if (phi_audit_checkpoint_parse(note, text_len, &cp, &err) < 0)
                return;
        snprintf(size, sizeof(size), "%llu", (unsigned long long) cp.size);
        sodium_bin2base64(root, sizeof(root), cp.root, sizeof(cp.root), sodium_base64_VARIANT_ORIGINAL);
        const struct phi_journal_field fields[] = {
                { "PHI_AUDIT_ORIGIN", cp.origin },
                { "PHI_AUDIT_SIZE", size },
                { "PHI_AUDIT_ROOT", root },
                { "PHI_CHECKPOINT", note },
                { "PHI_HOST", c->host[0] ? c->host : NULL },
        };
        phi_journal_event(PHI_EVENT_CHECKPOINT, LOG_INFO, fields, PHI_ELEMENTSOF(fields),
                          "Audit checkpoint: %s holds %s records, root %s", cp.origin, size, root);
}

/* Records this thread handed to the hook: the socket thread compares them
 * before and after a request. */
static _Thread_local uint64_t audit_queued_here;

uint64_t phi_verifier_audit_queued_here(void) {
        return audit_queued_here;
}

int phi_verifier_submit_after_audit(phi_verifier *v, phi_msg *reply, uint64_t *ret_ticket) {
        struct phi_verify_request q = { .kind = PHI_VERIFY_AUDIT, .info = reply };

        /* FIFO: every record queued before it is appended in its round or an
         * earlier one, and the reply leaves after that round's commit. */
        return phi_verifier_submit(v, &q, ret_ticket);
}

void phi_verifier_audit_hook(void *userdata, enum phi_event event, int priority, const struct phi_journal_field *fields,
                             size_t n_fields) {
        phi_verifier *v = userdata;
        struct phi_verify_request q = { .kind = PHI_VERIFY_AUDIT };
        struct timespec ts;
        uint64_t one = 1;
        const char *x;

        (void) priority;
        /* The store's own outage is the journal's alone: its record could
         * only be written to the store that is gone, and the reply that
         * journaled it (phictl status) would wait for that. */
        if (!v || event >= _PHI_EVENT_MAX || event == PHI_EVENT_CHECKPOINT || event == PHI_EVENT_STORE_UNREACHABLE ||
            event == PHI_EVENT_STORE_RECOVERED)
                return;
        snprintf(q.audit_event, sizeof(q.audit_event), "%s", phi_events[event].name);
#define COPY(dst, name)                                             \
        if ((x = field_of(fields, n_fields, name)))                  \
                snprintf(dst, sizeof(dst), "%s", x);
        COPY(q.user, "PHI_USER");
        COPY(q.actor, "PHI_ACTOR");
        COPY(q.role, "PHI_ROLE");
        COPY(q.request_id, "PHI_REQUEST_ID");
        COPY(q.service, "PHI_SERVICE");
        COPY(q.rhost, "PHI_RHOST");
        COPY(q.tty, "PHI_TTY");
        COPY(q.audit_rule, "PHI_RULE");
        COPY(q.reason, "PHI_REASON");
#undef COPY
        q.audit_expires = expires_of(field_of(fields, n_fields, "PHI_EXPIRES"));
        q.audit_urgent = event_urgent(event);
        if (clock_gettime(CLOCK_REALTIME, &ts) == 0)
                q.audit_time_us = (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000;
        if (enqueue_internal(v, &q) < 0)
                phi_log(LOG_ERR, "audit record of %s lost: the verifier's queue is full", q.audit_event);
        else {
                audit_queued_here++;
                (void) !write(v->wake_fd, &one, sizeof(one));
        }
}

void phi_verifier_audit_state(phi_verifier *v, uint64_t *ret_size, uint64_t *ret_checkpoint, char *vkey,
                              size_t vkey_len) {
        pthread_mutex_lock(&v->lock);
        *ret_size = v->audit_size;
        *ret_checkpoint = v->audit_checkpoint;
        snprintf(vkey, vkey_len, "%s", v->audit ? phi_audit_log_vkey(v->audit) : "");
        pthread_mutex_unlock(&v->lock);
}

void phi_verifier_fleet_state(phi_verifier *v, uint64_t *ret_seen, uint64_t *ret_applied, uint64_t *ret_adopted) {
        pthread_mutex_lock(&v->lock);
        *ret_seen = v->st_changes_seen;
        *ret_applied = v->st_changes_applied;
        *ret_adopted = v->st_audit_adopted;
        pthread_mutex_unlock(&v->lock);
}

int phi_verifier_audit_keys(phi_verifier *v, char *origin, size_t origin_len, char **trusted, size_t *ret_n) {
        const char *const *keys = NULL;
        size_t n;
        int r = 0;

        *ret_n = 0;
        /* Set at open, never changed after: no lock needed for these. */
        snprintf(origin, origin_len, "%s", v->audit ? phi_audit_log_origin(v->audit) : "");
        n = v->audit ? phi_audit_log_trusted(v->audit, &keys) : 0;
        for (size_t i = 0; i < n && r == 0; i++)
                if (!(trusted[i] = strdup(keys[i])))
                        r = -ENOMEM;
                else
                        (*ret_n)++;
        return r;
}

/* -------------------------------------------------- elevation timer, grants */

static int on_elev_timer(sd_event_source *src, uint64_t usec, void *userdata);

/* A tick to run: it makes what is due and finds when the next one is. */
static void elev_tick_soon(phi_verifier *v) {
        struct phi_verify_request q = { .kind = PHI_VERIFY_ELEV_TICK };

        if (v->elev_tick_queued)
                return;
        if (enqueue_internal(v, &q) < 0) {
                /* The timer tries again in a second. */
                phi_log(LOG_WARNING, "elevation check postponed: the queue is full");
                if (v->elev_timer) {
                        (void) sd_event_source_set_time_relative(v->elev_timer, 1000000);
                        (void) sd_event_source_set_enabled(v->elev_timer, SD_EVENT_ONESHOT);
                }
                return;
        }
        v->elev_tick_queued = true;
        round_schedule(v);
}

static int on_elev_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        (void) src, (void) usec;
        elev_tick_soon(userdata);
        return 0;
}

/* Arms the timer for `at` (Unix seconds; 0: nothing due). */
static void elev_timer_arm(phi_verifier *v, uint64_t at) {
        int r;

        if (!at) {
                if (v->elev_timer)
                        (void) sd_event_source_set_enabled(v->elev_timer, SD_EVENT_OFF);
                return;
        }
        if (!v->elev_timer)
                r = sd_event_add_time(v->event, &v->elev_timer, CLOCK_REALTIME, at * 1000000ULL, 0, on_elev_timer, v);
        else if ((r = sd_event_source_set_time(v->elev_timer, at * 1000000ULL)) >= 0)
                r = sd_event_source_set_enabled(v->elev_timer, SD_EVENT_ONESHOT);
        if (r < 0)
                phi_log(LOG_ERR, "cannot arm the elevation timer: %s; grants end at the next request instead",
                        phi_errno_text(r));
}

/* The active grants as nss_phi serves them: the whole set, after each
 * committed change to it and at start. A failure leaves no grants file (the
 * old one could hold a grant just revoked) and is tried again at the next
 * change or tick. */
static void grants_publish(phi_verifier *v) {
        const struct phi_elev_ctx ctx = elev_ctx(v, (uint64_t) time(NULL));
        struct phi_grants_publish_stats st = { 0 };
        int r;

        r = phi_grants_publish_active_at(v->policy.snapshot_path, v->policy.min_gid, &ctx, &st);
        if (r < 0) {
                phi_log(LOG_ERR, "cannot publish the grants for NSS: %s; no grant is served by nss_phi until the "
                                 "next publication",
                        phi_errno_text(r));
                v->grants_dirty = true;
                return;
        }
        v->grants_dirty = false;
        if (st.no_gid || st.refused || st.over)
                phi_log(LOG_WARNING, "grants for NSS: %zu published, %zu left out (group without a gid here), %zu "
                                     "refused (a gid below min_gid or shared), %zu over the limit",
                        st.published, st.no_gid, st.refused, st.over);
}

static void elev_after_commit(phi_verifier *v, struct job *j) {
        if (j->req.kind == PHI_VERIFY_ELEV_TICK) {
                v->elev_tick_queued = false;
                elev_timer_arm(v, j->elev_next);
        } else if (!j->elev.error)
                /* Something changed: when the next transition is due may have too. */
                elev_tick_soon(v);
        if (j->elev.grants_changed || (v->grants_dirty && j->req.kind == PHI_VERIFY_ELEV_TICK))
                grants_publish(v);
        if (j->elev.grants_changed)
                sessions_end_for_grants(v, j);
}

/* ------------------------------------------------------------ change feed */

/* What this job changed that the other daemons sharing the store react to,
 * in the round's transaction (so a change is in the feed exactly when it is
 * in the store). */
static int changes_job(phi_verifier *v, const struct job *j, uint64_t now) {
        int r = 0;

        switch (j->outcome) {
        case O_ELEV:
                for (size_t i = 0; i < j->elev.n_events && r >= 0; i++)
                        if (j->elev.events[i].id[0] &&
                            (i == 0 || strcmp(j->elev.events[i].id, j->elev.events[i - 1].id) != 0))
                                r = phi_store_change_add(v->store, PHI_CHANGE_ELEVATION, j->elev.events[i].id,
                                                         v->hostname, now);
                break;
        case O_ENROLLED:
        case O_PENDING:
        case O_ISSUED:
        case O_RESET:
                r = phi_store_change_add(v->store, PHI_CHANGE_TOKEN, j->req.user, v->hostname, now);
                break;
        case O_SESSION_CLOSED:
                r = phi_store_change_add(v->store, PHI_CHANGE_SESSION, j->session.id, v->hostname, now);
                break;
        default:
                break;
        }
        return r;
}

/* Another daemon's change to a request: a grant it ended ends the sudo
 * sessions this host opened under it. *ret_grants: the set of grants may have
 * changed (republish). */
static void change_elevation(phi_verifier *v, const char *id, bool *ret_grants) {
        struct phi_elev_request r;
        int e = phi_store_elev_get(v->store, id, &r);

        *ret_grants = true;     /* whatever it was: the publication is cheap and idempotent */
        if (e < 0) {
                if (e != -ENOENT)
                        phi_log(LOG_ERR, "cannot read request %s of the change feed: %s", id, phi_errno_text(e));
                return;
        }
        if (r.state != PHI_ELEV_EXPIRED && r.state != PHI_ELEV_REVOKED)
                return;
        for (struct watch *w = v->watches; w; w = w->next)
                if (w->request_id[0] && strcmp(w->request_id, r.id) == 0)
                        session_end(v, w, r.state == PHI_ELEV_REVOKED ? "grant_revoked" : "grant_expired",
                                    r.requester, r.role);
}

/* Reads the changes after the last applied one, in pages, and reacts to those
 * of other hosts: grants republished, sessions of ended grants ended, the
 * elevation timer re-armed (a tick finds when the next transition is due).
 * A page that cannot be read is read again at the next wake-up: the table,
 * not the wake-up, is the truth. */
static void changes_apply(phi_verifier *v) {
        bool grants = false, tick = false;
        int r;

        for (;;) {
                struct phi_change *list = NULL;
                size_t n = 0;

                if ((r = phi_store_changes_after(v->store, v->changes_seen, 256, &list, &n)) < 0) {
                        phi_log(LOG_ERR, "cannot read the change feed: %s; trying again", phi_errno_text(r));
                        break;
                }
                for (size_t i = 0; i < n; i++) {
                        const struct phi_change *c = &list[i];
                        v->changes_seen = c->seq;
                        if (strcmp(c->host, v->hostname) == 0)
                                continue;   /* this daemon's own: reacted to after its commit */
                        v->changes_applied++;
                        switch (c->kind) {
                        case PHI_CHANGE_ELEVATION: {
                                bool g = false;
                                change_elevation(v, c->subject, &g);
                                grants |= g;
                                tick = true;
                                break;
                        }
                        case PHI_CHANGE_SESSION:
                                /* Closed elsewhere (its row is gone): not watched here any longer. */
                                watch_remove(v, c->subject);
                                break;
                        case PHI_CHANGE_TOKEN:
                        default:
                                /* Tokens are read from the store at each use: nothing cached. */
                                break;
                        }
                }
                free(list);
                if (n < 256)
                        break;
        }
        pthread_mutex_lock(&v->lock);
        v->st_changes_seen = v->changes_seen;
        v->st_changes_applied = v->changes_applied;
        pthread_mutex_unlock(&v->lock);
        if (grants)
                grants_publish(v);
        if (tick)
                elev_tick_soon(v);
}

/* The wake-up of the SQLite backend: a poll of the newest seq, one indexed
 * read every CHANGES_POLL_MS, so that another daemon's change reaches this
 * host's NSS within a second. (A backend that can notify -- PostgreSQL's
 * LISTEN/NOTIFY -- wakes the same changes_apply(); the table stays the truth,
 * a notification may be missed.) */
static int on_changes_poll(sd_event_source *src, uint64_t usec, void *userdata) {
        phi_verifier *v = userdata;
        uint64_t max = 0;
        int r;

        if ((r = phi_store_changes_max(v->store, &max)) < 0)
                phi_log(LOG_DEBUG, "change feed not polled: %s", phi_errno_text(r));
        else if (max > v->changes_seen)
                changes_apply(v);
        (void) sd_event_source_set_time(src, usec + CHANGES_POLL_MS * 1000ULL);
        return 0;
}

/* The backend's notification (phi_store_changes_wake_fd): read at once. */
static int on_changes_wake(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        phi_verifier *v = userdata;

        (void) src, (void) fd, (void) revents;
        phi_store_changes_wake_ack(v->store);
        changes_apply(v);
        return 0;
}

static int changes_start(phi_verifier *v) {
        uint64_t now = 0;
        int r, fd;

        /* From the newest: this daemon's state is rebuilt from the store at
         * start (grants published, sessions recovered, timer armed). */
        if ((r = phi_store_changes_max(v->store, &v->changes_seen)) < 0)
                return r;
        v->st_changes_seen = v->changes_seen;
        if ((r = sd_event_now(v->event, CLOCK_MONOTONIC, &now)) < 0 ||
            (r = sd_event_add_time(v->event, &v->changes_src, CLOCK_MONOTONIC, now + CHANGES_POLL_MS * 1000ULL,
                                   CHANGES_POLL_MS * 100ULL, on_changes_poll, v)) < 0 ||
            (r = sd_event_source_set_enabled(v->changes_src, SD_EVENT_ON)) < 0)
                return r;
        /* A backend that notifies wakes this daemon sooner; the poll stays,
         * for a notification missed. */
        fd = phi_store_changes_wake_fd(v->store);
        if (fd >= 0 && (r = sd_event_add_io(v->event, &v->changes_wake_src, fd, EPOLLIN, on_changes_wake, v)) < 0)
                return r;
        if (fd < 0 && fd != -EOPNOTSUPP)
                phi_log(LOG_WARNING, "the store's change notifications are not available: %s; polling every %d ms",
                        phi_errno_text(fd), CHANGES_POLL_MS);
        return 0;
}

/* Serves the batch in one transaction and leaves each job's reply in j->reply;
 * a rolled-back round leaves errors and no outcome. */
static void round_serve(phi_verifier *v, struct queue *batch) {
        struct timespec ts;
        uint64_t now, now_us;
        size_t abandoned = 0;
        char *note = NULL;
        struct job *j;
        int r;

        (void) clock_gettime(CLOCK_REALTIME, &ts);
        now = (uint64_t) ts.tv_sec;
        now_us = now * 1000000ULL + (uint64_t) ts.tv_nsec / 1000;

        /* A login whose client (pam_phi, after its timeout) has hung up is not
         * served: checking it would use up the code and journal an acceptance
         * for a login that was already denied. This happens only after a stall
         * (the daemon stopped, the disk hung), when a backlog of such requests
         * is the rule. */
        for (j = batch->head; j; j = j->next)
                if (j->from_pam && phi_server_waiter_gone(v->pam, j->ticket)) {
                        j->outcome = O_ABANDONED;
                        phi_secret_wipe(j->req.code, sizeof(j->req.code));
                        abandoned++;
                }
        if (abandoned > 0)
                phi_log(LOG_NOTICE, "%zu login request%s given up by %s client%s before being served; "
                                    "not checked, no code used up",
                        abandoned, abandoned == 1 ? " was" : "s were", abandoned == 1 ? "its" : "their",
                        abandoned == 1 ? "" : "s");

        r = phi_store_begin(v->store);
        if (r >= 0)
                r = phi_audit_log_begin(v->audit);
        for (j = batch->head; j && r >= 0; j = j->next)
                if (j->outcome != O_ABANDONED)
                        r = serve_one(v, j, now);
        /* Each change with its record, in the same transaction: a record that
         * cannot be written undoes the round. */
        for (j = batch->head; j && r >= 0; j = j->next)
                r = audit_job(v, j, now_us);
        for (j = batch->head; j && r >= 0; j = j->next)
                r = changes_job(v, j, now);
        if (r >= 0)
                r = phi_audit_log_finish(v->audit, now, &note);
        if (r >= 0 && now >= v->last_prune + PRUNE_INTERVAL) {
                r = phi_store_failures_prune(v->store, now, v->policy.failure_window);
                /* Every daemon reads the feed within a second; one that was
                 * stopped starts from the newest row anyway. */
                if (r >= 0 && now > CHANGES_KEEP)
                        r = phi_store_changes_prune(v->store, now - CHANGES_KEEP);
                v->last_prune = now;
        }
        if (r >= 0)
                r = phi_store_commit(v->store);
        if (r < 0) {
                phi_store_rollback(v->store);
                phi_audit_log_rollback(v->audit);
                phi_log(LOG_ERR, "TOTP round of %zu requests failed and was rolled back: %s", batch->n,
                        phi_errno_text(r));
        } else {
                if (note) {
                        phi_audit_log_checkpoint_committed(v->audit, phi_audit_log_size(v->audit), now);
                        size_t len = strlen(note) + 1;
                        struct round_checkpoint *c = malloc(sizeof(*c) + len);
                        if (c) {
                                snprintf(c->host, sizeof(c->host), "%s", v->hostname);
                                memcpy(c->note, note, len);
                                free(batch->tail->checkpoint);
                                batch->tail->checkpoint = c;
                        } else
                                phi_log(LOG_ERR, "the checkpoint of %llu records is stored but not journaled: out of "
                                                 "memory",
                                        (unsigned long long) phi_audit_log_size(v->audit));
                }
                pthread_mutex_lock(&v->lock);
                v->audit_size = phi_audit_log_size(v->audit);
                v->audit_checkpoint = phi_audit_log_checkpoint_size(v->audit);
                v->st_audit_adopted = phi_audit_log_adopted(v->audit);
                pthread_mutex_unlock(&v->lock);
        }
        free(note);
        if (r >= 0)
                for (j = batch->head; j; j = j->next) {
                        if (j->outcome == O_SESSION_OPENED)
                                (void) watch_add(v, &j->session, PHI_TAKE_FD(j->pidfd));
                        else if (j->outcome == O_SESSION_CLOSED && !j->internal)
                                watch_remove(v, j->session.id);
                        else if (j->outcome == O_ELEV)
                                elev_after_commit(v, j);
                }
        for (j = batch->head; j; j = j->next) {
                phi_msg *reply = NULL;
                phi_secret_wipe(j->req.code, sizeof(j->req.code));
                if (r < 0) {
                        /* Nothing of this round happened; no reply may say otherwise. */
                        phi_msg_free(PHI_TAKE_PTR(j->reply));
                        j->outcome = O_NONE;
                        j->lock_user = j->lock_host = false;
                        if (phi_msg_new_error(-EIO, &reply, "the verification store failed; try again") < 0)
                                reply = NULL;
                } else if (reply_for(j, &reply) < 0)
                        reply = NULL;
                phi_msg_free(j->reply);
                j->reply = reply;   /* NULL on ENOMEM: the server closes, the client denies */
        }
}

/* Takes everything queued and serves it as one round: one transaction, one
 * fdatasync. Replies to the PAM socket leave from here at once; those for the
 * request socket go to the event loop through event_fd. */
static void round_run(phi_verifier *v) {
        struct queue batch;
        uint64_t one = 1;
        bool to_loop = false;

        pthread_mutex_lock(&v->lock);
        batch = v->todo;
        v->todo = (struct queue){ 0 };
        if (v->policy_changed) {
                v->policy = v->next_policy;
                v->policy_changed = false;
        }
        if (v->access_changed) {
                phi_policy_unref(v->access);
                v->access = PHI_TAKE_PTR(v->next_access);
                v->access_changed = false;
        }
        pthread_mutex_unlock(&v->lock);
        if (!batch.head)
                return;
        /* Policies name hosts; an admin may rename this one while it runs. */
        if (phi_access_hostname(v->hostname, sizeof(v->hostname)) < 0)
                v->hostname[0] = '\0';

        round_serve(v, &batch);

        /* The replies leave first: each waits only for its own durable commit,
         * not for the journal entries of the whole round. */
        for (struct job *j = batch.head; j; j = j->next)
                if (j->from_pam)
                        phi_server_deliver(v->pam, j->ticket, PHI_TAKE_PTR(j->reply));
        pthread_mutex_lock(&v->lock);
        v->rounds++;
        v->requests += batch.n;
        for (struct job *j = batch.head; j; j = j->next) {
                if (j->from_pam || j->internal)
                        continue;
                struct answer *a = PHI_TAKE_PTR(j->answer);
                a->ticket = j->ticket;
                a->reply = PHI_TAKE_PTR(j->reply);
                a->next = NULL;
                if (v->done.tail)
                        v->done.tail->next = a;
                else
                        v->done.head = a;
                v->done.tail = a;
                to_loop = true;
        }
        pthread_mutex_unlock(&v->lock);
        if (to_loop)
                (void) !write(v->event_fd, &one, sizeof(one));

        /* Answer, then journal event: the entries are written by the journal
         * thread while this one serves the next round. A rolled-back round's
         * jobs carry no outcome and journal nothing (its failure is logged).
         * If journald falls behind, this thread waits rather than let the queue
         * grow without bound or drop an entry auditors rely on: logins slow
         * down (and pam_phi denies at its timeout) until the journal takes
         * them again. */
        pthread_mutex_lock(&v->journal_lock);
        while (v->journal.n >= PHI_VERIFIER_JOURNAL_MAX)
                pthread_cond_wait(&v->journal_room, &v->journal_lock);
        if (v->journal.tail)
                v->journal.tail->next = batch.head;
        else
                v->journal.head = batch.head;
        v->journal.tail = batch.tail;
        v->journal.n += batch.n;
        pthread_mutex_unlock(&v->journal_lock);
        pthread_cond_signal(&v->journal_wake);
}

static void *journal_thread(void *arg) {
        phi_verifier *v = arg;

        /* What it journals is in the audit log already, from its round. */
        phi_journal_audited_here(true);

        for (;;) {
                struct queue batch;

                pthread_mutex_lock(&v->journal_lock);
                while (!v->journal.head && !v->journal_stop)
                        pthread_cond_wait(&v->journal_wake, &v->journal_lock);
                batch = v->journal;
                v->journal = (struct queue){ 0 };
                pthread_mutex_unlock(&v->journal_lock);
                pthread_cond_signal(&v->journal_room);
                if (!batch.head)
                        break;   /* stopping, and everything is written */
                while (batch.head) {
                        struct job *j = batch.head;
                        batch.head = j->next;
                        journal_job(j);
                        if (j->checkpoint)
                                journal_checkpoint(j->checkpoint);
                        job_free(j);
                }
        }
        return NULL;
}

/* Runs at idle priority: after every connection with a frame ready has been
 * read, so that what arrived together is served together. */
static int on_round(sd_event_source *src, void *userdata) {
        (void) sd_event_source_set_priority(src, SD_EVENT_PRIORITY_IDLE);
        round_run(userdata);
        return 0;
}

static void round_schedule(phi_verifier *v) {
        (void) sd_event_source_set_enabled(v->round_src, SD_EVENT_ONESHOT);
}

static int on_wake(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        phi_verifier *v = userdata;
        uint64_t n;
        bool stop;

        (void) src, (void) revents;
        (void) !read(fd, &n, sizeof(n));
        pthread_mutex_lock(&v->lock);
        stop = v->stop;
        pthread_mutex_unlock(&v->lock);
        if (stop)
                return sd_event_exit(v->event, 0);
        round_schedule(v);
        return 0;
}

/* queue_push under the lock; -ENOBUFS when the queue is full. */
static int enqueue(phi_verifier *v, const struct phi_verify_request *req, bool from_pam, uint64_t *ret_ticket,
                   size_t *ret_queued) {
        struct job *j;
        int r = 0;

        pthread_mutex_lock(&v->lock);
        if (v->todo.n >= PHI_VERIFIER_MAX_QUEUE) {
                r = -ENOBUFS;
                goto out;
        }
        j = calloc(1, sizeof(*j));
        if (j && !from_pam)
                j->answer = calloc(1, sizeof(*j->answer));
        if (!j || (!from_pam && !j->answer)) {
                free(j);
                r = -ENOMEM;
                goto out;
        }
        j->req = *req;
        j->pidfd = -1;
        j->reply = PHI_TAKE_PTR(j->req.info);   /* SHOW: now the job's */
        j->from_pam = from_pam;
        j->ticket = PHI_VERIFIER_TICKET_BIT | v->next_ticket++;
        queue_push(&v->todo, j);
        *ret_ticket = j->ticket;
        *ret_queued = v->todo.n;
out:
        pthread_mutex_unlock(&v->lock);
        return r;
}

/* A job of the thread's own, answered to nobody. On the thread. */
static int enqueue_internal(phi_verifier *v, const struct phi_verify_request *req) {
        struct job *j;
        int r = 0;

        pthread_mutex_lock(&v->lock);
        if (v->todo.n >= PHI_VERIFIER_MAX_QUEUE) {
                r = -ENOBUFS;
                goto out;
        }
        j = calloc(1, sizeof(*j));
        if (!j) {
                r = -ENOMEM;
                goto out;
        }
        j->req = *req;
        j->pidfd = -1;
        j->internal = true;
        j->ticket = PHI_VERIFIER_TICKET_BIT | v->next_ticket++;
        queue_push(&v->todo, j);
out:
        pthread_mutex_unlock(&v->lock);
        return r;
}

/* A frame on the PAM socket, on this thread. */
static int on_pam_request(void *userdata, const struct ucred *cred, const phi_msg *req, phi_msg **ret_reply,
                          uint64_t *ret_ticket) {
        phi_verifier *v = userdata;
        struct phi_verify_request q;
        size_t queued = 0;
        int r;

        r = phi_verify_request_from_pam(req, &q, ret_reply);
        if (r <= 0)
                goto out;
        q.pid = cred->pid > 0 ? (uint64_t) cred->pid : 0;
        r = enqueue(v, &q, true, ret_ticket, &queued);
        if (r < 0) {
                phi_verify_request_clear(&q);   /* not the job's after all */
                r = phi_msg_new_error(r == -ENOBUFS ? -EBUSY : r, ret_reply, "too many requests waiting; try again");
                goto out;
        }
        /* A flood of new connections must not keep the round from running: past
         * ROUND_MAX it no longer waits for idle, it takes its turn. */
        if (queued >= PHI_VERIFIER_ROUND_MAX)
                (void) sd_event_source_set_priority(v->round_src, SD_EVENT_PRIORITY_NORMAL);
        round_schedule(v);
        r = 0;
out:
        phi_secret_wipe(&q, sizeof(q));
        return r;
}

static int thread_setup(phi_verifier *v) {
        int r;

        if ((r = sd_event_new(&v->event)) < 0 ||
            (r = sd_event_add_io(v->event, &v->wake_src, v->wake_fd, EPOLLIN, on_wake, v)) < 0 ||
            (r = sd_event_add_defer(v->event, &v->round_src, on_round, v)) < 0 ||
            (r = sd_event_source_set_priority(v->round_src, SD_EVENT_PRIORITY_IDLE)) < 0 ||
            (r = sd_event_source_set_enabled(v->round_src, SD_EVENT_OFF)) < 0)
                return r;
        if (v->pam_fd >= 0) {
                r = phi_server_new_pam(v->event, v->pam_fd, NULL, on_pam_request, v, &v->pam);
                if (r < 0)
                        return r;
                v->pam_fd = -1;   /* the server's now */
        }
        /* Not fatal: a session not recovered stays listed until the next start. */
        (void) sessions_recover(v);
        /* Fatal: a daemon deaf to the others' revokes would keep grants
         * they ended. */
        if ((r = changes_start(v)) < 0) {
                phi_log(LOG_ERR, "cannot follow the store's change feed: %s", phi_errno_text(r));
                return r;
        }
        /* What came due while the daemon was down happens now; then the timer;
         * and the grants as they are, for the processes that read them
         * (published by that first tick, which runs under the policy). */
        v->grants_dirty = true;
        elev_tick_soon(v);
        return 0;
}

/* At the stop: what clients asked is dropped (they see the connection close
 * and deny), but the thread's own jobs -- other threads' audit records, a
 * session whose process ended -- are served, so that no event journaled
 * before the stop is missing from the audit log. */
static void drain_internal(phi_verifier *v) {
        struct queue rest, keep = { 0 };

        pthread_mutex_lock(&v->lock);
        rest = v->todo;
        v->todo = (struct queue){ 0 };
        pthread_mutex_unlock(&v->lock);
        while (rest.head) {
                struct job *j = rest.head;
                rest.head = j->next;
                j->next = NULL;
                if (j->internal)
                        queue_push(&keep, j);
                else
                        job_free(j);
        }
        if (!keep.head)
                return;
        pthread_mutex_lock(&v->lock);
        v->todo = keep;
        pthread_mutex_unlock(&v->lock);
        round_run(v);
}

static void *verifier_thread(void *arg) {
        phi_verifier *v = arg;
        int r;

        /* This thread's events are appended in their rounds. */
        phi_journal_audited_here(true);
        r = thread_setup(v);

        pthread_mutex_lock(&v->lock);
        v->start_result = r;
        v->start_done = true;
        pthread_cond_broadcast(&v->started);
        pthread_mutex_unlock(&v->lock);
        if (r >= 0)
                (void) sd_event_loop(v->event);
        drain_internal(v);
        /* Connections still waiting see theirs close: PAM denies. */
        phi_server_free(PHI_TAKE_PTR(v->pam));
        while (v->watches)
                watch_free(v->watches);
        v->elev_timer = sd_event_source_disable_unref(v->elev_timer);
        v->changes_src = sd_event_source_disable_unref(v->changes_src);
        v->changes_wake_src = sd_event_source_disable_unref(v->changes_wake_src);
        sd_event_source_disable_unref(PHI_TAKE_PTR(v->wake_src));
        sd_event_source_disable_unref(PHI_TAKE_PTR(v->round_src));
        v->event = sd_event_unref(v->event);
        return NULL;
}

/* --------------------------------------------------------------- upgrade */

/*
 * Tokens and tickets of a store from before identities (schema 5's NULL) get
 * the identity their name has now, and each seed is re-sealed with the name
 * and that identity as additional data: here, at start, because it takes the
 * master key. All in one transaction: a crash leaves them all as they were,
 * to be bound at the next start. A name with no identity now (it left the
 * directory before the upgrade) has its token kept but bound to none ("") --
 * refused at every login, never bound later (a later person with that name
 * is not its owner), removed by phictl totp reset. A seed that does not open
 * (another master key) stays as it was, refused, and is tried again at the
 * next start.
 */
static int bind_one(phi_verifier *v, const char *user, const char *ident, size_t *ret_bound, size_t *ret_orphaned) {
        static const enum phi_token_state states[] = { PHI_TOKEN_PENDING, PHI_TOKEN_ACTIVE };
        struct phi_ticket ticket = { 0 };
        int r;

        for (size_t i = 0; i < PHI_ELEMENTSOF(states); i++) {
                uint8_t seed[PHI_SEAL_MAX_PLAIN];
                struct phi_token t;
                r = phi_store_token_get(v->store, user, states[i], &t);
                if (r == -ENOENT || r == -EUCLEAN || (r == 0 && !t.legacy))
                        continue;
                if (r < 0)
                        return r;
                if (!ident[0]) {
                        t.legacy = false;
                        t.identity[0] = 0;
                        (*ret_orphaned)++;
                        phi_log(LOG_WARNING, "TOTP token of %s is kept but refused: the name has no user now "
                                             "(phictl totp reset %s removes it)", user, user);
                } else if (phi_unseal_legacy(v->key, user, t.nonce, t.sealed, t.sealed_len, seed) < 0) {
                        phi_secret_wipe(seed, sizeof(seed));
                        phi_log(LOG_ERR, "TOTP token of %s does not open with the master key; left unbound "
                                         "(refused) until it does", user);
                        continue;
                } else {
                        r = phi_seal(v->key, user, ident, seed, t.sealed_len - PHI_SEAL_TAG_BYTES, t.nonce, t.sealed);
                        phi_secret_wipe(seed, sizeof(seed));
                        if (r < 0)
                                return r;
                        snprintf(t.identity, sizeof(t.identity), "%s", ident);
                        t.legacy = false;
                        (*ret_bound)++;
                }
                if ((r = phi_store_token_put(v->store, user, &t)) < 0)
                        return r;
        }
        r = phi_store_ticket_get(v->store, user, &ticket);
        if (r == -ENOENT || (r == 0 && !ticket.legacy))
                return 0;
        if (r < 0)
                return r;
        snprintf(ticket.identity, sizeof(ticket.identity), "%s", ident);
        return phi_store_ticket_put(v->store, user, &ticket);
}

static int bind_legacy(phi_verifier *v) {
        char **users = NULL;
        size_t n = 0, bound = 0, orphaned = 0;
        int r;

        if ((r = phi_store_legacy_users(v->store, &users, &n)) < 0 || n == 0)
                goto out;
        if ((r = phi_store_begin(v->store)) < 0)
                goto out;
        for (size_t i = 0; i < n && r >= 0; i++) {
                char ident[PHI_IDENTITY_MAX + 1];
                if ((r = identity_of(v, users[i], ident)) >= 0)
                        r = bind_one(v, users[i], ident, &bound, &orphaned);
        }
        if (r >= 0)
                r = phi_store_commit(v->store);
        if (r < 0) {
                phi_store_rollback(v->store);
                phi_log(LOG_ERR, "cannot bind the TOTP tokens of the upgraded store to identities: %s",
                        phi_errno_text(r));
                goto out;
        }
        phi_log(LOG_NOTICE, "upgraded store: %zu TOTP token%s bound to %s user's identity and re-sealed, %zu kept "
                            "unusable (no such user)", bound, bound == 1 ? "" : "s", bound == 1 ? "its" : "their",
                orphaned);
out:
        phi_strv_free(users, n);
        return r;
}

/* --------------------------------------------------------------- public API */

void phi_verify_request_clear(struct phi_verify_request *q) {
        if (q->command)
                phi_secret_wipe(q->command, strlen(q->command));
        free(q->command);
        free(q->cwd);
        q->command = q->cwd = NULL;
}

/* One line of text for the journal and its readers: no control character. */
static bool text_clean(const char *s) {
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        return false;
        return true;
}

/* The fields of a PHI_MSG_SUDO_CHECK or a sudo session past the common ones:
 * 1, or 0 with an error in *ret_reply. */
static int sudo_fields_from_pam(const phi_msg *req, struct phi_verify_request *q, phi_msg **ret_reply) {
        const char *state = NULL, *runas = NULL, *group = NULL, *command = NULL, *cwd = NULL, *reason = NULL,
                   *ruser = NULL;
        uint64_t flag = 0;

        if (phi_msg_type(req) == PHI_MSG_SESSION) {
                if (phi_msg_get_str(req, PHI_TAG_RUSER, &ruser) == 0 && *ruser) {
                        if (!phi_name_valid(ruser))
                                return phi_msg_new_error(-EINVAL, ret_reply, "PAM_RUSER is not a valid user name");
                        snprintf(q->ruser, sizeof(q->ruser), "%s", ruser);
                }
                q->elevate = phi_msg_get_u64(req, PHI_TAG_ELEVATE, &flag) == 0 && flag != 0;
                return 1;
        }
        if (phi_msg_get_str(req, PHI_TAG_STATE, &state) < 0 ||
            (strcmp(state, "check") != 0 && strcmp(state, "accept") != 0 && strcmp(state, "reject") != 0 &&
             strcmp(state, "error") != 0))
                return phi_msg_new_error(-EINVAL, ret_reply, "a sudo question is check, accept, reject or error");
        snprintf(q->sudo_state, sizeof(q->sudo_state), "%s", state);
        if ((phi_msg_get_str(req, PHI_TAG_RUNAS, &runas) == 0 && !phi_name_valid(runas)) ||
            (phi_msg_get_str(req, PHI_TAG_RUNAS_GROUP, &group) == 0 && !phi_name_valid(group)))
                return phi_msg_new_error(-EINVAL, ret_reply, "the run-as user or group is not a valid name");
        if (phi_msg_get_str(req, PHI_TAG_COMMAND, &command) < 0)
                command = "";
        if (phi_msg_get_str(req, PHI_TAG_CWD, &cwd) < 0)
                cwd = "";
        if (phi_msg_get_str(req, PHI_TAG_REASON, &reason) < 0)
                reason = "";
        /* sudo_phi escapes what it sends; anything else is not sudo_phi. */
        if (!text_clean(command) || !text_clean(cwd) || !text_clean(reason) || strlen(reason) >= sizeof(q->reason))
                return phi_msg_new_error(-EINVAL, ret_reply,
                                         "a sudo command, directory or message holds a control character");
        snprintf(q->runas, sizeof(q->runas), "%s", runas ? runas : "");
        snprintf(q->runas_group, sizeof(q->runas_group), "%s", group ? group : "");
        snprintf(q->reason, sizeof(q->reason), "%s", reason);
        q->command = strdup(command);
        q->cwd = strdup(cwd);
        if (!q->command || !q->cwd) {
                phi_verify_request_clear(q);
                return phi_msg_new_error(-ENOMEM, ret_reply, "out of memory");
        }
        return 1;
}

int phi_verify_request_from_pam(const phi_msg *req, struct phi_verify_request *q, phi_msg **ret_reply) {
        const char *user = NULL, *code = NULL, *service = NULL, *state = NULL, *session = NULL;
        uint64_t flag = 0;
        bool needs_code = true;

        switch (phi_msg_type(req)) {
        case PHI_MSG_AUTH:
                *q = (struct phi_verify_request){ .kind = PHI_VERIFY_LOGIN };
                q->enroll = phi_msg_get_u64(req, PHI_TAG_ENROLL, &flag) == 0 && flag != 0;
                break;
        case PHI_MSG_TOTP_ACTIVATE:
                /* The token offered to this login by the reply to its AUTH. */
                *q = (struct phi_verify_request){ .kind = PHI_VERIFY_ACTIVATE };
                break;
        case PHI_MSG_ACCOUNT:
                *q = (struct phi_verify_request){ .kind = PHI_VERIFY_ACCOUNT };
                q->elevate = phi_msg_get_u64(req, PHI_TAG_ELEVATE, &flag) == 0 && flag != 0;
                needs_code = false;
                break;
        case PHI_MSG_SUDO_CHECK:
                *q = (struct phi_verify_request){ .kind = PHI_VERIFY_SUDO };
                needs_code = false;
                break;
        case PHI_MSG_SESSION:
                if (phi_msg_get_str(req, PHI_TAG_STATE, &state) < 0)
                        state = "";
                if (strcmp(state, "open") == 0)
                        *q = (struct phi_verify_request){ .kind = PHI_VERIFY_SESSION_OPEN };
                else if (strcmp(state, "close") == 0) {
                        *q = (struct phi_verify_request){ .kind = PHI_VERIFY_SESSION_CLOSE };
                        if (phi_msg_get_str(req, PHI_TAG_SESSION, &session) < 0 || !phi_session_id_valid(session))
                                return phi_msg_new_error(-EINVAL, ret_reply,
                                                         "closing a session needs the id its open returned");
                        snprintf(q->session, sizeof(q->session), "%s", session);
                } else
                        return phi_msg_new_error(-EINVAL, ret_reply, "a session is opened or closed, not '%s'", state);
                needs_code = false;
                break;
        default:
                return phi_msg_new_error(-EOPNOTSUPP, ret_reply,
                                         "the PAM socket serves auth, totp-activate, account, session and "
                                         "sudo-check, not %s",
                                         phi_msg_type_name(phi_msg_type(req)));
        }
        if (phi_msg_get_str(req, PHI_TAG_USER, &user) < 0 || phi_msg_get_str(req, PHI_TAG_SERVICE, &service) < 0 ||
            (needs_code && phi_msg_get_str(req, PHI_TAG_CODE, &code) < 0))
                return phi_msg_new_error(-EPROTO, ret_reply, "%s on the PAM socket needs user%s and service",
                                         phi_msg_type_name(phi_msg_type(req)), needs_code ? ", code" : "");
        if (!phi_name_valid(user) || (code && strlen(code) >= sizeof(q->code)))
                return phi_msg_new_error(-EACCES, ret_reply, needs_code ? GENERIC_FAILURE : "not a valid user name");
        snprintf(q->user, sizeof(q->user), "%s", user);
        if (code)
                memcpy(q->code, code, strlen(code));
        /* The schema bounds each of these below its buffer. */
        const struct {
                uint16_t tag;
                char *dst;
                size_t size;
                const char *item;
        } fields[] = {
                { PHI_TAG_SERVICE, q->service, sizeof(q->service), "PAM_SERVICE" },
                { PHI_TAG_RHOST, q->rhost, sizeof(q->rhost), "PAM_RHOST" },
                { PHI_TAG_TTY, q->tty, sizeof(q->tty), "PAM_TTY" },
        };
        for (size_t i = 0; i < PHI_ELEMENTSOF(fields); i++) {
                const char *value = NULL;
                snprintf(fields[i].dst, fields[i].size, "%s",
                         phi_msg_get_str(req, fields[i].tag, &value) == 0 ? value : "");
                /* These are written into journal messages that people read: a
                 * newline or an escape sequence there could forge a line. No
                 * real host, terminal or service name has one. */
                for (const char *p = fields[i].dst; *p; p++)
                        if ((unsigned char) *p < 0x20 || *p == 0x7f) {
                                uint16_t t = phi_msg_type(req);
                                phi_log(LOG_WARNING, "refusing %s request for %s: its %s holds a control character",
                                        t == PHI_MSG_AUTH         ? "a login"
                                        : t == PHI_MSG_ACCOUNT    ? "an account"
                                        : t == PHI_MSG_SESSION    ? "a session"
                                        : t == PHI_MSG_SUDO_CHECK ? "a sudo"
                                                                  : "an activation",
                                        q->user, fields[i].item);
                                phi_secret_wipe(q->code, sizeof(q->code));
                                return phi_msg_new_error(-EINVAL, ret_reply, "%s holds a control character",
                                                         fields[i].item);
                        }
        }
        if (phi_msg_type(req) == PHI_MSG_SUDO_CHECK || phi_msg_type(req) == PHI_MSG_SESSION)
                return sudo_fields_from_pam(req, q, ret_reply);
        return 1;
}

int phi_verifier_new(const struct phi_config *store_config, phi_seal_key *key,
                     const struct phi_verifier_policy *policy, int pam_fd, const char *pam_path,
                     phi_verifier **ret) {
        phi_verifier *v = calloc(1, sizeof(*v));
        uint8_t seed[PHI_SEAL_SEED_BYTES];
        int r;

        if (!v) {
                phi_seal_key_free(key);
                return -ENOMEM;
        }
        v->key = key;
        v->policy = *policy;
        v->event_fd = v->wake_fd = -1;
        v->pam_fd = pam_fd;
        v->next_ticket = 1;
        pthread_mutex_init(&v->lock, NULL);
        pthread_cond_init(&v->started, NULL);
        pthread_mutex_init(&v->journal_lock, NULL);
        pthread_cond_init(&v->journal_wake, NULL);
        pthread_cond_init(&v->journal_room, NULL);

        /* The stand-in token for names without one: same algorithm and size as a
         * real token, so checking it costs the same. */
        v->dummy = (struct phi_token){ .state = PHI_TOKEN_ACTIVE, .algorithm = policy->algorithm,
                                       .digits = policy->digits };
        phi_seal_seed_new(seed);
        r = phi_seal(key, DUMMY_USER, DUMMY_IDENTITY, seed, sizeof(seed), v->dummy.nonce, v->dummy.sealed);
        phi_secret_wipe(seed, sizeof(seed));
        if (r < 0)
                goto fail;
        v->dummy.sealed_len = sizeof(seed) + PHI_SEAL_TAG_BYTES;

        v->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        v->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (v->event_fd < 0 || v->wake_fd < 0) {
                r = phi_negative_errno();
                goto fail;
        }
        if ((r = phi_session_boot_id(v->boot_id)) < 0 || (r = phi_access_hostname(v->hostname, sizeof(v->hostname))) < 0)
                goto fail;
        /* Identities read-only: a refresh's write lock is no concern of a login. */
        if ((r = phi_store_open_config(store_config, PHI_IDENTITIES_READ, &v->store)) < 0 ||
            (r = bind_legacy(v)) < 0)
                goto fail;
        {
                /* No audit log, no verifier: a login whose record cannot be
                 * written is not let in (fail closed). */
                const struct phi_audit_log_config ac = {
                        .key_path = policy->audit_key,
                        .key_name = policy->audit_key_name,
                        .origin = policy->audit_origin,
                        .trusted_keys = policy->audit_trusted_keys,
                        .checkpoint_records = policy->audit_checkpoint_records,
                        .checkpoint_interval = policy->audit_checkpoint_interval,
                };
                if ((r = phi_audit_log_open(v->store, &ac, &v->audit)) < 0) {
                        phi_log(LOG_CRIT, "the audit log cannot be written: %s; every login is refused",
                                phi_errno_text(r));
                        goto fail;
                }
                v->audit_size = phi_audit_log_size(v->audit);
                v->audit_checkpoint = phi_audit_log_checkpoint_size(v->audit);
        }
        /* Bound here, not on the thread, so that a bad path fails the start. */
        if (v->pam_fd < 0 && pam_path) {
                if ((r = phi_server_listen(pam_path, 0600, &v->pam_fd)) < 0) {
                        phi_log(LOG_ERR, "cannot listen on %s: %s", pam_path, phi_errno_text(r));
                        goto fail;
                }
                v->pam_bound = strdup(pam_path);
                if (!v->pam_bound) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        r = -pthread_create(&v->journal_thread, NULL, journal_thread, v);
        if (r < 0)
                goto fail;
        v->journal_started = true;
        /* Named, so that top -H, perf and ps -L show which thread is which. */
        (void) pthread_setname_np(v->journal_thread, "phi-journal");
        r = -pthread_create(&v->thread, NULL, verifier_thread, v);
        if (r < 0)
                goto fail;
        v->thread_started = true;
        (void) pthread_setname_np(v->thread, "phi-verifier");
        pthread_mutex_lock(&v->lock);
        while (!v->start_done)
                pthread_cond_wait(&v->started, &v->lock);
        r = v->start_result;
        pthread_mutex_unlock(&v->lock);
        if (r < 0)
                goto fail;
        *ret = v;
        return 0;
fail:
        /* A socket systemd passed stays with the caller. */
        if (v->pam_fd == pam_fd)
                v->pam_fd = -1;
        phi_verifier_free(v);
        return r;
}

void phi_verifier_free(phi_verifier *v) {
        if (!v)
                return;
        if (v->thread_started) {
                uint64_t one = 1;
                pthread_mutex_lock(&v->lock);
                v->stop = true;
                pthread_mutex_unlock(&v->lock);
                (void) !write(v->wake_fd, &one, sizeof(one));
                pthread_join(v->thread, NULL);
        }
        /* After the verifier: every round it finished is journaled. */
        if (v->journal_started) {
                pthread_mutex_lock(&v->journal_lock);
                v->journal_stop = true;
                pthread_mutex_unlock(&v->journal_lock);
                pthread_cond_signal(&v->journal_wake);
                pthread_join(v->journal_thread, NULL);
        }
        queue_free(&v->journal);
        queue_free(&v->todo);
        answers_free(&v->done);
        phi_audit_log_free(v->audit);
        phi_store_free(v->store);
        phi_seal_key_free(v->key);
        phi_policy_unref(v->access);
        phi_policy_unref(v->next_access);
        (void) phi_close_safe(v->event_fd);
        (void) phi_close_safe(v->wake_fd);
        (void) phi_close_safe(v->pam_fd);
        if (v->pam_bound) {
                (void) unlink(v->pam_bound);
                free(v->pam_bound);
        }
        pthread_mutex_destroy(&v->lock);
        pthread_cond_destroy(&v->started);
        pthread_mutex_destroy(&v->journal_lock);
        pthread_cond_destroy(&v->journal_wake);
        pthread_cond_destroy(&v->journal_room);
        phi_secret_wipe(v, sizeof(*v));
        free(v);
}

int phi_verifier_submit(phi_verifier *v, const struct phi_verify_request *req, uint64_t *ret_ticket) {
        uint64_t one = 1;
        size_t queued;
        int r;

        r = enqueue(v, req, false, ret_ticket, &queued);
        if (r == 0)
                (void) !write(v->wake_fd, &one, sizeof(one));
        return r;
}

void phi_verifier_set_access(phi_verifier *v, struct phi_policy *policy) {
        pthread_mutex_lock(&v->lock);
        phi_policy_unref(v->next_access);
        v->next_access = policy ? phi_policy_ref(policy) : NULL;
        v->access_changed = true;
        pthread_mutex_unlock(&v->lock);
        /* Taken at the next round, which an idle verifier may not have soon;
         * nothing waits for it meanwhile. */
}

void phi_verifier_set_policy(phi_verifier *v, const struct phi_verifier_policy *policy) {
        pthread_mutex_lock(&v->lock);
        v->next_policy = *policy;
        v->policy_changed = true;
        pthread_mutex_unlock(&v->lock);
}

int phi_verifier_event_fd(const phi_verifier *v) {
        return v->event_fd;
}

void phi_verifier_event_ack(phi_verifier *v) {
        uint64_t n;

        (void) !read(v->event_fd, &n, sizeof(n));
}

bool phi_verifier_take(phi_verifier *v, uint64_t *ret_ticket, phi_msg **ret_reply) {
        struct answer *a;

        pthread_mutex_lock(&v->lock);
        a = v->done.head;
        if (a) {
                v->done.head = a->next;
                if (!v->done.head)
                        v->done.tail = NULL;
        }
        pthread_mutex_unlock(&v->lock);
        if (!a)
                return false;
        *ret_ticket = a->ticket;
        *ret_reply = PHI_TAKE_PTR(a->reply);
        answer_free(a);
        return true;
}

void phi_verifier_stats(phi_verifier *v, uint64_t *ret_rounds, uint64_t *ret_requests) {
        pthread_mutex_lock(&v->lock);
        *ret_rounds = v->rounds;
        *ret_requests = v->requests;
        pthread_mutex_unlock(&v->lock);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Verification of the audit log as the store holds it (phictl audit verify
 * with no FILE; phiaccessd --verify-audit STORE for a copy), against the
 * log's own signed checkpoints and those the journal keeps:
 *
 *  - every record: its row's seq is the next one (none missing), its leaf a
 *    canonical record (phi-audit(5)) naming that seq, its stored leaf hash
 *    the hash of the leaf, the indexed copies of its fields those of the
 *    leaf;
 *  - the tree recomputed from the leaves: its root at the size of every
 *    checkpoint, and at the end the saved tree's;
 *  - every stored checkpoint: a signed note of the log's origin, signed by
 *    this daemon's key or one of the fleet's trusted keys;
 *  - every checkpoint in the journal (PHI_EVENT=checkpoint of the log's
 *    origin) that this daemon's own key signed: its size within the store's
 *    tree and its root that of the records. A journal checkpoint beyond the
 *    store means records were cut off the end, or the store was replaced by
 *    an older copy (a restored backup): the outcome PHI_AUDIT_VERIFY_BEHIND.
 *    Only this host's own checkpoints count there: each was journaled after
 *    its round committed to the store, so the store always holds them; other
 *    hosts appending since only put the store ahead of this journal, which is
 *    as it should be (and a checkpoint another host journaled, in a journal
 *    gathered from several hosts, proves nothing about what this host saw).
 *
 * The first failure in seq order is reported: a record's own fault at its
 * seq; a checkpoint that does not match (or is not signed by the key) at the
 * first seq no good checkpoint before it covers.
 *
 * The live verification runs on a thread of its own with its own read
 * handle (WAL: the verifier's rounds go on committing meanwhile); the
 * socket thread hands its reply to the connection that waits, by ticket.
 */

#include <stdbool.h>
#include <stdint.h>

#include "dispatch.h"
#include "phi/audit.h"
#include "phi/wire.h"
#include "store.h"

enum phi_audit_verify_outcome {
        PHI_AUDIT_VERIFY_OK,
        PHI_AUDIT_VERIFY_RECORD,        /* a record missing, moved, changed or malformed */
        PHI_AUDIT_VERIFY_ROOT,          /* the records do not make a checkpoint's root */
        PHI_AUDIT_VERIFY_SIGNATURE,     /* a stored checkpoint not signed by the log's key */
        PHI_AUDIT_VERIFY_TRUNCATED,     /* the store claims more records than it holds */
        PHI_AUDIT_VERIFY_BEHIND,        /* a journal checkpoint beyond the store's records */
        PHI_AUDIT_VERIFY_ERROR,         /* could not be checked (I/O, no key, ...) */
};

/* The outcome's name on the wire and in phictl's output: ok, record, root,
 * signature, truncated, behind-journal, error. */
const char *phi_audit_verify_outcome_name(enum phi_audit_verify_outcome o);

struct phi_audit_verify_result {
        enum phi_audit_verify_outcome outcome;
        uint64_t records;               /* verified (the tree's size on success) */
        uint64_t checkpoints;           /* stored checkpoints verified */
        uint64_t journal_checkpoints;   /* journal checkpoints verified against the store */
        uint64_t journal_ignored;       /* journal entries of the origin not signed by the key */
        uint64_t journal_newest;        /* size of the largest journal checkpoint, 0 when none */
        uint8_t root[PHI_AUDIT_HASH_SIZE];
        char origin[PHI_AUDIT_NAME_MAX + 1];
        bool has_bad_seq;
        uint64_t bad_seq;
        char what[512];                 /* a sentence, on failure */
};

struct phi_audit_verify_input {
        phi_store *store;
        const char *vkey;               /* this daemon's verifier key (NAME+ID+BASE64) */
        const char *origin;             /* the log's name; NULL or "": vkey's name */
        const char *const *trusted;     /* the fleet's other verifier keys */
        size_t n_trusted;
        bool journal;                   /* read the journal's checkpoints */
        const char *journal_dir;        /* NULL: the local journal */
        const volatile bool *cancel;    /* NULL, or set to stop early (ERROR) */
};

/* 0 when the verification ran (ret->outcome says how it ended), a negative
 * errno only for bad arguments. */
int phi_audit_verify_run(const struct phi_audit_verify_input *in, struct phi_audit_verify_result *ret)
        _phi_warn_unused_ _phi_nonnull_;

/* The live verifications of a daemon: at most one at a time. */
typedef struct phi_audit_checks phi_audit_checks;
int phi_audit_checks_new(phi_audit_checks **ret) _phi_warn_unused_ _phi_nonnull_;
/* Stops a running verification (it ends at its next page) and joins it. */
void phi_audit_checks_free(phi_audit_checks *c);
/* Readable when a reply is waiting; ack() before take()ing them all. */
int phi_audit_checks_event_fd(const phi_audit_checks *c) _phi_nonnull_;
void phi_audit_checks_event_ack(phi_audit_checks *c) _phi_nonnull_;
bool phi_audit_checks_take(phi_audit_checks *c, uint64_t *ret_ticket, phi_msg **ret_reply) _phi_nonnull_;
/* Tickets of these replies: bit 62 set (the verifier's have bit 63, sync's neither). */
#define PHI_AUDIT_CHECK_TICKET_BIT (UINT64_C(1) << 62)

/* PHI_MSG_AUDIT_VERIFY: auditors and root. */
int phi_handle_audit_verify(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                            phi_msg **ret_reply, uint64_t *ret_ticket);

/* The reply's pairs for a result (also the offline mode's output). */
int phi_audit_verify_reply(const struct phi_audit_verify_result *res, phi_msg **ret) _phi_warn_unused_ _phi_nonnull_;

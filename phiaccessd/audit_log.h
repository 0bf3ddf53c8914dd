/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The daemon's audit log: every security event the verifier journals is also
 * a record here, appended in the very store transaction that makes the change
 * it records (the verifier's round), so there is no change without its record
 * and no record without its change. The records are the leaves of one Merkle
 * tree (libphi_audit, phi-audit(5)); the tree's right edge is saved with them.
 * Checkpoints -- the tree's size and root, signed with the log's Ed25519 key
 * as a C2SP signed note -- are stored, and journaled (PHI_EVENT=checkpoint), so
 * a store later rolled back or cut short disagrees with the journal.
 *
 * One writer per daemon: the verifier's thread, which owns the handle. Events
 * of other threads (a policy reload, a directory sync, a refused request) come
 * to it as records to append in its next round.
 *
 * Many daemons (a fleet sharing one store): each round begins by reading the
 * stored tree under the round's lock (phi_store_audit_tree_lock); when another
 * daemon appended since, the stored tree is the base. So the store gives out
 * each seq in the transaction that appends it: no two daemons give out one
 * seq, the tree never forks. One log has one origin (the fleet's, [audit]
 * origin); each daemon signs its checkpoints with its own key, named after its
 * host, and a checkpoint verifies with any key of the fleet's set.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "phi/audit.h"
#include "phi/macro.h"
#include "store.h"

typedef struct phi_audit_log phi_audit_log;

struct phi_audit_log_config {
        const char *key_path;       /* the signing key; made (0600) when missing, its public key beside it */
        const char *key_name;       /* a new key's name: this host's (HOST/phi-audit) */
        const char *origin;         /* the checkpoints' origin, the log's name; "" or NULL: the key's name */
        const char *trusted_keys;   /* a file of the fleet's verifier keys; "" or NULL: none */
        uint64_t checkpoint_records;
        uint64_t checkpoint_interval;   /* seconds */
};

/* Loads (or makes) the key and the tree's saved state from the store. */
int phi_audit_log_open(phi_store *store, const struct phi_audit_log_config *c, phi_audit_log **ret)
        _phi_warn_unused_ _phi_nonnull_;
void phi_audit_log_free(phi_audit_log *l);

/* A round: begin inside the store transaction, before its first append: it
 * reads the stored tree (taking another writer's appends as the base) and
 * remembers it, which rollback puts back when the transaction fails. */
int phi_audit_log_begin(phi_audit_log *l) _phi_warn_unused_ _phi_nonnull_;
void phi_audit_log_rollback(phi_audit_log *l) _phi_nonnull_;
/* Appends rec (its seq is assigned here) inside the open transaction.
 * urgent: the record wants a checkpoint at once (a grant, a denial, a
 * break-glass). */
int phi_audit_log_append(phi_audit_log *l, struct phi_audit_record *rec, bool urgent) _phi_warn_unused_
        _phi_nonnull_;
/* Before the commit: saves the tree if it grew, and signs and stores a
 * checkpoint when one is due (urgent records, checkpoint_records new ones, or
 * checkpoint_interval passed with new ones). *ret_note is the new checkpoint
 * (free()), NULL when none was made. */
int phi_audit_log_finish(phi_audit_log *l, uint64_t now, char **ret_note) _phi_warn_unused_ _phi_nonnull_;

/* The round committed with the checkpoint of `size` that finish made. */
void phi_audit_log_checkpoint_committed(phi_audit_log *l, uint64_t size, uint64_t now) _phi_nonnull_;

/* The log's state, for status. */
uint64_t phi_audit_log_size(const phi_audit_log *l) _phi_nonnull_;
uint64_t phi_audit_log_checkpoint_size(const phi_audit_log *l) _phi_nonnull_;
const char *phi_audit_log_vkey(const phi_audit_log *l) _phi_nonnull_;
const char *phi_audit_log_origin(const phi_audit_log *l) _phi_nonnull_;
/* The fleet's other verifier keys ([audit] trusted_keys), as read at open. */
size_t phi_audit_log_trusted(const phi_audit_log *l, const char *const **ret) _phi_nonnull_;
/* Rounds that found the tree advanced by another writer. */
uint64_t phi_audit_log_adopted(const phi_audit_log *l) _phi_nonnull_;

/* Reads a file of verifier keys (NAME+KEYID+BASE64), one a line; blank lines
 * and lines starting with '#' are skipped. Bounded: 64 KiB, and
 * PHI_AUDIT_KEYS_MAX - 1 keys in all (*n counts those in vkeys already; the
 * daemon's own key makes PHI_AUDIT_KEYS_MAX). Appends each as text to
 * vkeys (strdup; the caller frees). The file must be root's and writable by
 * root alone (phi_config_open_trusted): -EPERM. -EINVAL, -E2BIG or the file's
 * errno, with a sentence naming FILE:LINE in why. */
int phi_audit_keys_file_read(const char *path, char **vkeys, size_t *n, char *why, size_t why_len)
        _phi_warn_unused_ _phi_nonnull_;
void phi_audit_log_root(const phi_audit_log *l, uint8_t ret[PHI_AUDIT_HASH_SIZE]) _phi_nonnull_;

/* The public key file written beside key_path: key_path + ".pub". */
#define PHI_AUDIT_PUB_SUFFIX ".pub"

/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* libphi_audit: the pure core of phi's tamper-evident audit log (phi-audit(5)).
 *
 *  - records and their canonical encoding (one JSON object, sorted keys): the
 *    leaves of the tree;
 *  - the RFC 6962 / RFC 9162 Merkle tree over them (SHA-256), an incremental
 *    appender that keeps only the right edge (at most 64 hashes), inclusion and
 *    consistency proofs;
 *  - checkpoints (C2SP tlog-checkpoint) signed as C2SP signed notes with
 *    Ed25519, and the key encodings of golang.org/x/mod/sumdb/note;
 *  - the export file (JSON Lines) and its offline verification.
 *
 * Pure: no I/O, no clock (the caller passes the time), no global state; the
 * only system call is libsodium's random source in phi_audit_keygen(). Every
 * function is safe to call from several threads on different objects.
 * Functions return 0 or a negative errno; parsers also give a sentence saying
 * what is wrong (a static string, never NULL on failure).
 *
 * How the daemon uses it (the integration comes with the store work):
 *  - keep one struct phi_audit_tree per log in the store (serialised with
 *    phi_audit_tree_save(), at most PHI_AUDIT_TREE_SAVED_MAX bytes); in the
 *    transaction that makes a change, restore it, phi_audit_record_encode() the
 *    record with seq = tree.size, phi_audit_tree_append() its bytes, store the
 *    leaf (and, to make proofs cheap, its leaf hash) and the saved tree;
 *  - every N records or T seconds, and at once after each grant, denial and
 *    break-glass, phi_audit_checkpoint_sign() the current root and store the note
 *    (and journal it as a `checkpoint` event);
 *  - export: phi_audit_export_header() with the tree at the first exported size
 *    (phi_audit_tree_build() from the leaf hashes), one
 *    phi_audit_export_record() line per record, the stored checkpoints of the
 *    sizes in between as phi_audit_export_checkpoint() lines with an empty
 *    proof, and last the newest checkpoint with the consistency proof from the
 *    export's end to its size (phi_audit_consistency_proof()). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "phi/macro.h"

#define PHI_AUDIT_HASH_SIZE 32
#define PHI_AUDIT_STRING_MAX 512        /* bytes of one text field, before escaping */
#define PHI_AUDIT_COMMAND_MAX 1024      /* bytes of the command field, before escaping */
#define PHI_AUDIT_EVENT_MAX 64          /* an event name: [a-z0-9_], first a letter */
#define PHI_AUDIT_RECORD_MAX 8192       /* bytes of one canonical record */
#define PHI_AUDIT_PROOF_MAX 64          /* hashes in an inclusion proof */
#define PHI_AUDIT_CONSISTENCY_MAX 128   /* hashes in a consistency proof */
#define PHI_AUDIT_NAME_MAX 256          /* a key name / checkpoint origin, bytes */
#define PHI_AUDIT_NOTE_MAX 16384        /* a whole signed note */
#define PHI_AUDIT_NOTE_SIGS_MAX 16      /* signature lines in a note */
#define PHI_AUDIT_KEYS_MAX 16           /* trusted keys handed to a verification */
#define PHI_AUDIT_TREE_SAVED_MAX (1 + 8 + 64 * PHI_AUDIT_HASH_SIZE)
/* PRIVATE+KEY+NAME+8 hex+base64(33) and NAME+8 hex+base64(33), with the NUL */
#define PHI_AUDIT_SKEY_MAX (12 + PHI_AUDIT_NAME_MAX + 1 + 8 + 1 + 44 + 1)
#define PHI_AUDIT_VKEY_MAX (PHI_AUDIT_NAME_MAX + 1 + 8 + 1 + 44 + 1)
/* One checkpoint line of an export: the note escaped (6 bytes a newline at
 * worst) and its consistency proof. */
#define PHI_AUDIT_EXPORT_LINE_MAX (2 * PHI_AUDIT_NOTE_MAX + PHI_AUDIT_CONSISTENCY_MAX * 47 + 64)
#define PHI_AUDIT_EXPORT_FORMAT "phi-audit-export"
#define PHI_AUDIT_EXPORT_VERSION 1

/* ---- Records -------------------------------------------------------------- */

/* One audit record. seq is the record's index in the tree, counted from 0 (the
 * first record is seq 0, leaf 0). time_us is the time of the event in
 * microseconds since the Unix epoch (as the journal's __REALTIME_TIMESTAMP, so
 * a record and its journal entry can be matched); expires, when not 0, is a
 * deadline in seconds since the Unix epoch (a grant's end, a ticket's expiry,
 * the end of a lockout). event is required; every other text is optional:
 * NULL (or "") leaves it out of the encoding. */
struct phi_audit_record {
        uint64_t seq;
        uint64_t time_us;
        uint64_t expires;
        const char *event;
        const char *user;
        const char *actor;
        const char *role;
        const char *request_id;
        const char *service;
        const char *rhost;
        const char *tty;
        const char *rule;
        const char *reason;
        const char *host;
        const char *command;        /* what sudo ran (sudo_escalation, sudo_denied) */
        const char *target;         /* the user it ran as */
};

/* Texts longer than their field's bound (a sudo command, a reason), cut at
 * a UTF-8 character's start and ended with "...", so that a record of user
 * input always encodes: the journal entry keeps the whole text. rec's texts
 * then point into storage where they were cut. */
struct phi_audit_clip {
        char texts[4][PHI_AUDIT_COMMAND_MAX + 1];
};
void phi_audit_record_clip(struct phi_audit_record *rec, struct phi_audit_clip *storage) _phi_nonnull_;

/* The canonical encoding (phi-audit(5)): a JSON object with the fields that are
 * present, keys in byte order, no whitespace, numbers as decimal integers,
 * strings with only '"', '\\' and bytes below 0x20 escaped ('\"', '\\\\',
 * '\\u00xx' with lowercase hex). Writes at most cap bytes (no NUL) and the
 * length to *ret_len. -EINVAL a field that breaks a bound (event missing or not
 * an event name, a text over its bound (PHI_AUDIT_COMMAND_MAX for the command,
 * PHI_AUDIT_STRING_MAX for the others) or not UTF-8, or with a
 * NUL), -E2BIG the record over PHI_AUDIT_RECORD_MAX or cap. *ret_error says which. */
int phi_audit_record_encode(const struct phi_audit_record *rec, char *buf, size_t cap, size_t *ret_len,
                            const char **ret_error) _phi_warn_unused_ _phi_nonnull_args_(1, 2, 4);

/* A parsed record: rec's texts point into storage. */
struct phi_audit_parsed {
        struct phi_audit_record rec;
        char storage[PHI_AUDIT_RECORD_MAX];
};

/* Parses n bytes as a canonical record, and refuses anything else: other
 * whitespace, key order or escapes, unknown or repeated keys, leading zeros,
 * numbers over 2^64-1, texts over their bound or not UTF-8, an empty text
 * (absent fields are left out), a record over PHI_AUDIT_RECORD_MAX. -EBADMSG and
 * *ret_error on refusal. */
int phi_audit_record_parse(const char *s, size_t n, struct phi_audit_parsed *ret, const char **ret_error)
        _phi_warn_unused_ _phi_nonnull_args_(1, 3);

/* ---- The Merkle tree (RFC 9162 section 2.1) ------------------------------- */

/* SHA-256 of n bytes, as the tree hashes them: the floor the benchmarks
 * measure the tree against. */
void phi_audit_sha256(const void *data, size_t n, uint8_t ret[PHI_AUDIT_HASH_SIZE]) _phi_nonnull_args_(3);

/* SHA-256(0x00 || leaf) and SHA-256(0x01 || left || right). */
void phi_audit_leaf_hash(const void *leaf, size_t n, uint8_t ret[PHI_AUDIT_HASH_SIZE]) _phi_nonnull_args_(3);
void phi_audit_node_hash(const uint8_t left[PHI_AUDIT_HASH_SIZE], const uint8_t right[PHI_AUDIT_HASH_SIZE],
                         uint8_t ret[PHI_AUDIT_HASH_SIZE]) _phi_nonnull_;

/* The right edge of a tree of `size` leaves: for each bit i set in size, the
 * hash of the complete subtree of 2^i leaves it covers (left to right, from the
 * highest bit down). Enough to append and to compute the root; O(log n). */
struct phi_audit_tree {
        uint64_t size;
        uint8_t edge[64][PHI_AUDIT_HASH_SIZE];  /* edge[i]: the subtree of 2^i leaves, when bit i is set */
};

void phi_audit_tree_init(struct phi_audit_tree *t) _phi_nonnull_;
/* Appends a leaf (its bytes; _hash: its leaf hash). -EOVERFLOW at 2^64-1 leaves. */
int phi_audit_tree_append(struct phi_audit_tree *t, const void *leaf, size_t n) _phi_warn_unused_
        _phi_nonnull_args_(1);
int phi_audit_tree_append_hash(struct phi_audit_tree *t, const uint8_t leaf_hash[PHI_AUDIT_HASH_SIZE])
        _phi_warn_unused_ _phi_nonnull_;
/* MTH of the tree as it is (SHA-256 of nothing for the empty tree). */
void phi_audit_tree_root(const struct phi_audit_tree *t, uint8_t ret[PHI_AUDIT_HASH_SIZE]) _phi_nonnull_;

/* The saved form: version byte 0x01, size as 8 bytes big-endian, then the edge
 * hashes from the highest set bit down (popcount(size) hashes). Writes at most
 * cap bytes; -ENOBUFS when cap is too small. Restore refuses any other length,
 * version or content: -EBADMSG. */
int phi_audit_tree_save(const struct phi_audit_tree *t, uint8_t *buf, size_t cap, size_t *ret_len)
        _phi_warn_unused_ _phi_nonnull_;
int phi_audit_tree_restore(struct phi_audit_tree *t, const uint8_t *buf, size_t n) _phi_warn_unused_
        _phi_nonnull_;

/* Where proofs get their leaf hashes: the hash of leaf `index` into ret; 0 or a
 * negative errno, which the proof function returns. */
typedef int (*phi_audit_leaf_fn)(void *userdata, uint64_t index, uint8_t ret[PHI_AUDIT_HASH_SIZE]);

/* The tree of the first `size` leaves, O(size) leaf hashes. */
int phi_audit_tree_build(uint64_t size, phi_audit_leaf_fn leaf, void *userdata, struct phi_audit_tree *ret)
        _phi_warn_unused_ _phi_nonnull_args_(2, 4);

/* Inclusion proof of leaf `index` in the tree of `size` leaves (RFC 9162
 * 2.1.3.1), O(size) leaf hashes: *ret_n hashes into ret (room for
 * PHI_AUDIT_PROOF_MAX). -EINVAL index >= size. */
int phi_audit_inclusion_proof(uint64_t index, uint64_t size, phi_audit_leaf_fn leaf, void *userdata,
                              uint8_t ret[][PHI_AUDIT_HASH_SIZE], size_t *ret_n) _phi_warn_unused_
        _phi_nonnull_args_(3, 5, 6);
/* RFC 9162 2.1.3.2. 0 when the proof shows the leaf hash at index in root;
 * -EBADMSG when it does not, -EINVAL index >= size. */
int phi_audit_inclusion_verify(uint64_t index, uint64_t size, const uint8_t leaf_hash[PHI_AUDIT_HASH_SIZE],
                               const uint8_t proof[][PHI_AUDIT_HASH_SIZE], size_t n_proof,
                               const uint8_t root[PHI_AUDIT_HASH_SIZE]) _phi_warn_unused_
        _phi_nonnull_args_(3, 6);

/* Consistency proof from the tree of `first` leaves to that of `second`
 * (RFC 9162 2.1.4.1), O(second) leaf hashes; empty when first is 0 or equal to
 * second. -EINVAL first > second. */
int phi_audit_consistency_proof(uint64_t first, uint64_t second, phi_audit_leaf_fn leaf, void *userdata,
                                uint8_t ret[][PHI_AUDIT_HASH_SIZE], size_t *ret_n) _phi_warn_unused_
        _phi_nonnull_args_(3, 5, 6);
/* RFC 9162 2.1.4.2 (a first size of 0 is consistent with anything, by an empty
 * proof; equal sizes need equal roots and an empty proof). 0 consistent,
 * -EBADMSG not, -EINVAL first > second. */
int phi_audit_consistency_verify(uint64_t first, uint64_t second, const uint8_t first_root[PHI_AUDIT_HASH_SIZE],
                                 const uint8_t second_root[PHI_AUDIT_HASH_SIZE],
                                 const uint8_t proof[][PHI_AUDIT_HASH_SIZE], size_t n_proof) _phi_warn_unused_
        _phi_nonnull_args_(3, 4);

/* ---- Keys, signed notes and checkpoints ----------------------------------- */

/* A signer key: PRIVATE+KEY+NAME+HEXID+base64(0x01 || 32-byte Ed25519 seed). */
struct phi_audit_signer {
        char name[PHI_AUDIT_NAME_MAX + 1];
        uint32_t id;
        uint8_t sk[64];         /* libsodium's secret key: seed || public key */
};
/* A verifier key: NAME+HEXID+base64(0x01 || 32-byte Ed25519 public key). */
struct phi_audit_verifier {
        char name[PHI_AUDIT_NAME_MAX + 1];
        uint32_t id;
        uint8_t pk[32];
};

/* SHA-256(name || 0x0A || 0x01 || pk)[:4], big-endian. */
uint32_t phi_audit_key_id(const char *name, const uint8_t pk[32]) _phi_nonnull_;

/* Key names: 1..PHI_AUDIT_NAME_MAX bytes of UTF-8, no Unicode space, no '+'. */
bool phi_audit_key_name_valid(const char *name, size_t n) _phi_nonnull_;

/* A new key pair named `name` (libsodium's random source), both encoded, each
 * NUL-terminated. The seed never leaves skey, which the caller wipes. */
int phi_audit_keygen(const char *name, char skey[PHI_AUDIT_SKEY_MAX], char vkey[PHI_AUDIT_VKEY_MAX])
        _phi_warn_unused_ _phi_nonnull_;
/* The same from a given seed (tests, and re-deriving the verifier key). */
int phi_audit_key_from_seed(const char *name, const uint8_t seed[32], char skey[PHI_AUDIT_SKEY_MAX],
                            char vkey[PHI_AUDIT_VKEY_MAX]) _phi_warn_unused_ _phi_nonnull_;

/* Parses a key, exactly n bytes (no surrounding blanks, no final newline: the
 * caller strips what its file adds; key ids in lowercase hex). -EINVAL and
 * *ret_error: malformed, not Ed25519, a key id that does not match. */
int phi_audit_signer_parse(const char *text, size_t n, struct phi_audit_signer *ret, const char **ret_error)
        _phi_warn_unused_ _phi_nonnull_args_(1, 3);
int phi_audit_verifier_parse(const char *text, size_t n, struct phi_audit_verifier *ret, const char **ret_error)
        _phi_warn_unused_ _phi_nonnull_args_(1, 3);
/* A list of verifier keys, one a line (a fleet's hosts' keys): blank lines
 * and lines starting with '#' are skipped, blanks around a key and a final
 * "\r" ignored. Appends to keys[*n_keys], up to max. At most
 * PHI_AUDIT_KEYS_TEXT_MAX bytes. -EINVAL (a line that is not a key), -E2BIG
 * (too long, too many keys), with *ret_error and *ret_line the line's number
 * (counted from 1; 0 when no line is to blame). */
#define PHI_AUDIT_KEYS_TEXT_MAX 65536
int phi_audit_verifiers_parse(const char *text, size_t n, struct phi_audit_verifier *keys, size_t max,
                              size_t *n_keys, size_t *ret_line, const char **ret_error) _phi_warn_unused_
        _phi_nonnull_args_(3, 5, 6);
/* Wipes a signer (the secret key). */
void phi_audit_signer_wipe(struct phi_audit_signer *s) _phi_nonnull_;

/* Signs `text` (non-empty, ending in a newline, UTF-8 without control
 * characters other than newline) as a note with one signature, into buf
 * (NUL-terminated; *ret_len without the NUL). -EINVAL bad text, -ENOBUFS no
 * room. */
int phi_audit_note_sign(const struct phi_audit_signer *s, const char *text, size_t n, char *buf, size_t cap,
                        size_t *ret_len) _phi_warn_unused_ _phi_nonnull_;

/* Opens a signed note: checks its syntax and bounds (PHI_AUDIT_NOTE_MAX bytes,
 * PHI_AUDIT_NOTE_SIGS_MAX signatures), ignores signatures of keys not in
 * `keys` (a key is its name and id together), verifies the others: one that
 * fails rejects the note, and at least one must verify. On success *ret_text_len
 * is the length of the signed text (from the start of note) and *ret_key the
 * index in keys of the first key whose signature verified.
 * -EBADMSG malformed, -EPERM no trusted signature or a bad one. */
int phi_audit_note_open(const char *note, size_t n, const struct phi_audit_verifier *keys, size_t n_keys,
                        size_t *ret_text_len, size_t *ret_key, const char **ret_error) _phi_warn_unused_
        _phi_nonnull_args_(1, 5);

struct phi_audit_checkpoint {
        char origin[PHI_AUDIT_NAME_MAX + 1];
        uint64_t size;
        uint8_t root[PHI_AUDIT_HASH_SIZE];
        size_t n_extensions;    /* extension lines, accepted and not interpreted */
};

/* The checkpoint text: origin, size, base64 root, each ending in '\n' (no
 * extension lines). Writes at most cap bytes (no NUL). */
int phi_audit_checkpoint_format(const char *origin, uint64_t size, const uint8_t root[PHI_AUDIT_HASH_SIZE],
                                char *buf, size_t cap, size_t *ret_len) _phi_warn_unused_ _phi_nonnull_;
/* Parses a checkpoint text (tlog-checkpoint: at least three non-empty lines,
 * origin of at most PHI_AUDIT_NAME_MAX bytes, decimal size without leading
 * zeros, a 32-byte base64 root, optional non-empty extension lines). -EBADMSG. */
int phi_audit_checkpoint_parse(const char *text, size_t n, struct phi_audit_checkpoint *ret,
                               const char **ret_error) _phi_warn_unused_ _phi_nonnull_args_(1, 3);
/* Format and sign in one: the note into buf, NUL-terminated. */
int phi_audit_checkpoint_sign(const struct phi_audit_signer *s, const char *origin, uint64_t size,
                              const uint8_t root[PHI_AUDIT_HASH_SIZE], char *buf, size_t cap, size_t *ret_len)
        _phi_warn_unused_ _phi_nonnull_;
/* Open the note with the trusted keys and parse its text. */
int phi_audit_checkpoint_open(const char *note, size_t n, const struct phi_audit_verifier *keys, size_t n_keys,
                              struct phi_audit_checkpoint *ret, size_t *ret_key, const char **ret_error)
        _phi_warn_unused_ _phi_nonnull_args_(1, 5);

/* ---- Export --------------------------------------------------------------- */

/* The lines of an export (phi-audit(5)), each ending in '\n', NUL-terminated:
 *   {"phi-audit-export":1,"first":A,"left":["b64",...]}        the header
 *   {"hash":"b64 leaf hash","leaf":RECORD}                      one per record
 *   {"checkpoint":"note as JSON","proof":["b64",...]}            a signed checkpoint
 * `left` is the tree of the A leaves before the first exported record. A
 * checkpoint line covers the records before it: its proof is the consistency
 * proof from that many records to the checkpoint's size (empty when equal). The
 * last line is a checkpoint. -ENOBUFS no room, -EINVAL bad arguments. */
int phi_audit_export_header(const struct phi_audit_tree *left, char *buf, size_t cap, size_t *ret_len)
        _phi_warn_unused_ _phi_nonnull_;
int phi_audit_export_record(const char *leaf, size_t n, char *buf, size_t cap, size_t *ret_len)
        _phi_warn_unused_ _phi_nonnull_;
int phi_audit_export_checkpoint(const char *note, size_t n, const uint8_t proof[][PHI_AUDIT_HASH_SIZE],
                                size_t n_proof, char *buf, size_t cap, size_t *ret_len) _phi_warn_unused_
        _phi_nonnull_args_(1, 5, 7);

struct phi_audit_export_result {
        /* on success */
        uint64_t first;                 /* seq of the first record */
        uint64_t records;               /* records verified: seq first .. first+records-1 */
        uint64_t tree_size;             /* of the last checkpoint */
        uint64_t checkpoints;           /* checkpoint lines verified */
        char origin[PHI_AUDIT_NAME_MAX + 1];
        char key[PHI_AUDIT_NAME_MAX + 1];   /* name of the trusted key that signed the last one */
        /* on failure */
        bool has_bad_seq;
        uint64_t bad_seq;               /* the first record that is wrong, missing or unproven */
        char what[512];                 /* a sentence: what is wrong */
};

/* Verifies an export (n bytes) against the trusted keys with no other input:
 * every line's syntax, every record canonical and in order, its stated hash,
 * every checkpoint's signature and root. 0 verified; -EBADMSG not, with
 * ret->what and, when a record is to blame, ret->bad_seq; -EINVAL no keys or
 * more than PHI_AUDIT_KEYS_MAX. */
int phi_audit_export_verify(const char *data, size_t n, const struct phi_audit_verifier *keys, size_t n_keys,
                            struct phi_audit_export_result *ret) _phi_warn_unused_ _phi_nonnull_args_(5);

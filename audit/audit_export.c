/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The export file (phi-audit(5)) and its offline verification.
 *
 * The tree and its signed checkpoints prove that the records are the ones the
 * daemon logged; they cannot by themselves say which record is wrong when a
 * root does not match. So each record line also states its own leaf hash, and
 * the records carry their sequence numbers: a record changed by hand, one
 * deleted, moved or swapped, and the newest ones cut off are each named
 * exactly. Someone who also rewrites the stated hashes (and renumbers) can hide
 * which record they changed, never that one was: the first checkpoint after it
 * no longer matches, and the report names the first record that checkpoint
 * covers. */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "audit_internal.h"

#define HEADER_PREFIX "{\"" PHI_AUDIT_EXPORT_FORMAT "\":1,\"first\":"
#define RECORD_PREFIX "{\"hash\":\""
#define RECORD_MIDDLE "\",\"leaf\":"
#define CHECKPOINT_PREFIX "{\"checkpoint\":"

int phi_audit_export_header(const struct phi_audit_tree *left, char *buf, size_t cap, size_t *ret_len) {
        struct audit_out o = { .buf = buf, .cap = cap };
        uint8_t h[64][PHI_AUDIT_HASH_SIZE];
        size_t k = 0;

        for (int i = 63; i >= 0; i--)
                if ((left->size >> i) & 1)
                        memcpy(h[k++], left->edge[i], PHI_AUDIT_HASH_SIZE);
        audit_out_str(&o, HEADER_PREFIX);
        audit_out_u64(&o, left->size);
        audit_out_str(&o, ",\"left\":");
        audit_out_hash_array(&o, (const uint8_t(*)[PHI_AUDIT_HASH_SIZE]) h, k);
        audit_out_put(&o, "}\n", 3);
        if (o.len > cap)
                return -ENOBUFS;
        *ret_len = o.len - 1;
        return 0;
}

int phi_audit_export_record(const char *leaf, size_t n, char *buf, size_t cap, size_t *ret_len) {
        struct audit_out o = { .buf = buf, .cap = cap };
        uint8_t h[PHI_AUDIT_HASH_SIZE];
        char b64[sodium_base64_ENCODED_LEN(PHI_AUDIT_HASH_SIZE, sodium_base64_VARIANT_ORIGINAL)];

        if (n > PHI_AUDIT_RECORD_MAX || memchr(leaf, '\n', n))
                return -EINVAL;
        phi_audit_leaf_hash(leaf, n, h);
        sodium_bin2base64(b64, sizeof(b64), h, sizeof(h), sodium_base64_VARIANT_ORIGINAL);
        audit_out_str(&o, RECORD_PREFIX);
        audit_out_str(&o, b64);
        audit_out_str(&o, RECORD_MIDDLE);
        audit_out_put(&o, leaf, n);
        audit_out_put(&o, "}\n", 3);
        if (o.len > cap)
                return -ENOBUFS;
        *ret_len = o.len - 1;
        return 0;
}

int phi_audit_export_checkpoint(const char *note, size_t n, const uint8_t proof[][PHI_AUDIT_HASH_SIZE],
                                size_t n_proof, char *buf, size_t cap, size_t *ret_len) {
        struct audit_out o = { .buf = buf, .cap = cap };

        if (n > PHI_AUDIT_NOTE_MAX || n_proof > PHI_AUDIT_CONSISTENCY_MAX || (n_proof && !proof))
                return -EINVAL;
        audit_out_str(&o, CHECKPOINT_PREFIX);
        audit_out_json_string(&o, note, n);
        audit_out_str(&o, ",\"proof\":");
        audit_out_hash_array(&o, proof, n_proof);
        audit_out_put(&o, "}\n", 3);
        if (o.len > cap)
                return -ENOBUFS;
        *ret_len = o.len - 1;
        return 0;
}

/* ---- verification ---------------------------------------------------------- */

struct verify {
        const struct phi_audit_verifier *keys;
        size_t n_keys;
        struct phi_audit_export_result *res;
        struct phi_audit_tree tree;
        uint64_t next;          /* seq the next record line must hold */
        uint64_t covered;       /* records before this seq are covered by a verified checkpoint */
        uint64_t line;
        struct phi_audit_parsed parsed;
        char note[PHI_AUDIT_NOTE_MAX + 1];
        uint8_t proof[PHI_AUDIT_CONSISTENCY_MAX][PHI_AUDIT_HASH_SIZE];
};

_phi_printf_(3, 4) static int fail(struct verify *v, int64_t seq, const char *fmt, ...) {
        va_list ap;

        v->res->has_bad_seq = seq >= 0;
        v->res->bad_seq = seq >= 0 ? (uint64_t) seq : 0;
        char text[sizeof(v->res->what) - 32], head[32];
        va_start(ap, fmt);
        (void) vsnprintf(text, sizeof(text), fmt, ap);
        va_end(ap);
        /* a sentence about a record starts by naming it, as phictl prints it */
        (void) snprintf(head, sizeof(head), "record %llu: ", (unsigned long long) v->res->bad_seq);
        if (seq >= 0 && strncmp(text, head, strlen(head)) != 0)
                (void) snprintf(v->res->what, sizeof(v->res->what), "%s%s", head, text);
        else
                (void) snprintf(v->res->what, sizeof(v->res->what), "%s", text);
        return -EBADMSG;
}

static int header(struct verify *v, const char *s, size_t n) {
        uint8_t left[64][PHI_AUDIT_HASH_SIZE];
        const char *error = NULL;
        size_t pos = 0, k = 0, j = 0;
        uint64_t first;

        if (!AUDIT_MATCH(s, n, &pos, HEADER_PREFIX))
                return fail(v, -1, "line 1: not the header of a phi audit export ({\"%s\":1,...})",
                            PHI_AUDIT_EXPORT_FORMAT);
        if (audit_u64_read(s, n, &pos, &first, &error) < 0 || first == UINT64_MAX)
                return fail(v, -1, "line 1: the first sequence number: %s", error ? error : "out of range");
        if (!AUDIT_MATCH(s, n, &pos, ",\"left\":") ||
            audit_hash_array_read(s, n, &pos, left, 64, &k, &error) < 0 || !AUDIT_MATCH(s, n, &pos, "}") ||
            pos != n)
                return fail(v, -1, "line 1: the header's list of left subtree hashes is malformed%s%s",
                            error ? ": " : "", error ? error : "");
        if (k != (size_t) __builtin_popcountll(first))
                return fail(v, -1, "line 1: a tree of %llu records has %d left subtree hashes, the header holds %zu",
                            (unsigned long long) first, __builtin_popcountll(first), k);
        v->tree.size = first;
        for (int i = 63; i >= 0; i--)
                if ((first >> i) & 1)
                        memcpy(v->tree.edge[i], left[j++], PHI_AUDIT_HASH_SIZE);
        v->next = v->covered = v->res->first = first;
        return 0;
}

static int record(struct verify *v, const char *s, size_t n) {
        const size_t prefix = sizeof(RECORD_PREFIX) - 1 + 44 + sizeof(RECORD_MIDDLE) - 1;
        char stated[sodium_base64_ENCODED_LEN(PHI_AUDIT_HASH_SIZE, sodium_base64_VARIANT_ORIGINAL)];
        uint8_t h[PHI_AUDIT_HASH_SIZE];
        const char *error = NULL;
        uint64_t seq = v->next;

        if (v->next == UINT64_MAX)
                return fail(v, (int64_t) seq, "record %llu: the tree is full", (unsigned long long) seq);
        if (n < prefix + 1 || memcmp(s + sizeof(RECORD_PREFIX) - 1 + 44, RECORD_MIDDLE, sizeof(RECORD_MIDDLE) - 1) != 0 ||
            s[n - 1] != '}')
                return fail(v, (int64_t) seq, "record %llu: line %llu is not {\"hash\":\"BASE64\",\"leaf\":RECORD}",
                            (unsigned long long) seq, (unsigned long long) v->line);
        if (phi_audit_record_parse(s + prefix, n - prefix - 1, &v->parsed, &error) < 0)
                return fail(v, (int64_t) seq, "record %llu: line %llu: %s", (unsigned long long) seq,
                            (unsigned long long) v->line, error);
        if (v->parsed.rec.seq != seq)
                return fail(v, (int64_t) seq,
                            "record %llu: missing or out of order: line %llu holds record %llu instead "
                            "(records deleted, moved or swapped)",
                            (unsigned long long) seq, (unsigned long long) v->line,
                            (unsigned long long) v->parsed.rec.seq);
        phi_audit_leaf_hash(s + prefix, n - prefix - 1, h);
        /* compared as text: one encoding, no decoding of what may be garbage */
        sodium_bin2base64(stated, sizeof(stated), h, sizeof(h), sodium_base64_VARIANT_ORIGINAL);
        if (memcmp(stated, s + sizeof(RECORD_PREFIX) - 1, 44) != 0)
                return fail(v, (int64_t) seq,
                            "record %llu: its contents do not match the hash beside it (the record was changed)",
                            (unsigned long long) seq);
        if (phi_audit_tree_append_hash(&v->tree, h) < 0)
                return fail(v, (int64_t) seq, "record %llu: the tree is full", (unsigned long long) seq);
        v->next++;
        v->res->records++;
        return 0;
}

/* The records a failing checkpoint is about: those since the last good one. */
static int64_t blame(const struct verify *v) {
        return v->covered < v->next ? (int64_t) v->covered : -1;
}

static int checkpoint(struct verify *v, const char *s, size_t n, bool last) {
        struct phi_audit_checkpoint cp;
        uint8_t root[PHI_AUDIT_HASH_SIZE];
        const char *error = NULL;
        size_t pos = sizeof(CHECKPOINT_PREFIX) - 1, note_len = 0, n_proof = 0, key = 0;
        int r;

        if (audit_json_string_read(s, n, &pos, v->note, sizeof(v->note), &note_len, &error) < 0 ||
            !AUDIT_MATCH(s, n, &pos, ",\"proof\":") ||
            audit_hash_array_read(s, n, &pos, v->proof, PHI_AUDIT_CONSISTENCY_MAX, &n_proof, &error) < 0 ||
            !AUDIT_MATCH(s, n, &pos, "}") || pos != n)
                return fail(v, blame(v), "line %llu: the checkpoint line is malformed%s%s", (unsigned long long) v->line,
                            error ? ": " : "", error ? error : "");
        r = phi_audit_checkpoint_open(v->note, note_len, v->keys, v->n_keys, &cp, &key, &error);
        if (r < 0) {
                if (blame(v) >= 0)
                        return fail(v, blame(v), "record %llu: the checkpoint on line %llu that covers it: %s",
                                    (unsigned long long) blame(v), (unsigned long long) v->line, error);
                return fail(v, -1, "line %llu: checkpoint: %s", (unsigned long long) v->line, error);
        }
        if (v->res->checkpoints > 0 && strcmp(cp.origin, v->res->origin) != 0)
                return fail(v, blame(v), "line %llu: a checkpoint of another log (origin %s, not %s)",
                            (unsigned long long) v->line, cp.origin, v->res->origin);
        if (cp.size < v->next)
                return fail(v, (int64_t) cp.size,
                            "record %llu: stands before the checkpoint on line %llu, which covers only %llu records",
                            (unsigned long long) cp.size, (unsigned long long) v->line, (unsigned long long) cp.size);
        phi_audit_tree_root(&v->tree, root);
        if (cp.size == v->next) {
                if (n_proof != 0 || memcmp(root, cp.root, sizeof(root)) != 0) {
                        if (blame(v) >= 0)
                                return fail(v, blame(v),
                                            "record %llu: the records from %llu to %llu do not match the checkpoint "
                                            "signed for tree size %llu (changed after signing, hashes rewritten)",
                                            (unsigned long long) blame(v), (unsigned long long) blame(v),
                                            (unsigned long long) v->next - 1, (unsigned long long) cp.size);
                        return fail(v, -1,
                                    "line %llu: the left subtree hashes of the header do not match the checkpoint "
                                    "signed for tree size %llu",
                                    (unsigned long long) v->line, (unsigned long long) cp.size);
                }
        } else {
                if (n_proof == 0 && last)
                        return fail(v, (int64_t) v->next,
                                    "record %llu: missing: the checkpoint covers %llu records and the export ends "
                                    "before record %llu (the newest records were deleted)",
                                    (unsigned long long) v->next, (unsigned long long) cp.size,
                                    (unsigned long long) v->next);
                /* Every record so far covered (a checkpoint just before):
                 * the one missing is the next. */
                if (n_proof == 0) {
                        int64_t bad = blame(v) >= 0 ? blame(v) : (int64_t) v->next;
                        return fail(v, bad,
                                    "record %llu: the records from %llu on do not add up to the %llu records of the "
                                    "checkpoint on line %llu (records deleted or inserted, and renumbered)",
                                    (unsigned long long) bad, (unsigned long long) bad,
                                    (unsigned long long) cp.size, (unsigned long long) v->line);
                }
                if (!last)
                        return fail(v, blame(v),
                                    "line %llu: a checkpoint for a larger tree than the records before it (%llu, "
                                    "not %llu) must be the export's last line",
                                    (unsigned long long) v->line, (unsigned long long) cp.size,
                                    (unsigned long long) v->next);
                if (phi_audit_consistency_verify(v->next, cp.size, root, cp.root,
                                                 (const uint8_t(*)[PHI_AUDIT_HASH_SIZE]) v->proof, n_proof) < 0) {
                        if (blame(v) >= 0)
                                return fail(v, blame(v),
                                            "record %llu: the records from %llu to %llu are not part of the tree "
                                            "signed for size %llu (the consistency proof fails)",
                                            (unsigned long long) blame(v), (unsigned long long) blame(v),
                                            (unsigned long long) v->next - 1, (unsigned long long) cp.size);
                        /* Every record so far is covered by a verified
                         * checkpoint: the export stops short of the tree this
                         * one signs, and the first record it lacks is named. */
                        return fail(v, (int64_t) v->next,
                                    "record %llu: missing; the %llu records of the export do not lead to the tree "
                                    "signed for size %llu on line %llu (records from %llu on were cut off)",
                                    (unsigned long long) v->next, (unsigned long long) v->next,
                                    (unsigned long long) cp.size, (unsigned long long) v->line,
                                    (unsigned long long) v->next);
                }
        }
        v->covered = v->next;
        v->res->checkpoints++;
        v->res->tree_size = cp.size;
        memcpy(v->res->origin, cp.origin, sizeof(cp.origin));
        (void) snprintf(v->res->key, sizeof(v->res->key), "%s", v->keys[key].name);
        return 0;
}

int phi_audit_export_verify(const char *data, size_t n, const struct phi_audit_verifier *keys, size_t n_keys,
                            struct phi_audit_export_result *ret) {
        struct verify *v = NULL;
        size_t pos = 0;
        bool last_was_checkpoint = false;
        int r = 0;

        memset(ret, 0, sizeof(*ret));
        if (!keys || n_keys == 0 || n_keys > PHI_AUDIT_KEYS_MAX || (n && !data)) {
                (void) snprintf(ret->what, sizeof(ret->what), "no trusted key, or more than %d",
                                PHI_AUDIT_KEYS_MAX);
                return -EINVAL;
        }
        v = calloc(1, sizeof(*v));
        if (!v) {
                (void) snprintf(ret->what, sizeof(ret->what), "out of memory");
                return -ENOMEM;
        }
        *v = (struct verify) { .keys = keys, .n_keys = n_keys, .res = ret };
        if (n == 0 || data[n - 1] != '\n') {
                r = fail(v, -1, n == 0 ? "the export is empty" : "the export does not end in a newline (cut off?)");
                goto out;
        }
        while (pos < n && r == 0) {
                const char *s = data + pos, *end = memchr(s, '\n', n - pos);
                size_t len = (size_t) (end - s);

                pos += len + 1;
                v->line++;
                if (v->line == 1)
                        r = header(v, s, len);
                else if (len >= sizeof(RECORD_PREFIX) - 1 && memcmp(s, RECORD_PREFIX, sizeof(RECORD_PREFIX) - 1) == 0) {
                        r = record(v, s, len);
                        last_was_checkpoint = false;
                } else if (len >= sizeof(CHECKPOINT_PREFIX) - 1 &&
                           memcmp(s, CHECKPOINT_PREFIX, sizeof(CHECKPOINT_PREFIX) - 1) == 0) {
                        r = checkpoint(v, s, len, pos == n);
                        last_was_checkpoint = true;
                } else
                        r = fail(v, (int64_t) v->next, "record %llu: line %llu is neither a record nor a checkpoint",
                                 (unsigned long long) v->next, (unsigned long long) v->line);
        }
        if (r == 0 && !last_was_checkpoint) {
                if (blame(v) >= 0)
                        r = fail(v, blame(v),
                                 "record %llu: not covered by a signed checkpoint (the export's last line must be "
                                 "one: cut off?)",
                                 (unsigned long long) blame(v));
                else
                        r = fail(v, -1, "the export holds no signed checkpoint");
        }
out:
        sodium_memzero(v, sizeof(*v));
        free(v);
        return r;
}

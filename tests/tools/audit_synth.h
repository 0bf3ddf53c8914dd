/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Synthetic audit logs for tests and the benchmark: records that look like the
 * daemon's (logins, denials, grants, sudo uses) and a signed export of any
 * range of them, made with libphi_audit's own writers. The daemon produces the
 * real ones. Test code only: it allocates freely and aborts on failure. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phi/audit.h"

struct synth_record {
        struct phi_audit_record rec;
        char user[32], rhost[32], request_id[32];
};

static inline void synth_record(uint64_t i, struct synth_record *s) {
        static const char *const events[] = { "auth_ok", "auth_fail", "access_granted", "access_denied",
                                              "sudo_escalation", "elevation_approved" };
        const char *event = events[i % 6];

        memset(s, 0, sizeof(*s));
        (void) snprintf(s->user, sizeof(s->user), "user%llu", (unsigned long long) (i % 997));
        (void) snprintf(s->rhost, sizeof(s->rhost), "10.%u.%u.%u", (unsigned) (i >> 16 & 255),
                        (unsigned) (i >> 8 & 255), (unsigned) (i & 255));
        (void) snprintf(s->request_id, sizeof(s->request_id), "req-%llu", (unsigned long long) (i / 6));
        s->rec = (struct phi_audit_record) {
                .seq = i,
                .time_us = UINT64_C(1764670000000000) + i * 1000,
                .event = event,
                .user = s->user,
                .service = i % 6 == 4 ? "sudo" : "sshd",
                .rhost = i % 6 == 4 ? NULL : s->rhost,
                .tty = "pts/3",
                .host = "db1.clinic.example",
                .reason = i % 6 == 1 ? "wrong_code" : i % 6 == 3 ? "no rule allows this user on this host" : NULL,
                .rule = i % 6 == 2 || i % 6 == 3 ? "clinic-staff" : NULL,
                .role = i % 6 >= 4 ? "dba" : NULL,
                .actor = i % 6 == 5 ? "approver1" : NULL,
                .request_id = i % 6 >= 4 ? s->request_id : NULL,
                .expires = i % 6 == 5 ? UINT64_C(1764673600) + i : 0,
        };
}

static inline size_t synth_leaf(uint64_t i, char buf[PHI_AUDIT_RECORD_MAX]) {
        struct synth_record s;
        size_t len;
        synth_record(i, &s);
        if (phi_audit_record_encode(&s.rec, buf, PHI_AUDIT_RECORD_MAX, &len, NULL) < 0)
                abort();
        return len;
}

static inline int synth_leaf_hash(void *ud, uint64_t index, uint8_t ret[PHI_AUDIT_HASH_SIZE]) {
        memcpy(ret, ((const uint8_t(*)[PHI_AUDIT_HASH_SIZE]) ud)[index], PHI_AUDIT_HASH_SIZE);
        return 0;
}

/* The export of records [first, end) of a log of n records signed by s: a
 * checkpoint line after every `every` records (0: none) and the checkpoint of
 * size n last, with the consistency proof from end to n. Returns a malloc'd
 * buffer. */
static inline char *synth_export(const struct phi_audit_signer *s, const char *origin, uint64_t n, uint64_t first,
                                 uint64_t end, uint64_t every, size_t *ret_len) {
        uint8_t(*hashes)[PHI_AUDIT_HASH_SIZE] = calloc(n ? n : 1, PHI_AUDIT_HASH_SIZE);
        uint8_t(*proof)[PHI_AUDIT_HASH_SIZE] = calloc(PHI_AUDIT_CONSISTENCY_MAX, PHI_AUDIT_HASH_SIZE);
        char *line = malloc(PHI_AUDIT_EXPORT_LINE_MAX), leaf[PHI_AUDIT_RECORD_MAX], note[PHI_AUDIT_NOTE_MAX];
        struct phi_audit_tree t, left;
        char *out = NULL;
        size_t out_len = 0, len, note_len, n_proof;
        uint8_t root[PHI_AUDIT_HASH_SIZE];
        FILE *f = open_memstream(&out, &out_len);

        if (!hashes || !proof || !line || !f || first > end || end > n)
                abort();
        phi_audit_tree_init(&t);
        for (uint64_t i = 0; i < n; i++) {
                len = synth_leaf(i, leaf);
                phi_audit_leaf_hash(leaf, len, hashes[i]);
        }
        if (phi_audit_tree_build(first, synth_leaf_hash, hashes, &left) < 0 ||
            phi_audit_export_header(&left, line, PHI_AUDIT_EXPORT_LINE_MAX, &len) < 0)
                abort();
        fwrite(line, 1, len, f);
        t = left;
        for (uint64_t i = first; i < end; i++) {
                len = synth_leaf(i, leaf);
                if (phi_audit_export_record(leaf, len, line, PHI_AUDIT_EXPORT_LINE_MAX, &len) < 0 ||
                    phi_audit_tree_append_hash(&t, hashes[i]) < 0)
                        abort();
                fwrite(line, 1, len, f);
                if (every && t.size % every == 0 && !(t.size == end && end == n)) {
                        phi_audit_tree_root(&t, root);
                        if (phi_audit_checkpoint_sign(s, origin, t.size, root, note, sizeof(note), &note_len) < 0 ||
                            phi_audit_export_checkpoint(note, note_len, NULL, 0, line, PHI_AUDIT_EXPORT_LINE_MAX,
                                                        &len) < 0)
                                abort();
                        fwrite(line, 1, len, f);
                }
        }
        struct phi_audit_tree all;
        if (phi_audit_tree_build(n, synth_leaf_hash, hashes, &all) < 0)
                abort();
        phi_audit_tree_root(&all, root);
        if (phi_audit_consistency_proof(end, n, synth_leaf_hash, hashes, proof, &n_proof) < 0 ||
            phi_audit_checkpoint_sign(s, origin, n, root, note, sizeof(note), &note_len) < 0 ||
            phi_audit_export_checkpoint(note, note_len, (const uint8_t(*)[PHI_AUDIT_HASH_SIZE]) proof, n_proof, line,
                                        PHI_AUDIT_EXPORT_LINE_MAX, &len) < 0)
                abort();
        fwrite(line, 1, len, f);
        fclose(f);
        free(hashes);
        free(proof);
        free(line);
        *ret_len = out_len;
        return out;
}

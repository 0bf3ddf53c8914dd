/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The audit log as the store keeps it: one row per record, the canonical
 * record itself (the tree's leaf, which is what verification trusts) beside
 * copies of the fields queries filter on (indexed; a query re-checks each
 * row's leaf), and the signed checkpoints. See audit_log.h. */

#include <stddef.h>
#include <stdint.h>

#include "phi/parse.h"

struct phi_audit_row {
        uint64_t seq;
        uint64_t time_us;
        char event[65];
        char user[PHI_NAME_MAX + 1];
        char actor[PHI_NAME_MAX + 1];
        char role[65];
        char request_id[33];
        char host[256];
        char *leaf;                 /* the canonical record, NUL-terminated */
        char leaf_hash[65];         /* hex */
};
void phi_audit_rows_free(struct phi_audit_row *rows, size_t n);

/* What a query asks for; "" or 0: any. Times in microseconds, until exclusive. */
struct phi_audit_filter {
        char event[65];
        char user[PHI_NAME_MAX + 1];
        char actor[PHI_NAME_MAX + 1];
        char role[65];
        char request_id[33];
        char host[256];
        uint64_t since_us, until_us;
};

struct phi_audit_checkpoint_row {
        uint64_t size;
        uint64_t created;           /* Unix seconds */
        char *note;                 /* the signed note */
};
void phi_audit_checkpoint_rows_free(struct phi_audit_checkpoint_row *rows, size_t n);

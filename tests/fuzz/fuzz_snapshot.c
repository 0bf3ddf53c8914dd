/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Feeds arbitrary bytes to the snapshot reader as a file's contents. Most random
 * headers fail their checksum, so each input is also tried once more with the
 * header's size and checksum made to match: that lets the fuzzer reach the
 * section, record, index and string checks behind them. Nothing may crash or
 * read outside the buffer; results are not judged. */
#include <endian.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "phi/snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Results are collected so that no call can be optimised away or ignored. */
static volatile int sink;

static void lookups(const phi_snapshot *s, const char *name, uint32_t id) {
        struct phi_snapshot_user u;
        struct phi_snapshot_group g;
        struct phi_snapshot_memberof m;

        (void) phi_snapshot_superseded(s);
        if (phi_snapshot_user_by_name(s, name, &u) == 0 && strlen(u.name.s) > u.name.len)
                abort();
        /* The bounds open_buffer() accepted are the ones the format states. */
        if (s->n_primary_gids > PHI_SNAP_MAX_PRIMARY_GIDS || phi_snapshot_primary_gid_allowed(s, 0) ||
            phi_snapshot_primary_gid_allowed(s, (gid_t) -1))
                abort();
        for (uint32_t i = 0; i < s->n_primary_gids; i++)
                if (s->primary_gids[i] == 0 || s->primary_gids[i] >= s->min_gid ||
                    !phi_snapshot_primary_gid_allowed(s, s->primary_gids[i]))
                        abort();
        sink = phi_snapshot_user_by_uid(s, id, &u);
        if (phi_snapshot_group_by_name(s, name, &g) == 0 || phi_snapshot_group_by_gid(s, id, &g) == 0)
                for (uint32_t k = 0; k < g.n_members && k < 256; k++) {
                        struct phi_snapshot_str n;
                        uint64_t e;
                        sink = phi_snapshot_group_member(s, &g, k, &n, &e);
                }
        if (phi_snapshot_memberof_by_name(s, name, &m) == 0)
                for (uint32_t k = 0; k < m.count && k < 256; k++) {
                        gid_t gid;
                        uint64_t e;
                        sink = phi_snapshot_memberof_at(s, &m, k, &gid, &e);
                }
        for (uint32_t i = 0; i < s->n_users && i < 16; i++)
                sink = phi_snapshot_user_at(s, i, &u);
        for (uint32_t i = 0; i < s->n_groups && i < 16; i++)
                sink = phi_snapshot_group_at(s, i, &g);
        if (phi_snapshot_verify(s) == 0) {
                /* A file that verifies must answer its own enumeration. */
                for (uint32_t i = 0; i < s->n_users && i < 16; i++)
                        if (phi_snapshot_user_at(s, i, &u) < 0 ||
                            phi_snapshot_user_by_uid(s, u.uid, &u) < 0 ||
                            !phi_snapshot_primary_gid_allowed(s, u.gid))
                                abort();
        }
}

static void try_buffer(const uint8_t *data, size_t size) {
        static const char *const names[] = { "alice", "bob", "staff", "user00001", "grp00001" };
        static const uint32_t ids[] = { 1001, 1002, 5000, 10001, 20001 };
        phi_snapshot s;

        if (phi_snapshot_open_buffer(&s, data, size) < 0)
                return;
        for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
                lookups(&s, names[i], ids[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct phi_snap_header h;
        uint8_t *copy;

        /* An exact-size copy, so that ASan sees a read one byte past the end. */
        copy = malloc(size ? size : 1);
        if (!copy)
                return 0;
        memcpy(copy, data, size);
        try_buffer(copy, size);

        if (size >= sizeof(h) && size <= PHI_SNAP_MAX_FILE) {
                memcpy(&h, copy, sizeof(h));
                h.file_size = htole64(size);
                h.superseded = 0;
                h.header_checksum = 0;
                h.header_checksum = htole64(phi_snap_fnv1a64(PHI_SNAP_FNV_OFFSET, &h, sizeof(h)));
                memcpy(copy, &h, sizeof(h));
                try_buffer(copy, size);
        }
        free(copy);
        return 0;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Feeds arbitrary bytes to the grants snapshot reader as a file's contents.
 * Random bytes rarely pass the two checksums, so each input is also tried once
 * more with the header's size and both checksums made to match: that lets the
 * fuzzer reach the structure checks behind them. Nothing may crash or read
 * outside the buffer; a file the reader accepts must answer its own
 * enumeration consistently (what the verification on open promises). */
#include <endian.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "phi/grants.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile int sink;

static void lookups(const phi_grants *g) {
        static const char *const names[] = { "alice", "bob", "phi-dba", "phi-ops", "root", "" };
        static const uint32_t gids[] = { 0, 1000, 30000, 30001, UINT32_MAX };

        (void) phi_grants_superseded(g);
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                struct phi_grants_group_view gr;
                struct phi_grants_user_view u;
                struct phi_grant_view v;
                if (phi_grants_group_by_name(g, names[i], &gr) == 0)
                        for (uint32_t k = 0; k < gr.count && k < 256; k++)
                                sink = phi_grants_group_grant(g, &gr, k, &v);
                if (phi_grants_user_by_name(g, names[i], &u) == 0)
                        for (uint32_t k = 0; k < u.count && k < 256; k++)
                                sink = phi_grants_user_grant(g, &u, k, &v);
        }
        for (size_t i = 0; i < sizeof(gids) / sizeof(gids[0]); i++) {
                struct phi_grants_group_view gr;
                sink = phi_grants_group_by_gid(g, gids[i], &gr);
        }
        /* Accepted means sound: every group is found by its name and gid,
         * every grant of it is readable and names it, no gid is below the
         * floor or 0, no name is root; every user finds its grants. */
        for (uint32_t j = 0; j < g->n_groups && j < 64; j++) {
                struct phi_grants_group_view gr, by;
                if (phi_grants_group_at(g, j, &gr) < 0 || gr.gid == 0 || gr.gid < g->min_gid ||
                    strcmp(gr.name.s, "root") == 0 || phi_grants_group_by_name(g, gr.name.s, &by) < 0 ||
                    by.index != j || phi_grants_group_by_gid(g, gr.gid, &by) < 0 || by.index != j)
                        abort();
                for (uint32_t k = 0; k < gr.count && k < 64; k++) {
                        struct phi_grant_view v;
                        struct phi_grants_user_view u;
                        if (phi_grants_group_grant(g, &gr, k, &v) < 0 || v.group != j || v.expires == 0 ||
                            strcmp(v.user.s, "root") == 0 || phi_grants_user_by_name(g, v.user.s, &u) < 0)
                                abort();
                }
        }
}

static void try_buffer(const uint8_t *data, size_t size) {
        phi_grants g;

        if (phi_grants_open_buffer(&g, data, size) == 0)
                lookups(&g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct phi_grants_header h;
        uint8_t *copy;

        /* An exact-size copy, so that ASan sees a read one byte past the end. */
        copy = malloc(size ? size : 1);
        if (!copy)
                return 0;
        memcpy(copy, data, size);
        try_buffer(copy, size);

        if (size >= sizeof(h) && size <= PHI_GRANTS_MAX_FILE) {
                memcpy(&h, copy, sizeof(h));
                h.file_size = htole64(size);
                h.body_checksum = htole64(phi_snap_fnv1a64(PHI_SNAP_FNV_OFFSET, copy + sizeof(h), size - sizeof(h)));
                h.superseded = 0;
                h.header_checksum = 0;
                h.header_checksum = htole64(phi_snap_fnv1a64(PHI_SNAP_FNV_OFFSET, &h, sizeof(h)));
                memcpy(copy, &h, sizeof(h));
                try_buffer(copy, size);
        }
        free(copy);
        return 0;
}

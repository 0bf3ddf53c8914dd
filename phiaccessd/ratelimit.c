/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A fixed table: the uids of this interval in the order they came, and an
 * open-addressing index over them (twice as many slots as uids, so a probe
 * ends soon). Everything is allocated once; a flush empties both. */

#include <stdio.h>

#include "ratelimit.h"

struct entry {
        uid_t uid;
        char name[64];
        uint64_t written, suppressed;
};

struct phi_ratelimit {
        unsigned burst, global_burst;
        size_t max_uids, n, n_slots;
        struct entry *entries;
        int32_t *slots;             /* index into entries, -1 empty */
        uint64_t interval_written;  /* over all uids, for global_burst */
        struct entry others;        /* uids that found the table full */
        uint64_t total_written, total_suppressed, total_summaries;
};

int phi_ratelimit_new(unsigned burst, unsigned global_burst, size_t max_uids, phi_ratelimit **ret) {
        phi_ratelimit *rl;

        if (burst == 0 || global_burst == 0 || max_uids == 0 || max_uids > INT32_MAX / 4)
                return -EINVAL;
        rl = calloc(1, sizeof(*rl));
        if (!rl)
                return -ENOMEM;
        rl->burst = burst;
        rl->global_burst = global_burst;
        rl->max_uids = max_uids;
        rl->n_slots = 2 * max_uids;
        rl->entries = calloc(max_uids, sizeof(*rl->entries));
        rl->slots = malloc(rl->n_slots * sizeof(*rl->slots));
        if (!rl->entries || !rl->slots) {
                phi_ratelimit_free(rl);
                return -ENOMEM;
        }
        memset(rl->slots, 0xff, rl->n_slots * sizeof(*rl->slots));
        rl->others.uid = PHI_RATELIMIT_OTHERS;
        *ret = rl;
        return 0;
}

void phi_ratelimit_free(phi_ratelimit *rl) {
        if (!rl)
                return;
        free(rl->entries);
        free(rl->slots);
        free(rl);
}

/* The entry of uid, added if there is room; NULL when the table is full. */
static struct entry *lookup(phi_ratelimit *rl, uid_t uid, const char *name) {
        size_t i = ((uint32_t) uid * 2654435761u) % rl->n_slots;
        struct entry *e;

        for (;; i = (i + 1) % rl->n_slots) {
                int32_t k = rl->slots[i];
                if (k < 0)
                        break;
                if (rl->entries[k].uid == uid)
                        return &rl->entries[k];
        }
        if (rl->n >= rl->max_uids)
                return NULL;
        rl->slots[i] = (int32_t) rl->n;
        e = &rl->entries[rl->n++];
        *e = (struct entry){ .uid = uid };
        snprintf(e->name, sizeof(e->name), "%s", name ? name : "");
        return e;
}

bool phi_ratelimit_admit(phi_ratelimit *rl, uid_t uid, const char *name) {
        struct entry *e = uid == PHI_RATELIMIT_OTHERS ? NULL : lookup(rl, uid, name);
        bool ok;

        if (!e) {
                e = &rl->others;
                /* Untracked uids share the global burst only. */
                ok = rl->interval_written < rl->global_burst;
        } else
                ok = e->written < rl->burst && rl->interval_written < rl->global_burst;
        if (ok) {
                e->written++;
                rl->interval_written++;
                rl->total_written++;
        } else {
                e->suppressed++;
                rl->total_suppressed++;
        }
        return ok;
}

size_t phi_ratelimit_flush(phi_ratelimit *rl, phi_ratelimit_emit emit, void *userdata) {
        size_t n = 0;

        for (size_t i = 0; i < rl->n; i++) {
                const struct entry *e = &rl->entries[i];
                if (e->suppressed == 0)
                        continue;
                emit(userdata, &(struct phi_ratelimit_summary){ .uid = e->uid, .name = e->name,
                                                                .written = e->written,
                                                                .suppressed = e->suppressed });
                n++;
        }
        if (rl->others.suppressed > 0) {
                emit(userdata, &(struct phi_ratelimit_summary){ .uid = PHI_RATELIMIT_OTHERS, .name = "",
                                                                .written = rl->others.written,
                                                                .suppressed = rl->others.suppressed });
                n++;
        }
        rl->total_summaries += n;
        memset(rl->slots, 0xff, rl->n_slots * sizeof(*rl->slots));
        rl->n = 0;
        rl->interval_written = 0;
        rl->others = (struct entry){ .uid = PHI_RATELIMIT_OTHERS };
        return n;
}

void phi_ratelimit_get_stats(const phi_ratelimit *rl, struct phi_ratelimit_stats *ret) {
        *ret = (struct phi_ratelimit_stats){
                .written = rl->total_written,
                .suppressed = rl->total_suppressed,
                .summaries = rl->total_summaries,
                .tracked = rl->n,
                .max_uids = rl->max_uids,
                .burst = rl->burst,
                .global_burst = rl->global_burst,
        };
}

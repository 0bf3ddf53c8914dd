/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * How many journal entries one caller uid can make the daemon write. Any
 * local user reaches the request socket, and each refusal there used to be
 * an entry: enough of them make journald rotate and vacuum, and the logins'
 * entries go with the old files. A limiter counts, per uid and interval, the
 * entries it let through; past the burst it only counts, and at the end of
 * the interval its owner writes one summary per uid that had some suppressed.
 *
 * The owner drives the intervals (phi_ratelimit_flush() at the end of each):
 * the limiter itself reads no clock, so it can be tested without waiting.
 *
 * Memory is fixed: at most max_uids uids are tracked in an interval, and the
 * table is emptied by every flush (a uid is remembered for one interval
 * only). Callers beyond max_uids in one interval are counted together in one
 * bucket (uid (uid_t) -1 in the summary), still under the global burst.
 *
 * Not thread-safe: one limiter belongs to one thread (the event loop's).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "phi/macro.h"

#define PHI_RATELIMIT_OTHERS ((uid_t) -1)   /* the bucket of untracked uids */

typedef struct phi_ratelimit phi_ratelimit;

struct phi_ratelimit_summary {
        uid_t uid;                  /* PHI_RATELIMIT_OTHERS: all untracked uids */
        const char *name;           /* as given to the first admit of the interval; "" for OTHERS */
        uint64_t written;           /* entries let through in the interval */
        uint64_t suppressed;        /* entries counted instead; > 0 */
};

struct phi_ratelimit_stats {
        uint64_t written;           /* since start */
        uint64_t suppressed;
        uint64_t summaries;
        size_t tracked;             /* uids in the current interval's table */
        size_t max_uids;
        unsigned burst, global_burst;
};

/* burst: entries per uid and interval; global_burst: over all uids (the
 * bound when many uids act together); max_uids: table size. All >= 1. */
int phi_ratelimit_new(unsigned burst, unsigned global_burst, size_t max_uids, phi_ratelimit **ret)
        _phi_warn_unused_ _phi_nonnull_;
void phi_ratelimit_free(phi_ratelimit *rl);
PHI_DEFINE_TRIVIAL_CLEANUP_FUNC(phi_ratelimit *, phi_ratelimit_free);

/* One entry the caller uid would make the daemon write: true when it may be
 * written, false when it was counted as suppressed. name (may be NULL) names
 * the uid in the summary. */
bool phi_ratelimit_admit(phi_ratelimit *rl, uid_t uid, const char *name) _phi_nonnull_args_(1);

/* Ends the interval: calls emit once for each uid with suppressed entries
 * (and once for the bucket of untracked uids if it has some), in the order
 * they first came, then forgets every uid. Returns the number of summaries. */
typedef void (*phi_ratelimit_emit)(void *userdata, const struct phi_ratelimit_summary *s);
size_t phi_ratelimit_flush(phi_ratelimit *rl, phi_ratelimit_emit emit, void *userdata) _phi_nonnull_args_(1, 2);

void phi_ratelimit_get_stats(const phi_ratelimit *rl, struct phi_ratelimit_stats *ret) _phi_nonnull_;

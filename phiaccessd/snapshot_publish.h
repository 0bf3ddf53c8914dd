/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Builds the NSS snapshot from a resolved directory view and publishes it with
 * phi_snapshot_write() (temp file, fsync, rename, fsync of the directory). */

#include "config.h"
#include "identity.h"

struct phi_publish_stats {
        size_t users, groups, members;
        size_t shadowed;        /* left out: name or id already in the local files */
};

int phi_snapshot_publish(const struct phi_identities *ids, const struct phi_resolved *res,
                         const struct phi_config *c, uint64_t generation,
                         struct phi_publish_stats *ret_stats) _phi_warn_unused_ _phi_nonnull_args_(1, 2, 3);

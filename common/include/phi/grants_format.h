/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The grants snapshot file format, version 1: the active just-in-time elevation
 * grants, which phiaccessd writes to /var/lib/phiaccessd/grants.snapshot (the
 * directory of the identity snapshot, file name PHI_GRANTS_FILE_NAME) whenever
 * a grant starts or ends, and which nss_phi maps beside the identity snapshot
 * (phi/snapshot_format.h). A grant makes its user a member of the role's group
 * until `expires`; the grants file is small, so publishing one does not rewrite
 * the identity snapshot of the whole directory.
 *
 * Principles
 *   As for the identity snapshot: the file is immutable once renamed into place
 *   except for the `superseded` word (same offset, same protocol,
 *   phi/published.h), little-endian fixed-width integers, byte offsets from the
 *   start of the file, sections on 8-byte boundaries with zero padding. Unlike
 *   the identity snapshot, which is too large to check on every map, a reader
 *   verifies the whole grants file when it maps it (phi_grants_open_buffer():
 *   both checksums, every record, every string, every order): a file that fails
 *   any check serves no grant at all, never part of one. Lookups still check
 *   every index and offset they read, so a file changed in place after the
 *   check can make a lookup fail but not read outside the mapping.
 *
 * Layout
 *   header      PHI_GRANTS_HEADER_SIZE bytes at offset 0
 *   sections    PHI_GRANTS_SECTION_COUNT, in the order of enum
 *               phi_grants_section, each after the previous one.
 *
 *   strings     string := length:u16 bytes[length] NUL, as in the identity
 *               snapshot; every name is a valid user or group name
 *               (phi_name_valid(): 1..PHI_NAME_MAX bytes), never "root".
 *   groups      struct phi_grants_group[n_groups], strictly ascending by name
 *               (bytewise, a shorter prefix first): name, gid, and the slice
 *               [first, first + count) of `grants`, count >= 1; the slices
 *               follow each other in group order and cover every grant. Names
 *               and gids are unique: one group per name and per gid.
 *   grants      struct phi_grants_grant[n_grants]: user (string ref), group
 *               (index of the group whose slice holds it), expires (Unix
 *               seconds, never 0: every grant ends), request_id (the daemon's
 *               id of the elevation request). Inside a group's slice ascending
 *               by (user name, request_id), no pair twice.
 *   users       struct phi_grants_user[n_users], strictly ascending by name:
 *               one per distinct grantee, with the slice [first, first +
 *               count) of `byuser`, count >= 1; slices in order, covering it.
 *   byuser      uint32_t[n_grants]: grant indexes; a user's slice lists, in
 *               ascending order, exactly the grants whose user is that name.
 *               This is the user -> groups index initgroups_dyn answers from.
 *   bygid       uint32_t[n_groups]: group indexes, ascending by gid.
 *   Lookups are binary searches over groups (name), bygid (gid) and users
 *   (name): O(log n) whatever the count, and nothing to allocate.
 *
 * Expiry
 *   A grant is in force while now < expires (Unix seconds, read at the time of
 *   the lookup), so it ends on time with the daemon stopped. A file may still
 *   list grants whose time has passed (the daemon was down when they ended);
 *   readers leave them out.
 *
 * Served ids
 *   min_gid is the daemon's; every group's gid is >= min_gid, not 0 and not
 *   (gid_t) -1, and a reader checks that again, together with the identity
 *   snapshot's own min_gid when it has one.
 *
 * Integrity
 *   header_checksum is phi_snap_fnv1a64 over the header with `superseded` and
 *   `header_checksum` taken as zero; body_checksum covers bytes [header_size,
 *   file_size). Both are checked on every map.
 *
 * Compatibility
 *   A reader accepts exactly PHI_GRANTS_VERSION and PHI_GRANTS_HEADER_SIZE.
 */

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include "phi/snapshot_format.h"   /* strings, section refs, checksum */

#define PHI_GRANTS_MAGIC          "PHIGRNT\n"   /* 8 bytes, no NUL */
#define PHI_GRANTS_MAGIC_SIZE     8u
#define PHI_GRANTS_VERSION        1u
#define PHI_GRANTS_HEADER_SIZE    192u
#define PHI_GRANTS_SUPERSEDED_OFFSET 16u

/* At most this many grants in one file (and so as many groups and users): far
 * more elevations than a host has at once, and small enough that a reader
 * verifies a full file in milliseconds. */
#define PHI_GRANTS_MAX            65536u
/* The largest file those bounds allow, rounded up. */
#define PHI_GRANTS_MAX_FILE       (16u * 1024 * 1024)

enum phi_grants_section {
        PHI_GRANTS_STRINGS = 0,
        PHI_GRANTS_GROUPS,
        PHI_GRANTS_GRANTS,
        PHI_GRANTS_USERS,
        PHI_GRANTS_BYUSER,
        PHI_GRANTS_BYGID,
        PHI_GRANTS_SECTION_COUNT,
};

struct phi_grants_header {
        uint8_t magic[PHI_GRANTS_MAGIC_SIZE];
        uint32_t version;
        uint32_t header_size;
        uint32_t superseded;        /* 0, or 1 once a newer file replaced this one */
        uint32_t flags;             /* 0; reserved */
        uint64_t header_checksum;
        uint64_t body_checksum;
        uint64_t generation;        /* grows with every publication */
        uint64_t created;           /* Unix seconds */
        uint64_t file_size;         /* must equal the file's size */
        uint32_t min_gid;
        uint32_t n_grants;
        uint32_t n_groups;
        uint32_t n_users;
        struct phi_snap_section_ref sections[PHI_GRANTS_SECTION_COUNT];
        uint8_t reserved[16];       /* zero */
};

struct phi_grants_group {
        uint32_t name;              /* string ref */
        uint32_t gid;
        uint32_t first, count;      /* slice of grants */
};

struct phi_grants_grant {
        uint32_t user;              /* string ref */
        uint32_t group;             /* index into groups */
        uint64_t expires;
        uint64_t request_id;
};

struct phi_grants_user {
        uint32_t name;              /* string ref */
        uint32_t first, count;      /* slice of byuser */
        uint32_t reserved;          /* zero */
};

static_assert(sizeof(struct phi_grants_header) == PHI_GRANTS_HEADER_SIZE, "grants header layout");
static_assert(offsetof(struct phi_grants_header, superseded) == PHI_GRANTS_SUPERSEDED_OFFSET,
              "grants superseded offset");
static_assert(offsetof(struct phi_grants_header, sections) % 8 == 0, "grants section table");
static_assert(sizeof(struct phi_grants_group) == 16, "grants group record");
static_assert(sizeof(struct phi_grants_grant) == 24, "grants grant record");
static_assert(sizeof(struct phi_grants_user) == 16, "grants user record");

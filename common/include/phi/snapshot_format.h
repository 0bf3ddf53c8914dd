/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The NSS snapshot file format, version 2: what phiaccessd writes to
 * /var/lib/phiaccessd/nss.snapshot and what nss_phi maps into every process that
 * resolves a name.
 *
 * Principles
 *   The file is immutable once renamed into place, with one exception: the
 *   `superseded` word, which the writer sets in the old file after the new one
 *   has replaced it (see Replacement). Readers never trust it: every offset,
 *   index and length is checked against the bounds of the section it must lie in
 *   before it is used, records are copied out of the mapping before their fields
 *   are looked at, and a file that fails any check is "unavailable", never a
 *   crash and never a read outside the mapping. Nothing in the format needs the
 *   reader to allocate or to walk the whole file: a lookup touches the header,
 *   one index probe sequence, one record and its strings.
 *
 * Encoding
 *   All integers are little-endian and fixed width. Every offset is a byte
 *   offset from the start of the file. References from one record to a list in
 *   another section (a group's members, a name's groups) are element indexes into
 *   that section, and `first + count` must not pass the section's element count.
 *   Sections start on 8-byte boundaries; padding bytes are zero.
 *
 * Layout
 *   header      PHI_SNAP_HEADER_SIZE bytes at offset 0 (struct phi_snap_header)
 *   sections    PHI_SNAP_SECTION_COUNT of them, in the order of enum
 *               phi_snap_section, each after the end of the previous one and
 *               inside [header_size, file_size). The header gives each one's
 *               offset and size in bytes; size is a whole number of records.
 *
 *   strings     string := length:u16 bytes[length] NUL. A string reference is
 *               the file offset of its length field and must lie inside this
 *               section, with the NUL inside too. length <= PHI_SNAP_STR_MAX.
 *               Identical strings may be shared (shells, home prefixes...).
 *   users       struct phi_snap_user[n_users]: string refs for name, gecos,
 *               home, shell; uid, gid. The order is the enumeration order of
 *               getpwent.
 *   groups      struct phi_snap_group[n_groups]: name ref, gid, and the slice
 *               [first_member, first_member + n_members) of `members`.
 *   members     struct phi_snap_member[n_members]: member name ref and expiry.
 *   memberof    struct phi_snap_memberof[n_memberof]: one per distinct member
 *               name (a directory user or a local user listed in a directory
 *               group), with the slice [first, first + count) of `grouplist`.
 *               This is the precomputed user -> groups index initgroups_dyn
 *               answers from without scanning groups.
 *   grouplist   struct phi_snap_grouplist[n_grouplist]: gid, index of the group
 *               record, and the membership's expiry.
 *   idx_*       hash indexes, open addressing with linear probing: an array of
 *               struct phi_snap_slot whose length is a power of two (>= 8, and
 *               the writer keeps the load at or below 1/2). A slot with
 *               index == PHI_SNAP_EMPTY is empty and ends a probe sequence. The
 *               first slot probed is hash & (nslots - 1):
 *                 idx_user_name, idx_group_name, idx_memberof_name:
 *                   hash = phi_snap_hash_name(hash_seed, name), key = hash;
 *                   a matching key still needs a name comparison.
 *                 idx_uid, idx_gid:
 *                   hash = phi_snap_hash_id(hash_seed, id), key = the id itself.
 *               A reader probes at most nslots slots, so a file without an empty
 *               slot cannot make it loop.
 *
 * Expiry
 *   Every membership (members and grouplist) carries `expires`, Unix seconds:
 *   0 means permanent; otherwise readers leave the membership out once
 *   now >= expires. A JIT grant thereby ends on time with the daemon stopped.
 *
 * Served ids
 *   min_uid and min_gid come from the daemon's configuration; readers do not
 *   answer for a user with uid < min_uid or a group with gid < min_gid, nor ever
 *   for uid/gid 0 or the name "root", whatever the file says.
 *   A user's primary gid is held to the same floor: a user whose gid is below
 *   min_gid is not served (not by name, uid, enumeration or initgroups) unless
 *   that gid is one of the header's primary_gids[0 .. n_primary_gids), the
 *   admin's explicit list of low primary groups (Debian's `users`, 100). The
 *   list holds at most PHI_SNAP_MAX_PRIMARY_GIDS distinct gids, each non-zero,
 *   not (gid_t) -1 and below min_gid; unused entries are zero. A writer never
 *   puts a user outside these bounds in the file; a reader never trusts that
 *   it did not. (Version 1 had no such rule: a directory user could carry
 *   gid 27, sudo's group on Debian, into every login.)
 *
 * Integrity
 *   header_checksum is phi_snap_fnv1a64 over the header_size header bytes with
 *   the `superseded` and `header_checksum` fields taken as zero. It is checked on
 *   every map, so a torn or bit-flipped header is refused. body_checksum covers
 *   bytes [header_size, file_size); verifying it costs a pass over the whole file,
 *   so lookups rely on bounds checks instead and only full verification
 *   (phi_snapshot_verify(): tools, tests, the fuzzer) checks it.
 *
 * Replacement
 *   The writer writes a temp file in the same directory, fsyncs it, opens the old
 *   file, rename()s the new one over it, fsyncs the directory and then sets the
 *   old file's `superseded` word to 1. Every process that has the old file mapped
 *   MAP_SHARED sees the word change in memory on its next lookup and maps the new
 *   file: no system call on the hot path. (A reader also compares the path's inode
 *   with its mapping at most once per second, which covers a writer that died
 *   between rename and marking, or a file replaced by hand.)
 *
 * Compatibility
 *   A reader accepts exactly PHI_SNAP_VERSION and PHI_SNAP_HEADER_SIZE. Any change
 *   to a record or section bumps the version; phiaccessd and nss_phi come from one
 *   source package, and a daemon restarted after an upgrade rewrites the file.
 */

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#define PHI_SNAP_MAGIC          "PHISNAP\n"   /* 8 bytes, no NUL */
#define PHI_SNAP_MAGIC_SIZE     8u
#define PHI_SNAP_VERSION        2u
#define PHI_SNAP_HEADER_SIZE    320u
#define PHI_SNAP_SUPERSEDED_OFFSET 16u
#define PHI_SNAP_EMPTY          UINT32_MAX

/* Bounds: generous for a directory of a large organisation, small enough that a
 * corrupt count cannot make any reader or writer loop or allocate without end. */
#define PHI_SNAP_MAX_FILE       (1024ull * 1024 * 1024)
#define PHI_SNAP_MAX_RECORDS    (4u * 1024 * 1024)      /* users, groups, member names */
#define PHI_SNAP_MAX_MEMBERS    (32u * 1024 * 1024)     /* memberships in total */
#define PHI_SNAP_STR_MAX        1024u                   /* bytes, without the NUL */
#define PHI_SNAP_MIN_SLOTS      8u
/* Low primary gids an admin may allow: a handful (users, staff) is the use. */
#define PHI_SNAP_MAX_PRIMARY_GIDS 8u

enum phi_snap_section {
        PHI_SNAP_STRINGS = 0,
        PHI_SNAP_USERS,
        PHI_SNAP_GROUPS,
        PHI_SNAP_MEMBERS,
        PHI_SNAP_MEMBEROF,
        PHI_SNAP_GROUPLIST,
        PHI_SNAP_IDX_USER_NAME,
        PHI_SNAP_IDX_UID,
        PHI_SNAP_IDX_GROUP_NAME,
        PHI_SNAP_IDX_GID,
        PHI_SNAP_IDX_MEMBEROF_NAME,
        PHI_SNAP_SECTION_COUNT,
};

struct phi_snap_section_ref {
        uint64_t offset;
        uint64_t size;
};

struct phi_snap_header {
        uint8_t magic[PHI_SNAP_MAGIC_SIZE];
        uint32_t version;
        uint32_t header_size;
        uint32_t superseded;        /* 0, or 1 once a newer file replaced this one */
        uint32_t flags;             /* 0; reserved */
        uint64_t header_checksum;
        uint64_t body_checksum;
        uint64_t generation;        /* grows with every publication */
        uint64_t created;           /* Unix seconds */
        uint64_t file_size;         /* must equal the file's size */
        uint32_t min_uid;
        uint32_t min_gid;
        uint32_t hash_seed;         /* chosen per file: collisions cannot be planned */
        uint32_t n_users;
        uint32_t n_groups;
        uint32_t n_members;
        uint32_t n_memberof;
        uint32_t n_grouplist;
        struct phi_snap_section_ref sections[PHI_SNAP_SECTION_COUNT];
        uint32_t n_primary_gids;    /* <= PHI_SNAP_MAX_PRIMARY_GIDS */
        uint32_t primary_gids[PHI_SNAP_MAX_PRIMARY_GIDS];   /* allowed below min_gid */
        uint8_t reserved[12];       /* zero */
};

struct phi_snap_user {
        uint32_t name, gecos, home, shell;   /* string refs */
        uint32_t uid, gid;
};

struct phi_snap_group {
        uint32_t name;                       /* string ref */
        uint32_t gid;
        uint32_t first_member, n_members;    /* slice of members */
};

struct phi_snap_member {
        uint32_t name;                       /* string ref */
        uint32_t reserved;                   /* zero */
        uint64_t expires;
};

struct phi_snap_memberof {
        uint32_t name;                       /* string ref */
        uint32_t first, count;               /* slice of grouplist */
        uint32_t reserved;                   /* zero */
};

struct phi_snap_grouplist {
        uint32_t gid;
        uint32_t group;                      /* index into groups */
        uint64_t expires;
};

struct phi_snap_slot {
        uint32_t key;
        uint32_t index;                      /* record index, or PHI_SNAP_EMPTY */
};

static_assert(sizeof(struct phi_snap_header) == PHI_SNAP_HEADER_SIZE, "header layout");
static_assert(offsetof(struct phi_snap_header, superseded) == PHI_SNAP_SUPERSEDED_OFFSET,
              "superseded offset");
static_assert(offsetof(struct phi_snap_header, sections) % 8 == 0, "section table alignment");
static_assert(sizeof(struct phi_snap_user) == 24, "user record");
static_assert(sizeof(struct phi_snap_group) == 16, "group record");
static_assert(sizeof(struct phi_snap_member) == 16, "member record");
static_assert(sizeof(struct phi_snap_memberof) == 16, "memberof record");
static_assert(sizeof(struct phi_snap_grouplist) == 16, "grouplist record");
static_assert(sizeof(struct phi_snap_slot) == 8, "index slot");

#define PHI_SNAP_FNV_OFFSET 0xcbf29ce484222325ull
#define PHI_SNAP_FNV_PRIME  0x100000001b3ull

static inline uint64_t phi_snap_fnv1a64(uint64_t h, const void *p, size_t n) {
        const uint8_t *b = p;

        for (size_t i = 0; i < n; i++) {
                h ^= b[i];
                h *= PHI_SNAP_FNV_PRIME;
        }
        return h;
}

/* Murmur3's finaliser: every input bit affects every output bit, so the low bits
 * used as the first slot are well spread even for consecutive ids. */
static inline uint32_t phi_snap_mix32(uint32_t h) {
        h ^= h >> 16;
        h *= 0x85ebca6bu;
        h ^= h >> 13;
        h *= 0xc2b2ae35u;
        h ^= h >> 16;
        return h;
}

static inline uint32_t phi_snap_hash_name(uint32_t seed, const char *name, size_t len) {
        uint32_t h = 2166136261u ^ seed;

        for (size_t i = 0; i < len; i++) {
                h ^= (uint8_t) name[i];
                h *= 16777619u;
        }
        return phi_snap_mix32(h);
}

static inline uint32_t phi_snap_hash_id(uint32_t seed, uint32_t id) {
        return phi_snap_mix32(id ^ seed);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Files phiaccessd publishes for readers that map them (the identity snapshot,
 * phi/snapshot.h, and the grants snapshot, phi/grants.h): the one replacement
 * protocol both formats share, kept here so that it exists once.
 *
 * Writer: the new contents go to a temp file in the target's directory, which
 * is fsync()ed and rename()d over the target; the directory is fsync()ed; then
 * the `superseded` word of the file that was replaced is set to 1. A reader
 * that maps its file MAP_SHARED sees that word change in memory on its next
 * lookup and maps the new file: no system call on the hot path.
 *
 * Each format places a 32-bit little-endian `superseded` word at a fixed
 * offset of its header and leaves it out of its checksum; the magic tells the
 * writer that the old file is one of its own before it writes into it.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "phi/macro.h"

struct phi_published_format {
        const char *magic;          /* the first magic_size bytes of every file */
        size_t magic_size;
        size_t superseded_offset;   /* of the 32-bit word, inside the header */
        size_t header_size;         /* a file shorter than this is never marked */
};

/* Atomically replaces path with data (mode 0644), then marks the file it
 * replaced (if it is a regular file of the same format) as superseded. The
 * errno of a failed step; the old file then stays in place and the temp file
 * is removed. A failed fsync() of the directory is reported after the rename,
 * when readers are already switched. */
int phi_published_write(const char *path, const void *data, size_t size,
                        const struct phi_published_format *f) _phi_warn_unused_ _phi_nonnull_;

/* Removes path (when it is a regular file of this format), fsyncs the
 * directory and marks the removed file superseded, so that mapped readers
 * drop it on their next lookup and find no file: for a writer that cannot
 * publish and must not leave the old contents in force. 0 also when there
 * was no file. */
int phi_published_remove(const char *path, const struct phi_published_format *f) _phi_warn_unused_
        _phi_nonnull_;

/* Opens path and maps it read-only and MAP_SHARED (so that the superseded word
 * stays live). Refuses anything but a regular file that only root or the
 * calling user owns and that its group and others cannot write (-EPERM),
 * files over max_size (-EFBIG) and under min_size (-EBADMSG). On success the
 * caller owns the mapping (phi_published_unmap). ret_dev/ret_ino may be NULL. */
int phi_published_map(const char *path, size_t min_size, uint64_t max_size,
                      const uint8_t **ret_data, size_t *ret_size, dev_t *ret_dev, ino_t *ret_ino)
        _phi_warn_unused_ _phi_nonnull_args_(1, 4, 5);
void phi_published_unmap(const uint8_t *data, size_t size);

/* The superseded word at offset of data, read live (another process writes it
 * while we read): true once a newer file replaced this one. */
bool phi_published_superseded(const uint8_t *data, size_t offset) _phi_nonnull_;

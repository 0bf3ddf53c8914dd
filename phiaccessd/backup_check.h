/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The pure parts of backup and restore (backup.c), apart so that unit tests
 * and the fuzz target link only them: the first look at a file offered for
 * restore, and the replay floor. */

#include <stddef.h>
#include <stdint.h>

#include "phi/macro.h"

/* An SQLite database starts with a 100-byte header. */
#define PHI_BACKUP_HEADER_SIZE 100u

/*
 * The SQLite file header (https://www.sqlite.org/fileformat.html, 1.3) of a
 * file of file_size bytes, before SQLite itself opens the file:
 *   -EMEDIUMTYPE  not an SQLite database at all (shorter than a header, or no
 *                 "SQLite format 3" magic)
 *   -EUCLEAN      an SQLite header that is damaged (page size, file format
 *                 versions, payload fractions) or a file cut short (not a
 *                 whole number of pages, fewer pages than the header says)
 * with a sentence in why; 0 and *ret_page_size otherwise.
 */
int phi_backup_header_check(const uint8_t *header, size_t len, uint64_t file_size, uint32_t *ret_page_size,
                            char *why, size_t why_len) _phi_warn_unused_ _phi_nonnull_args_(1, 5);

/* The replay floor of a restore at now: the time step of now plus the
 * verifier's window. A code is accepted only for a step above its token's
 * watermark, and at any moment up to now the verifier accepted steps up to
 * (its step) + window; a watermark raised to this refuses every code that
 * could have been accepted before the restore, the ones used after the
 * backup was taken included. */
uint64_t phi_backup_floor_step(uint64_t now, unsigned window);

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* See backup_check.h. */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "backup_check.h"
#include "totp.h"

static uint32_t be16(const uint8_t *p) {
        return (uint32_t) p[0] << 8 | p[1];
}

static uint32_t be32(const uint8_t *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

int phi_backup_header_check(const uint8_t *h, size_t len, uint64_t file_size, uint32_t *ret_page_size, char *why,
                            size_t why_len) {
        static const char magic[16] = "SQLite format 3";   /* and its NUL */
        uint32_t page_size, pages;

        if (len < PHI_BACKUP_HEADER_SIZE || file_size < PHI_BACKUP_HEADER_SIZE ||
            memcmp(h, magic, sizeof(magic)) != 0) {
                snprintf(why, why_len, "not an SQLite database (no SQLite header), so not a phi store");
                return -EMEDIUMTYPE;
        }
        /* 1 stands for 65536, which does not fit the field. */
        page_size = be16(h + 16) == 1 ? 65536u : be16(h + 16);
        if (page_size < 512 || (page_size & (page_size - 1)) != 0) {
                snprintf(why, why_len, "damaged SQLite header: page size %u", (unsigned) be16(h + 16));
                return -EUCLEAN;
        }
        /* File format write and read versions: 1 legacy, 2 WAL. */
        if (h[18] < 1 || h[18] > 2 || h[19] < 1 || h[19] > 2) {
                snprintf(why, why_len, "damaged SQLite header: file format versions %u and %u", h[18], h[19]);
                return -EUCLEAN;
        }
        /* Maximum, minimum and leaf payload fractions: fixed by the format. */
        if (h[21] != 64 || h[22] != 32 || h[23] != 32) {
                snprintf(why, why_len, "damaged SQLite header: payload fractions %u/%u/%u", h[21], h[22], h[23]);
                return -EUCLEAN;
        }
        if (file_size % page_size != 0) {
                snprintf(why, why_len, "cut short: %llu bytes is not a whole number of %u-byte pages",
                         (unsigned long long) file_size, (unsigned) page_size);
                return -EUCLEAN;
        }
        /* The page count in the header holds only when the change counter
         * (offset 24) equals version-valid-for (offset 92). A file may hold
         * more pages than it says (a WAL store's file before truncation),
         * never fewer. */
        pages = be32(h + 28);
        if (be32(h + 24) == be32(h + 92) && pages > 0 && (uint64_t) pages * page_size > file_size) {
                snprintf(why, why_len, "cut short: the header says %u pages of %u bytes, the file has %llu bytes",
                         (unsigned) pages, (unsigned) page_size, (unsigned long long) file_size);
                return -EUCLEAN;
        }
        if (ret_page_size)
                *ret_page_size = page_size;
        snprintf(why, why_len, "ok");
        return 0;
}

uint64_t phi_backup_floor_step(uint64_t now, unsigned window) {
        /* phi_totp_step() of now, without linking liboath here. */
        return now / PHI_TOTP_PERIOD + window;
}

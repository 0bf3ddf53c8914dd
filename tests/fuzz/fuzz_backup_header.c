/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Feeds arbitrary bytes, as the whole of a file offered to phiaccessd
 * --restore, to the header check run before SQLite opens it. An accepted
 * header has a page size SQLite allows and a file of whole pages. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backup_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char why[256];
        uint32_t page = 0;
        int r = phi_backup_header_check(data, size, size, &page, why, sizeof(why));

        if (r == 0 && (page < 512 || page > 65536 || (page & (page - 1)) != 0 || size % page != 0 ||
                       memcmp(data, "SQLite format 3", 16) != 0))
                abort();
        if (r != 0 && r != -EMEDIUMTYPE && r != -EUCLEAN)
                abort();
        if (strlen(why) == 0)
                abort();
        return 0;
}

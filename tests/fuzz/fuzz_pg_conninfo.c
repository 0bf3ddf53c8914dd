/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Feeds arbitrary bytes, as [store] uri, to the PostgreSQL connection
 * string's check and display. Both must end (no crash, no overrun), say
 * why on a refusal, and never show the string's password: a display (logs,
 * phictl status) or a refusal (--check-config) that quoted it would leak it. */
#include <errno.h>
#include <libpq-fe.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store_pg_conninfo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *option(const PQconninfoOption *o, const char *keyword) {
        for (; o && o->keyword; o++)
                if (strcmp(o->keyword, keyword) == 0)
                        return o->val ? o->val : "";
        return "";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char why[512], out[512];
        char *uri = strndup((const char *) data, size);
        PQconninfoOption *o;
        int r;

        if (!uri)
                return 0;
        why[0] = '\0';
        r = phi_pg_conninfo_check(uri, why, sizeof(why));
        if (r != 0 && r != -EINVAL && r != -ENOMEM)
                abort();
        if (strlen(why) == 0)
                abort();
        phi_pg_conninfo_display(uri, out, sizeof(out));
        if (strlen(out) == 0)
                abort();
        /* A password that is also part of what may be shown (a host, a port,
         * a database name) proves nothing; any other must not appear. */
        o = PQconninfoParse(uri, NULL);
        if (o) {
                const char *pw = option(o, "password");
                if (strlen(pw) >= 4 && !strstr(option(o, "host"), pw) && !strstr(option(o, "hostaddr"), pw) &&
                    !strstr(option(o, "port"), pw) && !strstr(option(o, "dbname"), pw) &&
                    !strstr("(default socket):5432 db (the user's name)", pw) && (strstr(out, pw) || strstr(why, pw)))
                        abort();
                PQconninfoFree(o);
        }
        free(uri);
        return 0;
}

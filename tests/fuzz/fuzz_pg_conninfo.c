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

/* The fixed words of the messages: a password that is one of them is not
 * found leaked by being there. */
static const char fixed[] =
        "the connection string reaches PostgreSQL over TCP (a host name) (hostaddr) with sslmode=prefer (the default)"
        " (not one libpq knows): add sslmode=verify-full (or verify-ca) and sslrootcert=, or use a Unix-socket "
        "directory (host=/run/postgresql) is longer than bytes is empty (backend = postgresql needs uri = ...) "
        "libpq cannot read the connection string (key=value pairs or a postgresql:// URI) out of memory "
        "a host of the connection string is too long ok (unparsable) (default socket):5432 db (the user's name)"
        " disable allow require";

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
        /* The display joins fields with ':', ',' and ' ': a password without
         * those that it shows must lie inside one field, so it is leaked
         * unless it is part of a host, a port or the database's name. One
         * with them could be made of two fields side by side: not judged. */
        o = PQconninfoParse(uri, NULL);
        if (o) {
                const char *pw = option(o, "password");
                if (strlen(pw) >= 4 && !strpbrk(pw, ":, ") && !strstr(option(o, "host"), pw) && !strstr(option(o, "hostaddr"), pw) &&
                    !strstr(option(o, "port"), pw) && !strstr(option(o, "dbname"), pw) &&
                    !strstr(fixed, pw) && (strstr(out, pw) || strstr(why, pw)))
                        abort();
                PQconninfoFree(o);
        }
        free(uri);
        return 0;
}

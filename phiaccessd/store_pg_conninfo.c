/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The PostgreSQL connection string's check and display. See store_pg_conninfo.h. */

#include <errno.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "store_pg_conninfo.h"

/* A host list entry is bounded by the whole string's bound. */
#define ITEM_MAX PHI_PG_CONNINFO_MAX

static const char *option(const PQconninfoOption *o, const char *keyword) {
        for (; o && o->keyword; o++)
                if (strcmp(o->keyword, keyword) == 0)
                        return o->val && *o->val ? o->val : NULL;
        return NULL;
}

/* The n-th comma-separated item of list into out ("" past its end or when
 * list is NULL); false when it does not fit. */
static bool list_item(const char *list, size_t n, char *out, size_t out_len) {
        size_t i = 0;

        out[0] = '\0';
        if (!list)
                return true;
        for (const char *p = list;; i++) {
                const char *comma = strchr(p, ',');
                size_t len = comma ? (size_t) (comma - p) : strlen(p);
                if (i == n) {
                        if (len >= out_len)
                                return false;
                        memcpy(out, p, len);
                        out[len] = '\0';
                        return true;
                }
                if (!comma)
                        return true;
                p = comma + 1;
        }
}

static size_t list_len(const char *list) {
        size_t n = 1;

        if (!list)
                return 0;
        for (const char *p = list; *p; p++)
                n += *p == ',';
        return n;
}

/* A Unix-socket directory as libpq reads a host: an absolute path, or '@'
 * for the abstract namespace; empty means the default socket directory. */
static bool host_is_socket(const char *h) { return !*h || h[0] == '/' || h[0] == '@'; }

static int parse(const char *uri, PQconninfoOption **ret, char *why, size_t why_len) {
        char *err = NULL;
        PQconninfoOption *o;

        if (strnlen(uri, PHI_PG_CONNINFO_MAX + 1) > PHI_PG_CONNINFO_MAX) {
                snprintf(why, why_len, "the connection string is longer than %d bytes", PHI_PG_CONNINFO_MAX);
                return -EINVAL;
        }
        if (!*uri) {
                snprintf(why, why_len, "the connection string is empty (backend = postgresql needs uri = ...)");
                return -EINVAL;
        }
        o = PQconninfoParse(uri, &err);
        if (!o) {
                /* libpq's message may quote the string, and so a password. */
                snprintf(why, why_len, "%s",
                         err ? "libpq cannot read the connection string (key=value pairs or a postgresql:// URI)"
                             : "out of memory");
                PQfreemem(err);
                return err ? -EINVAL : -ENOMEM;
        }
        *ret = o;
        return 0;
}

int phi_pg_conninfo_check(const char *uri, char *why, size_t why_len) {
        PQconninfoOption *o = NULL;
        const char *hosts, *hostaddr, *sslmode, *tcp = NULL;
        char item[ITEM_MAX + 1];
        size_t n;
        int r;

        if ((r = parse(uri, &o, why, why_len)) < 0)
                return r;
        hosts = option(o, "host");
        hostaddr = option(o, "hostaddr");
        sslmode = option(o, "sslmode");
        n = list_len(hosts);
        for (size_t i = 0; i < n && !tcp; i++) {
                if (!list_item(hosts, i, item, sizeof(item))) {
                        snprintf(why, why_len, "a host of the connection string is too long");
                        r = -EINVAL;
                        goto out;
                }
                if (!host_is_socket(item))
                        tcp = "a host name";
        }
        /* hostaddr is always TCP (it is a numeric address), whatever host says. */
        if (hostaddr)
                tcp = "hostaddr";
        if (tcp && (!sslmode || (strcmp(sslmode, "verify-full") != 0 && strcmp(sslmode, "verify-ca") != 0))) {
                /* Named only when it is one of libpq's words: any other
                 * text is the operator's, and could be anything. */
                if (sslmode && strcmp(sslmode, "disable") != 0 && strcmp(sslmode, "allow") != 0 &&
                    strcmp(sslmode, "prefer") != 0 && strcmp(sslmode, "require") != 0)
                        sslmode = "(not one libpq knows)";
                snprintf(why, why_len,
                         "the connection string reaches PostgreSQL over TCP (%s) with sslmode=%s: add "
                         "sslmode=verify-full (or verify-ca) and sslrootcert=, or use a Unix-socket directory "
                         "(host=/run/postgresql)",
                         tcp, sslmode ? sslmode : "prefer (the default)");
                r = -EINVAL;
                goto out;
        }
        snprintf(why, why_len, "ok");
        r = 0;
out:
        PQconninfoFree(o);
        return r;
}

void phi_pg_conninfo_display(const char *uri, char *out, size_t out_len) {
        PQconninfoOption *o = NULL;
        const char *hosts, *ports, *hostaddrs, *db;
        char why[160], host[ITEM_MAX + 1], port[64];
        size_t n, used = 0;

        if (out_len == 0)
                return;
        out[0] = '\0';
        if (parse(uri, &o, why, sizeof(why)) < 0) {
                snprintf(out, out_len, "(unparsable)");
                return;
        }
        hosts = option(o, "host");
        hostaddrs = option(o, "hostaddr");
        ports = option(o, "port");
        db = option(o, "dbname");
        n = list_len(hosts) > list_len(hostaddrs) ? list_len(hosts) : list_len(hostaddrs);
        if (n == 0)
                n = 1;
        for (size_t i = 0; i < n && used < out_len; i++) {
                int w;
                if (!list_item(hosts, i, host, sizeof(host)) || !*host)
                        if (!list_item(hostaddrs, i, host, sizeof(host)) || !*host)
                                snprintf(host, sizeof(host), "(default socket)");
                /* One port for every host, or one each. */
                if (!list_item(ports, list_len(ports) == 1 ? 0 : i, port, sizeof(port)) || !*port)
                        snprintf(port, sizeof(port), "5432");
                w = snprintf(out + used, out_len - used, "%s%s:%s", i ? "," : "", host, port);
                if (w < 0)
                        break;
                used += (size_t) w;
        }
        if (used < out_len)
                snprintf(out + used, out_len - used, " db %s", db ? db : "(the user's name)");
        PQconninfoFree(o);
}

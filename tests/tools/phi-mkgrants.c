/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * phi-mkgrants: test-only tool that writes a grants snapshot without the
 * daemon, through the writer phiaccessd uses (phi_grants_write(): temp file,
 * fsync, rename, the old file marked superseded), or dumps one.
 *
 *   phi-mkgrants [--min-gid N] [--generation N] [--grant SPEC]... OUTPUT
 *   phi-mkgrants --dump FILE      one line per grant: group:gid:user:expires:id,
 *                                 "!" after an expired one; exit 1 if unusable
 *
 * SPEC is GROUP:GID:USER:EXPIRES[:REQUEST_ID], EXPIRES in Unix seconds or +N
 * for N seconds from now. No --grant writes a file without grants.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "phi/grants.h"
#include "phi/parse.h"

static int dump(const char *path) {
        uint64_t now = (uint64_t) time(NULL);
        phi_grants g;
        int r = phi_grants_map(path, &g, NULL, NULL);

        if (r < 0) {
                fprintf(stderr, "phi-mkgrants: %s: %s\n", path, phi_errno_text(r));
                return 1;
        }
        printf("# generation %" PRIu64 " min_gid %" PRIu32 " grants %" PRIu32 "\n", g.generation,
               g.min_gid, g.n_grants);
        for (uint32_t j = 0; j < g.n_groups; j++) {
                struct phi_grants_group_view gr;
                if (phi_grants_group_at(&g, j, &gr) < 0)
                        continue;
                for (uint32_t k = 0; k < gr.count; k++) {
                        struct phi_grant_view v;
                        if (phi_grants_group_grant(&g, &gr, k, &v) < 0)
                                continue;
                        printf("%s:%u:%s:%" PRIu64 ":%" PRIu64 "%s\n", gr.name.s, (unsigned) gr.gid,
                               v.user.s, v.expires, v.request_id,
                               phi_grant_live(v.expires, now) ? "" : "!");
                }
        }
        phi_grants_unmap(&g);
        return 0;
}

static int parse_spec(char *spec, struct phi_grant_entry *e) {
        char *f[5] = { 0 };
        size_t n = 0;
        uint64_t v;
        int r;

        for (char *save = NULL, *t = strtok_r(spec, ":", &save); t && n < 5; t = strtok_r(NULL, ":", &save))
                f[n++] = t;
        if (n < 4)
                return -EINVAL;
        e->group = f[0];
        e->user = f[2];
        if ((r = phi_parse_u64(f[1], 0, UINT32_MAX, &v)) < 0)
                return r;
        e->gid = (gid_t) v;
        if (f[3][0] == '+') {
                if ((r = phi_parse_u64(f[3] + 1, 0, UINT32_MAX, &v)) < 0)
                        return r;
                v += (uint64_t) time(NULL);
        } else if ((r = phi_parse_u64(f[3], 0, UINT64_MAX, &v)) < 0) {
                return r;
        }
        e->expires = v;
        if (n == 5 && (r = phi_parse_u64(f[4], 0, UINT64_MAX, &e->request_id)) < 0)
                return r;
        return 0;
}

int main(int argc, char **argv) {
        struct phi_grant_entry *e = calloc((size_t) argc, sizeof(*e));
        uint64_t min_gid = 1000, generation = 1;
        const char *out = NULL;
        size_t n = 0;
        int r;

        if (!e)
                return 1;
        if (argc == 3 && strcmp(argv[1], "--dump") == 0)
                return dump(argv[2]);
        for (int i = 1; i < argc; i++) {
                const char *opt = argv[i];
                char *arg = i + 1 < argc ? argv[i + 1] : NULL;

                if (opt[0] != '-') {
                        out = opt;
                        continue;
                }
                if (!arg) {
                        fprintf(stderr, "phi-mkgrants: %s needs an argument\n", opt);
                        return 2;
                }
                i++;
                if (strcmp(opt, "--grant") == 0)
                        r = parse_spec(arg, &e[n++]);
                else if (strcmp(opt, "--min-gid") == 0)
                        r = phi_parse_u64(arg, 1, UINT32_MAX - 1, &min_gid);
                else if (strcmp(opt, "--generation") == 0)
                        r = phi_parse_u64(arg, 0, UINT64_MAX, &generation);
                else {
                        fprintf(stderr, "phi-mkgrants: unknown option %s\n", opt);
                        return 2;
                }
                if (r < 0) {
                        fprintf(stderr, "phi-mkgrants: %s '%s': %s\n", opt, arg, phi_errno_text(r));
                        return 1;
                }
        }
        if (!out) {
                fprintf(stderr, "phi-mkgrants: OUTPUT missing\n");
                return 2;
        }
        r = phi_grants_write(out, e, n, (gid_t) min_gid, generation);
        if (r < 0) {
                fprintf(stderr, "phi-mkgrants: cannot write %s: %s\n", out, phi_errno_text(r));
                return 1;
        }
        free(e);
        return 0;
}

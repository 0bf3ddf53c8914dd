/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * phi-mksnapshot: test-only tool that writes an NSS snapshot without the daemon,
 * through the same builder and writer phiaccessd uses, or dumps one.
 *
 *   phi-mksnapshot [OPTIONS] OUTPUT        build and atomically replace OUTPUT
 *   phi-mksnapshot --dump FILE             print passwd and group lines (expired
 *                                          memberships marked "!EXPIRES")
 *   phi-mksnapshot --verify FILE           full check; exit 0 if sound
 *
 * Build options (any mix; processed in order):
 *   --passwd FILE          passwd(5) lines: name:x:uid:gid:gecos:home:shell
 *   --group FILE           group(5) lines: name:x:gid:user1,user2
 *   --user NAME:UID:GID[:GECOS:HOME:SHELL]
 *   --group-add NAME:GID
 *   --member GROUP:USER[:EXPIRES]     EXPIRES in Unix seconds, or +N for now+N
 *   --synthetic USERS:GROUPS[:PER_GROUP[:BIG_IN]]
 *                          the users and groups tests/lib/gen-ldif makes with the
 *                          same numbers: userNNNNN (uid 10000+i), grpNNNNN (gid
 *                          20000+j), PER_GROUP members each, and biguser (uid
 *                          9999) in the first BIG_IN groups
 *   --min-uid N --min-gid N --generation N
 *   --primary-gids GID[,GID...]   low primary gids users may have (header list)
 *                          (bounds apply from where they are given on: put them
 *                          before the users they allow)
 *   --forge-gid NAME:GID   after encoding, overwrite user NAME's primary gid in
 *                          the file with GID, bypassing the writer's checks: a
 *                          hand-made snapshot that readers must not trust
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "phi/parse.h"
#include "phi/snapshot.h"

static int fail(const char *what, const char *arg, int r) {
        fprintf(stderr, "phi-mksnapshot: %s '%s': %s\n", what, arg, phi_errno_text(r));
        return r < 0 ? r : -r;
}

/* Splits s at ':' in place into at most n fields; returns the count. */
static size_t split(char *s, char **f, size_t n) {
        size_t k = 0;

        f[k++] = s;
        for (char *p = s; *p && k < n; p++)
                if (*p == ':') {
                        *p = '\0';
                        f[k++] = p + 1;
                }
        return k;
}

static int parse_id(const char *s, uint32_t *ret) {
        uint64_t v;
        int r = phi_parse_u64(s, 0, UINT32_MAX, &v);

        if (r == 0)
                *ret = (uint32_t) v;
        return r;
}

static int add_user_fields(phi_snapshot_builder *b, char **f, size_t n) {
        uint32_t uid = 0, gid = 0;
        int r;

        if (n != 6 && n != 3)
                return -EINVAL;
        if ((r = parse_id(f[1], &uid)) < 0 || (r = parse_id(f[2], &gid)) < 0)
                return r;
        return phi_snapshot_add_user(b, f[0], uid, gid, n == 6 ? f[3] : "", n == 6 ? f[4] : "/",
                                     n == 6 ? f[5] : "/bin/sh");
}

static int add_member_spec(phi_snapshot_builder *b, char *spec) {
        char *f[3];
        size_t n = split(spec, f, 3);
        uint64_t expires = 0;
        int r;

        if (n < 2)
                return -EINVAL;
        if (n == 3) {
                if (f[2][0] == '+') {
                        if ((r = phi_parse_u64(f[2] + 1, 0, UINT32_MAX, &expires)) < 0)
                                return r;
                        expires += (uint64_t) time(NULL);
                } else if ((r = phi_parse_u64(f[2], 0, UINT64_MAX, &expires)) < 0) {
                        return r;
                }
        }
        return phi_snapshot_add_member(b, f[0], f[1], expires);
}

static int load_file(phi_snapshot_builder *b, const char *path, bool group) {
        FILE *fp = fopen(path, "re");
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;
        int r = 0;

        if (!fp)
                return fail("cannot open", path, -errno);
        /* Lines of any length: a group of 50,000 members is one line of ~500 KB. */
        while (r == 0 && getline(&line, &cap, fp) >= 0) {
                char *f[7];
                size_t n;

                line[strcspn(line, "\n")] = '\0';
                if (line[0] == '\0' || line[0] == '#')
                        continue;
                n = split(line, f, 7);
                if (!group) {
                        char *u[6] = { f[0], f[2], f[3], f[4], f[5], f[6] };
                        r = n == 7 ? add_user_fields(b, u, 6) : -EINVAL;
                } else {
                        uint32_t gid = 0;
                        if (n != 4 || (r = parse_id(f[2], &gid)) < 0 ||
                            (r = phi_snapshot_add_group(b, f[0], gid)) < 0) {
                                r = r ? r : -EINVAL;
                                break;
                        }
                        for (char *save = NULL, *m = strtok_r(f[3], ",", &save); m && r == 0;
                             m = strtok_r(NULL, ",", &save))
                                r = phi_snapshot_add_member(b, f[0], m, 0);
                }
                if (r < 0)
                        r = fail(path, f[0], r);
        }
        fclose(fp);
        return r;
}

static int synthetic(phi_snapshot_builder *b, char *spec) {
        char *f[4], name[64], home[80], user[64];
        size_t n = split(spec, f, 4);
        uint32_t users = 0, groups = 0, per = 5, big = 0;
        int r;

        if (n < 2 || (r = parse_id(f[0], &users)) < 0 || (r = parse_id(f[1], &groups)) < 0 ||
            (n > 2 && (r = parse_id(f[2], &per)) < 0) || (n > 3 && (r = parse_id(f[3], &big)) < 0))
                return -EINVAL;
        if (per > users)
                per = users;
        for (uint32_t i = 1; i <= users; i++) {
                uint32_t gid = groups ? 20000 + (i - 1) % groups + 1 : 20000;
                snprintf(name, sizeof(name), "user%05" PRIu32, i);
                snprintf(home, sizeof(home), "/home/%s", name);
                snprintf(user, sizeof(user), "User %05" PRIu32, i);
                if ((r = phi_snapshot_add_user(b, name, 10000 + i, gid, user, home, "/bin/bash")) < 0)
                        return r;
        }
        if (big > 0 && (r = phi_snapshot_add_user(b, "biguser", 9999, 20001, "", "/home/biguser",
                                                  "/bin/bash")) < 0)
                return r;
        for (uint32_t j = 1; j <= groups; j++) {
                snprintf(name, sizeof(name), "grp%05" PRIu32, j);
                if ((r = phi_snapshot_add_group(b, name, 20000 + j)) < 0)
                        return r;
                for (uint32_t t = 0; t < per; t++) {
                        snprintf(user, sizeof(user), "user%05" PRIu32, ((j - 1) * per + t) % users + 1);
                        if ((r = phi_snapshot_add_member(b, name, user, 0)) < 0)
                                return r;
                }
                if (j <= big && (r = phi_snapshot_add_member(b, name, "biguser", 0)) < 0)
                        return r;
        }
        return 0;
}

static int parse_gids(const char *arg, gid_t *gids, size_t *n) {
        _cleanup_free_ char *copy = strdup(arg);
        char *save = NULL;

        if (!copy)
                return -ENOMEM;
        *n = 0;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                uint32_t v = 0;
                int r;
                if (*n >= PHI_SNAP_MAX_PRIMARY_GIDS)
                        return -E2BIG;
                if ((r = parse_id(t, &v)) < 0)
                        return r;
                gids[(*n)++] = v;
        }
        return 0;
}

/* Encodes, sets user name's gid in the encoded file to gid (what the writer
 * refuses to do), and replaces path with it. */
static int write_forged(phi_snapshot_builder *b, const char *path, uint64_t generation,
                        const char *name, uint32_t gid) {
        _cleanup_free_ uint8_t *data = NULL;
        _cleanup_free_ char *tmp = NULL;
        struct phi_snapshot_user u;
        uint32_t le = htole32(gid);
        phi_snapshot s;
        size_t size = 0;
        FILE *f;
        int r;

        if ((r = phi_snapshot_encode(b, generation, (uint64_t) time(NULL), &data, &size)) < 0 ||
            (r = phi_snapshot_open_buffer(&s, data, size)) < 0 ||
            (r = phi_snapshot_user_by_name(&s, name, &u)) < 0)
                return r;
        memcpy(data + s.off[PHI_SNAP_USERS] + (size_t) u.index * sizeof(struct phi_snap_user) +
                       offsetof(struct phi_snap_user, gid),
               &le, sizeof(le));
        if (asprintf(&tmp, "%s.forged", path) < 0) {
                tmp = NULL;
                return -ENOMEM;
        }
        f = fopen(tmp, "we");
        if (!f)
                return -errno;
        if (fwrite(data, 1, size, f) != size) {
                fclose(f);
                return -EIO;
        }
        if (fclose(f) != 0 || rename(tmp, path) < 0)
                return -errno;
        return 0;
}

static int dump(const char *path, bool verify_only) {
        phi_snapshot s;
        uint64_t now = (uint64_t) time(NULL);
        int r = phi_snapshot_map(path, &s, NULL, NULL);

        if (r < 0)
                return fail("cannot open snapshot", path, r);
        r = phi_snapshot_verify(&s);
        if (r < 0 || verify_only) {
                if (r < 0)
                        (void) fail("snapshot fails verification", path, r);
                phi_snapshot_unmap(&s);
                return r;
        }
        printf("# generation %" PRIu64 " created %" PRIu64 " min_uid %" PRIu32 " min_gid %" PRIu32,
               s.generation, s.created, s.min_uid, s.min_gid);
        printf(" primary_gids ");
        for (uint32_t i = 0; i < s.n_primary_gids; i++)
                printf("%s%" PRIu32, i ? "," : "", s.primary_gids[i]);
        printf("%s\n", s.n_primary_gids ? "" : "-");
        for (uint32_t i = 0; i < s.n_users; i++) {
                struct phi_snapshot_user u;
                if (phi_snapshot_user_at(&s, i, &u) == 0)
                        printf("%s:*:%u:%u:%s:%s:%s\n", u.name.s, (unsigned) u.uid, (unsigned) u.gid,
                               u.gecos.s, u.home.s, u.shell.s);
        }
        for (uint32_t i = 0; i < s.n_groups; i++) {
                struct phi_snapshot_group g;
                if (phi_snapshot_group_at(&s, i, &g) < 0)
                        continue;
                printf("%s:*:%u:", g.name.s, (unsigned) g.gid);
                for (uint32_t k = 0; k < g.n_members; k++) {
                        struct phi_snapshot_str m;
                        uint64_t e;
                        if (phi_snapshot_group_member(&s, &g, k, &m, &e) < 0)
                                continue;
                        printf("%s%s", k ? "," : "", m.s);
                        if (e && !phi_snapshot_membership_live(e, now))
                                printf("!%" PRIu64, e);
                }
                printf("\n");
        }
        phi_snapshot_unmap(&s);
        return 0;
}

int main(int argc, char **argv) {
        _cleanup_snapshot_builder_ phi_snapshot_builder *b = NULL;
        uint32_t min_uid = PHI_SNAPSHOT_MIN_ID_DEFAULT, min_gid = PHI_SNAPSHOT_MIN_ID_DEFAULT;
        uint64_t generation = 1;
        const char *out = NULL;
        char *forge = NULL;
        uint32_t forge_gid = 0;
        int r;

        if (argc == 3 && (strcmp(argv[1], "--dump") == 0 || strcmp(argv[1], "--verify") == 0))
                return dump(argv[2], strcmp(argv[1], "--verify") == 0) < 0 ? 1 : 0;
        if ((r = phi_snapshot_builder_new(&b)) < 0)
                return 1;
        for (int i = 1; i < argc; i++) {
                const char *opt = argv[i];
                char *arg = i + 1 < argc ? argv[i + 1] : NULL;
                char *f[6];

                if (opt[0] != '-') {
                        if (out) {
                                fprintf(stderr, "phi-mksnapshot: one OUTPUT only\n");
                                return 2;
                        }
                        out = opt;
                        continue;
                }
                if (!arg) {
                        fprintf(stderr, "phi-mksnapshot: %s needs an argument\n", opt);
                        return 2;
                }
                i++;
                if (strcmp(opt, "--passwd") == 0)
                        r = load_file(b, arg, false);
                else if (strcmp(opt, "--group") == 0)
                        r = load_file(b, arg, true);
                else if (strcmp(opt, "--user") == 0)
                        r = add_user_fields(b, f, split(arg, f, 6));
                else if (strcmp(opt, "--group-add") == 0) {
                        uint32_t gid = 0;
                        r = split(arg, f, 2) == 2 && parse_id(f[1], &gid) == 0
                                    ? phi_snapshot_add_group(b, f[0], gid) : -EINVAL;
                } else if (strcmp(opt, "--member") == 0)
                        r = add_member_spec(b, arg);
                else if (strcmp(opt, "--synthetic") == 0)
                        r = synthetic(b, arg);
                else if (strcmp(opt, "--min-uid") == 0)
                        r = parse_id(arg, &min_uid) ?: phi_snapshot_builder_set_min_ids(b, min_uid, min_gid);
                else if (strcmp(opt, "--min-gid") == 0)
                        r = parse_id(arg, &min_gid) ?: phi_snapshot_builder_set_min_ids(b, min_uid, min_gid);
                else if (strcmp(opt, "--primary-gids") == 0) {
                        gid_t gids[PHI_SNAP_MAX_PRIMARY_GIDS];
                        size_t n = 0;
                        r = parse_gids(arg, gids, &n) ?: phi_snapshot_builder_set_primary_gids(b, gids, n);
                } else if (strcmp(opt, "--forge-gid") == 0) {
                        r = split(arg, f, 2) == 2 ? parse_id(f[1], &forge_gid) : -EINVAL;
                        forge = f[0];
                }
                else if (strcmp(opt, "--generation") == 0)
                        r = phi_parse_u64(arg, 0, UINT64_MAX, &generation);
                else {
                        fprintf(stderr, "phi-mksnapshot: unknown option %s\n", opt);
                        return 2;
                }
                if (r < 0) {
                        (void) fail(opt, arg, r);
                        return 1;
                }
        }
        if (!out) {
                fprintf(stderr, "phi-mksnapshot: OUTPUT missing\n");
                return 2;
        }
        if ((r = phi_snapshot_builder_set_min_ids(b, min_uid, min_gid)) < 0 ||
            (r = forge ? write_forged(b, out, generation, forge, forge_gid)
                       : phi_snapshot_write(b, out, generation)) < 0) {
                (void) fail("cannot write", out, r);
                return 1;
        }
        return 0;
}

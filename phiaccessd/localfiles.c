/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <grp.h>
#include <pwd.h>
#include <stdio.h>

#include "localfiles.h"

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static int cmp_u32(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
        return (x > y) - (x < y);
}

void phi_local_db_clear(struct phi_local_db *db) {
        for (size_t i = 0; i < db->n_names; i++)
                free(db->names[i]);
        free(db->names);
        free(db->ids);
        *db = (struct phi_local_db){ 0 };
}

static int db_add(struct phi_local_db *db, size_t *cap, const char *name, uint32_t id) {
        if (db->n_names >= *cap) {
                size_t ncap = *cap ? *cap * 2 : 64;
                char **nn = reallocarray(db->names, ncap, sizeof(char *));
                uint32_t *ni;
                if (!nn)
                        return -ENOMEM;
                db->names = nn;
                ni = reallocarray(db->ids, ncap, sizeof(uint32_t));
                if (!ni)
                        return -ENOMEM;
                db->ids = ni;
                *cap = ncap;
        }
        db->names[db->n_names] = strdup(name);
        if (!db->names[db->n_names])
                return -ENOMEM;
        db->n_names++;
        db->ids[db->n_ids++] = id;
        return 0;
}

static int load(const char *path, bool groups, struct phi_local_db *ret) {
        struct phi_local_db db = { 0 };
        size_t cap = 0;
        FILE *f;
        int r = 0;

        f = fopen(path, "re");
        if (!f) {
                if (errno == ENOENT) {
                        *ret = db;
                        return 0;
                }
                return phi_negative_errno();
        }
        for (;;) {
                errno = 0;
                if (groups) {
                        struct group *g = fgetgrent(f);
                        if (!g)
                                break;
                        r = db_add(&db, &cap, g->gr_name, (uint32_t) g->gr_gid);
                } else {
                        struct passwd *p = fgetpwent(f);
                        if (!p)
                                break;
                        r = db_add(&db, &cap, p->pw_name, (uint32_t) p->pw_uid);
                }
                if (r < 0)
                        break;
        }
        fclose(f);
        if (r < 0) {
                phi_local_db_clear(&db);
                return r;
        }
        if (db.n_names > 0) {
                qsort(db.names, db.n_names, sizeof(char *), cmp_str);
                qsort(db.ids, db.n_ids, sizeof(uint32_t), cmp_u32);
        }
        *ret = db;
        return 0;
}

int phi_local_users_load(const char *path, struct phi_local_db *ret) {
        return load(path, false, ret);
}

int phi_local_groups_load(const char *path, struct phi_local_db *ret) {
        return load(path, true, ret);
}

bool phi_local_db_has_name(const struct phi_local_db *db, const char *name) {
        return db->n_names > 0 && bsearch(&name, db->names, db->n_names, sizeof(char *), cmp_str);
}

bool phi_local_db_has_id(const struct phi_local_db *db, uint32_t id) {
        return db->n_ids > 0 && bsearch(&id, db->ids, db->n_ids, sizeof(uint32_t), cmp_u32);
}

int phi_local_user_by_uid(const char *path, uid_t uid, char **ret_name, gid_t *ret_gid) {
        struct passwd *p;
        FILE *f;
        int r = -ENOENT;

        f = fopen(path, "re");
        if (!f)
                return errno == ENOENT ? -ENOENT : phi_negative_errno();
        while ((p = fgetpwent(f)))
                if (p->pw_uid == uid) {
                        *ret_name = strdup(p->pw_name);
                        *ret_gid = p->pw_gid;
                        r = *ret_name ? 0 : -ENOMEM;
                        break;
                }
        fclose(f);
        return r;
}

bool phi_local_group_has_member(const char *path, const char *group, const char *user, gid_t gid) {
        struct group *g;
        bool found = false;
        FILE *f;

        f = fopen(path, "re");
        if (!f)
                return false;
        while (!found && (g = fgetgrent(f))) {
                if (strcmp(g->gr_name, group) != 0)
                        continue;
                if (g->gr_gid == gid)
                        found = true;
                for (char **m = g->gr_mem; !found && m && *m; m++)
                        if (strcmp(*m, user) == 0)
                                found = true;
        }
        fclose(f);
        return found;
}

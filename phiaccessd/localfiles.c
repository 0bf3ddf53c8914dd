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

/*
 * The reentrant readers, never fgetpwent()/fgetgrent(): those return a pointer
 * into one static buffer for the whole process, and this file is read by the
 * sync thread (publishing the snapshot) while the event loop identifies a
 * caller; the loop could copy a name that another thread's read had just put
 * there, and judge a caller by someone else's account.
 * Returns 1 with an entry, 0 at the end, or a negative errno. On ERANGE glibc
 * puts the stream back to the start of the line, so a bigger buffer re-reads it.
 */
#define LOCAL_LINE_MAX (4u << 20)   /* a group line with every user on a big host */

static int grow(char **buf, size_t *size) {
        size_t nsize = *size ? *size * 2 : 1024;
        char *nbuf;

        if (nsize > LOCAL_LINE_MAX)
                return -E2BIG;
        nbuf = realloc(*buf, nsize);
        if (!nbuf)
                return -ENOMEM;
        *buf = nbuf;
        *size = nsize;
        return 0;
}

/* The two readers differ only in their types; these give them one shape. */
typedef int read_entry_fn(FILE *f, void *entry, char *buf, size_t size, bool *ret_got);

static int read_user(FILE *f, void *entry, char *buf, size_t size, bool *ret_got) {
        struct passwd *result = NULL;
        int r = fgetpwent_r(f, entry, buf, size, &result);

        *ret_got = result != NULL;
        return r;
}

static int read_group(FILE *f, void *entry, char *buf, size_t size, bool *ret_got) {
        struct group *result = NULL;
        int r = fgetgrent_r(f, entry, buf, size, &result);

        *ret_got = result != NULL;
        return r;
}

static int next_entry(FILE *f, read_entry_fn *read_fn, void *entry, char **buf, size_t *size) {
        bool got = false;
        int r;

        for (;;) {
                if (*size == 0 && (r = grow(buf, size)) < 0)
                        return r;
                r = read_fn(f, entry, *buf, *size, &got);
                if (r != ERANGE)
                        break;
                if ((r = grow(buf, size)) < 0)
                        return r;
        }
        if (r == 0 && got)
                return 1;
        return r == 0 || r == ENOENT ? 0 : -r;
}

static int next_user(FILE *f, struct passwd *pw, char **buf, size_t *size) {
        return next_entry(f, read_user, pw, buf, size);
}

static int next_group(FILE *f, struct group *gr, char **buf, size_t *size) {
        return next_entry(f, read_group, gr, buf, size);
}

static int load(const char *path, bool groups, struct phi_local_db *ret) {
        struct phi_local_db db = { 0 };
        _cleanup_free_ char *buf = NULL;
        size_t cap = 0, size = 0;
        struct passwd pw;
        struct group gr;
        FILE *f;
        int r;

        f = fopen(path, "re");
        if (!f) {
                if (errno == ENOENT) {
                        *ret = db;
                        return 0;
                }
                return phi_negative_errno();
        }
        for (;;) {
                r = groups ? next_group(f, &gr, &buf, &size) : next_user(f, &pw, &buf, &size);
                if (r <= 0)
                        break;
                r = groups ? db_add(&db, &cap, gr.gr_name, (uint32_t) gr.gr_gid)
                           : db_add(&db, &cap, pw.pw_name, (uint32_t) pw.pw_uid);
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
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        struct passwd pw;
        FILE *f;
        int r;

        f = fopen(path, "re");
        if (!f)
                return errno == ENOENT ? -ENOENT : phi_negative_errno();
        while ((r = next_user(f, &pw, &buf, &size)) > 0)
                if (pw.pw_uid == uid)
                        break;
        fclose(f);
        if (r == 0)
                return -ENOENT;
        if (r < 0)
                return r;
        *ret_name = strdup(pw.pw_name);
        if (!*ret_name)
                return -ENOMEM;
        *ret_gid = pw.pw_gid;
        return 0;
}

int phi_local_user_get(const char *path, const char *name, struct phi_user *ret) {
        _cleanup_free_ char *buf = NULL;
        struct phi_user u = { 0 };
        size_t size = 0;
        struct passwd pw;
        FILE *f;
        int r;

        f = fopen(path, "re");
        if (!f)
                return errno == ENOENT ? -ENOENT : phi_negative_errno();
        while ((r = next_user(f, &pw, &buf, &size)) > 0)
                if (strcmp(pw.pw_name, name) == 0)
                        break;
        fclose(f);
        if (r == 0)
                return -ENOENT;
        if (r < 0)
                return r;
        u.name = strdup(pw.pw_name);
        u.gecos = strdup(pw.pw_gecos ? pw.pw_gecos : "");
        u.home = strdup(pw.pw_dir ? pw.pw_dir : "");
        u.shell = strdup(pw.pw_shell ? pw.pw_shell : "");
        u.uid = pw.pw_uid;
        u.gid = pw.pw_gid;
        if (!u.name || !u.gecos || !u.home || !u.shell) {
                phi_user_clear(&u);
                return -ENOMEM;
        }
        *ret = u;
        return 0;
}

int phi_local_user_by_name(const char *path, const char *name, uid_t *ret_uid) {
        struct phi_user u = { 0 };
        int r = phi_local_user_get(path, name, &u);

        if (r == 0)
                *ret_uid = u.uid;
        phi_user_clear(&u);
        return r;
}

bool phi_local_group_has_member(const char *path, const char *group, const char *user, gid_t gid) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        struct group gr;
        bool found = false;
        FILE *f;

        f = fopen(path, "re");
        if (!f)
                return false;
        while (!found && next_group(f, &gr, &buf, &size) > 0) {
                if (strcmp(gr.gr_name, group) != 0)
                        continue;
                if (gr.gr_gid == gid)
                        found = true;
                for (char **m = gr.gr_mem; !found && m && *m; m++)
                        if (strcmp(*m, user) == 0)
                                found = true;
        }
        fclose(f);
        return found;
}

int phi_local_groups_of(const char *path, const char *user, gid_t gid, char ***names, size_t *n,
                        size_t *cap) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        struct group gr;
        FILE *f;
        int r;

        f = fopen(path, "re");
        if (!f)
                return errno == ENOENT ? 0 : phi_negative_errno();
        while ((r = next_group(f, &gr, &buf, &size)) > 0) {
                bool member = gr.gr_gid == gid;
                for (char **m = gr.gr_mem; !member && m && *m; m++)
                        member = strcmp(*m, user) == 0;
                if (!member)
                        continue;
                if (*n == *cap) {
                        size_t new_cap = *cap ? *cap * 2 : 16;
                        char **v = reallocarray(*names, new_cap, sizeof(char *));
                        if (!v) {
                                r = -ENOMEM;
                                break;
                        }
                        *names = v;
                        *cap = new_cap;
                }
                (*names)[*n] = strdup(gr.gr_name);
                if (!(*names)[*n]) {
                        r = -ENOMEM;
                        break;
                }
                (*n)++;
        }
        fclose(f);
        return r < 0 ? r : 0;
}

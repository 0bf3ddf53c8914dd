/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

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

/*
 * The lookups (who is this caller, is this user local, which local groups do
 * they have) come on every login and every request, from several threads; a
 * parse of the whole file each time cost a login 17% of the verifier's time
 * with a small file and milliseconds with 10,000 accounts. So each file is
 * parsed once into an index and re-parsed when it changes: a stat() per
 * lookup compares device, inode, size, mtime and ctime, which covers both
 * ways the file is changed (a new file renamed over it by vipw, useradd,
 * adduser; an edit in place). As in git's "racy" index: mtime ticks are
 * coarse (a few ms), so an index read within a second of the file's mtime is
 * not trusted and the file is parsed again until it has settled.
 */
#define LOCAL_ENTRIES_MAX (4u << 20)
#define LOCAL_RACY_NS 1000000000LL

struct local_user {
        char *name, *gecos, *home, *shell;
        uid_t uid;
        gid_t gid;
};

struct local_group {
        char *name;
        gid_t gid;
        char **members;     /* NULL-terminated */
};

struct local_file {
        char *path;
        bool groups;
        bool present;
        dev_t dev;
        ino_t ino;
        off_t size;
        struct timespec mtim, ctim;
        int64_t parsed_ns;          /* CLOCK_REALTIME when it was parsed */
        struct local_user *users;   /* file order */
        size_t n_users;
        struct local_user **by_name; /* the same, by name, then file order */
        struct local_user **by_uid;  /* the same, by uid, then file order */
        struct local_group *grps;   /* file order: a lookup by name takes the first */
        size_t n_grps;
};

/* A daemon reads one passwd and one group file (tests run a few more). */
#define LOCAL_FILES 4
static struct {
        pthread_mutex_t lock;
        struct local_file *files[LOCAL_FILES];
        unsigned next;
} cache = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void local_file_free(struct local_file *lf) {
        if (!lf)
                return;
        for (size_t i = 0; i < lf->n_users; i++) {
                free(lf->users[i].name);
                free(lf->users[i].gecos);
                free(lf->users[i].home);
                free(lf->users[i].shell);
        }
        free(lf->users);
        free(lf->by_name);
        free(lf->by_uid);
        for (size_t i = 0; i < lf->n_grps; i++) {
                free(lf->grps[i].name);
                for (char **m = lf->grps[i].members; m && *m; m++)
                        free(*m);
                free(lf->grps[i].members);
        }
        free(lf->grps);
        free(lf->path);
        free(lf);
}

/* Ties in file order (users[] is in file order, so by address): the first
 * account of a name or uid wins, as getpwnam() and getpwuid() answer. */
static int cmp_user_name(const void *a, const void *b) {
        const struct local_user *x = *(struct local_user *const *) a, *y = *(struct local_user *const *) b;
        int c = strcmp(x->name, y->name);

        return c ? c : (x > y) - (x < y);
}

static int cmp_user_uid(const void *a, const void *b) {
        const struct local_user *x = *(struct local_user *const *) a, *y = *(struct local_user *const *) b;

        if (x->uid != y->uid)
                return (x->uid > y->uid) - (x->uid < y->uid);
        return (x > y) - (x < y);
}

static char *dup_or_empty(const char *s) {
        return strdup(s ? s : "");
}

static int add_user(struct local_file *lf, size_t *cap, const struct passwd *pw) {
        struct local_user *u;

        if (lf->n_users >= LOCAL_ENTRIES_MAX)
                return -E2BIG;
        if (lf->n_users == *cap) {
                size_t ncap = *cap ? *cap * 2 : 64;
                struct local_user *n = reallocarray(lf->users, ncap, sizeof(*n));
                if (!n)
                        return -ENOMEM;
                lf->users = n;
                *cap = ncap;
        }
        u = &lf->users[lf->n_users];
        *u = (struct local_user){ .name = strdup(pw->pw_name), .gecos = dup_or_empty(pw->pw_gecos),
                                  .home = dup_or_empty(pw->pw_dir), .shell = dup_or_empty(pw->pw_shell),
                                  .uid = pw->pw_uid, .gid = pw->pw_gid };
        lf->n_users++;   /* counted first, so that free() finds what was made */
        return u->name && u->gecos && u->home && u->shell ? 0 : -ENOMEM;
}

static int add_group(struct local_file *lf, size_t *cap, const struct group *gr) {
        struct local_group *g;
        size_t n = 0;

        if (lf->n_grps >= LOCAL_ENTRIES_MAX)
                return -E2BIG;
        if (lf->n_grps == *cap) {
                size_t ncap = *cap ? *cap * 2 : 64;
                struct local_group *ng = reallocarray(lf->grps, ncap, sizeof(*ng));
                if (!ng)
                        return -ENOMEM;
                lf->grps = ng;
                *cap = ncap;
        }
        g = &lf->grps[lf->n_grps];
        for (char **m = gr->gr_mem; m && *m; m++)
                n++;
        *g = (struct local_group){ .name = strdup(gr->gr_name), .gid = gr->gr_gid,
                                   .members = calloc(n + 1, sizeof(char *)) };
        lf->n_grps++;
        if (!g->name || !g->members)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (!(g->members[i] = strdup(gr->gr_mem[i])))
                        return -ENOMEM;
        return 0;
}

static int64_t realtime_ns(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t ts_ns(const struct timespec *ts) {
        return (int64_t) ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

/* Parses path as it is now; a missing file is a present=false index. */
static int local_file_parse(const char *path, bool groups, struct local_file **ret) {
        _cleanup_free_ char *buf = NULL;
        struct local_file *lf = calloc(1, sizeof(*lf));
        size_t size = 0, cap = 0;
        struct passwd pw;
        struct group gr;
        struct stat st;
        FILE *f = NULL;
        int r = 0;

        if (!lf || !(lf->path = strdup(path))) {
                r = -ENOMEM;
                goto out;
        }
        lf->groups = groups;
        lf->parsed_ns = realtime_ns();
        f = fopen(path, "re");
        if (!f) {
                r = errno == ENOENT ? 0 : phi_negative_errno();
                goto out;
        }
        if (fstat(fileno(f), &st) < 0) {
                r = phi_negative_errno();
                goto out;
        }
        lf->present = true;
        lf->dev = st.st_dev;
        lf->ino = st.st_ino;
        lf->size = st.st_size;
        lf->mtim = st.st_mtim;
        lf->ctim = st.st_ctim;
        for (;;) {
                r = groups ? next_group(f, &gr, &buf, &size) : next_user(f, &pw, &buf, &size);
                if (r <= 0)
                        break;
                if ((r = groups ? add_group(lf, &cap, &gr) : add_user(lf, &cap, &pw)) < 0)
                        break;
        }
        if (r < 0)
                goto out;
        if (lf->n_users > 0) {
                lf->by_name = calloc(lf->n_users, sizeof(*lf->by_name));
                lf->by_uid = calloc(lf->n_users, sizeof(*lf->by_uid));
                if (!lf->by_name || !lf->by_uid) {
                        r = -ENOMEM;
                        goto out;
                }
                for (size_t i = 0; i < lf->n_users; i++)
                        lf->by_name[i] = lf->by_uid[i] = &lf->users[i];
                qsort(lf->by_name, lf->n_users, sizeof(*lf->by_name), cmp_user_name);
                qsort(lf->by_uid, lf->n_users, sizeof(*lf->by_uid), cmp_user_uid);
        }
out:
        if (f)
                fclose(f);
        if (r < 0) {
                local_file_free(lf);
                return r;
        }
        *ret = lf;
        return 0;
}

static bool local_file_fresh(const struct local_file *lf, const char *path) {
        struct stat st;

        if (stat(path, &st) < 0)
                return errno == ENOENT && !lf->present;
        return lf->present && st.st_dev == lf->dev && st.st_ino == lf->ino && st.st_size == lf->size &&
               ts_ns(&st.st_mtim) == ts_ns(&lf->mtim) && ts_ns(&st.st_ctim) == ts_ns(&lf->ctim) &&
               lf->parsed_ns - ts_ns(&st.st_mtim) >= LOCAL_RACY_NS &&
               lf->parsed_ns - ts_ns(&st.st_ctim) >= LOCAL_RACY_NS;
}

/* With cache.lock held: the index of path as it is now. */
static int local_file_get(const char *path, bool groups, struct local_file **ret) {
        struct local_file *lf = NULL;
        unsigned slot = cache.next;
        int r;

        for (unsigned i = 0; i < LOCAL_FILES; i++)
                if (cache.files[i] && cache.files[i]->groups == groups && strcmp(cache.files[i]->path, path) == 0) {
                        if (local_file_fresh(cache.files[i], path)) {
                                *ret = cache.files[i];
                                return 0;
                        }
                        slot = i;
                        break;
                }
        if ((r = local_file_parse(path, groups, &lf)) < 0)
                return r;
        if (slot == cache.next)
                cache.next = (cache.next + 1) % LOCAL_FILES;
        local_file_free(cache.files[slot]);
        cache.files[slot] = lf;
        *ret = lf;
        return 0;
}

/* Both find the lowest index with the key: the first account in the file. */
static const struct local_user *user_by_name(const struct local_file *lf, const char *name) {
        size_t lo = 0, hi = lf->n_users;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (strcmp(lf->by_name[mid]->name, name) < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo < lf->n_users && strcmp(lf->by_name[lo]->name, name) == 0 ? lf->by_name[lo] : NULL;
}

static const struct local_user *user_by_uid(const struct local_file *lf, uid_t uid) {
        size_t lo = 0, hi = lf->n_users;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (lf->by_uid[mid]->uid < uid)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo < lf->n_users && lf->by_uid[lo]->uid == uid ? lf->by_uid[lo] : NULL;
}

int phi_local_user_by_uid(const char *path, uid_t uid, char **ret_name, gid_t *ret_gid) {
        const struct local_user *u;
        struct local_file *lf;
        int r;

        pthread_mutex_lock(&cache.lock);
        r = local_file_get(path, false, &lf);
        if (r == 0 && !(u = user_by_uid(lf, uid)))
                r = -ENOENT;
        if (r == 0 && !(*ret_name = strdup(u->name)))
                r = -ENOMEM;
        if (r == 0)
                *ret_gid = u->gid;
        pthread_mutex_unlock(&cache.lock);
        return r;
}

int phi_local_user_get(const char *path, const char *name, struct phi_user *ret) {
        const struct local_user *lu;
        struct phi_user u = { 0 };
        struct local_file *lf;
        int r;

        pthread_mutex_lock(&cache.lock);
        r = local_file_get(path, false, &lf);
        if (r == 0 && !(lu = user_by_name(lf, name)))
                r = -ENOENT;
        if (r == 0) {
                u = (struct phi_user){ .name = strdup(lu->name), .gecos = strdup(lu->gecos),
                                       .home = strdup(lu->home), .shell = strdup(lu->shell),
                                       .uid = lu->uid, .gid = lu->gid };
                if (!u.name || !u.gecos || !u.home || !u.shell) {
                        phi_user_clear(&u);
                        r = -ENOMEM;
                }
        }
        pthread_mutex_unlock(&cache.lock);
        if (r == 0)
                *ret = u;
        return r;
}

int phi_local_user_by_name(const char *path, const char *name, uid_t *ret_uid) {
        const struct local_user *u;
        struct local_file *lf;
        int r;

        pthread_mutex_lock(&cache.lock);
        r = local_file_get(path, false, &lf);
        if (r == 0 && !(u = user_by_name(lf, name)))
                r = -ENOENT;
        if (r == 0)
                *ret_uid = u->uid;
        pthread_mutex_unlock(&cache.lock);
        return r;
}

static bool group_has(const struct local_group *g, const char *user, gid_t gid) {
        if (g->gid == gid)
                return true;
        for (char **m = g->members; *m; m++)
                if (strcmp(*m, user) == 0)
                        return true;
        return false;
}

bool phi_local_group_has_member(const char *path, const char *group, const char *user, gid_t gid) {
        struct local_file *lf;
        bool found = false;

        pthread_mutex_lock(&cache.lock);
        if (local_file_get(path, true, &lf) == 0)
                for (size_t i = 0; i < lf->n_grps && !found; i++)
                        found = strcmp(lf->grps[i].name, group) == 0 && group_has(&lf->grps[i], user, gid);
        pthread_mutex_unlock(&cache.lock);
        return found;
}

int phi_local_groups_of(const char *path, const char *user, gid_t gid, char ***names, size_t *n,
                        size_t *cap) {
        struct local_file *lf;
        int r;

        pthread_mutex_lock(&cache.lock);
        r = local_file_get(path, true, &lf);
        for (size_t i = 0; r == 0 && i < lf->n_grps; i++) {
                if (!group_has(&lf->grps[i], user, gid))
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
                if (!((*names)[*n] = strdup(lf->grps[i].name))) {
                        r = -ENOMEM;
                        break;
                }
                (*n)++;
        }
        pthread_mutex_unlock(&cache.lock);
        return r;
}

void phi_local_cache_drop(void) {
        pthread_mutex_lock(&cache.lock);
        for (unsigned i = 0; i < LOCAL_FILES; i++) {
                local_file_free(cache.files[i]);
                cache.files[i] = NULL;
        }
        pthread_mutex_unlock(&cache.lock);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nss_phi: serves directory users and groups from the snapshot phiaccessd
 * publishes (format: phi/snapshot_format.h), and the memberships of active
 * elevation grants from the grants snapshot beside it (phi/grants_format.h).
 * Loaded into every process that
 * resolves a name, so it links libc only, never blocks on anything but a
 * microsecond-long mutex on the cold path, never talks to a socket or LDAP,
 * never calls back into NSS, and never trusts the file.
 *
 * Answers
 *   SUCCESS     the entry, copied into the caller's buffer and checked there
 *   NOTFOUND    (errno ENOENT) not in the snapshot, or never served: uid/gid 0,
 *               the name "root", ids below the snapshot's min_uid/min_gid, a
 *               user whose primary gid is below min_gid and not in the
 *               snapshot's list of allowed low primary gids
 *   TRYAGAIN    (errno ERANGE) the caller's buffer is too small; nothing else
 *               is ever reported as TRYAGAIN except ENOMEM in initgroups_dyn
 *   UNAVAIL     (errno ENOENT) no snapshot, or a corrupt one: glibc moves on to
 *               the next source as if this one were not configured
 * errno is left as the caller had it, but for *errnop, which carries the
 * answer and which glibc points at errno itself (see PROTECT_ERRNO_ANSWER).
 *
 * Mappings and threads
 *   The current snapshot lives in one of MAPPING_SLOTS static slots; `current`
 *   names it. A lookup (acquire/release) is:
 *       i = current; refs[i]++; if (current != i) { refs[i]--; retry; }
 *       ... read slot i ...; refs[i]--;
 *   all with sequentially consistent atomics. A refresh (under `lock`) maps the
 *   new file into a free slot j, publishes current = j, marks the old slot
 *   retired, and unmaps a retired slot only when it then reads refs == 0.
 *   Why that is safe: the refresher's store to current precedes its load of
 *   refs[k] in the single total order of seq_cst operations. If that load saw 0,
 *   any reader's increment of refs[k] comes later in the order, so the reader's
 *   following load of current sees the new value and it backs off without
 *   touching slot k's memory. A reader that incremented first holds the slot
 *   until its release, and the slot stays mapped. A slot is refilled only while
 *   it is not current; a stale reader that bumps its count meanwhile re-checks
 *   current before reading anything, and a reader that does see current == k
 *   loaded it after the refill was published, so it reads the new contents.
 *   A retired slot is unmapped by the refresh that retires it, by a later one,
 *   or by the last reader to leave it (with a trylock, never waiting).
 *   Signals: the hot path holds no lock, so a handler that resolves a name just
 *   nests. The cold path holds the mutex; a handler that interrupts it in the
 *   same thread and resolves a name would wait for itself, so a thread-local
 *   flag makes such a nested call skip the refresh and answer from what is
 *   mapped (or UNAVAIL). That costs nothing, where blocking signals around the
 *   refresh would cost two system calls on the first lookup of every process.
 *
 * Replacement without a system call per lookup
 *   The writer sets the old file's `superseded` word after the rename; we read
 *   it from our MAP_SHARED mapping on every lookup (a memory load) and refresh
 *   when it is set. As a safety net (writer killed between rename and marking,
 *   file replaced by hand) the path's inode is compared with ours at most once
 *   per second, timed by CLOCK_MONOTONIC_COARSE, which the vDSO answers without
 *   entering the kernel. With no usable snapshot every lookup answers UNAVAIL
 *   and the file is tried again at most once per second. A replacement that
 *   cannot be loaded makes us drop the old one too (UNAVAIL): a snapshot
 *   published to revoke a grant must not leave the old membership in force.
 *
 * Grants
 *   The grants snapshot (PHI_GRANTS_FILE_NAME in the identity snapshot's
 *   directory) is a second source with its own slots, mapped and replaced by
 *   the same code. A group lookup lists the identity group's members plus the
 *   users of its grants that are in force at the time of the call (now <
 *   expires), so a grant ends on time with the daemon stopped. A group only
 *   the grants file knows (the role's group is usually a local /etc/group one,
 *   which the identity snapshot never holds) is served from it with its
 *   grantees; a grants group whose name or gid the identity snapshot gives to
 *   another group is not used at all. initgroups_dyn adds the gid of each of
 *   the user's grants in force. No grants file means no grants, not an error;
 *   a corrupt one (it is verified whole when mapped) means no grants while the
 *   identity snapshot is still served. Grant gids obey the same floor as
 *   directory groups: never 0, never below either file's min_gid.
 *   Without a grants file mapped a new one is noticed within a second; the
 *   daemon publishes one at start-up so that the superseded mark, not the
 *   once-a-second check, tells readers of every grant after that.
 *
 * fork()
 *   The child inherits the mappings and keeps using them. The atfork handlers
 *   take the locks around fork() so the child never inherits one mid-refresh,
 *   and clear the reader counts, since the threads that held them do not exist
 *   in the child.
 */

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <nss.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "phi/grants.h"
#include "phi/macro.h"
#include "phi/parse.h"
#include "phi/snapshot.h"

#define MAPPING_SLOTS 4
#define RECHECK_SECONDS 1

/* The files the module maps: the identity snapshot and the grants snapshot. */
enum source_id {
        SRC_IDENTITY = 0,
        SRC_GRANTS,
        SRC_COUNT,
};

struct mapping {
        alignas(64) atomic_uint refs;
        atomic_bool retired;
        atomic_bool stale_mark;   /* marked superseded, yet still the file at the path */
        bool mapped;
        union {
                phi_snapshot snap;      /* SRC_IDENTITY */
                phi_grants grants;      /* SRC_GRANTS */
        };
        dev_t dev;
        ino_t ino;
};

struct source {
        struct mapping slots[MAPPING_SLOTS];
        atomic_int current;
        atomic_llong next_check;   /* monotonic seconds: stat() the path from then on */
        atomic_llong next_retry;   /* monotonic seconds: after a failed load */
};

static struct source sources[SRC_COUNT] = {
        [SRC_IDENTITY] = { .current = -1 },
        [SRC_GRANTS] = { .current = -1 },
};
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t ent_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t pw_next, gr_next;   /* enumeration cursors, under ent_lock */
static uint32_t grg_next;           /* then the groups only the grants file has */
static bool gr_identity_done;
/* Set while this thread holds `lock`: a signal handler nesting a lookup must
 * not try to take it again. initial-exec would be cheaper but is not safe for a
 * module loaded with dlopen(), so the default dynamic model stays. */
static _Thread_local volatile sig_atomic_t refreshing;

/* ---- entry points ---- */

#define EXPORT _phi_export_
EXPORT enum nss_status _nss_phi_getpwnam_r(const char *name, struct passwd *pwd, char *buf,
                                           size_t buflen, int *errnop);
EXPORT enum nss_status _nss_phi_getpwuid_r(uid_t uid, struct passwd *pwd, char *buf, size_t buflen,
                                           int *errnop);
EXPORT enum nss_status _nss_phi_setpwent(int stayopen);
EXPORT enum nss_status _nss_phi_endpwent(void);
EXPORT enum nss_status _nss_phi_getpwent_r(struct passwd *pwd, char *buf, size_t buflen,
                                           int *errnop);
EXPORT enum nss_status _nss_phi_getgrnam_r(const char *name, struct group *grp, char *buf,
                                           size_t buflen, int *errnop);
EXPORT enum nss_status _nss_phi_getgrgid_r(gid_t gid, struct group *grp, char *buf, size_t buflen,
                                           int *errnop);
EXPORT enum nss_status _nss_phi_setgrent(int stayopen);
EXPORT enum nss_status _nss_phi_endgrent(void);
EXPORT enum nss_status _nss_phi_getgrent_r(struct group *grp, char *buf, size_t buflen,
                                           int *errnop);
EXPORT enum nss_status _nss_phi_initgroups_dyn(const char *user, gid_t group, long int *start,
                                               long int *size, gid_t **groupsp, long int limit,
                                               int *errnop);

/* errno must come back as the caller left it, except for the answer: glibc
 * calls us with errnop == &errno and, on TRYAGAIN, grows its buffer and calls
 * again only if *errnop is ERANGE. So an entry point never writes *errnop
 * itself: status_of() notes the answer in the guard, and the guard's cleanup,
 * the last thing to run, restores errno and only then writes *errnop (the same
 * variable, for glibc). Restoring errno over an answer already written made
 * glibc take "buffer too small" for "not found" (systemd's UNPROTECT_ERRNO
 * exists for the same reason). */
struct errno_guard {
        int saved;
        int *errnop;
        int answer;     /* 0, or the value for *errnop */
};

static void errno_guard_done(const struct errno_guard *g) {
        errno = g->saved;
        if (g->answer != 0 && g->errnop)
                *g->errnop = g->answer;
}
#define PROTECT_ERRNO_ANSWER(errnop)                                                      \
        _cleanup_(errno_guard_done) struct errno_guard _guard = { errno, (errnop), 0 }
#define PROTECT_ERRNO PROTECT_ERRNO_ANSWER(NULL)

/* ---- time ---- */

static long long monotonic_seconds(void) {
        struct timespec ts;

        /* The coarse clocks are served by the vDSO from memory on every
         * architecture that has one: no system call, whatever the clocksource. */
        if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) < 0)
                return 0;
        return (long long) ts.tv_sec;
}

static uint64_t unix_now(void) {
        struct timespec ts;

        if (clock_gettime(CLOCK_REALTIME_COARSE, &ts) < 0 || ts.tv_sec < 0)
                return UINT64_MAX;   /* no clock: treat every expiring membership as over */
        return (uint64_t) ts.tv_sec;
}

/* ---- mappings ---- */

static const char *snapshot_path(void) {
        /* Tests point the module at their own file. secure_getenv() ignores it in
         * setuid/setgid programs (sudo, su, passwd), where the caller must not
         * choose who the users are; any other process could LD_PRELOAD anyway. */
        const char *p = secure_getenv("PHI_NSS_SNAPSHOT");
        return p && *p == '/' ? p : PHI_SNAPSHOT_PATH;
}

/* The path of src's file in buf; NULL when it does not fit (no such file). */
static const char *source_path(int src, char *buf, size_t size) {
        if (src == SRC_IDENTITY)
                return snapshot_path();
        return phi_grants_path_for(snapshot_path(), buf, size) == 0 ? buf : NULL;
}

static bool mapping_superseded(int src, const struct mapping *m) {
        return src == SRC_GRANTS ? phi_grants_superseded(&m->grants) : phi_snapshot_superseded(&m->snap);
}

static void mapping_unmap(int src, struct mapping *m) {
        if (src == SRC_GRANTS)
                phi_grants_unmap(&m->grants);
        else
                phi_snapshot_unmap(&m->snap);
        m->mapped = false;
}

/* Unmaps every retired slot of src no reader is inside. Under lock. */
static void reclaim(int src) {
        struct source *so = &sources[src];
        int cur = atomic_load(&so->current);

        for (int k = 0; k < MAPPING_SLOTS; k++) {
                struct mapping *m = &so->slots[k];
                if (k == cur || !m->mapped || !atomic_load(&m->retired) || atomic_load(&m->refs) != 0)
                        continue;
                mapping_unmap(src, m);
                atomic_store(&m->retired, false);
        }
}

/* Drops src's current file (UNAVAIL, or no grants, from now on). Under lock. */
static void retire_current(int src) {
        int cur = atomic_exchange(&sources[src].current, -1);

        if (cur >= 0)
                atomic_store(&sources[src].slots[cur].retired, true);
}

/* The cold path: called when src has no file, the current one is marked
 * superseded, or the periodic inode check is due. `seen` is the slot the caller
 * saw as current; if another thread has changed it since, there is nothing to do.
 * Returns 0 when the caller should look again, or a negative errno when there is
 * no usable file. */
static int refresh(int src, int seen) {
        struct source *so = &sources[src];
        long long now = monotonic_seconds();
        char buf[PATH_MAX];
        const char *path;
        int cur, r = 0;
        struct stat sb;
        struct mapping fresh = { 0 };

        if (refreshing)
                return atomic_load(&so->current) >= 0 ? 0 : -ENOENT;
        refreshing = true;
        (void) pthread_mutex_lock(&lock);

        path = source_path(src, buf, sizeof(buf));
        cur = atomic_load(&so->current);
        if (cur != seen)
                goto out;
        if (cur >= 0) {
                struct mapping *m = &so->slots[cur];
                bool marked = mapping_superseded(src, m) && !atomic_load(&m->stale_mark);

                if (!marked && now < atomic_load(&so->next_check))
                        goto out;   /* another thread just did the periodic check */
                atomic_store(&so->next_check, now + RECHECK_SECONDS);
                if (path && stat(path, &sb) == 0 && sb.st_dev == m->dev && sb.st_ino == m->ino) {
                        /* Nothing newer to map. A mark on the file that is still in
                         * place is not ours to act on again and again. */
                        if (marked)
                                atomic_store(&m->stale_mark, true);
                        goto out;
                }
        } else if (now < atomic_load(&so->next_retry)) {
                r = -ENOENT;
                goto out;
        }

        if (!path)
                r = -ENAMETOOLONG;
        else if (src == SRC_GRANTS)
                r = phi_grants_map(path, &fresh.grants, &fresh.dev, &fresh.ino);
        else
                r = phi_snapshot_map(path, &fresh.snap, &fresh.dev, &fresh.ino);
        if (r < 0) {
                /* A replacement that cannot be used drops the old file too: a
                 * file published to end a grant must not leave it in force. */
                retire_current(src);
                atomic_store(&so->next_retry, now + RECHECK_SECONDS);
                goto out;
        }
        fresh.mapped = true;
        for (int k = 0; k < MAPPING_SLOTS; k++) {
                struct mapping *m = &so->slots[k];
                if (k == cur || atomic_load(&m->refs) != 0)
                        continue;
                if (m->mapped) {
                        if (!atomic_load(&m->retired))
                                continue;
                        mapping_unmap(src, m);
                }
                if (src == SRC_GRANTS)
                        m->grants = fresh.grants;
                else
                        m->snap = fresh.snap;
                m->dev = fresh.dev;
                m->ino = fresh.ino;
                m->mapped = true;
                atomic_store(&m->stale_mark, false);
                atomic_store(&m->retired, false);
                atomic_store(&so->current, k);
                if (cur >= 0)
                        atomic_store(&so->slots[cur].retired, true);
                atomic_store(&so->next_check, now + RECHECK_SECONDS);
                fresh.mapped = false;
                break;
        }
        /* Every other slot still has readers inside (a stalled thread per old
         * generation): keep serving the current one and try again next time. */
        if (fresh.mapped)
                mapping_unmap(src, &fresh);
out:
        reclaim(src);
        (void) pthread_mutex_unlock(&lock);
        refreshing = false;
        return r;
}

static void release(int src, int i) {
        struct mapping *m = &sources[src].slots[i];

        if (atomic_fetch_sub(&m->refs, 1) == 1 && atomic_load(&m->retired) &&
            pthread_mutex_trylock(&lock) == 0) {
                reclaim(src);
                (void) pthread_mutex_unlock(&lock);
        }
}

/* Returns the slot of src to read from, held until release(), or a negative
 * errno. */
static int acquire(int src) {
        struct source *so = &sources[src];

        for (int attempt = 0;; attempt++) {
                int i = atomic_load(&so->current), r;

                if (i >= 0) {
                        struct mapping *m = &so->slots[i];
                        atomic_fetch_add(&m->refs, 1);
                        if (atomic_load(&so->current) != i) {
                                release(src, i);
                                continue;
                        }
                        /* Fresh, or we tried enough: a file that keeps being
                         * replaced under us is still a consistent one. */
                        if (attempt >= 3 ||
                            ((!mapping_superseded(src, m) || atomic_load(&m->stale_mark)) &&
                             monotonic_seconds() < atomic_load(&so->next_check)))
                                return i;
                        release(src, i);
                } else if (attempt >= 3 || monotonic_seconds() < atomic_load(&so->next_retry)) {
                        /* No file, tried less than a second ago: no lock, no
                         * system call (no grants file is the usual case). */
                        return -ENOENT;
                }
                r = refresh(src, i);
                if (r < 0)
                        return r;
        }
}

static const phi_snapshot *snap_at(int i) {
        return &sources[SRC_IDENTITY].slots[i].snap;
}

/* The files one answer reads, held together. */
struct view {
        int id, gr;                 /* slots held, or -1 */
        const phi_snapshot *s;      /* NULL: no usable identity snapshot */
        const phi_grants *g;        /* NULL: no grants */
};

/* -EIO when neither file is usable. */
static int view_acquire(struct view *v, bool grants) {
        v->id = acquire(SRC_IDENTITY);
        v->gr = grants ? acquire(SRC_GRANTS) : -1;
        v->s = v->id >= 0 ? &sources[SRC_IDENTITY].slots[v->id].snap : NULL;
        v->g = v->gr >= 0 ? &sources[SRC_GRANTS].slots[v->gr].grants : NULL;
        return v->s || v->g ? 0 : -EIO;
}

static void view_release(struct view *v) {
        if (v->id >= 0)
                release(SRC_IDENTITY, v->id);
        if (v->gr >= 0)
                release(SRC_GRANTS, v->gr);
        *v = (struct view) { -1, -1, NULL, NULL };
}

/* ---- answers ---- */

/* The NSS status for an internal result; the errno value for it goes into the
 * entry point's guard (see PROTECT_ERRNO_ANSWER). */
static enum nss_status status_of(int r, struct errno_guard *g) {
        switch (r) {
        case 0:
                return NSS_STATUS_SUCCESS;
        case -ENOENT:
                g->answer = ENOENT;
                return NSS_STATUS_NOTFOUND;
        case -ERANGE:
                g->answer = ERANGE;
                return NSS_STATUS_TRYAGAIN;
        case -ENOMEM:   /* initgroups_dyn only: glibc keeps what it has */
                g->answer = ENOMEM;
                return NSS_STATUS_TRYAGAIN;
        default:
                g->answer = ENOENT;
                return NSS_STATUS_UNAVAIL;
        }
}

static bool is_root_name(const char *name) {
        return strcmp(name, "root") == 0;
}

/* A user whose primary gid the file's own bounds forbid (a system group such
 * as sudo's 27) is not served at all: every login would carry that group. */
static bool user_served(const phi_snapshot *s, const struct phi_snapshot_user *u) {
        return u->uid != 0 && u->uid >= s->min_uid && u->uid != (uid_t) -1 &&
               phi_snapshot_primary_gid_allowed(s, u->gid) && !is_root_name(u->name.s);
}

static bool group_served(const phi_snapshot *s, const struct phi_snapshot_group *g) {
        return g->gid != 0 && g->gid >= s->min_gid && g->gid != (gid_t) -1 &&
               !is_root_name(g->name.s);
}

/* A copied-out field is one line of text without the separator: what getent
 * prints must not be able to forge another entry. */
static bool field_ok(const char *s, size_t len) {
        return strlen(s) == len && !memchr(s, ':', len) && !memchr(s, '\n', len);
}

static char *put_str(char **p, const struct phi_snapshot_str *s) {
        char *start = *p;

        memcpy(start, s->s, s->len);
        start[s->len] = '\0';
        *p += s->len + 1;
        return start;
}

static int fill_passwd(const struct phi_snapshot_user *u, struct passwd *pwd, char *buf,
                       size_t buflen) {
        static const struct phi_snapshot_str no_password = { "*", 1 };
        size_t need = u->name.len + 1 + 2 + u->gecos.len + 1 + u->home.len + 1 + u->shell.len + 1;
        char *p = buf;
        struct passwd out;

        if (need > buflen)
                return -ERANGE;
        /* Copy, then validate the copy: the mapping is not trusted to hold still. */
        out = (struct passwd) {
                .pw_name = put_str(&p, &u->name),
                .pw_passwd = put_str(&p, &no_password),
                .pw_uid = u->uid,
                .pw_gid = u->gid,
                .pw_gecos = put_str(&p, &u->gecos),
                .pw_dir = put_str(&p, &u->home),
                .pw_shell = put_str(&p, &u->shell),
        };
        if (!phi_name_valid(out.pw_name) || strlen(out.pw_name) != u->name.len ||
            !field_ok(out.pw_gecos, u->gecos.len) || !field_ok(out.pw_dir, u->home.len) ||
            !field_ok(out.pw_shell, u->shell.len))
                return -EBADMSG;
        *pwd = out;
        return 0;
}

static bool str_same(const struct phi_snapshot_str *a, const struct phi_snapshot_str *b) {
        return a->len == b->len && memcmp(a->s, b->s, a->len) == 0;
}

/* A grants group may be used when its gid passes the floor of both files and
 * the identity snapshot gives neither its name nor its gid to another group. */
static bool grant_group_usable(const struct view *v, const struct phi_grants_group_view *gg) {
        struct phi_snapshot_group ig;
        int r;

        if (gg->gid == 0 || gg->gid == (gid_t) -1 || gg->gid < v->g->min_gid ||
            is_root_name(gg->name.s))
                return false;
        if (!v->s)
                return true;
        if (gg->gid < v->s->min_gid)
                return false;
        r = phi_snapshot_group_by_name(v->s, gg->name.s, &ig);
        if (r != -ENOENT && (r < 0 || ig.gid != gg->gid))
                return false;
        r = phi_snapshot_group_by_gid(v->s, gg->gid, &ig);
        return r == -ENOENT || (r == 0 && str_same(&ig.name, &gg->name));
}

/* A group only the grants file knows: served from it alone. */
static bool grant_group_alone(const struct view *v, const struct phi_grants_group_view *gg) {
        struct phi_snapshot_group ig;

        return grant_group_usable(v, gg) &&
               (!v->s || phi_snapshot_group_by_gid(v->s, gg->gid, &ig) == -ENOENT);
}

/* The grants group to list with identity group ig: the same name and gid. */
static bool grant_group_for(const struct view *v, const struct phi_snapshot_group *ig,
                            struct phi_grants_group_view *ret) {
        return v->g && phi_grants_group_by_gid(v->g, ig->gid, ret) == 0 &&
               str_same(&ret->name, &ig->name) && grant_group_usable(v, ret);
}

/* Whether identity group ig lists user as a member in force (through the
 * user -> groups index: a group may have 50,000 members, a user few groups). */
static bool identity_member(const phi_snapshot *s, const struct phi_snapshot_group *ig,
                            const struct phi_snapshot_str *user, uint64_t now) {
        struct phi_snapshot_memberof m;

        if (phi_snapshot_memberof_by_name(s, user->s, &m) < 0)
                return false;
        for (uint32_t k = 0; k < m.count; k++) {
                uint64_t expires;
                gid_t gid;
                if (phi_snapshot_memberof_at(s, &m, k, &gid, &expires) < 0)
                        return false;
                if (gid == ig->gid && phi_snapshot_membership_live(expires, now))
                        return true;
        }
        return false;
}

/* The member grant k of gg adds, in *ret: in force now, the first in force of
 * its user in this group (two grants list a user once; grants are sorted by
 * user), and not already a member of ig. -ENOENT when it adds none. */
static int grant_member(const struct view *v, const struct phi_snapshot_group *ig,
                        const struct phi_grants_group_view *gg, uint32_t k, uint64_t now,
                        struct phi_snapshot_str *ret) {
        struct phi_grant_view gr, prev;
        int r;

        if ((r = phi_grants_group_grant(v->g, gg, k, &gr)) < 0)
                return r;
        if (!phi_grant_live(gr.expires, now))
                return -ENOENT;
        for (uint32_t j = k; j-- > 0;) {
                if ((r = phi_grants_group_grant(v->g, gg, j, &prev)) < 0)
                        return r;
                if (!str_same(&prev.user, &gr.user))
                        break;
                if (phi_grant_live(prev.expires, now))
                        return -ENOENT;
        }
        if (ig && identity_member(v->s, ig, &gr.user, now))
                return -ENOENT;
        *ret = gr.user;
        return 0;
}

/* The group entry: identity group ig (or NULL) with the members it lists,
 * plus those of grants group gg (or NULL) that are in force. */
static int fill_group(const struct view *v, const struct phi_snapshot_group *ig,
                      const struct phi_grants_group_view *gg, struct group *grp, char *buf,
                      size_t buflen) {
        const struct phi_snapshot_str *gname = ig ? &ig->name : &gg->name;
        uint32_t n_id = ig ? ig->n_members : 0, n_gr = gg ? gg->count : 0;
        uint64_t now = gg ? unix_now() : 0;
        size_t n_live = 0, strings = gname->len + 1 + 2, pad, need;
        char **mem, *p;
        struct group out;
        int r;

        /* First pass: which members are in force, and how much room they need. */
        for (uint32_t k = 0; k < n_id; k++) {
                struct phi_snapshot_str name;
                uint64_t expires;
                if ((r = phi_snapshot_group_member(v->s, ig, k, &name, &expires)) < 0)
                        return r;
                if (expires != 0 && now == 0)
                        now = unix_now();
                if (!phi_snapshot_membership_live(expires, now))
                        continue;
                n_live++;
                strings += name.len + 1;
        }
        for (uint32_t k = 0; k < n_gr; k++) {
                struct phi_snapshot_str name;
                r = grant_member(v, ig, gg, k, now, &name);
                if (r == -ENOENT)
                        continue;
                if (r < 0)
                        return r;
                n_live++;
                strings += name.len + 1;
        }
        pad = (alignof(char *) - (uintptr_t) buf % alignof(char *)) % alignof(char *);
        if (n_live > (SIZE_MAX - strings - pad) / sizeof(char *) - 1)
                return -ERANGE;
        need = pad + (n_live + 1) * sizeof(char *) + strings;
        if (need > buflen)
                return -ERANGE;

        mem = (char **) (void *) (buf + pad);
        p = buf + pad + (n_live + 1) * sizeof(char *);
        out = (struct group) { .gr_gid = ig ? ig->gid : gg->gid, .gr_mem = mem };
        out.gr_name = put_str(&p, gname);
        out.gr_passwd = put_str(&p, &(struct phi_snapshot_str) { "*", 1 });
        if (!phi_name_valid(out.gr_name) || strlen(out.gr_name) != gname->len)
                return -EBADMSG;
        mem[0] = NULL;
        for (uint32_t k = 0, i = 0; k < n_id + n_gr; k++) {
                struct phi_snapshot_str name;
                uint64_t expires = 0;
                if (k < n_id) {
                        if ((r = phi_snapshot_group_member(v->s, ig, k, &name, &expires)) < 0)
                                return r;
                        if (!phi_snapshot_membership_live(expires, now))
                                continue;
                } else {
                        r = grant_member(v, ig, gg, k - n_id, now, &name);
                        if (r == -ENOENT)
                                continue;
                        if (r < 0)
                                return r;
                }
                /* The same walk as above over an immutable file: a different
                 * count would mean the file changed under us. */
                if (i >= n_live || (size_t) (p - buf) + name.len + 1 > buflen)
                        return -EBADMSG;
                mem[i] = put_str(&p, &name);
                if (!phi_name_valid(mem[i]) || strlen(mem[i]) != name.len)
                        return -EBADMSG;
                mem[++i] = NULL;
        }
        mem[n_live] = NULL;
        *grp = out;
        return 0;
}

/* ---- passwd ---- */

enum nss_status _nss_phi_getpwnam_r(const char *name, struct passwd *pwd, char *buf, size_t buflen,
                                    int *errnop) {
        PROTECT_ERRNO_ANSWER(errnop);
        struct phi_snapshot_user u;
        int i, r;

        if (is_root_name(name))
                return status_of(-ENOENT, &_guard);
        if ((i = acquire(SRC_IDENTITY)) < 0)
                return status_of(-EIO, &_guard);
        r = phi_snapshot_user_by_name(snap_at(i), name, &u);
        if (r == 0)
                r = user_served(snap_at(i), &u) ? fill_passwd(&u, pwd, buf, buflen) : -ENOENT;
        release(SRC_IDENTITY, i);
        return status_of(r, &_guard);
}

enum nss_status _nss_phi_getpwuid_r(uid_t uid, struct passwd *pwd, char *buf, size_t buflen,
                                    int *errnop) {
        PROTECT_ERRNO_ANSWER(errnop);
        struct phi_snapshot_user u;
        int i, r;

        if (uid == 0)
                return status_of(-ENOENT, &_guard);
        if ((i = acquire(SRC_IDENTITY)) < 0)
                return status_of(-EIO, &_guard);
        r = phi_snapshot_user_by_uid(snap_at(i), uid, &u);
        if (r == 0)
                r = user_served(snap_at(i), &u) ? fill_passwd(&u, pwd, buf, buflen) : -ENOENT;
        release(SRC_IDENTITY, i);
        return status_of(r, &_guard);
}

enum nss_status _nss_phi_setpwent(int stayopen) {
        PROTECT_ERRNO;

        (void) stayopen;
        (void) pthread_mutex_lock(&ent_lock);
        pw_next = 0;
        (void) pthread_mutex_unlock(&ent_lock);
        return NSS_STATUS_SUCCESS;
}

enum nss_status _nss_phi_endpwent(void) {
        return _nss_phi_setpwent(0);
}

/* The cursor is an index: if the snapshot is replaced during an enumeration, it
 * continues in the new one (entries may be skipped or repeated, as with any
 * source that changes while it is listed). */
enum nss_status _nss_phi_getpwent_r(struct passwd *pwd, char *buf, size_t buflen, int *errnop) {
        PROTECT_ERRNO_ANSWER(errnop);
        struct phi_snapshot_user u;
        int i, r;

        (void) pthread_mutex_lock(&ent_lock);
        if ((i = acquire(SRC_IDENTITY)) < 0) {
                r = -EIO;
                goto out;
        }
        for (;;) {
                r = phi_snapshot_user_at(snap_at(i), pw_next, &u);
                if (r < 0)
                        break;
                if (!user_served(snap_at(i), &u)) {
                        pw_next++;
                        continue;
                }
                r = fill_passwd(&u, pwd, buf, buflen);
                if (r == 0)
                        pw_next++;
                break;
        }
        release(SRC_IDENTITY, i);
out:
        (void) pthread_mutex_unlock(&ent_lock);
        return status_of(r, &_guard);
}

/* ---- group ---- */

/* The answer for a group looked up in both files: identity group ig (r_id is
 * its lookup's result) with the grants of the same name and gid, or grants
 * group gg (r_gg) alone when the identity snapshot knows neither its name nor
 * its gid. */
static int group_answer(const struct view *v, int r_id, const struct phi_snapshot_group *ig, int r_gg,
                        const struct phi_grants_group_view *gg, struct group *grp, char *buf,
                        size_t buflen) {
        struct phi_grants_group_view with;

        if (r_id == 0) {
                if (!group_served(v->s, ig))
                        return -ENOENT;
                return fill_group(v, ig, grant_group_for(v, ig, &with) ? &with : NULL, grp, buf, buflen);
        }
        if (r_id != -ENOENT)
                return r_id;   /* a corrupt identity snapshot: UNAVAIL, as without grants */
        if (r_gg == 0 && grant_group_alone(v, gg))
                return fill_group(v, NULL, gg, grp, buf, buflen);
        return v->s ? -ENOENT : -EIO;
}

enum nss_status _nss_phi_getgrnam_r(const char *name, struct group *grp, char *buf, size_t buflen,
                                    int *errnop) {
        PROTECT_ERRNO_ANSWER(errnop);
        struct phi_snapshot_group ig;
        struct phi_grants_group_view gg;
        struct view v;
        int r, r_id, r_gg;

        if (is_root_name(name))
                return status_of(-ENOENT, &_guard);
        if (view_acquire(&v, true) < 0)
                return status_of(-EIO, &_guard);
        r_id = v.s ? phi_snapshot_group_by_name(v.s, name, &ig) : -ENOENT;
        r_gg = v.g ? phi_grants_group_by_name(v.g, name, &gg) : -ENOENT;
        r = group_answer(&v, r_id, &ig, r_gg, &gg, grp, buf, buflen);
        view_release(&v);
        return status_of(r, &_guard);
}

enum nss_status _nss_phi_getgrgid_r(gid_t gid, struct group *grp, char *buf, size_t buflen,
                                    int *errnop) {
        PROTECT_ERRNO_ANSWER(errnop);
        struct phi_snapshot_group ig;
        struct phi_grants_group_view gg;
        struct view v;
        int r, r_id, r_gg;

        if (gid == 0)
                return status_of(-ENOENT, &_guard);
        if (view_acquire(&v, true) < 0)
                return status_of(-EIO, &_guard);
        r_id = v.s ? phi_snapshot_group_by_gid(v.s, gid, &ig) : -ENOENT;
        r_gg = v.g ? phi_grants_group_by_gid(v.g, gid, &gg) : -ENOENT;
        r = group_answer(&v, r_id, &ig, r_gg, &gg, grp, buf, buflen);
        view_release(&v);
        return status_of(r, &_guard);
}

enum nss_status _nss_phi_setgrent(int stayopen) {
        PROTECT_ERRNO;

        (void) stayopen;
        (void) pthread_mutex_lock(&ent_lock);
        gr_next = 0;
        grg_next = 0;
        gr_identity_done = false;
        (void) pthread_mutex_unlock(&ent_lock);
        return NSS_STATUS_SUCCESS;
}

enum nss_status _nss_phi_endgrent(void) {
        return _nss_phi_setgrent(0);
}

/* The identity snapshot's groups (with their grants), then the groups only
 * the grants file has. */
enum nss_status _nss_phi_getgrent_r(struct group *grp, char *buf, size_t buflen, int *errnop) {
        PROTECT_ERRNO_ANSWER(errnop);
        struct phi_snapshot_group ig;
        struct phi_grants_group_view gg;
        struct view v;
        int r;

        (void) pthread_mutex_lock(&ent_lock);
        if (view_acquire(&v, true) < 0) {
                r = -EIO;
                goto out;
        }
        for (;;) {
                if (v.s && !gr_identity_done) {
                        r = phi_snapshot_group_at(v.s, gr_next, &ig);
                        if (r == -ENOENT) {
                                gr_identity_done = true;
                                continue;
                        }
                        if (r < 0)
                                break;
                        if (!group_served(v.s, &ig)) {
                                gr_next++;
                                continue;
                        }
                        r = group_answer(&v, 0, &ig, -ENOENT, NULL, grp, buf, buflen);
                        if (r == 0)
                                gr_next++;
                        break;
                }
                if (!v.g) {
                        r = -ENOENT;
                        break;
                }
                r = phi_grants_group_at(v.g, grg_next, &gg);
                if (r < 0)
                        break;
                if (!grant_group_alone(&v, &gg)) {
                        grg_next++;
                        continue;
                }
                r = fill_group(&v, NULL, &gg, grp, buf, buflen);
                if (r == 0)
                        grg_next++;
                break;
        }
        view_release(&v);
out:
        (void) pthread_mutex_unlock(&ent_lock);
        return status_of(r, &_guard);
}

/* ---- initgroups ---- */

/* Appends gid unless present in the first `before` entries. Grows the array
 * as glibc expects: doubling, capped at limit when limit > 0. */
static int add_gid(gid_t gid, long int before, long int *start, long int *size, gid_t **groupsp,
                   long int limit) {
        for (long int k = 0; k < before; k++)
                if ((*groupsp)[k] == gid)
                        return 0;
        if (*start == *size) {
                long int n;
                gid_t *p;

                if (limit > 0 && *size >= limit)
                        return -ENOSPC;
                n = *size > 0 ? *size * 2 : 16;
                if (limit > 0 && n > limit)
                        n = limit;
                p = reallocarray(*groupsp, (size_t) n, sizeof(gid_t));
                if (!p)
                        return -ENOMEM;
                *groupsp = p;
                *size = n;
        }
        (*groupsp)[(*start)++] = gid;
        return 0;
}

/* The directory groups of user: 0, -ENOENT (none), or an error. The identity
 * snapshot's gids are unique per user by construction, so only what other
 * sources put there (the first `before` entries) is checked for repeats. */
static int identity_groups(const phi_snapshot *s, const char *user, gid_t group, long int before,
                           long int *start, long int *size, gid_t **groupsp, long int limit) {
        struct phi_snapshot_memberof m;
        uint64_t now = 0;
        int r = phi_snapshot_memberof_by_name(s, user, &m);

        for (uint32_t k = 0; r == 0 && k < m.count; k++) {
                uint64_t expires;
                gid_t gid;

                if ((r = phi_snapshot_memberof_at(s, &m, k, &gid, &expires)) < 0)
                        break;
                if (expires != 0 && now == 0)
                        now = unix_now();
                if (gid == group || gid == 0 || gid < s->min_gid || gid == (gid_t) -1 ||
                    !phi_snapshot_membership_live(expires, now))
                        continue;
                r = add_gid(gid, before, start, size, groupsp, limit);
        }
        return r;
}

/* The groups of user's grants in force: 0, -ENOENT (no grant in the file), or
 * -ENOMEM / -ENOSPC. A grant's gid may repeat one already in the list (a
 * directory member granted the same group), so the whole list is checked. */
static int grant_groups(const struct view *v, const char *user, gid_t group, long int *start,
                        long int *size, gid_t **groupsp, long int limit) {
        struct phi_grants_user_view gu;
        uint64_t now = unix_now();
        int r = 0;

        if (phi_grants_user_by_name(v->g, user, &gu) < 0)
                return -ENOENT;
        for (uint32_t k = 0; r == 0 && k < gu.count; k++) {
                struct phi_grants_group_view gg;
                struct phi_grant_view gr;

                if (phi_grants_user_grant(v->g, &gu, k, &gr) < 0 ||
                    phi_grants_group_at(v->g, gr.group, &gg) < 0)
                        break;   /* changed under us: what is in the list stays */
                if (!phi_grant_live(gr.expires, now) || gg.gid == group || !grant_group_usable(v, &gg))
                        continue;
                r = add_gid(gg.gid, *start, start, size, groupsp, limit);
        }
        return r;
}

enum nss_status _nss_phi_initgroups_dyn(const char *user, gid_t group, long int *start,
                                        long int *size, gid_t **groupsp, long int limit,
                                        int *errnop) {
        PROTECT_ERRNO_ANSWER(errnop);
        struct phi_snapshot_user u;
        long int before = *start;
        struct view v;
        int r = -EIO, r_gr = -ENOENT;

        if (is_root_name(user))
                return status_of(-ENOENT, &_guard);
        if (view_acquire(&v, true) < 0)
                return status_of(-EIO, &_guard);
        if (v.s) {
                /* A directory user the module does not serve gets no groups from
                 * it, not even granted ones; a local user listed in directory
                 * groups (or granted one) has no record here. */
                r = phi_snapshot_user_by_name(v.s, user, &u);
                if (r == 0 && !user_served(v.s, &u)) {
                        r = -ENOENT;
                        goto done;
                }
                if (r == 0 || r == -ENOENT)
                        r = identity_groups(v.s, user, group, before, start, size, groupsp, limit);
        }
        /* r: 0 (groups added), -ENOENT (none), -EIO (no identity snapshot), or
         * an error that ends the answer. */
        if (v.g && (r == 0 || r == -ENOENT || r == -EIO)) {
                r_gr = grant_groups(&v, user, group, start, size, groupsp, limit);
                if (r_gr != -ENOENT)
                        r = r_gr;
        }
done:
        view_release(&v);
        if (r == -ENOSPC)   /* the caller's limit: what fits is the answer */
                r = 0;
        return status_of(r, &_guard);
}

/* ---- fork ---- */

static void atfork_prepare(void) {
        (void) pthread_mutex_lock(&ent_lock);
        (void) pthread_mutex_lock(&lock);
}

static void atfork_parent(void) {
        (void) pthread_mutex_unlock(&lock);
        (void) pthread_mutex_unlock(&ent_lock);
}

static void atfork_child(void) {
        for (int src = 0; src < SRC_COUNT; src++)
                for (int k = 0; k < MAPPING_SLOTS; k++)
                        atomic_store(&sources[src].slots[k].refs, 0);
        (void) pthread_mutex_unlock(&lock);
        (void) pthread_mutex_unlock(&ent_lock);
}

__attribute__((constructor)) static void nss_phi_init(void) {
        (void) pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

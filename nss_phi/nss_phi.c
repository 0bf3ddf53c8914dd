/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nss_phi: serves directory users and groups from the snapshot phiaccessd
 * publishes (format: phi/snapshot_format.h). Loaded into every process that
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
 * fork()
 *   The child inherits the mappings and keeps using them. The atfork handlers
 *   take the locks around fork() so the child never inherits one mid-refresh,
 *   and clear the reader counts, since the threads that held them do not exist
 *   in the child.
 */

#include <errno.h>
#include <grp.h>
#include <nss.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "phi/macro.h"
#include "phi/parse.h"
#include "phi/snapshot.h"

#define MAPPING_SLOTS 4
#define RECHECK_SECONDS 1

struct mapping {
        alignas(64) atomic_uint refs;
        atomic_bool retired;
        atomic_bool stale_mark;   /* marked superseded, yet still the file at the path */
        bool mapped;
        phi_snapshot snap;
        dev_t dev;
        ino_t ino;
};

static struct mapping slots[MAPPING_SLOTS];
static atomic_int current = -1;
static atomic_llong next_check;   /* monotonic seconds: stat() the path from then on */
static atomic_llong next_retry;   /* monotonic seconds: after a failed load */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t ent_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t pw_next, gr_next;   /* enumeration cursors, under ent_lock */
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

/* Unmaps every retired slot no reader is inside. Under lock. */
static void reclaim(void) {
        int cur = atomic_load(&current);

        for (int k = 0; k < MAPPING_SLOTS; k++) {
                struct mapping *m = &slots[k];
                if (k == cur || !m->mapped || !atomic_load(&m->retired) || atomic_load(&m->refs) != 0)
                        continue;
                phi_snapshot_unmap(&m->snap);
                m->mapped = false;
                atomic_store(&m->retired, false);
        }
}

/* Drops the current snapshot (UNAVAIL from now on). Under lock. */
static void retire_current(void) {
        int cur = atomic_exchange(&current, -1);

        if (cur >= 0)
                atomic_store(&slots[cur].retired, true);
}

/* The cold path: called when there is no snapshot, the current one is marked
 * superseded, or the periodic inode check is due. `seen` is the slot the caller
 * saw as current; if another thread has changed it since, there is nothing to do.
 * Returns 0 when the caller should look again, or a negative errno when there is
 * no usable snapshot. */
static int refresh(int seen) {
        long long now = monotonic_seconds();
        int cur, r = 0;
        struct stat sb;
        phi_snapshot snap;
        dev_t dev;
        ino_t ino;

        if (refreshing)
                return atomic_load(&current) >= 0 ? 0 : -ENOENT;
        refreshing = true;
        (void) pthread_mutex_lock(&lock);

        cur = atomic_load(&current);
        if (cur != seen)
                goto out;
        if (cur >= 0) {
                struct mapping *m = &slots[cur];
                bool marked = phi_snapshot_superseded(&m->snap) && !atomic_load(&m->stale_mark);

                if (!marked && now < atomic_load(&next_check))
                        goto out;   /* another thread just did the periodic check */
                atomic_store(&next_check, now + RECHECK_SECONDS);
                if (stat(snapshot_path(), &sb) == 0 && sb.st_dev == m->dev && sb.st_ino == m->ino) {
                        /* Nothing newer to map. A mark on the file that is still in
                         * place is not ours to act on again and again. */
                        if (marked)
                                atomic_store(&m->stale_mark, true);
                        goto out;
                }
        } else if (now < atomic_load(&next_retry)) {
                r = -ENOENT;
                goto out;
        }

        r = phi_snapshot_map(snapshot_path(), &snap, &dev, &ino);
        if (r < 0) {
                retire_current();
                atomic_store(&next_retry, now + RECHECK_SECONDS);
                goto out;
        }
        for (int k = 0; k < MAPPING_SLOTS; k++) {
                struct mapping *m = &slots[k];
                if (k == cur || atomic_load(&m->refs) != 0)
                        continue;
                if (m->mapped) {
                        if (!atomic_load(&m->retired))
                                continue;
                        phi_snapshot_unmap(&m->snap);
                        m->mapped = false;
                }
                m->snap = snap;
                m->dev = dev;
                m->ino = ino;
                m->mapped = true;
                atomic_store(&m->stale_mark, false);
                atomic_store(&m->retired, false);
                atomic_store(&current, k);
                if (cur >= 0)
                        atomic_store(&slots[cur].retired, true);
                atomic_store(&next_check, now + RECHECK_SECONDS);
                snap.data = NULL;
                break;
        }
        /* Every other slot still has readers inside (a stalled thread per old
         * generation): keep serving the current one and try again next time. */
        phi_snapshot_unmap(&snap);
out:
        reclaim();
        (void) pthread_mutex_unlock(&lock);
        refreshing = false;
        return r;
}

static void release(int i) {
        struct mapping *m = &slots[i];

        if (atomic_fetch_sub(&m->refs, 1) == 1 && atomic_load(&m->retired) &&
            pthread_mutex_trylock(&lock) == 0) {
                reclaim();
                (void) pthread_mutex_unlock(&lock);
        }
}

/* Returns the slot to read from, held until release(), or a negative errno. */
static int acquire(void) {
        for (int attempt = 0;; attempt++) {
                int i = atomic_load(&current), r;

                if (i >= 0) {
                        atomic_fetch_add(&slots[i].refs, 1);
                        if (atomic_load(&current) != i) {
                                release(i);
                                continue;
                        }
                        /* Fresh, or we tried enough: a snapshot that keeps being
                         * replaced under us is still a consistent one. */
                        if (attempt >= 3 ||
                            ((!phi_snapshot_superseded(&slots[i].snap) ||
                              atomic_load(&slots[i].stale_mark)) &&
                             monotonic_seconds() < atomic_load(&next_check)))
                                return i;
                        release(i);
                } else if (attempt >= 3) {
                        return -ENOENT;
                }
                r = refresh(i);
                if (r < 0)
                        return r;
        }
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

static int fill_group(const phi_snapshot *s, const struct phi_snapshot_group *g, struct group *grp,
                      char *buf, size_t buflen) {
        uint64_t now = 0;
        size_t n_live = 0, strings = g->name.len + 1 + 2, pad, need;
        char **mem, *p;
        struct group out;
        int r;

        /* First pass: which members are in force, and how much room they need. */
        for (uint32_t k = 0; k < g->n_members; k++) {
                struct phi_snapshot_str name;
                uint64_t expires;
                if ((r = phi_snapshot_group_member(s, g, k, &name, &expires)) < 0)
                        return r;
                if (expires != 0 && now == 0)
                        now = unix_now();
                if (!phi_snapshot_membership_live(expires, now))
                        continue;
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
        out = (struct group) { .gr_gid = g->gid, .gr_mem = mem };
        out.gr_name = put_str(&p, &g->name);
        out.gr_passwd = put_str(&p, &(struct phi_snapshot_str) { "*", 1 });
        if (!phi_name_valid(out.gr_name) || strlen(out.gr_name) != g->name.len)
                return -EBADMSG;
        for (uint32_t k = 0, i = 0; k < g->n_members; k++) {
                struct phi_snapshot_str name;
                uint64_t expires;
                if ((r = phi_snapshot_group_member(s, g, k, &name, &expires)) < 0)
                        return r;
                if (!phi_snapshot_membership_live(expires, now))
                        continue;
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
        if ((i = acquire()) < 0)
                return status_of(-EIO, &_guard);
        r = phi_snapshot_user_by_name(&slots[i].snap, name, &u);
        if (r == 0)
                r = user_served(&slots[i].snap, &u) ? fill_passwd(&u, pwd, buf, buflen) : -ENOENT;
        release(i);
        return status_of(r, &_guard);
}

enum nss_status _nss_phi_getpwuid_r(uid_t uid, struct passwd *pwd, char *buf, size_t buflen,
                                    int *errnop) {
        PROTECT_ERRNO_ANSWER(errnop);
        struct phi_snapshot_user u;
        int i, r;

        if (uid == 0)
                return status_of(-ENOENT, &_guard);
        if ((i = acquire()) < 0)
                return status_of(-EIO, &_guard);
        r = phi_snapshot_user_by_uid(&slots[i].snap, uid, &u);
        if (r == 0)
                r = user_served(&slots[i].snap, &u) ? fill_passwd(&u, pwd, buf, buflen) : -ENOENT;
        release(i);
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
        if ((i = acquire()) < 0) {
                r = -EIO;
                goto out;
        }
        for (;;) {
                r = phi_snapshot_user_at(&slots[i].snap, pw_next, &u);
                if (r < 0)
                        break;
                if (!user_served(&slots[i].snap, &u)) {
                        pw_next++;
                        continue;
                }
                r = fill_passwd(&u, pwd, buf, buflen);
                if (r == 0)
                        pw_next++;
                break;
        }
        release(i);
out:
        (void) pthread_mutex_unlock(&ent_lock);
        return status_of(r, &_guard);
}

/* ---- group ---- */

enum nss_status _nss_phi_getgrnam_r(const char *name, struct group *grp, char *buf, size_t buflen,
                                    int *errnop) {
        PROTECT_ERRNO_ANSWER(errnop);
        struct phi_snapshot_group g;
        int i, r;

        if (is_root_name(name))
                return status_of(-ENOENT, &_guard);
        if ((i = acquire()) < 0)
                return status_of(-EIO, &_guard);
        r = phi_snapshot_group_by_name(&slots[i].snap, name, &g);
        if (r == 0)
                r = group_served(&slots[i].snap, &g) ? fill_group(&slots[i].snap, &g, grp, buf, buflen)
                                                     : -ENOENT;
        release(i);
        return status_of(r, &_guard);
}

enum nss_status _nss_phi_getgrgid_r(gid_t gid, struct group *grp, char *buf, size_t buflen,
                                    int *errnop) {
        PROTECT_ERRNO_ANSWER(errnop);
        struct phi_snapshot_group g;
        int i, r;

        if (gid == 0)
                return status_of(-ENOENT, &_guard);
        if ((i = acquire()) < 0)
                return status_of(-EIO, &_guard);
        r = phi_snapshot_group_by_gid(&slots[i].snap, gid, &g);
        if (r == 0)
                r = group_served(&slots[i].snap, &g) ? fill_group(&slots[i].snap, &g, grp, buf, buflen)
                                                     : -ENOENT;
        release(i);
        return status_of(r, &_guard);
}

enum nss_status _nss_phi_setgrent(int stayopen) {
        PROTECT_ERRNO;

        (void) stayopen;
        (void) pthread_mutex_lock(&ent_lock);
        gr_next = 0;
        (void) pthread_mutex_unlock(&ent_lock);
        return NSS_STATUS_SUCCESS;
}

enum nss_status _nss_phi_endgrent(void) {
        return _nss_phi_setgrent(0);
}

enum nss_status _nss_phi_getgrent_r(struct group *grp, char *buf, size_t buflen, int *errnop) {
        PROTECT_ERRNO_ANSWER(errnop);
        struct phi_snapshot_group g;
        int i, r;

        (void) pthread_mutex_lock(&ent_lock);
        if ((i = acquire()) < 0) {
                r = -EIO;
                goto out;
        }
        for (;;) {
                r = phi_snapshot_group_at(&slots[i].snap, gr_next, &g);
                if (r < 0)
                        break;
                if (!group_served(&slots[i].snap, &g)) {
                        gr_next++;
                        continue;
                }
                r = fill_group(&slots[i].snap, &g, grp, buf, buflen);
                if (r == 0)
                        gr_next++;
                break;
        }
        release(i);
out:
        (void) pthread_mutex_unlock(&ent_lock);
        return status_of(r, &_guard);
}

/* ---- initgroups ---- */

/* Appends gid unless present in the first `before` entries (what other sources
 * put there; our own gids are unique per user by construction). Grows the array
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

enum nss_status _nss_phi_initgroups_dyn(const char *user, gid_t group, long int *start,
                                        long int *size, gid_t **groupsp, long int limit,
                                        int *errnop) {
        PROTECT_ERRNO_ANSWER(errnop);
        struct phi_snapshot_memberof m;
        struct phi_snapshot_user u;
        const phi_snapshot *s;
        long int before = *start;
        uint64_t now = 0;
        int i, r;

        if (is_root_name(user))
                return status_of(-ENOENT, &_guard);
        if ((i = acquire()) < 0)
                return status_of(-EIO, &_guard);
        s = &slots[i].snap;
        /* A directory user the module does not serve gets no groups from it
         * either; a local user listed in directory groups has no record here. */
        r = phi_snapshot_user_by_name(s, user, &u);
        if (r == 0 && !user_served(s, &u))
                r = -ENOENT;
        else if (r == -ENOENT)
                r = 0;
        if (r == 0)
                r = phi_snapshot_memberof_by_name(s, user, &m);
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
        release(i);
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
        for (int k = 0; k < MAPPING_SLOTS; k++)
                atomic_store(&slots[k].refs, 0);
        (void) pthread_mutex_unlock(&lock);
        (void) pthread_mutex_unlock(&ent_lock);
}

__attribute__((constructor)) static void nss_phi_init(void) {
        (void) pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

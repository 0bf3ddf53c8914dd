/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Backup and restore of the store's shared part; see backup.h. */

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backup.h"
#include "backup_check.h"
#include "journal.h"
#include "phi/client.h"
#include "phi/fs.h"
#include "store.h"

static void format_time(uint64_t t, char *buf, size_t len) {
        struct tm tm;
        time_t tt = (time_t) t;

        if (!gmtime_r(&tt, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(buf, len, "%llu", (unsigned long long) t);
}

/* Copies in, from where it stands, to the end into out; *ret_bytes. */
static int copy_fd(int in, int out, uint64_t *ret_bytes) {
        static _Thread_local uint8_t buf[64 * 1024];
        uint64_t total = 0;

        for (;;) {
                ssize_t n = read(in, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return phi_negative_errno();
                if (n == 0)
                        break;
                for (ssize_t off = 0; off < n;) {
                        ssize_t w = write(out, buf + off, (size_t) (n - off));
                        if (w < 0 && errno == EINTR)
                                continue;
                        if (w < 0)
                                return phi_negative_errno();
                        if (w == 0)
                                return -EIO;
                        off += w;
                }
                total += (uint64_t) n;
        }
        *ret_bytes = total;
        return 0;
}

/* A database file and whatever SQLite may have left beside it. */
static void unlink_db_files(const char *path) {
        static const char *const suffixes[] = { "", "-journal", "-wal", "-shm" };
        char p[4096 + 16];

        for (size_t i = 0; i < PHI_ELEMENTSOF(suffixes); i++)
                if (snprintf(p, sizeof(p), "%s%s", path, suffixes[i]) < (int) sizeof(p))
                        (void) unlink(p);
}

/* A new empty file beside the store, named STORE.WHAT-XXXXXX, 0600. */
static int temp_beside(const char *store, const char *what, char **ret_path, int *ret_fd) {
        char *path = NULL;
        int fd;

        if (asprintf(&path, "%s.%s-XXXXXX", store, what) < 0)
                return -ENOMEM;
        fd = mkostemp(path, O_CLOEXEC);
        if (fd < 0) {
                int r = phi_negative_errno();
                free(path);
                return r;
        }
        *ret_path = path;
        *ret_fd = fd;
        return 0;
}

/* The names are distinctive, so that nothing an admin named is taken for one:
 * STORE.backup-in-progress-XXXXXX, STORE.restore-in-progress-XXXXXX. */
#define BACKUP_TEMP "backup-in-progress"
#define RESTORE_TEMP "restore-in-progress"

/* mkostemp()'s six characters, then nothing or a side file's suffix. */
static bool temp_tail(const char *t) {
        for (int i = 0; i < 6; i++)
                if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' && t[i] <= 'Z') || (t[i] >= '0' && t[i] <= '9')))
                        return false;
        return t[6] == 0 || t[6] == '-';
}

void phi_backup_remove_leftovers(const char *store) {
        static const char *const kinds[] = { "." BACKUP_TEMP "-", "." RESTORE_TEMP "-" };
        _cleanup_free_ char *dir = NULL;
        const char *slash = strrchr(store, '/'), *base = slash ? slash + 1 : store;
        size_t n_base = strlen(base);
        DIR *d;
        struct dirent *e;

        if (!*store || strcmp(store, ":memory:") == 0)
                return;
        dir = slash ? strndup(store, slash == store ? 1 : (size_t) (slash - store)) : strdup(".");
        if (!dir || !(d = opendir(dir)))
                return;
        while ((e = readdir(d))) {
                bool ours = false;
                if (strncmp(e->d_name, base, n_base) != 0)
                        continue;
                for (size_t i = 0; i < PHI_ELEMENTSOF(kinds); i++)
                        ours |= strncmp(e->d_name + n_base, kinds[i], strlen(kinds[i])) == 0 &&
                                temp_tail(e->d_name + n_base + strlen(kinds[i]));
                if (ours && unlinkat(dirfd(d), e->d_name, 0) == 0)
                        phi_log(LOG_NOTICE, "removed %s/%s, left by a backup or restore that did not finish", dir,
                                e->d_name);
        }
        closedir(d);
}

/* ------------------------------------------------------------------ backup */

/*
 * Who may: root and admin_group (SPEC.md). The copy holds every sealed seed,
 * which argues for root alone; but the seeds are sealed with the master key,
 * which is root's alone (0600 root, or a systemd credential) and never part
 * of a backup, and an admin can already reset any token and issue any
 * ticket. A backup gives an admin no code and no way to log in as anyone; it
 * is kept like the store itself (phictl creates it 0600, the caller's).
 *
 * It runs on the event loop: the request socket waits for it (a store of
 * 10,000 tokens is a few MB, copied in well under a second), logins do not
 * (the verifier serves the PAM socket on its own thread and store handle,
 * and goes on committing while the copy reads its snapshot).
 */
int phi_handle_backup(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                      phi_msg **ret_reply, uint64_t *ret_ticket) {
        const char *store = d->config->store_path;
        _cleanup_msg_ phi_msg *m = NULL;
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int tfd = -1;
        struct phi_store_counts n = { 0 };
        int64_t started = phi_now_ms();
        uint64_t taken_at = 0, bytes = 0;
        const char *what = NULL;
        char when[32];
        struct stat st;
        int fd = caller->passed_fd, fl, r;

        (void) req, (void) ret_ticket;
        /* The database has tools of its own, made for this, that take a
         * consistent copy while the fleet writes. */
        if (strcmp(phi_store_backend_name(d->store), "sqlite") != 0)
                return phi_msg_new_error(-EOPNOTSUPP, ret_reply,
                                         "the store is in PostgreSQL: back it up with the database's own tools "
                                         "(pg_dump for a consistent copy, pg_basebackup with WAL archiving for "
                                         "point-in-time recovery); see phiaccessd(8), BACKUP AND RESTORE");
        if (fd < 0)
                return phi_msg_new_error(-EINVAL, ret_reply, "a backup request carries the file to write as a "
                                                             "descriptor (phictl backup FILE); none came");
        if (fstat(fd, &st) < 0 || (fl = fcntl(fd, F_GETFL)) < 0) {
                r = phi_negative_errno();
                return phi_msg_new_error(r, ret_reply, "cannot look at the backup file: %s", phi_errno_text(r));
        }
        /* A FIFO or socket could stall the event loop; a file with content
         * is not one phictl made for this. */
        if (!S_ISREG(st.st_mode))
                return phi_msg_new_error(-EINVAL, ret_reply, "the backup file must be a regular file");
        if ((fl & O_ACCMODE) == O_RDONLY)
                return phi_msg_new_error(-EBADF, ret_reply, "the backup file was not opened for writing");
        if (st.st_size != 0)
                return phi_msg_new_error(-EEXIST, ret_reply, "the backup file is not empty; a backup is written "
                                                             "only into a new file");
        if (!*store || strcmp(store, ":memory:") == 0)
                return phi_msg_new_error(-EOPNOTSUPP, ret_reply, "the store is in memory; nothing to back up");

        what = "cannot create a temporary file beside the store";
        if ((r = temp_beside(store, BACKUP_TEMP, &tmp, &tfd)) < 0)
                goto out;
        /* New and empty: no SQLite lock on it that closing could drop. */
        tfd = phi_close_safe(tfd);
        what = "cannot copy the store";
        taken_at = (uint64_t) time(NULL);
        if ((r = phi_store_backup(d->store, tmp, &n)) < 0)
                goto out;
        what = "cannot write the backup file";
        tfd = open(tmp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (tfd < 0) {
                r = phi_negative_errno();
                goto out;
        }
        /* fdatasync: the data and the file's size, all a reader needs. */
        if ((r = copy_fd(tfd, fd, &bytes)) < 0 || (fdatasync(fd) < 0 && (r = phi_negative_errno()) < 0))
                goto out;

        format_time(taken_at, when, sizeof(when));
        what = "cannot build the answer";
        m = phi_msg_new(PHI_MSG_OK);
        if (!m) {
                r = -ENOMEM;
                goto out;
        }
        if ((r = phi_msg_put_number(m, "bytes", bytes)) < 0 ||
            (r = phi_msg_put_number(m, "schema_version", n.schema_version)) < 0 ||
            (r = phi_msg_put_number(m, "tokens_active", n.tokens_active)) < 0 ||
            (r = phi_msg_put_number(m, "tokens_pending", n.tokens_pending)) < 0 ||
            (r = phi_msg_put_number(m, "tickets", n.tickets)) < 0 ||
            (r = phi_msg_put_number(m, "failure_counters", n.failure_counters)) < 0 ||
            (r = phi_msg_put_pair(m, "integrity", "ok")) < 0 || (r = phi_msg_put_pair(m, "taken_at", when)) < 0 ||
            (r = phi_msg_put_number(m, "duration_ms", (uint64_t) (phi_now_ms() - started))) < 0)
                goto out;
        {
                char b[24], t[24];
                snprintf(b, sizeof(b), "%llu", (unsigned long long) bytes);
                snprintf(t, sizeof(t), "%llu", (unsigned long long) n.tokens_active);
                const struct phi_journal_field fields[] = {
                        { "PHI_ACTOR", caller->name }, { "PHI_SERVICE", "phiaccessd" }, { "PHI_VERB", "backup" },
                        { "PHI_STORE", store },        { "PHI_BYTES", b },              { "PHI_TOKENS", t },
                };
                phi_journal_note(LOG_NOTICE, fields, PHI_ELEMENTSOF(fields),
                                 "Store %s backed up by %s as of %s: %s bytes, %s active tokens", store,
                                 caller->name, when, b, t);
        }
        *ret_reply = PHI_TAKE_PTR(m);
        r = 0;
out:
        if (tmp)
                unlink_db_files(tmp);
        if (r < 0)
                return phi_msg_new_error(r, ret_reply, "backup failed: %s: %s", what, phi_errno_text(r));
        return 0;
}

/* ----------------------------------------------------------------- restore */

struct restore {
        const struct phi_config *c;
        const char *file;
        const char *store;
        char *tmp;                  /* the copy beside the store, until renamed */
        char *tmp_identities;       /* what opening the copy as a store made beside it */
        char kept[4096 + 64];       /* where the old store went ("" when there was none) */
        enum { UNTOUCHED, MOVED_ASIDE, SWAPPED } state;
        char why[512];
};

/* The first bytes of fd (from offset 0) through phi_backup_header_check(). */
static int check_header_fd(int fd, char *why, size_t why_len) {
        uint8_t h[PHI_BACKUP_HEADER_SIZE];
        struct stat st;
        ssize_t n;

        if (fstat(fd, &st) < 0)
                return phi_negative_errno();
        if (!S_ISREG(st.st_mode)) {
                snprintf(why, why_len, "not a regular file");
                return -EMEDIUMTYPE;
        }
        n = pread(fd, h, sizeof(h), 0);
        if (n < 0)
                return phi_negative_errno();
        return phi_backup_header_check(h, (size_t) n, (uint64_t) st.st_size, NULL, why, why_len);
}

/* FILE copied beside the store, synced; owned like the store it replaces. */
static int copy_beside(struct restore *x) {
        _cleanup_close_ int in = -1, out = -1;
        struct stat old;
        uint64_t bytes;
        int r;

        in = open(x->file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (in < 0) {
                r = phi_negative_errno();
                snprintf(x->why, sizeof(x->why), "cannot open it: %s", phi_errno_text(r));
                return r;
        }
        /* A first look before copying what may be anything, however large. */
        if ((r = check_header_fd(in, x->why, sizeof(x->why))) < 0)
                return r;
        if ((r = temp_beside(x->store, RESTORE_TEMP, &x->tmp, &out)) < 0) {
                snprintf(x->why, sizeof(x->why), "cannot create a file beside the store: %s", phi_errno_text(r));
                return r;
        }
        if (stat(x->store, &old) == 0 && fchown(out, old.st_uid, old.st_gid) < 0) {
                r = phi_negative_errno();
                snprintf(x->why, sizeof(x->why), "cannot give the copy the store's owner: %s", phi_errno_text(r));
                return r;
        }
        if ((r = copy_fd(in, out, &bytes)) < 0 || (fsync(out) < 0 && (r = phi_negative_errno()) < 0)) {
                snprintf(x->why, sizeof(x->why), "cannot copy it beside the store: %s", phi_errno_text(r));
                return r;
        }
        /* What is checked from here on is the copy: the file named may change
         * meanwhile, the copy is what will be the store. */
        return check_header_fd(out, x->why, sizeof(x->why));
}

static bool exists(const char *path) {
        struct stat st;
        return lstat(path, &st) == 0;
}

/* The copy, now known to be a phi store, opened as one (which migrates an
 * older schema) and given the replay floor, all in one transaction. */
static int apply_floor(struct restore *x, uint64_t now, uint64_t floor_step, struct phi_store_counts *ret,
                       uint64_t *ret_raised, uint64_t *ret_tickets) {
        _cleanup_(phi_store_freep) phi_store *s = NULL;
        int r;

        if ((r = phi_store_identities_path(x->tmp, &x->tmp_identities)) < 0)
                return r;
        if ((r = phi_store_open("sqlite", x->tmp, PHI_IDENTITIES_NONE, &s)) < 0) {
                snprintf(x->why, sizeof(x->why), "cannot open it as a store: %s", phi_errno_text(r));
                return r;
        }
        if ((r = phi_store_begin(s)) < 0)
                goto fail;
        /* Tickets: one may have been used since the backup was taken, and
         * coming back it would let its holder enrol a token once more.
         * Failure counters stay (a lockout in force then is one now); those
         * whose window and lockout are over are dropped, as the verifier
         * does. */
        if ((r = phi_store_tokens_raise_floor(s, floor_step, ret_raised)) < 0 ||
            (r = phi_store_tickets_clear(s, ret_tickets)) < 0 ||
            (r = phi_store_failures_prune(s, now, x->c->totp_failure_window)) < 0 ||
            (r = phi_store_commit(s)) < 0) {
                phi_store_rollback(s);
                goto fail;
        }
        if ((r = phi_store_counts_get(s, ret)) < 0)
                goto fail;
        return 0;
fail:
        snprintf(x->why, sizeof(x->why), "cannot set the replay floor in it: %s", phi_errno_text(r));
        return r;
}

/*
 * The swap. The store must never be the old file with a write-ahead log that
 * is not its own (SQLite would replay the old log into the new file), nor the
 * old file without its log (commits of a daemon that crashed would be lost:
 * watermarks could go back and codes be accepted twice). So the old store
 * and its log are moved aside first, under one new name; then the copy is
 * renamed in. A crash in between leaves no store at its path (a daemon
 * started then makes an empty one, which accepts no code: no replay), the old
 * one complete under its new name, and --restore may simply be run again.
 */
static int swap_in(struct restore *x) {
        char when[32], wal[4096 + 16], kept_wal[4096 + 128], shm[4096 + 16];
        time_t now = time(NULL);
        struct tm tm;
        int r;

        x->kept[0] = 0;
        if (exists(x->store)) {
                if (!gmtime_r(&now, &tm) || strftime(when, sizeof(when), "%Y%m%dT%H%M%SZ", &tm) == 0)
                        return -EINVAL;
                snprintf(x->kept, sizeof(x->kept), "%s.replaced-%s", x->store, when);
                snprintf(wal, sizeof(wal), "%s-wal", x->store);
                snprintf(kept_wal, sizeof(kept_wal), "%s-wal", x->kept);
                snprintf(shm, sizeof(shm), "%s-shm", x->store);
                if (exists(x->kept)) {
                        snprintf(x->why, sizeof(x->why), "%.400s exists already; try again in a second", x->kept);
                        x->kept[0] = 0;
                        return -EEXIST;
                }
                if (rename(x->store, x->kept) < 0) {
                        r = phi_negative_errno();
                        snprintf(x->why, sizeof(x->why), "cannot move the old store aside: %s", phi_errno_text(r));
                        return r;
                }
                x->state = MOVED_ASIDE;
                if (exists(wal) && rename(wal, kept_wal) < 0) {
                        r = phi_negative_errno();
                        snprintf(x->why, sizeof(x->why), "cannot move the old store's log aside: %s",
                                 phi_errno_text(r));
                        return r;
                }
                /* Rebuilt from the log by whoever opens it; stale for either file. */
                (void) unlink(shm);
        }
        if (rename(x->tmp, x->store) < 0) {
                r = phi_negative_errno();
                snprintf(x->why, sizeof(x->why), "cannot rename the copy over the store: %s", phi_errno_text(r));
                return r;
        }
        free(x->tmp);
        x->tmp = NULL;
        x->state = SWAPPED;
        if ((r = phi_fs_fsync_parent(x->store)) < 0) {
                snprintf(x->why, sizeof(x->why), "cannot sync the store's directory: %s", phi_errno_text(r));
                return r;
        }
        return 0;
}

int phi_backup_restore(const struct phi_config *c, const char *file, const char *actor, FILE *out, FILE *err) {
        struct restore x = { .c = c, .file = file, .store = c->store_path };
        struct phi_store_counts n = { 0 };
        uint64_t now, floor_step, raised = 0, tickets = 0;
        unsigned version = 0;
        char wal[4096 + 16];
        int r;

        snprintf(x.why, sizeof(x.why), "failed");
        if (!*x.store || strcmp(x.store, ":memory:") == 0) {
                snprintf(x.why, sizeof(x.why), "the configured store is in memory");
                r = -EOPNOTSUPP;
                goto out;
        }
        /* Room for the names made from it below (.replaced-..., -wal). */
        if (strlen(x.store) > 4000) {
                snprintf(x.why, sizeof(x.why), "the store's path is too long");
                r = -ENAMETOOLONG;
                goto out;
        }
        if ((r = copy_beside(&x)) < 0)
                goto out;
        if ((r = phi_store_sqlite_file_check(x.tmp, &version, x.why, sizeof(x.why))) < 0)
                goto out;
        /* The restore moment: any code accepted up to now had a step at most
         * this (backup_check.h). */
        now = (uint64_t) time(NULL);
        floor_step = phi_backup_floor_step(now, (unsigned) c->totp_window);
        if ((r = apply_floor(&x, now, floor_step, &n, &raised, &tickets)) < 0)
                goto out;
        /* Closed: SQLite folded its log back into the file and removed it. A
         * log still there would hold the floor and be lost in the rename. */
        snprintf(wal, sizeof(wal), "%s-wal", x.tmp);
        if (exists(wal)) {
                snprintf(x.why, sizeof(x.why), "its write-ahead log was not folded back into it");
                r = -EIO;
                goto out;
        }
        {
                _cleanup_close_ int fd = open(x.tmp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
                if (fd < 0 || fsync(fd) < 0) {
                        r = phi_negative_errno();
                        snprintf(x.why, sizeof(x.why), "cannot sync the copy: %s", phi_errno_text(r));
                        goto out;
                }
        }
        if ((r = swap_in(&x)) < 0)
                goto out;

        {
                char v[16], fl[24], tk[24], ra[24], ti[24], when[32];
                format_time(now, when, sizeof(when));
                snprintf(v, sizeof(v), "%u", n.schema_version);
                snprintf(fl, sizeof(fl), "%llu", (unsigned long long) floor_step);
                snprintf(tk, sizeof(tk), "%llu", (unsigned long long) (n.tokens_active + n.tokens_pending));
                snprintf(ra, sizeof(ra), "%llu", (unsigned long long) raised);
                snprintf(ti, sizeof(ti), "%llu", (unsigned long long) tickets);
                const struct phi_journal_field fields[] = {
                        { "PHI_ACTOR", actor },
                        { "PHI_SERVICE", "phiaccessd" },
                        { "PHI_FILE", file },
                        { "PHI_STORE", x.store },
                        { "PHI_REPLACED", x.kept[0] ? x.kept : NULL },
                        { "PHI_SCHEMA_VERSION", v },
                        { "PHI_FLOOR_STEP", fl },
                        { "PHI_TOKENS", tk },
                        { "PHI_TOKENS_RAISED", ra },
                        { "PHI_TICKETS_CLEARED", ti },
                };
                phi_journal_event(PHI_EVENT_STORE_RESTORED, LOG_WARNING, fields, PHI_ELEMENTSOF(fields),
                                  "Store %s restored from %s by %s: %s tokens, replay floor at time step %s "
                                  "(%s), %s tickets removed",
                                  x.store, file, actor, tk, fl, when, ti);
                fprintf(out,
                        "restored             %s\n"
                        "from                 %s\n"
                        "replaced             %s\n"
                        "schema_version       %u (the file had %u)\n"
                        "tokens_active        %llu\n"
                        "tokens_pending       %llu\n"
                        "replay_floor_step    %llu (codes of steps up to %s plus %llu of window refused)\n"
                        "tokens_raised        %llu\n"
                        "tickets_removed      %llu\n"
                        "failure_counters     %llu\n",
                        x.store, file, x.kept[0] ? x.kept : "(no store was there)", n.schema_version, version,
                        (unsigned long long) n.tokens_active, (unsigned long long) n.tokens_pending,
                        (unsigned long long) floor_step, when, (unsigned long long) c->totp_window,
                        (unsigned long long) raised, (unsigned long long) tickets,
                        (unsigned long long) n.failure_counters);
        }
        r = 0;
out:
        if (x.tmp)
                unlink_db_files(x.tmp);
        if (x.tmp_identities)
                unlink_db_files(x.tmp_identities);
        free(x.tmp);
        free(x.tmp_identities);
        if (r < 0 && x.state == UNTOUCHED)
                fprintf(err, "phiaccessd: restore refused: %s: %s; the store %s was not changed\n", file, x.why,
                        x.store);
        else if (r < 0 && x.state == MOVED_ASIDE)
                fprintf(err, "phiaccessd: restore failed: %s: %s; the old store is now %s (with its -wal, if it "
                             "had one) and %s is missing: run the restore again, or move it back\n",
                        file, x.why, x.kept, x.store);
        else if (r < 0)
                fprintf(err, "phiaccessd: restore of %s done, but: %s\n", file, x.why);
        return r;
}

/*
 * The replay floor alone, in the configured store (phiaccessd
 * --replay-floor): what --restore does to a file, for a store restored by
 * other means, a PostgreSQL database brought back with pg_restore or
 * point-in-time recovery. Only raises watermarks and removes tickets, so it
 * is safe with daemons running (every host of a fleet may keep serving).
 */
int phi_backup_replay_floor(const struct phi_config *c, const char *actor, FILE *out, FILE *err) {
        _cleanup_(phi_store_freep) phi_store *s = NULL;
        struct phi_store_counts n = { 0 };
        uint64_t now = (uint64_t) time(NULL), floor_step, raised = 0, tickets = 0;
        char where[512], fl[24], ra[24], ti[24], when[32];
        int r;

        floor_step = phi_backup_floor_step(now, (unsigned) c->totp_window);
        if ((r = phi_store_open_config(c, PHI_IDENTITIES_NONE, &s)) < 0) {
                fprintf(err, "phiaccessd: cannot open the store: %s\n", phi_errno_text(r));
                return r;
        }
        bool reachable;
        if (phi_store_probe(s, where, sizeof(where), &reachable) < 0)
                snprintf(where, sizeof(where), "(the store)");
        if ((r = phi_store_begin(s)) < 0 || (r = phi_store_tokens_raise_floor(s, floor_step, &raised)) < 0 ||
            (r = phi_store_tickets_clear(s, &tickets)) < 0 ||
            (r = phi_store_failures_prune(s, now, c->totp_failure_window)) < 0 || (r = phi_store_commit(s)) < 0) {
                phi_store_rollback(s);
                fprintf(err, "phiaccessd: cannot set the replay floor in %s: %s; nothing was changed\n", where,
                        phi_errno_text(r));
                return r;
        }
        /* Committed: the counts below are only what the report shows. */
        if ((r = phi_store_counts_get(s, &n)) < 0) {
                fprintf(err, "phiaccessd: the replay floor is set, but the store cannot be counted: %s\n",
                        phi_errno_text(r));
                return r;
        }
        format_time(now, when, sizeof(when));
        snprintf(fl, sizeof(fl), "%llu", (unsigned long long) floor_step);
        snprintf(ra, sizeof(ra), "%llu", (unsigned long long) raised);
        snprintf(ti, sizeof(ti), "%llu", (unsigned long long) tickets);
        const struct phi_journal_field fields[] = {
                { "PHI_ACTOR", actor },        { "PHI_SERVICE", "phiaccessd" }, { "PHI_STORE", where },
                { "PHI_FLOOR_STEP", fl },      { "PHI_TOKENS_RAISED", ra },     { "PHI_TICKETS_CLEARED", ti },
        };
        phi_journal_event(PHI_EVENT_STORE_RESTORED, LOG_WARNING, fields, PHI_ELEMENTSOF(fields),
                          "Replay floor of store %s raised by %s: %s tokens raised to time step %s (%s), %s "
                          "tickets removed",
                          where, actor, ra, fl, when, ti);
        fprintf(out,
                "store                %s\n"
                "replay_floor_step    %llu (codes of steps up to %s plus %llu of window refused)\n"
                "tokens_raised        %llu\n"
                "tickets_removed      %llu\n"
                "tokens_active        %llu\n"
                "tokens_pending       %llu\n",
                where, (unsigned long long) floor_step, when, (unsigned long long) c->totp_window,
                (unsigned long long) raised, (unsigned long long) tickets, (unsigned long long) n.tokens_active,
                (unsigned long long) n.tokens_pending);
        return 0;
}

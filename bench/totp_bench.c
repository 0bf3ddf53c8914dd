/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * totp_bench: TOTP verification round trips through phiaccessd, and the same
 * verifications through pamtester + pam_oath, from many concurrent clients.
 * Driven by totp_bench.sh, which starts the components; every mode prints
 * one line the script reads:
 *
 *   result label=L n=N ok=A refused=R errors=E unexpected=U wall_s=S per_s=X
 *          p50_us=.. p90_us=.. p99_us=.. p999_us=.. max_us=..
 *
 * Modes (users are those of tests/lib/gen-ldif: userNNNNN, uid 10000+i):
 *
 *   enroll --socket P --first I --count N --threads T --out FILE
 *       Each user through the real protocol: root issues a ticket (TOTP_ISSUE);
 *       the user (a connection made with the user's uid, which SO_PEERCRED
 *       reports) asks for a token (TOTP_ENROLL) and activates it with the code
 *       of the current step (TOTP_ACTIVATE). FILE gets "name base32" lines.
 *
 *   auth --socket P --secrets FILE --first I --count N --threads T
 *        [--wrong] [--reconnect] [--rhost H] [--label L]
 *       N AUTH requests as pam_phi sends them (USER CODE SERVICE RHOST TTY),
 *       split over T threads with one connection each (--reconnect: a new
 *       connection per request, as pam_phi makes). Codes are computed with
 *       liboath before the clock starts: the code of the next step, which the
 *       daemon accepts (window 1) and which is above the watermark the
 *       activation left, so every request is an acceptance that commits a
 *       watermark; --wrong sends a code matching no step of the window.
 *       A reply other than the expected one counts as unexpected.
 *       --interval-ms MS paces each thread: its i-th request starts MS*i ms
 *       after the first (a steady stream of logins, as during a refresh in
 *       totp_refresh_bench.sh), or as soon as the previous one is answered if
 *       that is later.
 *
 *   pamtester --secrets FILE --first I --count N --threads T --service S
 *        [--wrong] [--label L]
 *       The same verifications as `pamtester S USER authenticate` processes
 *       with the code on stdin; exit status 0 is an acceptance. The code is
 *       computed at each login (such a run outlasts a step).
 *
 *   usersfile --secrets FILE --first I --count N --out FILE
 *       The same secrets as a pam_oath usersfile (HOTP/T30/6 USER - HEX).
 *
 *   fsync --out FILE --count N
 *       The floor under any durable answer: N times pwrite() of one 4 KiB page
 *       into FILE (cycling over 64 pages, so the size stays) and fdatasync(),
 *       one thread; latency per pair.
 *
 *   floor --out FILE --count N [--no-sync]
 *       The floor under any durable answer over a socket: a forked server
 *       process that does nothing but read a 67-byte request (the size of
 *       an AUTH frame) from a Unix stream socket, make one 4 KiB page of
 *       FILE durable as `fsync` does, and write a 9-byte reply (the size of
 *       OK). No daemon can answer an acceptance sooner on this machine: it
 *       has the same two wake-ups and the same sync, and does some work on
 *       top. --no-sync leaves the sync out: the bare request/reply; --sqlite
 *       makes each request one SQLite transaction instead (WAL,
 *       synchronous=FULL, as the daemon's store: BEGIN IMMEDIATE, an UPDATE
 *       of one row of 50,000, COMMIT) in FILE.db, after 2,500 to warm it up:
 *       what the store's commit costs over a bare sync.
 *
 * Latency is from the first byte sent (or the connect, or the fork) to the
 * last byte of the reply (or the exit). Secrets are bench data: not wiped.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <liboath/oath.h>
#include <pthread.h>
#include <spawn.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "phi/client.h"
#include "phi/wire.h"

#define PERIOD 30
#define DIGITS 6
#define TIMEOUT_MS 30000

extern char **environ;

struct user {
        char name[32];
        uid_t uid;
        char b32[128];
        char *seed;
        size_t seed_len;
        char code[DIGITS + 1];
        bool coincident;    /* its code for step+1 is also its code for step */
};

struct opts {
        const char *mode, *socket, *secrets, *out, *rhost, *service, *label;
        unsigned first, count, threads, interval_ms;
        bool wrong, reconnect, no_sync, sqlite;
};

struct worker {
        pthread_t thread;
        const struct opts *o;
        struct user *users;
        size_t n;
        uint64_t *lat_ns;
        uint64_t *start_ns;          /* auth: when each request started (monotonic) */
        size_t ok, refused, errors, unexpected, coincident;
        pthread_barrier_t *start;
};

static struct opts O = { .threads = 16, .first = 1, .rhost = "127.0.0.1", .service = "totp-bench" };

static uint64_t now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static void die(const char *what, int r) {
        fprintf(stderr, "totp_bench: %s: %s\n", what, r ? strerror(r < 0 ? -r : r) : "failed");
        exit(1);
}

static void user_name(unsigned i, struct user *u) {
        snprintf(u->name, sizeof(u->name), "user%05u", i);
        u->uid = 10000 + i;
}

/* ------------------------------------------------------------ enrolment */

static int call(phi_client *c, phi_msg *req, phi_msg **ret) {
        int r;

        phi_client_set_timeout(c, TIMEOUT_MS);
        r = phi_client_call(c, req, ret);
        phi_msg_free(req);
        return r;
}

static int expect_ok(phi_client *c, phi_msg *req, const char *what, const char *user) {
        phi_msg *reply = NULL;
        const char *msg = "";
        int r = call(c, req, &reply), e = 0;

        if (r == 0 && phi_msg_type(reply) != PHI_MSG_OK) {
                (void) phi_msg_get_error(reply, &e, &msg);
                fprintf(stderr, "totp_bench: %s for %s refused: %s\n", what, user, msg);
                r = -EPROTO;
        } else if (r < 0)
                fprintf(stderr, "totp_bench: %s for %s: %s\n", what, user, strerror(-r));
        phi_msg_free(reply);
        return r;
}

/* A connection whose SO_PEERCRED names uid: only this thread's euid changes
 * (the raw syscall, not glibc's process-wide setresuid). */
static int connect_as(uid_t uid, phi_client **ret) {
        int r;

        if (syscall(SYS_setresuid, -1, uid, -1) < 0)
                return -errno;
        r = phi_client_connect(O.socket, TIMEOUT_MS, ret);
        if (syscall(SYS_setresuid, -1, 0, -1) < 0)
                die("cannot become root again", errno);
        return r;
}

static int enroll_one(phi_client *root, struct user *u) {
        phi_client *c = NULL;
        phi_msg *m, *reply = NULL;
        const char *uri = NULL, *s, *e;
        char code[DIGITS + 1];
        int r;

        m = phi_msg_new(PHI_MSG_TOTP_ISSUE);
        if (!m || phi_msg_put_str(m, PHI_TAG_USER, u->name) < 0)
                return -ENOMEM;
        if ((r = expect_ok(root, m, "totp issue", u->name)) < 0)
                return r;
        if ((r = connect_as(u->uid, &c)) < 0)
                return r;
        m = phi_msg_new(PHI_MSG_TOTP_ENROLL);
        if (!m) {
                r = -ENOMEM;
                goto out;
        }
        if ((r = call(c, m, &reply)) < 0)
                goto out;
        if (phi_msg_type(reply) != PHI_MSG_TOTP_SECRET || phi_msg_get_str(reply, PHI_TAG_URI, &uri) < 0 ||
            !(s = strstr(uri, "secret="))) {
                fprintf(stderr, "totp_bench: enrol of %s gave no URI\n", u->name);
                r = -EPROTO;
                goto out;
        }
        s += 7;
        e = strchr(s, '&');
        if (!e || (size_t) (e - s) >= sizeof(u->b32)) {
                r = -EPROTO;
                goto out;
        }
        memcpy(u->b32, s, (size_t) (e - s));
        u->b32[e - s] = 0;
        if (oath_base32_decode(u->b32, strlen(u->b32), &u->seed, &u->seed_len) != OATH_OK ||
            oath_totp_generate(u->seed, u->seed_len, time(NULL), PERIOD, 0, DIGITS, code) != OATH_OK) {
                r = -EINVAL;
                goto out;
        }
        m = phi_msg_new(PHI_MSG_TOTP_ACTIVATE);
        if (!m || phi_msg_put_str(m, PHI_TAG_CODE, code) < 0) {
                r = -ENOMEM;
                goto out;
        }
        r = expect_ok(c, m, "totp activate", u->name);
out:
        phi_msg_free(reply);
        phi_client_free(c);
        return r;
}

static void *enroll_thread(void *arg) {
        struct worker *w = arg;
        phi_client *root = NULL;

        if (phi_client_connect(O.socket, TIMEOUT_MS, &root) < 0) {
                w->errors = w->n;
                return NULL;
        }
        for (size_t i = 0; i < w->n; i++) {
                uint64_t t0 = now_ns();
                if (enroll_one(root, &w->users[i]) < 0)
                        w->errors++;
                else
                        w->ok++;
                w->lat_ns[i] = now_ns() - t0;
        }
        phi_client_free(root);
        return NULL;
}

/* ------------------------------------------------------------ codes */

static int code_at(const struct user *u, uint64_t step, char out[static DIGITS + 1]) {
        return oath_totp_generate(u->seed, u->seed_len, (time_t) (step * PERIOD), PERIOD, 0, DIGITS, out) ==
                               OATH_OK
                       ? 0
                       : -EINVAL;
}

/* The code of the next step (accepted, above the watermark of the activation),
 * or with wrong, a code that matches no step near now. */
static int prepare_code(struct user *u, uint64_t step, bool wrong) {
        char near[5][DIGITS + 1];
        unsigned v;
        int r;

        if ((r = code_at(u, step + 1, u->code)) < 0)
                return r;
        if (!wrong) {
                /* The daemon tries the current step first: a code that is also
                 * the current step's (one user in a million) is taken for that
                 * step, and refused if the activation used it. Such a refusal
                 * is right, so it is counted apart, not as unexpected. */
                if ((r = code_at(u, step, near[0])) < 0)
                        return r;
                u->coincident = strcmp(near[0], u->code) == 0;
                return 0;
        }
        for (int d = 0; d < 5; d++)
                if ((r = code_at(u, step - 2 + (uint64_t) d, near[d])) < 0)
                        return r;
        v = (unsigned) strtoul(u->code, NULL, 10);
        for (bool clash = true; clash;) {
                v = (v + 500009u) % 1000000u;
                snprintf(u->code, sizeof(u->code), "%06u", v);
                clash = false;
                for (int d = 0; d < 5; d++)
                        clash |= strcmp(near[d], u->code) == 0;
        }
        return 0;
}

/* ------------------------------------------------------------ auth */

static phi_msg *auth_request(const struct user *u) {
        phi_msg *m = phi_msg_new(PHI_MSG_AUTH);

        if (!m || phi_msg_put_str(m, PHI_TAG_USER, u->name) < 0 || phi_msg_put_str(m, PHI_TAG_CODE, u->code) < 0 ||
            phi_msg_put_str(m, PHI_TAG_SERVICE, O.service) < 0 ||
            (O.rhost[0] && phi_msg_put_str(m, PHI_TAG_RHOST, O.rhost) < 0) ||
            phi_msg_put_str(m, PHI_TAG_TTY, "ssh") < 0) {
                phi_msg_free(m);
                return NULL;
        }
        return m;
}

static void classify(struct worker *w, int r, const phi_msg *reply) {
        int e = 0;
        const char *msg = NULL;

        if (r < 0) {
                w->errors++;
                return;
        }
        if (phi_msg_type(reply) == PHI_MSG_OK) {
                w->ok++;
                w->unexpected += O.wrong;
        } else if (phi_msg_get_error(reply, &e, &msg) == 0 && e == -EACCES) {
                w->refused++;
                w->unexpected += !O.wrong;
        } else
                w->errors++;
}

/* Names the user of an answer the run did not expect: the daemon's journal
 * says why (PHI_REASON), and the bench script prints that entry. */
static void report_unexpected(const struct user *u, int r, const phi_msg *reply) {
        const char *msg = NULL;
        int e = 0;

        if (r < 0)
                fprintf(stderr, "totp_bench: %s: %s\n", u->name, strerror(-r));
        else if (phi_msg_type(reply) != PHI_MSG_OK && phi_msg_get_error(reply, &e, &msg) == 0)
                fprintf(stderr, "totp_bench: %s: refused: %s\n", u->name, msg);
        else if (O.wrong)
                fprintf(stderr, "totp_bench: %s: a wrong code was accepted\n", u->name);
}

static void *auth_thread(void *arg) {
        struct worker *w = arg;
        phi_client *c = NULL;

        int r0 = O.reconnect ? 0 : phi_client_connect(O.socket, TIMEOUT_MS, &c);

        if (r0 < 0)
                die("connect", r0);
        pthread_barrier_wait(w->start);
        uint64_t first = now_ns();
        for (size_t i = 0; i < w->n; i++) {
                phi_msg *req = auth_request(&w->users[i]), *reply = NULL;
                uint64_t t0;
                int r;

                if (!req)
                        die("building a request", ENOMEM);
                if (O.interval_ms) {
                        uint64_t due = first + (uint64_t) i * O.interval_ms * 1000000u, t = now_ns();
                        if (due > t) {
                                struct timespec ts = { .tv_sec = (time_t) ((due - t) / 1000000000u),
                                                       .tv_nsec = (long) ((due - t) % 1000000000u) };
                                while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                                        ;
                        }
                }
                t0 = now_ns();
                w->start_ns[i] = t0;
                if (O.reconnect && (r = phi_client_connect(O.socket, TIMEOUT_MS, &c)) < 0) {
                        w->errors++;
                        phi_msg_free(req);
                        continue;
                }
                phi_client_set_timeout(c, TIMEOUT_MS);
                r = phi_client_call(c, req, &reply);
                if (O.reconnect) {
                        phi_client_free(c);
                        c = NULL;
                }
                w->lat_ns[i] = now_ns() - t0;
                size_t unexpected = w->unexpected, errors = w->errors;
                classify(w, r, reply);
                if (w->unexpected != unexpected && w->users[i].coincident) {
                        w->unexpected = unexpected;
                        w->coincident++;
                }
                if (w->unexpected != unexpected || w->errors != errors)
                        report_unexpected(&w->users[i], r, reply);
                phi_msg_free(req);
                phi_msg_free(reply);
                if (r < 0 && !O.reconnect) {
                        /* The connection is unusable after an error: a new one. */
                        phi_client_free(c);
                        if ((r = phi_client_connect(O.socket, TIMEOUT_MS, &c)) < 0)
                                die("reconnect", r);
                }
        }
        phi_client_free(c);
        return NULL;
}

/* ------------------------------------------------------------ pamtester */

static void *pamtester_thread(void *arg) {
        struct worker *w = arg;

        pthread_barrier_wait(w->start);
        for (size_t i = 0; i < w->n; i++) {
                struct user *u = &w->users[i];
                char service[64], name[32], verb[] = "authenticate", prog[] = "pamtester";
                char *argv[] = { prog, service, name, verb, NULL };
                posix_spawn_file_actions_t fa;
                char line[DIGITS + 2];
                int p[2], status = 0;
                uint64_t t0;
                pid_t pid;

                /* A run of processes lasts a minute or more: a code computed
                 * at the start would fall out of the window before the end.
                 * So each one is the next step's at its own login (an HMAC,
                 * nothing next to a process), before the clock starts. */
                if (prepare_code(u, (uint64_t) time(NULL) / PERIOD, O.wrong) < 0)
                        die("computing a code", EINVAL);
                t0 = now_ns();

                snprintf(service, sizeof(service), "%s", O.service);
                memcpy(name, u->name, sizeof(name));
                if (pipe2(p, O_CLOEXEC) < 0)
                        die("pipe", errno);
                posix_spawn_file_actions_init(&fa);
                posix_spawn_file_actions_adddup2(&fa, p[0], 0);
                posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
                posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
                if (posix_spawnp(&pid, "pamtester", &fa, NULL, argv, environ) != 0)
                        die("posix_spawn pamtester", errno);
                posix_spawn_file_actions_destroy(&fa);
                close(p[0]);
                snprintf(line, sizeof(line), "%s\n", u->code);
                (void) !write(p[1], line, strlen(line));
                close(p[1]);
                while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                        ;
                w->lat_ns[i] = now_ns() - t0;
                if (!WIFEXITED(status) || WEXITSTATUS(status) > 1)
                        w->errors++;
                else if (WEXITSTATUS(status) == 0) {
                        w->ok++;
                        w->unexpected += O.wrong;
                } else {
                        w->refused++;
                        w->unexpected += !O.wrong;
                }
        }
        return NULL;
}

/* ------------------------------------------------------------ fsync */

/* 64 pages written and synced once, so that the size never changes later. */
static int page_file_open(char page[static 4096]) {
        int fd = open(O.out, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

        if (fd < 0)
                die(O.out, errno);
        memset(page, 'x', 4096);
        for (size_t i = 0; i < 64; i++)
                if (pwrite(fd, page, 4096, (off_t) (i * 4096)) < 0)
                        die("pwrite", errno);
        if (fsync(fd) < 0)
                die("fsync", errno);
        return fd;
}

static void *fsync_thread(void *arg) {
        struct worker *w = arg;
        char page[4096];
        int fd = page_file_open(page);

        pthread_barrier_wait(w->start);
        for (size_t i = 0; i < w->n; i++) {
                uint64_t t0 = now_ns();
                if (pwrite(fd, page, sizeof(page), (off_t) ((i % 64) * sizeof(page))) < 0 || fdatasync(fd) < 0)
                        w->errors++;
                else
                        w->ok++;
                w->lat_ns[i] = now_ns() - t0;
        }
        close(fd);
        return NULL;
}

/* ------------------------------------------------------------ floor */

enum { FLOOR_REQUEST = 67, FLOOR_REPLY = 9 };

static bool full_io(int fd, void *buf, size_t len, bool out) {
        for (size_t done = 0; done < len;) {
                ssize_t n = out ? write(fd, (char *) buf + done, len - done) : read(fd, (char *) buf + done, len - done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return false;
                done += (size_t) n;
        }
        return true;
}

struct floor_db {
        sqlite3 *db;
        sqlite3_stmt *begin, *update, *commit;
};

static bool floor_db_step(sqlite3_stmt *st) {
        int rc = sqlite3_step(st);
        (void) sqlite3_reset(st);
        return rc == SQLITE_DONE;
}

static bool floor_db_commit(struct floor_db *f, unsigned i) {
        return floor_db_step(f->begin) &&
               sqlite3_bind_int(f->update, 1, (int) ((i * 7919u) % 50000u) + 1) == SQLITE_OK &&
               floor_db_step(f->update) && floor_db_step(f->commit);
}

static void floor_db_open(struct floor_db *f) {
        char path[4096];

        snprintf(path, sizeof(path), "%s.db", O.out);
        if (sqlite3_open(path, &f->db) != SQLITE_OK ||
            sqlite3_exec(f->db,
                         "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                         "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, step INTEGER NOT NULL);"
                         "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50000)"
                         " INSERT OR IGNORE INTO t SELECT x, 0 FROM c;",
                         NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(f->db, "BEGIN IMMEDIATE", -1, &f->begin, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(f->db, "UPDATE t SET step = step + 1 WHERE id = ?1", -1, &f->update, NULL) !=
                    SQLITE_OK ||
            sqlite3_prepare_v2(f->db, "COMMIT", -1, &f->commit, NULL) != SQLITE_OK)
                die("sqlite", EIO);
        for (unsigned i = 0; i < 2500; i++)
                if (!floor_db_commit(f, i))
                        die("sqlite commit", EIO);
}

static void floor_server(int sock, size_t n) {
        char page[4096], req[FLOOR_REQUEST], reply[FLOOR_REPLY] = { 0 };
        struct floor_db f = { 0 };
        int fd = page_file_open(page);

        if (O.sqlite)
                floor_db_open(&f);
        /* Ready: the client's clock starts after this. */
        if (!full_io(sock, reply, 1, true))
                _exit(1);
        for (size_t i = 0; i < n; i++) {
                if (!full_io(sock, req, sizeof(req), false))
                        _exit(1);
                if (O.sqlite) {
                        if (!floor_db_commit(&f, (unsigned) i))
                                _exit(1);
                } else if (!O.no_sync && (pwrite(fd, page, sizeof(page), (off_t) ((i % 64) * sizeof(page))) < 0 ||
                                          fdatasync(fd) < 0))
                        _exit(1);
                if (!full_io(sock, reply, sizeof(reply), true))
                        _exit(1);
        }
        _exit(0);
}

static void *floor_thread(void *arg) {
        struct worker *w = arg;
        char req[FLOOR_REQUEST] = { 0 }, reply[FLOOR_REPLY];
        int sv[2], status;
        pid_t pid;

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                die("socketpair", errno);
        pid = fork();
        if (pid < 0)
                die("fork", errno);
        if (pid == 0) {
                close(sv[0]);
                floor_server(sv[1], w->n);
        }
        close(sv[1]);
        if (!full_io(sv[0], reply, 1, false))
                die("floor server", EIO);
        pthread_barrier_wait(w->start);
        for (size_t i = 0; i < w->n; i++) {
                uint64_t t0 = now_ns();
                if (!full_io(sv[0], req, sizeof(req), true) || !full_io(sv[0], reply, sizeof(reply), false)) {
                        w->errors += w->n - i;
                        break;
                }
                w->lat_ns[i] = now_ns() - t0;
                w->ok++;
        }
        close(sv[0]);
        if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                w->errors++;
        return NULL;
}

/* ------------------------------------------------------------ driver */

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return (x > y) - (x < y);
}

static double pct_us(const uint64_t *v, size_t n, double p) {
        size_t i = (size_t) (p * (double) (n - 1) + 0.5);
        return (double) v[i] / 1000.0;
}

static struct user *load_secrets(size_t *ret_n) {
        FILE *f = fopen(O.secrets, "re");
        struct user *users = calloc(O.count, sizeof(*users));
        char name[32], b32[128];
        size_t n = 0;
        unsigned line = 0;

        if (!f || !users)
                die(O.secrets, errno);
        while (n < O.count && fscanf(f, "%31s %127s", name, b32) == 2) {
                line++;
                if (line < O.first)
                        continue;
                struct user *u = &users[n++];
                snprintf(u->name, sizeof(u->name), "%s", name);
                snprintf(u->b32, sizeof(u->b32), "%s", b32);
                if (oath_base32_decode(u->b32, strlen(u->b32), &u->seed, &u->seed_len) != OATH_OK)
                        die("bad base32 secret", EINVAL);
        }
        fclose(f);
        if (n < O.count) {
                fprintf(stderr, "totp_bench: %s has %zu users from line %u, wanted %u\n", O.secrets, n, O.first,
                        O.count);
                exit(1);
        }
        *ret_n = n;
        return users;
}

static void run(void *(*fn)(void *), struct user *users, size_t n) {
        unsigned t = O.threads < n ? O.threads : (unsigned) n;
        struct worker *w = calloc(t, sizeof(*w));
        uint64_t *lat = calloc(n, sizeof(*lat)), *starts = calloc(n, sizeof(*starts));
        pthread_barrier_t start;
        size_t ok = 0, refused = 0, errors = 0, unexpected = 0, coincident = 0, at = 0;
        uint64_t t0, t1;

        if (!w || !lat || !starts)
                die("memory", ENOMEM);
        pthread_barrier_init(&start, NULL, t + 1);
        for (unsigned i = 0; i < t; i++) {
                size_t share = n / t + (i < n % t);
                w[i] = (struct worker){ .o = &O, .users = users + at, .n = share, .lat_ns = lat + at,
                                        .start_ns = starts + at, .start = &start };
                at += share;
                if (pthread_create(&w[i].thread, NULL, fn, &w[i]) != 0)
                        die("pthread_create", errno);
        }
        if (fn != enroll_thread)
                pthread_barrier_wait(&start);
        t0 = now_ns();
        for (unsigned i = 0; i < t; i++) {
                pthread_join(w[i].thread, NULL);
                ok += w[i].ok;
                refused += w[i].refused;
                errors += w[i].errors;
                unexpected += w[i].unexpected;
                coincident += w[i].coincident;
        }
        t1 = now_ns();
        /* When the slowest request started, in seconds after the run began
         * (auth only; 0 elsewhere): to tell what it met. */
        size_t slowest = 0;
        for (size_t i = 1; i < n; i++)
                if (lat[i] > lat[slowest])
                        slowest = i;
        double max_at = starts[slowest] > t0 ? (double) (starts[slowest] - t0) / 1e9 : 0;
        qsort(lat, n, sizeof(*lat), cmp_u64);
        printf("result label=%s n=%zu ok=%zu refused=%zu errors=%zu unexpected=%zu coincident=%zu threads=%u wall_s=%.3f "
               "per_s=%.0f p50_us=%.0f p90_us=%.0f p99_us=%.0f p999_us=%.0f max_us=%.0f max_at_s=%.3f\n",
               O.label ? O.label : O.mode, n, ok, refused, errors, unexpected, coincident, t, (double) (t1 - t0) / 1e9,
               (double) n / ((double) (t1 - t0) / 1e9), pct_us(lat, n, 0.5), pct_us(lat, n, 0.9),
               pct_us(lat, n, 0.99), pct_us(lat, n, 0.999), pct_us(lat, n, 1.0), max_at);
        fflush(stdout);
        pthread_barrier_destroy(&start);
        free(starts);
        free(lat);
        free(w);
}

static void usage(void) {
        fputs("usage: totp_bench enroll|auth|pamtester|usersfile|fsync|floor [--socket P] [--secrets F]\n"
              "       [--out F] [--first I] [--count N] [--threads T] [--wrong] [--reconnect]\n"
              "       [--rhost H] [--service S] [--label L] [--no-sync] [--sqlite] [--interval-ms MS]\n",
              stderr);
        exit(2);
}

int main(int argc, char **argv) {
        static const struct option longopts[] = {
                { "socket", required_argument, NULL, 's' },  { "secrets", required_argument, NULL, 'S' },
                { "out", required_argument, NULL, 'o' },     { "first", required_argument, NULL, 'f' },
                { "count", required_argument, NULL, 'n' },   { "threads", required_argument, NULL, 't' },
                { "wrong", no_argument, NULL, 'w' },         { "reconnect", no_argument, NULL, 'r' },
                { "rhost", required_argument, NULL, 'h' },   { "service", required_argument, NULL, 'v' },
                { "label", required_argument, NULL, 'l' },   { "no-sync", no_argument, NULL, 'N' },
                { "sqlite", no_argument, NULL, 'Q' },        { "interval-ms", required_argument, NULL, 'i' },
                { NULL, 0, NULL, 0 },
        };
        struct user *users = NULL;
        size_t n = 0;
        int c;

        if (argc < 2)
                usage();
        O.mode = argv[1];
        optind = 2;
        while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1)
                switch (c) {
                case 's': O.socket = optarg; break;
                case 'S': O.secrets = optarg; break;
                case 'o': O.out = optarg; break;
                case 'f': O.first = (unsigned) strtoul(optarg, NULL, 10); break;
                case 'n': O.count = (unsigned) strtoul(optarg, NULL, 10); break;
                case 't': O.threads = (unsigned) strtoul(optarg, NULL, 10); break;
                case 'w': O.wrong = true; break;
                case 'r': O.reconnect = true; break;
                case 'h': O.rhost = optarg; break;
                case 'v': O.service = optarg; break;
                case 'l': O.label = optarg; break;
                case 'N': O.no_sync = true; break;
                case 'Q': O.sqlite = true; break;
                case 'i': O.interval_ms = (unsigned) strtoul(optarg, NULL, 10); break;
                default: usage();
                }
        if (O.count == 0 || O.threads == 0 || O.first == 0)
                usage();
        if (oath_init() != OATH_OK)
                die("oath_init", EIO);

        if (strcmp(O.mode, "enroll") == 0) {
                FILE *f;
                if (!O.socket || !O.out)
                        usage();
                users = calloc(O.count, sizeof(*users));
                if (!users)
                        die("memory", ENOMEM);
                for (n = 0; n < O.count; n++)
                        user_name(O.first + (unsigned) n, &users[n]);
                run(enroll_thread, users, n);
                if (!(f = fopen(O.out, "we")))
                        die(O.out, errno);
                for (size_t i = 0; i < n; i++)
                        if (users[i].b32[0])
                                fprintf(f, "%s %s\n", users[i].name, users[i].b32);
                if (fclose(f) != 0)
                        die(O.out, errno);
        } else if (strcmp(O.mode, "auth") == 0 || strcmp(O.mode, "pamtester") == 0) {
                bool auth = O.mode[0] == 'a';
                uint64_t step = (uint64_t) time(NULL) / PERIOD;
                if (!O.secrets || (auth && !O.socket))
                        usage();
                users = load_secrets(&n);
                for (size_t i = 0; i < n; i++)
                        if (prepare_code(&users[i], step, O.wrong) < 0)
                                die("computing a code", EINVAL);
                run(auth ? auth_thread : pamtester_thread, users, n);
        } else if (strcmp(O.mode, "fsync") == 0 || strcmp(O.mode, "floor") == 0) {
                if (!O.out)
                        usage();
                O.threads = 1;
                n = O.count;
                users = calloc(n, sizeof(*users));
                if (!users)
                        die("memory", ENOMEM);
                run(O.mode[1] == 's' ? fsync_thread : floor_thread, users, n);
        } else if (strcmp(O.mode, "usersfile") == 0) {
                FILE *f;
                if (!O.secrets || !O.out)
                        usage();
                users = load_secrets(&n);
                if (!(f = fopen(O.out, "we")))
                        die(O.out, errno);
                for (size_t i = 0; i < n; i++) {
                        fprintf(f, "HOTP/T30/6 %s - ", users[i].name);
                        for (size_t b = 0; b < users[i].seed_len; b++)
                                fprintf(f, "%02x", (unsigned char) users[i].seed[b]);
                        fputc('\n', f);
                }
                if (fclose(f) != 0)
                        die(O.out, errno);
        } else
                usage();
        for (size_t i = 0; i < n; i++)
                free(users[i].seed);
        free(users);
        return 0;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The notification thread; see notify.h. */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "notify.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

/* One JSON object: the event's fields are short, the message at most 2 KiB. */
#define NOTE_MAX 8192

extern char **environ;

struct note {
        char *json;
        struct note *next;
};

static struct {
        pthread_mutex_t lock;
        pthread_cond_t wake;
        struct note *head, *tail;
        size_t n;
        bool started, stop;
        pthread_t thread;
        char command[4096];
        char host[256];
        uint64_t timeout;
        uint64_t sent, failed, dropped;
} nt = { .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER };

bool phi_notify_wants(enum phi_event event) {
        switch (event) {
        case PHI_EVENT_ELEVATION_REQUESTED:
        case PHI_EVENT_ELEVATION_APPROVED:
        case PHI_EVENT_ELEVATION_DENIED:
        case PHI_EVENT_ELEVATION_EXPIRED:
        case PHI_EVENT_ELEVATION_REVOKED:
        case PHI_EVENT_ELEVATION_CANCELLED:
        case PHI_EVENT_BREAKGLASS:
        case PHI_EVENT_LOCKOUT:
                return true;
        default:
                return false;
        }
}

/* Appends s as a JSON string; false when it does not fit. */
static bool put_json(char *buf, size_t cap, size_t *pos, const char *s) {
        size_t p = *pos;

        if (p + 1 >= cap)
                return false;
        buf[p++] = '"';
        for (const unsigned char *c = (const unsigned char *) s; *c; c++) {
                if (p + 7 >= cap)
                        return false;
                if (*c == '"' || *c == '\\') {
                        buf[p++] = '\\';
                        buf[p++] = (char) *c;
                } else if (*c < 0x20 || *c == 0x7f)
                        p += (size_t) snprintf(buf + p, cap - p, "\\u%04x", *c);
                else
                        buf[p++] = (char) *c;
        }
        if (p + 1 >= cap)
                return false;
        buf[p++] = '"';
        buf[p] = '\0';
        *pos = p;
        return true;
}

static bool put_raw(char *buf, size_t cap, size_t *pos, const char *s) {
        size_t n = strlen(s);

        if (*pos + n + 1 > cap)
                return false;
        memcpy(buf + *pos, s, n + 1);
        *pos += n;
        return true;
}

int phi_notify_format(enum phi_event event, int priority, const struct phi_journal_field *fields, size_t n,
                      const char *message, const char *host, uint64_t time_us, char *buf, size_t cap) {
        char when[40], key[64], prio[16];
        struct tm tm;
        time_t t = (time_t) (time_us / 1000000);
        size_t pos = 0;
        bool ok;

        if (event >= _PHI_EVENT_MAX || !gmtime_r(&t, &tm) || strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                return -EINVAL;
        snprintf(prio, sizeof(prio), "%d", priority);
        /* Keys: event, time, host, priority, message, then each PHI_ field
         * lowercased without its prefix (user, actor, role, request_id, ...). */
        ok = put_raw(buf, cap, &pos, "{\"event\":") && put_json(buf, cap, &pos, phi_events[event].name) &&
             put_raw(buf, cap, &pos, ",\"time\":") && put_json(buf, cap, &pos, when) &&
             (!host || (put_raw(buf, cap, &pos, ",\"host\":") && put_json(buf, cap, &pos, host))) &&
             put_raw(buf, cap, &pos, ",\"priority\":") && put_raw(buf, cap, &pos, prio) &&
             put_raw(buf, cap, &pos, ",\"message\":") && put_json(buf, cap, &pos, message);
        for (size_t i = 0; ok && i < n; i++) {
                const char *name = fields[i].name;
                size_t k = 0;
                if (!fields[i].value || strncmp(name, "PHI_", 4) != 0)
                        continue;
                for (const char *c = name + 4; *c && k + 1 < sizeof(key); c++)
                        key[k++] = (char) ((*c >= 'A' && *c <= 'Z') ? *c - 'A' + 'a' : *c);
                key[k] = '\0';
                ok = put_raw(buf, cap, &pos, ",") && put_json(buf, cap, &pos, key) && put_raw(buf, cap, &pos, ":") &&
                     put_json(buf, cap, &pos, fields[i].value);
        }
        ok = ok && put_raw(buf, cap, &pos, "}\n");
        return ok ? 0 : -ENOBUFS;
}

static void hook(void *userdata, enum phi_event event, int priority, const struct phi_journal_field *fields, size_t n,
                 const char *message) {
        struct timespec ts;
        struct note *e;
        char *json;

        (void) userdata;
        if (!phi_notify_wants(event))
                return;
        (void) clock_gettime(CLOCK_REALTIME, &ts);
        json = malloc(NOTE_MAX);
        if (!json)
                return;
        if (phi_notify_format(event, priority, fields, n, message, nt.host[0] ? nt.host : NULL,
                              (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000, json, NOTE_MAX) < 0) {
                free(json);
                return;
        }
        pthread_mutex_lock(&nt.lock);
        if (nt.stop || nt.n >= PHI_NOTIFY_QUEUE_MAX) {
                /* Never wait for a command: count it, say so once it drains. */
                nt.dropped++;
                pthread_mutex_unlock(&nt.lock);
                free(json);
                return;
        }
        e = calloc(1, sizeof(*e));
        if (!e) {
                pthread_mutex_unlock(&nt.lock);
                free(json);
                return;
        }
        e->json = json;
        if (nt.tail)
                nt.tail->next = e;
        else
                nt.head = e;
        nt.tail = e;
        nt.n++;
        pthread_cond_signal(&nt.wake);
        pthread_mutex_unlock(&nt.lock);
}

/* Runs the command with json on its stdin; 0 when it exited 0 in time. */
static int run_one(const char *json, char *why, size_t why_len) {
        posix_spawn_file_actions_t fa;
        int in[2] = { -1, -1 }, status = 0, pidfd = -1, r = 0;
        char *argv[] = { nt.command, NULL };
        size_t len = strlen(json), done = 0;
        struct timespec start, now;
        pid_t pid = -1;

        if (pipe2(in, O_CLOEXEC) < 0) {
                snprintf(why, why_len, "pipe: %s", strerror(errno));
                return -errno;
        }
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
        r = -posix_spawn(&pid, nt.command, &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        (void) close(in[0]);
        if (r < 0) {
                snprintf(why, why_len, "cannot run it: %s", strerror(-r));
                (void) close(in[1]);
                return r;
        }
        /* The object is small (under a pipe's buffer); a command that does not
         * read it still gets its timeout. */
        (void) fcntl(in[1], F_SETFL, O_NONBLOCK);
        while (done < len) {
                ssize_t w = write(in[1], json + done, len - done);
                if (w <= 0)
                        break;
                done += (size_t) w;
        }
        (void) close(in[1]);
        pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        (void) clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                pid_t w = waitpid(pid, &status, WNOHANG);
                if (w == pid)
                        break;
                (void) clock_gettime(CLOCK_MONOTONIC, &now);
                int64_t left_ms = (int64_t) nt.timeout * 1000 - ((now.tv_sec - start.tv_sec) * 1000 +
                                                                 (now.tv_nsec - start.tv_nsec) / 1000000);
                if (left_ms <= 0) {
                        (void) kill(pid, SIGKILL);
                        (void) waitpid(pid, &status, 0);
                        snprintf(why, why_len, "killed after its %llu s timeout", (unsigned long long) nt.timeout);
                        r = -ETIMEDOUT;
                        goto out;
                }
                if (pidfd >= 0) {
                        struct pollfd p = { .fd = pidfd, .events = POLLIN };
                        (void) poll(&p, 1, (int) (left_ms > 1000 ? 1000 : left_ms));
                } else
                        (void) usleep(10000);
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                r = 0;
        else {
                if (WIFEXITED(status))
                        snprintf(why, why_len, "exited with status %d", WEXITSTATUS(status));
                else
                        snprintf(why, why_len, "killed by signal %d", WTERMSIG(status));
                r = -EIO;
        }
out:
        if (pidfd >= 0)
                (void) close(pidfd);
        return r;
}

static void *notify_main(void *arg) {
        (void) arg;
        /* What it journals is about notifications, never itself notified. */
        pthread_mutex_lock(&nt.lock);
        for (;;) {
                struct note *e;
                uint64_t dropped;
                char why[256] = "";
                int r;

                while (!nt.head && !nt.stop)
                        pthread_cond_wait(&nt.wake, &nt.lock);
                if (nt.stop) {
                        /* At the stop, what waits is not run: a queue of slow
                         * commands must not hold the daemon's exit. */
                        size_t left = nt.n;
                        while (nt.head) {
                                e = nt.head;
                                nt.head = e->next;
                                free(e->json);
                                free(e);
                        }
                        nt.tail = NULL;
                        nt.n = 0;
                        if (left)
                                phi_log(LOG_WARNING, "%zu notification%s not sent: phiaccessd is stopping", left,
                                        left == 1 ? "" : "s");
                        break;
                }
                e = nt.head;
                nt.head = e->next;
                if (!nt.head)
                        nt.tail = NULL;
                nt.n--;
                dropped = nt.dropped;
                nt.dropped = 0;
                pthread_mutex_unlock(&nt.lock);
                if (dropped)
                        phi_log(LOG_WARNING, "%llu notification%s dropped: the queue of %d was full (is %s slow?)",
                                (unsigned long long) dropped, dropped == 1 ? "" : "s", PHI_NOTIFY_QUEUE_MAX,
                                nt.command);
                r = run_one(e->json, why, sizeof(why));
                if (r < 0)
                        phi_log(LOG_WARNING, "notification command %s failed: %s", nt.command, why);
                free(e->json);
                free(e);
                pthread_mutex_lock(&nt.lock);
                if (r < 0)
                        nt.failed++;
                else
                        nt.sent++;
        }
        pthread_mutex_unlock(&nt.lock);
        return NULL;
}

int phi_notify_start(const struct phi_notify_config *c) {
        sigset_t all, old;
        int r;

        if (!c->command || !c->command[0])
                return 0;
        snprintf(nt.command, sizeof(nt.command), "%s", c->command);
        snprintf(nt.host, sizeof(nt.host), "%s", c->host ? c->host : "");
        nt.timeout = c->timeout ? c->timeout : 10;
        sigfillset(&all);
        (void) pthread_sigmask(SIG_SETMASK, &all, &old);
        r = -pthread_create(&nt.thread, NULL, notify_main, NULL);
        (void) pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0)
                return r;
        (void) pthread_setname_np(nt.thread, "phi-notify");
        nt.started = true;
        phi_journal_set_notify_hook(hook, NULL);
        return 0;
}

void phi_notify_stop(void) {
        if (!nt.started)
                return;
        phi_journal_set_notify_hook(NULL, NULL);
        pthread_mutex_lock(&nt.lock);
        nt.stop = true;
        pthread_cond_signal(&nt.wake);
        pthread_mutex_unlock(&nt.lock);
        (void) pthread_join(nt.thread, NULL);
        nt.started = false;
}

void phi_notify_stats(uint64_t *ret_sent, uint64_t *ret_failed, uint64_t *ret_dropped) {
        pthread_mutex_lock(&nt.lock);
        *ret_sent = nt.sent;
        *ret_failed = nt.failed;
        *ret_dropped = nt.dropped;
        pthread_mutex_unlock(&nt.lock);
}

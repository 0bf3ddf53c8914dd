/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sessions.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

int phi_session_id_new(char out[static PHI_SESSION_ID_LEN + 1]) {
        uint8_t b[PHI_SESSION_ID_LEN / 2];

        if (getrandom(b, sizeof(b), 0) != (ssize_t) sizeof(b))
                return -EIO;
        for (size_t i = 0; i < sizeof(b); i++)
                snprintf(out + 2 * i, 3, "%02x", b[i]);
        return 0;
}

bool phi_session_id_valid(const char *s) {
        size_t n = 0;

        for (; s[n]; n++)
                if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
                        return false;
        return n == PHI_SESSION_ID_LEN;
}

static int read_small(const char *path, char *buf, size_t len) {
        int fd = open(path, O_RDONLY | O_CLOEXEC), r;
        ssize_t n;

        if (fd < 0)
                return -errno;
        n = read(fd, buf, len - 1);
        r = n < 0 ? -errno : 0;
        (void) close(fd);
        if (r == 0)
                buf[n] = '\0';
        return r;
}

int phi_session_boot_id(char out[static PHI_BOOT_ID_LEN + 1]) {
        char buf[64];
        int r = read_small("/proc/sys/kernel/random/boot_id", buf, sizeof(buf));

        if (r < 0)
                return r;
        if (strlen(buf) < PHI_BOOT_ID_LEN)
                return -EIO;
        memcpy(out, buf, PHI_BOOT_ID_LEN);
        out[PHI_BOOT_ID_LEN] = '\0';
        return 0;
}

int phi_session_pid_start(pid_t pid, uint64_t *ret) {
        char path[64], buf[1024];
        unsigned long long start;
        const char *p;
        int r;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        r = read_small(path, buf, sizeof(buf));
        if (r < 0)
                return r == -ENOENT ? -ESRCH : r;
        /* The command name (field 2) may hold spaces and parentheses: the
         * fields that follow start after its last ')'. Field 3 is the first
         * of them, so the start time (22) is the 20th. */
        p = strrchr(buf, ')');
        if (!p)
                return -EIO;
        p++;
        for (int field = 3; field < 22; field++) {
                p = strchr(p + 1, ' ');
                if (!p)
                        return -EIO;
        }
        if (sscanf(p, " %llu", &start) != 1)
                return -EIO;
        *ret = start;
        return 0;
}

int phi_session_pidfd(pid_t pid, uint64_t start, int *ret_fd) {
        uint64_t now_start;
        int fd, r;

        if (pid <= 0)
                return -ESRCH;
        fd = (int) syscall(SYS_pidfd_open, pid, 0);
        if (fd < 0)
                return -errno;
        /* The pidfd pins the process: if its start time is still the
         * recorded one, the pidfd is that process's, not a reuse of its pid. */
        r = phi_session_pid_start(pid, &now_start);
        if (r == 0 && now_start != start)
                r = -ESRCH;
        if (r < 0) {
                (void) close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
}

/* The children of every thread of pid, appended to v (n of cap) when not
 * there yet; the number added. */
static size_t children_add(pid_t pid, pid_t *v, size_t *n, size_t cap) {
        char path[64], buf[4096];
        size_t added = 0;
        DIR *d;
        struct dirent *e;

        snprintf(path, sizeof(path), "/proc/%d/task", (int) pid);
        if (!(d = opendir(path)))
                return 0;
        while ((e = readdir(d))) {
                char *p, *end;
                if (e->d_name[0] == '.')
                        continue;
                snprintf(path, sizeof(path), "/proc/%d/task/%.16s/children", (int) pid, e->d_name);
                if (read_small(path, buf, sizeof(buf)) < 0)
                        continue;
                for (p = buf;; p = end) {
                        long c = strtol(p, &end, 10);
                        bool known = false;
                        if (end == p)
                                break;
                        for (size_t i = 0; i < *n && !known; i++)
                                known = v[i] == (pid_t) c;
                        if (!known && c > 0 && *n < cap) {
                                v[(*n)++] = (pid_t) c;
                                added++;
                        }
                }
        }
        closedir(d);
        return added;
}

int phi_session_kill_tree(pid_t root, size_t *ret_killed, size_t *ret_refused) {
        pid_t *v = calloc(PHI_SESSION_TREE_MAX, sizeof(*v));
        size_t n = 0, stopped = 0, added, killed = 0, refused = 0;

        if (!v)
                return -ENOMEM;
        /* Stop each process as it is found, then look again at everyone's
         * children: a process can fork only until it is stopped, so a pass
         * that finds nobody new has the whole tree, frozen. */
        do {
                added = children_add(root, v, &n, PHI_SESSION_TREE_MAX);
                for (size_t i = 0; i < n; i++)
                        added += children_add(v[i], v, &n, PHI_SESSION_TREE_MAX);
                for (; stopped < n; stopped++)
                        (void) kill(v[stopped], SIGSTOP);
        } while (added > 0 && n < PHI_SESSION_TREE_MAX);
        for (size_t i = 0; i < n; i++) {
                if (kill(v[i], SIGKILL) == 0)
                        killed++;
                else if (errno == EPERM)
                        refused++;
        }
        free(v);
        *ret_killed = killed;
        *ret_refused = refused;
        return 0;
}

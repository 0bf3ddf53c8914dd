/* SPDX-License-Identifier: GPL-2.0-or-later */
/* phictl doctor: finds the setups that let a login or an elevation go around
 * phi -- sshd settings that never reach PAM, PAM stacks where a module before
 * pam_phi can end the stack, sudoers rules that cache group membership, an
 * nsswitch.conf without phi, an unsynchronised clock, a directory reached in
 * the clear, secrets with loose permissions, a daemon that is down or serving
 * stale identities -- and names each with its fix.
 *
 * It reads the host's real files (/etc/pam.d, /etc/sudoers, ...) and runs
 * `sshd -T`, so what it reports is what those programs will do; there is no
 * "root" option to point it elsewhere (a test stages files in a private mount
 * namespace instead). The PAM and sudoers readers below are deliberately
 * small: they follow includes and the control values that decide whether
 * pam_phi runs, not the whole grammar of either file (no library parses
 * either). Every file is read with a bound on its size, lines and include
 * depth. */

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/timex.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "phi/client.h"
#include "phi/macro.h"
#include "phi/wire.h"

#include "phictl.h"

#define DOCTOR_MAX_FINDINGS 64
#define DOCTOR_TEXT_MAX 512
#define DOCTOR_FILE_MAX (1024 * 1024)   /* a PAM, sudoers or nsswitch file */
#define DOCTOR_INCLUDE_DEPTH 8
#define DOCTOR_STACK_MAX 256            /* PAM lines after expanding includes */
#define DOCTOR_SSHD_TIMEOUT_MS 5000

#define PAM_DIR "/etc/pam.d"
#define SUDOERS "/etc/sudoers"
#define NSSWITCH "/etc/nsswitch.conf"
#define SSHD "/usr/sbin/sshd"
#define CONFIG_FILE "/etc/phi/phiaccessd.conf"
#define MASTER_KEY "/etc/phi/master.key"
#define STORE_FILE "/var/lib/phiaccessd/phi.db"

enum severity { SEV_WARNING, SEV_ERROR };

struct finding {
        enum severity severity;
        const char *check;
        char problem[DOCTOR_TEXT_MAX];
        char fix[DOCTOR_TEXT_MAX];
};

struct doctor {
        struct finding findings[DOCTOR_MAX_FINDINGS];
        size_t n;
        size_t dropped;
        const char *skip[16];   /* each a comma-separated list of check names */
        size_t n_skip;
        /* from phictl status, when the daemon answered */
        bool daemon_up;
        char directory[256];
        char directory_tls[32];
        char outage_since[64];
        char snapshot[160];             /* "published", or why not */
        char snapshot_path[PATH_MAX];
};

static void add(struct doctor *d, enum severity sev, const char *check, const char *fix,
                const char *fmt, ...) _phi_printf_(5, 6);
static void add(struct doctor *d, enum severity sev, const char *check, const char *fix,
                const char *fmt, ...) {
        struct finding *f;
        va_list ap;

        if (d->n >= DOCTOR_MAX_FINDINGS) {
                d->dropped++;
                return;
        }
        f = &d->findings[d->n++];
        f->severity = sev;
        f->check = check;
        va_start(ap, fmt);
        (void) vsnprintf(f->problem, sizeof(f->problem), fmt, ap);
        va_end(ap);
        (void) snprintf(f->fix, sizeof(f->fix), "%s", fix);
}

static bool in_list(const char *list, const char *check) {
        size_t len = strlen(check);

        for (const char *p = list; *p;) {
                const char *end = strchrnul(p, ',');
                if ((size_t) (end - p) == len && strncmp(p, check, len) == 0)
                        return true;
                p = *end ? end + 1 : end;
        }
        return false;
}

static bool skipped(const struct doctor *d, const char *check) {
        for (size_t i = 0; i < d->n_skip; i++)
                if (in_list(d->skip[i], check))
                        return true;
        return false;
}

/* The whole file, NUL-terminated; -EFBIG past DOCTOR_FILE_MAX. */
static int read_file(const char *path, char **ret) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        ssize_t n;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        buf = malloc(DOCTOR_FILE_MAX + 1);
        if (!buf)
                return -ENOMEM;
        while ((n = read(fd, buf + len, DOCTOR_FILE_MAX + 1 - len)) > 0) {
                len += (size_t) n;
                if (len > DOCTOR_FILE_MAX)
                        return -EFBIG;
        }
        if (n < 0)
                return -errno;
        buf[len] = '\0';
        *ret = PHI_TAKE_PTR(buf);
        return 0;
}

static char *trim(char *s) {
        char *end;

        while (isspace((unsigned char) *s))
                s++;
        end = s + strlen(s);
        while (end > s && isspace((unsigned char) end[-1]))
                *--end = '\0';
        return s;
}

/* ---- the daemon ---------------------------------------------------------- */

static void copy_value(char *dst, size_t size, const char *v) {
        (void) snprintf(dst, size, "%s", v);
}

static void check_daemon(struct doctor *d, const struct ctl *ctl, bool check_snapshot) {
        _cleanup_client_ phi_client *c = NULL;
        _cleanup_msg_ phi_msg *req = phi_msg_new(PHI_MSG_STATUS);
        _cleanup_msg_ phi_msg *reply = NULL;
        const char *key = NULL;
        int r;

        if (!req)
                return;
        r = phi_client_connect(ctl->socket_path, PHI_CLIENT_DEFAULT_TIMEOUT_MS, &c);
        if (r >= 0)
                r = phi_client_call(c, req, &reply);
        if (r < 0 || phi_msg_type(reply) != PHI_MSG_OK) {
                add(d, SEV_ERROR, "daemon",
                    "systemctl enable --now phiaccessd.socket phiaccessd-pam.socket phiaccessd.service; "
                    "then journalctl -u phiaccessd says why it stopped",
                    "phiaccessd does not answer at %s (%s): every pam_phi login is refused",
                    ctl->socket_path, r < 0 ? phi_client_strerror(r) : "an error reply to status");
                return;
        }
        d->daemon_up = true;
        for (size_t i = 0, n = phi_msg_field_count(reply); i < n; i++) {
                uint16_t tag;
                const void *value;

                if (phi_msg_field(reply, i, &tag, NULL, &value, NULL) < 0)
                        continue;
                if (tag == PHI_TAG_KEY) {
                        key = value;
                        continue;
                }
                if (tag != PHI_TAG_VALUE || !key)
                        continue;
                if (strcmp(key, "directory") == 0)
                        copy_value(d->directory, sizeof(d->directory), value);
                else if (strcmp(key, "directory_tls") == 0)
                        copy_value(d->directory_tls, sizeof(d->directory_tls), value);
                else if (strcmp(key, "outage_since") == 0)
                        copy_value(d->outage_since, sizeof(d->outage_since), value);
                else if (strcmp(key, "snapshot") == 0)
                        copy_value(d->snapshot, sizeof(d->snapshot), value);
                else if (strcmp(key, "snapshot_path") == 0)
                        copy_value(d->snapshot_path, sizeof(d->snapshot_path), value);
                key = NULL;
        }
        if (check_snapshot && d->snapshot[0] && strncmp(d->snapshot, "published", 9) != 0)
                add(d, SEV_ERROR, "snapshot", "journalctl -u phiaccessd says why; phictl sync retries",
                    "the daemon has not published the identities: %s", d->snapshot);
        if (check_snapshot && d->outage_since[0] && strcmp(d->outage_since, "none") != 0)
                add(d, SEV_WARNING, "snapshot",
                    "make the directory reachable again (phictl status: last_error says why it is not); "
                    "until then changes in the directory do not reach this host",
                    "the directory has been unreachable since %s: this host serves users and groups "
                    "as they were then", d->outage_since);
}

/* The daemon accepts tls = none for these without allow_insecure, and so
 * does the doctor: the traffic never leaves the host. */
static bool uri_is_loopback(const char *uri) {
        const char *host = strstr(uri, "://");
        size_t len;

        if (!host)
                return false;
        host += 3;
        len = strcspn(host, ":/");
        if (host[0] == '[')
                return strncmp(host, "[::1]", 5) == 0;
        return (len == 9 && strncmp(host, "localhost", 9) == 0) || strncmp(host, "127.", 4) == 0;
}

static void check_ldap_tls(struct doctor *d) {
        if (!d->daemon_up || !d->directory_tls[0] || strcmp(d->directory, "none") == 0)
                return;         /* not connected: the URI in use is not known */
        if (strcmp(d->directory_tls, "none") == 0 && !uri_is_loopback(d->directory))
                add(d, SEV_ERROR, "ldap",
                    "set tls = starttls or ldaps in [ldap] of phiaccessd.conf (with ca_file if the "
                    "directory's CA is not in the system store), then phictl reload",
                    "the directory %s is read without TLS (tls = none): the bind password and every "
                    "identity cross the network in the clear, and anyone on the path can add users",
                    d->directory);
}

/* ---- files that must stay private ---------------------------------------- */

static void check_mode(struct doctor *d, const char *path, mode_t forbidden, bool must_exist,
                       const char *what) {
        struct stat st;
        char fix[DOCTOR_TEXT_MAX];

        if (stat(path, &st) < 0) {
                if (errno == ENOENT && !must_exist)
                        return;
                if (errno == ENOENT) {
                        add(d, SEV_ERROR, "permissions", "see phiaccessd(8), FILES",
                            "%s (%s) does not exist", path, what);
                        return;
                }
                add(d, SEV_WARNING, "permissions", "run phictl doctor as root",
                    "cannot check %s (%s): %s", path, what, strerror(errno));
                return;
        }
        (void) snprintf(fix, sizeof(fix), "chown root:root %s && chmod %s %s", path,
                        forbidden == 0077 ? "go-rwx" : "go-w", path);
        if (st.st_uid != 0)
                add(d, SEV_ERROR, "permissions", fix, "%s (%s) is owned by uid %u, not root", path,
                    what, (unsigned) st.st_uid);
        else if (st.st_mode & forbidden)
                add(d, SEV_ERROR, "permissions", fix, "%s (%s) has mode %04o: %s", path, what,
                    (unsigned) (st.st_mode & 07777),
                    forbidden == 0077 ? "other users can read it" : "other users can change it");
}

static void check_permissions(struct doctor *d) {
        check_mode(d, "/etc/phi", 0022, false, "phi's configuration directory");
        check_mode(d, CONFIG_FILE, 0022, false, "the daemon's configuration");
        check_mode(d, MASTER_KEY, 0077, false, "the key that seals every TOTP seed");
        check_mode(d, STORE_FILE, 0077, false, "the store with the sealed seeds");
        check_mode(d, d->snapshot_path[0] == '/' ? d->snapshot_path : "/var/lib/phiaccessd/nss.snapshot",
                   0022, d->daemon_up, "the identities every process is served");
}

/* ---- nsswitch.conf -------------------------------------------------------- */

static void check_nsswitch(struct doctor *d) {
        _cleanup_free_ char *text = NULL;
        bool seen[2] = { false, false };
        static const char *const dbs[2] = { "passwd", "group" };
        char *save = NULL;
        int r;

        r = read_file(NSSWITCH, &text);
        if (r < 0) {
                add(d, SEV_ERROR, "nsswitch", "see nss-phi(8)", "cannot read %s: %s", NSSWITCH,
                    strerror(-r));
                return;
        }
        for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *hash = strchr(line, '#'), *colon, *tok, *tsave = NULL;
                int db = -1, files_at = -1, phi_at = -1, pos = 0;

                if (hash)
                        *hash = '\0';
                colon = strchr(line, ':');
                if (!colon)
                        continue;
                *colon = '\0';
                for (int i = 0; i < 2; i++)
                        if (strcmp(trim(line), dbs[i]) == 0)
                                db = i;
                if (db < 0)
                        continue;
                seen[db] = true;
                for (tok = strtok_r(colon + 1, " \t", &tsave); tok; tok = strtok_r(NULL, " \t", &tsave)) {
                        if (tok[0] == '[')
                                continue;       /* an action, e.g. [NOTFOUND=return] */
                        if (strcmp(tok, "files") == 0 && files_at < 0)
                                files_at = pos;
                        if (strcmp(tok, "phi") == 0 && phi_at < 0)
                                phi_at = pos;
                        pos++;
                }
                if (phi_at < 0)
                        add(d, SEV_ERROR, "nsswitch",
                            db == 0 ? "add phi after files on that line: 'passwd: files phi'"
                                    : "add phi after files on that line: 'group: files phi'",
                            "%s has no phi on its %s: line: directory users and grant-based groups "
                            "are unknown to sshd, sudo and every other program", NSSWITCH, dbs[db]);
                else if (files_at < 0 || phi_at < files_at)
                        add(d, SEV_WARNING, "nsswitch", "put files first, then phi",
                            "%s lists phi before files on its %s: line: local accounts should be "
                            "looked up first", NSSWITCH, dbs[db]);
        }
        for (int i = 0; i < 2; i++)
                if (!seen[i])
                        add(d, SEV_ERROR, "nsswitch", i == 0 ? "add the line 'passwd: files phi'" : "add the line 'group: files phi'",
                            "%s has no %s: line", NSSWITCH, dbs[i]);
}

/* ---- the clock ------------------------------------------------------------ */

static void check_clock(struct doctor *d) {
        struct timex tx = { 0 };
        int state = adjtimex(&tx);

        if (state < 0)
                add(d, SEV_WARNING, "clock", "check that the kernel allows adjtimex (seccomp?)",
                    "cannot read the clock's synchronisation state: %s", strerror(errno));
        else if (state == TIME_ERROR || (tx.status & STA_UNSYNC))
                add(d, SEV_ERROR, "clock",
                    "enable time synchronisation: timedatectl set-ntp true (systemd-timesyncd), or chrony; "
                    "on a VM whose clock the host keeps, skip this check with --skip clock",
                    "the system clock is not synchronised (adjtimex reports it unsynchronised): TOTP codes "
                    "are checked against it and grant expiries are counted by it");
}

/* ---- PAM stacks ------------------------------------------------------------ */

struct pam_entry {
        char module[64];        /* basename of the module path */
        char control[160];      /* as written */
        char file[64];          /* where the line is, for messages */
        unsigned line;
};

struct pam_stack {
        struct pam_entry e[DOCTOR_STACK_MAX];
        size_t n;
        bool truncated;
        char error[DOCTOR_TEXT_MAX];
};

static int pam_expand(struct pam_stack *st, const char *service, const char *type, unsigned depth);

/* One logical line of a PAM file: "type control module args" or "@include name". */
static void pam_line(struct pam_stack *st, const char *file, unsigned lineno, char *line,
                     const char *type, unsigned depth) {
        char *p = trim(line), *ltype, *control, *module, *end;

        if (!*p || *p == '#')
                return;
        if (strncmp(p, "@include", 8) == 0 && isspace((unsigned char) p[8])) {
                (void) pam_expand(st, trim(p + 8), type, depth + 1);
                return;
        }
        ltype = p;
        p += strcspn(p, " \t");
        if (!*p)
                return;
        *p++ = '\0';
        if (*ltype == '-')
                ltype++;
        if (strcmp(ltype, type) != 0)
                return;
        p += strspn(p, " \t");
        control = p;
        if (*p == '[') {
                end = strchr(p, ']');
                if (!end)
                        return;
                p = end + 1;
        } else
                p += strcspn(p, " \t");
        if (!*p)
                return;
        *p++ = '\0';
        module = trim(p);
        module[strcspn(module, " \t")] = '\0';
        if (strcmp(control, "include") == 0 || strcmp(control, "substack") == 0) {
                (void) pam_expand(st, module, type, depth + 1);
                return;
        }
        if (st->n >= DOCTOR_STACK_MAX) {
                st->truncated = true;
                return;
        }
        {
                struct pam_entry *e = &st->e[st->n++];
                const char *base = strrchr(module, '/');
                (void) snprintf(e->module, sizeof(e->module), "%s", base ? base + 1 : module);
                (void) snprintf(e->control, sizeof(e->control), "%s", control);
                (void) snprintf(e->file, sizeof(e->file), "%s", file);
                e->line = lineno;
        }
}

static int pam_expand(struct pam_stack *st, const char *service, const char *type, unsigned depth) {
        _cleanup_free_ char *text = NULL;
        char path[sizeof(PAM_DIR) + sizeof(st->e[0].file) + 1];
        unsigned lineno = 0;
        int r;

        if (depth > DOCTOR_INCLUDE_DEPTH) {
                (void) snprintf(st->error, sizeof(st->error), "includes nest deeper than %d at %s",
                                DOCTOR_INCLUDE_DEPTH, service);
                return -ELOOP;
        }
        if (!*service || strchr(service, '/') || strcmp(service, "..") == 0 ||
            strlen(service) >= sizeof(st->e[0].file)) {
                (void) snprintf(st->error, sizeof(st->error), "'%s' is not a PAM service name", service);
                return -EINVAL;
        }
        (void) snprintf(path, sizeof(path), "%s/%s", PAM_DIR, service);
        r = read_file(path, &text);
        if (r < 0) {
                if (!st->error[0])
                        (void) snprintf(st->error, sizeof(st->error), "cannot read %s: %s", path, strerror(-r));
                return r;
        }
        for (char *line = text, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                lineno++;
                pam_line(st, service, lineno, line, type, depth);
        }
        return 0;
}

/* The number N of "success=N" in a bracketed control, -1 for "success=done",
 * 0 when success does not jump. */
static long success_jump(const char *control) {
        const char *s = strstr(control, "success=");

        if (control[0] != '[' || !s)
                return 0;
        s += strlen("success=");
        if (strncmp(s, "done", 4) == 0)
                return -1;
        if (isdigit((unsigned char) *s))
                return strtol(s, NULL, 10);
        return 0;
}

static void check_pam_service(struct doctor *d, const char *service, enum severity missing_sev) {
        _cleanup_free_ struct pam_stack *st = calloc(1, sizeof(*st));
        char fix[DOCTOR_TEXT_MAX];
        size_t phi = SIZE_MAX;
        char path[sizeof(PAM_DIR) + 64];

        if (!st)
                return;
        (void) snprintf(path, sizeof(path), "%s/%.60s", PAM_DIR, service);
        if (access(path, F_OK) < 0 && errno == ENOENT)
                return;         /* not installed here: nothing to go around */
        (void) snprintf(fix, sizeof(fix), "add 'auth required pam_phi.so' to %s (see pam_phi(8))", path);
        if (pam_expand(st, service, "auth", 0) < 0 && st->n == 0) {
                add(d, SEV_WARNING, "pam", "run phictl doctor as root", "cannot read the %s stack: %s",
                    service, st->error);
                return;
        }
        for (size_t i = 0; i < st->n && phi == SIZE_MAX; i++)
                if (strcmp(st->e[i].module, "pam_phi.so") == 0)
                        phi = i;
        if (phi == SIZE_MAX) {
                add(d, missing_sev, "pam", fix,
                    "pam_phi.so is not in the auth stack of %s: its logins need no TOTP code", path);
                return;
        }
        for (size_t i = 0; i < phi; i++) {
                const struct pam_entry *e = &st->e[i];
                long jump = success_jump(e->control);

                (void) snprintf(fix, sizeof(fix),
                                "make %s required (or move pam_phi.so before it) in %s/%s line %u", e->module,
                                PAM_DIR, e->file, e->line);
                if (strcmp(e->control, "sufficient") == 0 || jump < 0 || (jump > 0 && phi <= i + (size_t) jump))
                        add(d, SEV_ERROR, "pam", fix,
                            "in the auth stack of %s, %s (%s/%s line %u, control %s) can end or jump past the "
                            "stack before pam_phi.so runs: a login it accepts needs no TOTP code",
                            service, e->module, PAM_DIR, e->file, e->line, e->control);
        }
        {
                const struct pam_entry *e = &st->e[phi];
                bool strict = strcmp(e->control, "required") == 0 || strcmp(e->control, "requisite") == 0 ||
                              (e->control[0] == '[' && (strstr(e->control, "default=die") ||
                                                        strstr(e->control, "default=bad")));
                (void) snprintf(fix, sizeof(fix), "make it 'auth required pam_phi.so' in %s/%s line %u",
                                PAM_DIR, e->file, e->line);
                if (!strict)
                        add(d, SEV_ERROR, "pam", fix,
                            "pam_phi.so is '%s' in the auth stack of %s: a wrong code or an unreachable "
                            "daemon does not stop the login", e->control, service);
        }
        if (st->truncated)
                add(d, SEV_WARNING, "pam", "simplify the stack",
                    "the auth stack of %s has more than %d lines after includes; only the first were checked",
                    service, DOCTOR_STACK_MAX);
}

/* ---- sudoers --------------------------------------------------------------- */

struct sudoers_scan {
        bool dynamic;                   /* Defaults group_source=dynamic */
        char rule[DOCTOR_TEXT_MAX];     /* the first %phi-* rule, file:line */
        unsigned files;
};

static void sudoers_read(struct sudoers_scan *sc, const char *path, unsigned depth);

static void sudoers_dir(struct sudoers_scan *sc, const char *dir, unsigned depth) {
        struct dirent **names = NULL;
        int n = scandir(dir, &names, NULL, alphasort);

        for (int i = 0; i < n; i++) {
                const char *name = names[i]->d_name;
                char path[PATH_MAX];

                /* sudo skips names ending in '~' or containing '.' */
                if (name[0] != '.' && !strchr(name, '.') && name[strlen(name) - 1] != '~') {
                        (void) snprintf(path, sizeof(path), "%s/%s", dir, name);
                        sudoers_read(sc, path, depth + 1);
                }
                free(names[i]);
        }
        free(names);
}

static void sudoers_read(struct sudoers_scan *sc, const char *path, unsigned depth) {
        _cleanup_free_ char *text = NULL;
        unsigned lineno = 0;

        if (depth > DOCTOR_INCLUDE_DEPTH || read_file(path, &text) < 0)
                return;
        sc->files++;
        for (char *line = text, *next; line && *line; line = next) {
                char *p;

                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                lineno++;
                p = trim(line);
                if (strncmp(p, "@includedir", 11) == 0 || strncmp(p, "#includedir", 11) == 0) {
                        sudoers_dir(sc, trim(p + 11), depth);
                        continue;
                }
                if (strncmp(p, "@include", 8) == 0 || strncmp(p, "#include", 8) == 0) {
                        sudoers_read(sc, trim(p + 8), depth + 1);
                        continue;
                }
                if (*p == '#' || !*p)
                        continue;
                if (strncmp(p, "Defaults", 8) == 0) {
                        char *g = strstr(p, "group_source");
                        if (g) {
                                g += strlen("group_source");
                                g += strspn(g, " \t=");
                                if (strncmp(g, "dynamic", 7) == 0)
                                        sc->dynamic = true;
                        }
                        continue;
                }
                if (strncmp(p, "%phi-", 5) == 0 && !sc->rule[0])
                        (void) snprintf(sc->rule, sizeof(sc->rule), "%s line %u", path, lineno);
        }
}

static void check_sudoers(struct doctor *d) {
        struct sudoers_scan sc = { 0 };

        if (access(SUDOERS, F_OK) < 0 && errno == ENOENT)
                return;
        sudoers_read(&sc, SUDOERS, 0);
        if (sc.files == 0) {
                add(d, SEV_WARNING, "sudoers", "run phictl doctor as root", "cannot read %s: %s", SUDOERS,
                    strerror(errno));
                return;
        }
        if (sc.rule[0] && !sc.dynamic)
                add(d, SEV_ERROR, "sudoers", "add 'Defaults group_source=dynamic' to /etc/sudoers.d/phi (check with visudo -c)",
                    "a sudoers rule for a %%phi-* group (%s) without 'Defaults group_source=dynamic': sudo "
                    "takes the groups the login started with, so a grant that expired or was revoked "
                    "keeps working until the user logs in again", sc.rule);
}

/* ---- sshd ------------------------------------------------------------------ */

/* Runs `sshd -T` and returns its output (bounded), or -errno / -EIO with
 * the first line of its stderr in err. */
static int sshd_settings(char **ret, char *err, size_t err_len) {
        _cleanup_free_ char *out = NULL;
        int outp[2] = { -1, -1 }, errp[2] = { -1, -1 };
        size_t len = 0, elen = 0;
        int status = 0, r = 0;
        pid_t pid;

        out = malloc(DOCTOR_FILE_MAX + 1);
        if (!out)
                return -ENOMEM;
        if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
                r = -errno;
                goto out;
        }
        pid = fork();
        if (pid < 0) {
                r = -errno;
                goto out;
        }
        if (pid == 0) {
                (void) dup2(outp[1], STDOUT_FILENO);
                (void) dup2(errp[1], STDERR_FILENO);
                execl(SSHD, SSHD, "-T", (char *) NULL);
                _exit(127);
        }
        close(outp[1]);
        close(errp[1]);
        outp[1] = errp[1] = -1;
        for (;;) {
                struct pollfd p[2] = { { outp[0], POLLIN, 0 }, { errp[0], POLLIN, 0 } };
                ssize_t n;
                int pr = poll(p, 2, DOCTOR_SSHD_TIMEOUT_MS);
                if (pr <= 0) {
                        (void) kill(pid, SIGKILL);
                        r = pr == 0 ? -ETIMEDOUT : -errno;
                        break;
                }
                if (p[1].revents) {
                        n = read(errp[0], err + elen, err_len - 1 - elen);
                        if (n > 0)
                                elen += (size_t) n;
                        else
                                p[1].fd = errp[0] = (close(errp[0]), -1);
                }
                if (p[0].revents) {
                        n = read(outp[0], out + len, DOCTOR_FILE_MAX - len);
                        if (n > 0)
                                len += (size_t) n;
                        else
                                break;
                        if (len >= DOCTOR_FILE_MAX) {
                                (void) kill(pid, SIGKILL);
                                r = -EFBIG;
                                break;
                        }
                }
                if (errp[0] < 0 && elen >= err_len - 1)
                        break;
        }
        err[elen] = '\0';
        err[strcspn(err, "\n")] = '\0';
        (void) waitpid(pid, &status, 0);
        if (r == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
                r = -EIO;
        if (r == 0) {
                out[len] = '\0';
                *ret = PHI_TAKE_PTR(out);
        }
out:
        for (int i = 0; i < 2; i++) {
                if (outp[i] >= 0)
                        close(outp[i]);
                if (errp[i] >= 0)
                        close(errp[i]);
        }
        return r;
}

static const char *setting(const char *text, const char *key, char *buf, size_t size) {
        size_t klen = strlen(key);

        for (const char *line = text; line && *line;) {
                const char *end = strchrnul(line, '\n');
                if ((size_t) (end - line) > klen && strncmp(line, key, klen) == 0 && line[klen] == ' ') {
                        (void) snprintf(buf, size, "%.*s", (int) (end - line - klen - 1), line + klen + 1);
                        return buf;
                }
                line = *end ? end + 1 : end;
        }
        return NULL;
}

static void check_sshd(struct doctor *d) {
        _cleanup_free_ char *text = NULL;
        char err[256] = "", v[256], pubkey[16];
        const char *s;
        int r;

        if (access(SSHD, X_OK) < 0)
                return;         /* no OpenSSH server on this host */
        r = sshd_settings(&text, err, sizeof(err));
        if (r < 0) {
                add(d, SEV_WARNING, "sshd", "run phictl doctor as root, and fix what sshd -T says",
                    "cannot read sshd's settings (sshd -T): %s", err[0] ? err : strerror(-r));
                return;
        }
        s = setting(text, "usepam", v, sizeof(v));
        if (s && strcmp(s, "no") == 0)
                add(d, SEV_ERROR, "sshd", "set 'UsePAM yes' in /etc/ssh/sshd_config",
                    "sshd has UsePAM no: it never runs the PAM stack, so pam_phi never asks for a code");
        s = setting(text, "kbdinteractiveauthentication", v, sizeof(v));
        if (s && strcmp(s, "no") == 0)
                add(d, SEV_ERROR, "sshd", "set 'KbdInteractiveAuthentication yes' in /etc/ssh/sshd_config",
                    "sshd has KbdInteractiveAuthentication no: pam_phi's 'Verification code:' prompt cannot "
                    "reach the user");
        s = setting(text, "pubkeyauthentication", pubkey, sizeof(pubkey));
        if (s && strcmp(s, "yes") == 0) {
                s = setting(text, "authenticationmethods", v, sizeof(v));
                if (!s || strcmp(s, "any") == 0)
                        add(d, SEV_ERROR, "sshd",
                            "set 'AuthenticationMethods publickey,keyboard-interactive' in /etc/ssh/sshd_config",
                            "sshd accepts a public key alone (AuthenticationMethods any): such a login never "
                            "reaches pam_phi's auth");
                else if (!strstr(s, "keyboard-interactive"))
                        add(d, SEV_ERROR, "sshd",
                            "add keyboard-interactive to every list of AuthenticationMethods",
                            "sshd's AuthenticationMethods '%s' lets a login through without "
                            "keyboard-interactive, so without pam_phi's code", s);
        }
        s = setting(text, "permitrootlogin", v, sizeof(v));
        if (s && strcmp(s, "no") != 0)
                add(d, SEV_WARNING, "sshd", "set 'PermitRootLogin no'; log in as yourself and elevate",
                    "sshd permits root to log in (PermitRootLogin %s): a shared root login is "
                    "not a unique identity", s);
}

/* ---- output ---------------------------------------------------------------- */


static void report(const struct doctor *d, bool json) {
        if (json) {
                printf("{\"ok\":%s,\"problems\":[", d->n == 0 ? "true" : "false");
                for (size_t i = 0; i < d->n; i++) {
                        const struct finding *f = &d->findings[i];
                        printf("%s{\"check\":", i ? "," : "");
                        ctl_json_string(stdout, f->check);
                        printf(",\"severity\":\"%s\",\"problem\":", f->severity == SEV_ERROR ? "error" : "warning");
                        ctl_json_string(stdout, f->problem);
                        printf(",\"fix\":");
                        ctl_json_string(stdout, f->fix);
                        putchar('}');
                }
                printf("],\"not_shown\":%zu}\n", d->dropped);
                return;
        }
        for (size_t i = 0; i < d->n; i++) {
                const struct finding *f = &d->findings[i];
                printf("%-7s %-11s %s\n", f->severity == SEV_ERROR ? "error" : "warning", f->check, f->problem);
                printf("%-7s %-11s fix: %s\n", "", "", f->fix);
        }
        if (d->dropped)
                printf("... and %zu more problems not shown\n", d->dropped);
        if (d->n == 0)
                printf("no problems found\n");
}

static const char *const check_names[] = {
        "daemon", "snapshot", "ldap", "permissions", "nsswitch", "clock", "pam", "sudoers", "sshd",
};

int verb_doctor(const struct ctl *ctl, int argc, char **argv) {
        _cleanup_free_ struct doctor *d = calloc(1, sizeof(*d));

        if (!d)
                return EXIT_REFUSED;
        for (int i = 1; i < argc; i++) {
                const char *list = NULL;

                if (strcmp(argv[i], "--skip") == 0 && i + 1 < argc)
                        list = argv[++i];
                else if (strncmp(argv[i], "--skip=", 7) == 0)
                        list = argv[i] + 7;
                if (list) {
                        if (d->n_skip >= PHI_ELEMENTSOF(d->skip)) {
                                fprintf(stderr, "phictl: too many --skip options\n");
                                return EXIT_USAGE;
                        }
                        d->skip[d->n_skip++] = list;
                } else {
                        fprintf(stderr, "phictl: usage: phictl doctor [--skip CHECK[,CHECK...]]\n");
                        return EXIT_USAGE;
                }
        }
        for (size_t i = 0; i < d->n_skip; i++)
                for (const char *p = d->skip[i]; *p;) {
                        const char *end = strchrnul(p, ',');
                        bool known = false;
                        for (size_t k = 0; k < PHI_ELEMENTSOF(check_names); k++)
                                known |= strlen(check_names[k]) == (size_t) (end - p) &&
                                         strncmp(check_names[k], p, (size_t) (end - p)) == 0;
                        if (!known) {
                                fprintf(stderr, "phictl: doctor has no check '%.*s' (checks: daemon, snapshot, "
                                        "ldap, permissions, nsswitch, clock, pam, sudoers, sshd)\n",
                                        (int) (end - p), p);
                                return EXIT_USAGE;
                        }
                        p = *end ? end + 1 : end;
                }

        if (!skipped(d, "daemon"))
                check_daemon(d, ctl, !skipped(d, "snapshot"));
        if (!skipped(d, "ldap"))
                check_ldap_tls(d);
        if (!skipped(d, "permissions"))
                check_permissions(d);
        if (!skipped(d, "nsswitch"))
                check_nsswitch(d);
        if (!skipped(d, "clock"))
                check_clock(d);
        if (!skipped(d, "pam")) {
                check_pam_service(d, "sshd", SEV_ERROR);
                check_pam_service(d, "sudo", SEV_WARNING);
        }
        if (!skipped(d, "sudoers"))
                check_sudoers(d);
        if (!skipped(d, "sshd"))
                check_sshd(d);
        report(d, ctl->json);
        return d->n == 0 ? EXIT_DONE : EXIT_REFUSED;
}

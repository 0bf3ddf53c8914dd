/* SPDX-License-Identifier: GPL-2.0-or-later */
/* phiaccessd: start-up, signals and the event loop. The work is elsewhere:
 * config.c (the file), sync.h (the directory thread), server.c (the socket),
 * dispatch.c (who may do what). */

#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <stdio.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <time.h>

#include "audit_log.h"
#include "audit_verify.h"
#include "backup.h"
#include "config.h"
#include "daemon.h"
#include "journal.h"
#include "notify.h"
#include "localfiles.h"
#include "phi/client.h"
#include "policy_state.h"
#include "server.h"
#include "sockdir.h"
#include "store.h"
#include "store_pg_conninfo.h"
#include "sync.h"
#include "totp_handlers.h"

struct main_ctx {
        const char *config_path;
        struct phi_daemon daemon;
        sd_event *event;
        char last_status[600];
        int instance_fd;            /* holds the store's instance lock until exit */
};

static void usage(FILE *f) {
        fprintf(f,
                "Usage: phiaccessd [OPTION]...\n"
                "The phi access daemon: directory identities, TOTP verification, elevation\n"
                "grants and the audit store, served on " PHI_SOCKET_PATH " (logins: " PHI_PAM_SOCKET_PATH ").\n"
                "\n"
                "  -c, --config FILE   configuration file (default " PHI_CONFIG_PATH ")\n"
                "  -f, --foreground    stay in the foreground (the only mode; systemd runs it so)\n"
                "      --check-config  validate the configuration, print FILE:LINE: message per\n"
                "                      problem, exit 1 if there is any\n"
                "      --init-store    create or migrate the store's schema and exit (for a\n"
                "                      PostgreSQL store: as a role that may create tables)\n"
                "      --replay-floor  raise every replay watermark to now plus the window and\n"
                "                      remove enrolment tickets: after a restore by other means\n"
                "                      (pg_restore); daemons may be running\n"
                "      --restore FILE  replace the store with the backup FILE (phictl backup), the\n"
                "                      daemon stopped; no code acceptable up to then is accepted again\n"
                "      --verify-audit STORE  verify the audit log in STORE (a copy, or the store\n"
                "                      with the daemon stopped) against its checkpoints and the\n"
                "                      journal's; --key PUBKEY (default audit.key.pub beside\n"
                "                      STORE), --journal-dir DIR or --no-journal; with --config,\n"
                "                      also the [audit] origin and trusted_keys of a fleet; exit 1\n"
                "                      if not\n"
                "  -h, --help          show this help and exit\n"
                "      --version       show the version and exit\n");
}

static int load_config(const char *path, struct phi_config **ret, bool print_errors) {
        struct phi_config_errors errors = { 0 };
        int r;

        r = phi_config_load(path, ret, &errors);
        if (r < 0) {
                /* At start-up stderr is the place (systemd journals it); on reload
                 * nobody is watching stderr, so each problem goes to the journal. */
                if (print_errors)
                        phi_config_errors_print(&errors, stderr);
                else
                        for (size_t i = 0; i < errors.n; i++)
                                phi_log(LOG_ERR, "%s:%u: %s", errors.items[i].file, errors.items[i].line,
                                        errors.items[i].message);
        }
        phi_config_errors_clear(&errors);
        return r;
}

/* --check-config's second half: the policy the config names, every problem
 * as FILE:LINE: message. A missing file is not an error (the daemon then
 * answers every access question no), but it is said. */
static int check_policy(const char *path) {
        struct phi_policy_errors errors = { 0 };
        struct phi_policy *p = NULL;
        int r = phi_policy_file_load(path, &p, &errors);

        if (r == -ENOENT)
                printf("%s: missing: with no policy every access question is answered no "
                       "(see phi-policy.conf(5))\n", path);
        else if (r < 0) {
                phi_policy_errors_print(&errors, stdout);
                if (errors.n == 0)
                        printf("%s:0: %s\n", path, phi_errno_text(r));
        } else
                printf("%s: ok (%zu rules, %zu roles)\n", path, phi_policy_n_rules(p), phi_policy_n_roles(p));
        phi_policy_unref(p);
        phi_policy_errors_clear(&errors);
        return r < 0 && r != -ENOENT ? 1 : 0;
}

static void update_status(struct main_ctx *m) {
        struct phi_sync_status st;
        char text[600];

        phi_sync_get_status(m->daemon.sync, &st);
        snprintf(text, sizeof(text), "directory %s%s%s, %llu users, %llu groups, snapshot generation %llu",
                 st.state, st.uri[0] ? " at " : "", st.uri, (unsigned long long) st.users,
                 (unsigned long long) st.groups, (unsigned long long) st.generation);
        if (strcmp(text, m->last_status) != 0) {
                (void) sd_notifyf(false, "STATUS=%s", text);
                snprintf(m->last_status, sizeof(m->last_status), "%s", text);
        }
}

static int on_status_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        struct main_ctx *m = userdata;

        update_status(m);
        (void) sd_event_source_set_time(src, usec + 2 * 1000000ULL);
        (void) sd_event_source_set_enabled(src, SD_EVENT_ON);
        return 0;
}

/* SIGHUP and phictl reload: the configuration, then the policy it names.
 * Either one with an error changes nothing of its own and says why. */
static int reload_all(void *userdata, const char *actor, char *ret_text, size_t text_len) {
        struct main_ctx *m = userdata;
        struct phi_config *c = NULL;
        char policy_text[600];
        const char *config_text;
        int r, rp;

        (void) sd_notify(false, "RELOADING=1");
        r = load_config(m->config_path, &c, false);
        if (r < 0) {
                phi_log(LOG_ERR, "reload: %s has errors; keeping the running configuration",
                        m->config_path);
                config_text = "configuration refused (its errors are in the journal; phiaccessd "
                              "--check-config prints them), the running one stays";
        } else {
                if (strcmp(c->socket_path, m->daemon.config->socket_path) != 0 ||
                    strcmp(c->pam_socket_path, m->daemon.config->pam_socket_path) != 0 ||
                    strcmp(c->store_path, m->daemon.config->store_path) != 0 ||
                    strcmp(c->store_backend, m->daemon.config->store_backend) != 0 ||
                    strcmp(c->store_uri, m->daemon.config->store_uri) != 0 ||
                    strcmp(c->store_synchronous_commit, m->daemon.config->store_synchronous_commit) != 0)
                        phi_log(LOG_WARNING, "reload: socket paths and [store] settings change only on restart");
                phi_sync_reconfigure(m->daemon.sync, c);
                if (m->daemon.verifier)
                        phi_totp_reconfigure(m->daemon.verifier, m->daemon.config, c);
                phi_config_unref(m->daemon.config);
                m->daemon.config = c;
                phi_log(LOG_INFO, "configuration reloaded from %s", m->config_path);
                config_text = "configuration reloaded";
        }
        rp = phi_daemon_policy_load(&m->daemon, false, actor, policy_text, sizeof(policy_text));
        snprintf(ret_text, text_len, "%s; policy %s", config_text, policy_text);
        (void) sd_notify(false, "READY=1");
        return r < 0 ? r : rp;
}

static int on_sighup(sd_event_source *src, const struct signalfd_siginfo *si, void *userdata) {
        char text[1024];     /* fits an ERROR message (the wire takes 1,024 bytes) */

        (void) src, (void) si;
        (void) reload_all(userdata, "SIGHUP", text, sizeof(text));
        return 0;
}

static int on_exit_signal(sd_event_source *src, const struct signalfd_siginfo *si, void *userdata) {
        struct main_ctx *m = userdata;

        (void) src;
        phi_log(LOG_INFO, "received %s, stopping", strsignal((int) si->ssi_signo));
        (void) sd_notify(false, "STOPPING=1");
        return sd_event_exit(m->event, 0);
}

/* Outside systemd (StateDirectory=) /var/lib/phiaccessd may not exist yet. It
 * must be searchable by everyone: nss_phi reads the snapshot in it. */
static void ensure_parent_dir(const char *path) {
        _cleanup_free_ char *parent = strdup(path);
        char *slash = parent ? strrchr(parent, '/') : NULL;

        if (slash && slash != parent) {
                *slash = 0;
                if (mkdir(parent, 0755) < 0 && errno != EEXIST)
                        phi_log(LOG_WARNING, "cannot create %s: %s", parent, phi_errno_text(errno));
        }
}

/*
 * One daemon per store (and its identity file, named after it). A second one -- an admin's foreground run beside the
 * service -- would bind the socket paths over the service's and remove them
 * when it exits, leaving the service running but unreachable: every login
 * denied until a restart. So the first thing a daemon does is take an flock()
 * on STORE.lock and keep it until it exits; a second one finds it taken and
 * stops before touching anything. flock, on a file of its own: the database's
 * POSIX locks belong to SQLite (see store_sqlite.c).
 */
static int instance_lock(const char *store_path, const char *refusal, int *ret_fd) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -1;
        char pid[24] = "";
        ssize_t n;
        int r;

        if (!*store_path || strcmp(store_path, ":memory:") == 0)
                return 0;
        if (asprintf(&path, "%s.lock", store_path) < 0) {
                path = NULL;
                return -ENOMEM;
        }
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (fd < 0) {
                r = phi_negative_errno();
                phi_log(LOG_ERR, "cannot open %s: %s", path, phi_errno_text(r));
                return r;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                r = phi_negative_errno();
                if (r == -EWOULDBLOCK) {
                        n = pread(fd, pid, sizeof(pid) - 1, 0);
                        pid[n > 0 ? n : 0] = 0;
                        pid[strcspn(pid, "\n")] = 0;
                        phi_log(LOG_ERR, "another phiaccessd%s%s%s uses the store %s; %s",
                                *pid ? " (pid " : "", pid, *pid ? ")" : "", store_path, refusal);
                        return -EALREADY;
                }
                phi_log(LOG_ERR, "cannot lock %s: %s", path, phi_errno_text(r));
                return r;
        }
        /* For the message above; the lock, not this text, is what counts. */
        n = snprintf(pid, sizeof(pid), "%d\n", (int) getpid());
        if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t) n, 0) != n)
                phi_log(LOG_WARNING, "cannot write the pid into %s: %s", path, phi_errno_text(errno));
        *ret_fd = PHI_TAKE_FD(fd);
        return 0;
}

/* Under systemd the two sockets come from phiaccessd.socket
 * (FileDescriptorName=main) and phiaccessd-pam.socket (=pam); a socket not
 * passed is bound from the configuration. One socket without a name (systemd
 * says "unknown") is the request socket, as before the PAM socket existed. */
/* phictl runs as the user: a socket they cannot reach fails only later, at
 * their first `phictl totp enroll`. Said once at start, with the fix. */
static void warn_unreachable_socket(int fd, const char *path) {
        char problem[1024];
        int r = phi_sockdir_check(fd, path, problem, sizeof(problem));

        if (r == 0)
                phi_log(LOG_WARNING, "users other than root cannot reach the request socket: %s; until then "
                                     "phictl fails for them with 'Permission denied' (exit 3)", problem);
        else if (r < 0)
                phi_log(LOG_WARNING, "cannot check who may reach the request socket%s%s: %s",
                        fd < 0 ? " " : "", fd < 0 ? path : "", phi_errno_text(r));
}

static int take_listen_fds(int *ret_main, int *ret_pam) {
        char **names = NULL;
        int n, r = 0;

        *ret_main = *ret_pam = -1;
        n = sd_listen_fds_with_names(1, &names);
        if (n < 0) {
                phi_log(LOG_ERR, "cannot take the sockets systemd passed: %s", phi_errno_text(n));
                return n;
        }
        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i;
                const char *name = names && names[i] ? names[i] : "(unnamed)";
                bool is_main = strcmp(name, "main") == 0 || (n == 1 && strcmp(name, "unknown") == 0);
                int *slot = is_main ? ret_main : strcmp(name, "pam") == 0 ? ret_pam : NULL;
                if (!slot || *slot >= 0) {
                        phi_log(LOG_ERR, "systemd passed a socket named %s; expected one named main and one "
                                         "named pam (FileDescriptorName=)", name);
                        r = -EINVAL;
                } else
                        *slot = fd;
        }
        if (names)
                for (int i = 0; i < n; i++)
                        free(names[i]);
        free(names);
        return r;
}

/* [notify] command: only a file root owns and nobody else may change (it
 * runs as root with every event's details); else notifications stay off,
 * loudly. */
static void notify_start(const struct phi_config *c) {
        const char *reason = NULL;
        char host[256];
        int fd, r;

        if (!c->notify_command[0])
                return;
        fd = phi_config_open_trusted(c->notify_command, false, &reason);
        if (fd < 0) {
                phi_log(LOG_ERR, "notifications are off: [notify] command %s: %s", c->notify_command,
                        reason ? reason : phi_errno_text(fd));
                return;
        }
        (void) close(fd);
        if (access(c->notify_command, X_OK) < 0) {
                phi_log(LOG_ERR, "notifications are off: [notify] command %s is not executable", c->notify_command);
                return;
        }
        if (gethostname(host, sizeof(host)) < 0)
                host[0] = '\0';
        host[sizeof(host) - 1] = '\0';
        r = phi_notify_start(&(struct phi_notify_config){ .command = c->notify_command,
                                                         .timeout = c->notify_timeout, .host = host });
        if (r < 0)
                phi_log(LOG_ERR, "notifications are off: %s", phi_errno_text(r));
        else
                phi_log(LOG_INFO, "notifications go to %s", c->notify_command);
}

/* The store as logs name it: the file, or the PostgreSQL server and
 * database (never the connection string, which may hold a password). */
static void store_where(const struct phi_config *c, char *out, size_t len) {
        if (strcmp(c->store_backend, "postgresql") == 0) {
                char where[480];
                phi_pg_conninfo_display(c->store_uri, where, sizeof(where));
                snprintf(out, len, "(PostgreSQL at %s)", where);
        } else
                snprintf(out, len, "%s", c->store_path);
}

static const char *store_hint(int r) {
        switch (r) {
        case -EACCES:
                return " (the database role may lack a right phiaccessd(8) lists; a schema to create or "
                       "migrate needs phiaccessd --init-store run as the owner role)";
        case -EPROTONOSUPPORT:
                return " (the store's schema is newer than this phiaccessd: a newer one migrated it)";
        case -ECONNRESET:
                return " (the database cannot be reached; the reason is logged above)";
        default:
                return "";
        }
}

static int run(struct main_ctx *m) {
        _cleanup_(phi_server_freep) phi_server *server = NULL, *pam_unavailable = NULL;
        int main_fd = -1, pam_fd = -1;
        sd_event_source *status_timer = NULL;
        sigset_t mask;
        int r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        /* Blocked before the sync thread exists, so it inherits the mask and the
         * signals reach the event loop's signalfd only. */
        if (pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0)
                return -EIO;
        (void) signal(SIGPIPE, SIG_IGN);

        ensure_parent_dir(m->daemon.config->store_path);
        ensure_parent_dir(m->daemon.config->snapshot_path);
        if ((r = instance_lock(m->daemon.config->store_path, "not starting a second one", &m->instance_fd)) < 0)
                return r;
        phi_backup_remove_leftovers(m->daemon.config->store_path);
        r = phi_store_open_config(m->daemon.config, PHI_IDENTITIES_READ, &m->daemon.store);
        if (r < 0) {
                char where[512];
                store_where(m->daemon.config, where, sizeof(where));
                phi_log(LOG_ERR, "cannot open the store %s: %s%s", where, phi_errno_text(r), store_hint(r));
                return r;
        }
        if ((r = take_listen_fds(&main_fd, &pam_fd)) < 0)
                return r;
        (void) phi_totp_start(m->daemon.config, pam_fd, &m->daemon.verifier);
        if (m->daemon.verifier) {
                pam_fd = -1;   /* the verifier's now */
                /* Events of the other threads reach the audit log through it. */
                phi_journal_set_audit_hook(phi_verifier_audit_hook, m->daemon.verifier);
        }
        /* Loaded once the audit log takes records: the policy a host starts
         * with is in the log like every later reload (main() checked it). It
         * goes to the verifier with it; until then no request is served. */
        {
                char text[600];
                (void) phi_daemon_policy_load(&m->daemon, true, "start", text, sizeof(text));
                if (!m->daemon.policy) {
                        fprintf(stderr, "phiaccessd: %s\n", text);
                        return -EINVAL;
                }
        }
        notify_start(m->daemon.config);
        /* Live audit verification (phictl audit verify): its own thread and
         * read handle, started per request. Without it the verb says so. */
        if (m->daemon.verifier && (r = phi_audit_checks_new(&m->daemon.audit_checks)) < 0)
                phi_log(LOG_WARNING, "phictl audit verify will be refused: %s", phi_errno_text(r));
        r = phi_sync_start(m->daemon.config, &m->daemon.sync);
        if (r < 0) {
                phi_log(LOG_ERR, "cannot start the directory sync: %s", phi_errno_text(r));
                return r;
        }
        if ((r = sd_event_default(&m->event)) < 0 ||
            (r = sd_event_add_signal(m->event, NULL, SIGTERM, on_exit_signal, m)) < 0 ||
            (r = sd_event_add_signal(m->event, NULL, SIGINT, on_exit_signal, m)) < 0 ||
            (r = sd_event_add_signal(m->event, NULL, SIGHUP, on_sighup, m)) < 0 ||
            (r = sd_event_add_time_relative(m->event, &status_timer, CLOCK_MONOTONIC, 1000000ULL, 0,
                                            on_status_timer, m)) < 0 ||
            (r = sd_event_set_watchdog(m->event, true)) < 0) {
                phi_log(LOG_ERR, "cannot set up the event loop: %s", phi_errno_text(r));
                return r;
        }
        r = phi_server_new(m->event, &m->daemon, main_fd, m->daemon.config->socket_path, &server);
        if (r < 0)
                return r;
        warn_unreachable_socket(main_fd, m->daemon.config->socket_path);
        /* Without a verifier the PAM socket still answers, so that pam_phi logs
         * why it denies instead of "cannot reach phiaccessd". */
        if (!m->daemon.verifier) {
                r = phi_server_new_pam(m->event, pam_fd, m->daemon.config->pam_socket_path,
                                       phi_handle_pam_unavailable, NULL, &pam_unavailable);
                if (r < 0)
                        return r;
        }
        phi_log(LOG_INFO, "phiaccessd %s ready on %s and %s", PHI_VERSION, m->daemon.config->socket_path,
                m->daemon.config->pam_socket_path);
        (void) sd_notify(false, "READY=1\nSTATUS=started, directory sync starting");
        r = sd_event_loop(m->event);
        sd_event_source_disable_unref(status_timer);
        return r;
}

/* phiaccessd --restore FILE: under the instance lock a daemon takes, so that
 * none runs meanwhile (and none starts: socket activation finds it taken). */
static int verify_audit_store(const char *store_path, const char *vkey, const char *origin, char **trusted,
                              size_t n_trusted, const char *journal_dir, bool journal);

/* phiaccessd --verify-audit STORE: the live verification's code on a store
 * no daemon serves (a copy, a backup, the store with the daemon stopped). */
static int verify_audit(const char *store_path, const char *key_arg, const char *journal_dir, bool journal,
                        const char *config_path) {
        _cleanup_free_ char *key_path = NULL;
        char *trusted[PHI_AUDIT_KEYS_MAX] = { 0 }, origin[PHI_AUDIT_NAME_MAX + 1] = "", why[512];
        size_t n_trusted = 0;
        char vkey[PHI_AUDIT_VKEY_MAX + 2] = "";
        int r;

        if (key_arg && strchr(key_arg, '+') && access(key_arg, F_OK) != 0)
                snprintf(vkey, sizeof(vkey), "%s", key_arg);
        else {
                FILE *f;
                if (key_arg)
                        key_path = strdup(key_arg);
                else {
                        const char *slash = strrchr(store_path, '/');
                        if (asprintf(&key_path, "%.*saudit.key.pub", slash ? (int) (slash - store_path + 1) : 0,
                                     store_path) < 0)
                                key_path = NULL;
                }
                if (!key_path)
                        return 1;
                f = fopen(key_path, "re");
                if (!f || !fgets(vkey, sizeof(vkey), f)) {
                        fprintf(stderr, "phiaccessd: cannot read the log's verifier key %s: %s (give it with --key)\n",
                                key_path, f ? "empty" : phi_errno_text(-errno));
                        if (f)
                                fclose(f);
                        return 2;
                }
                fclose(f);
                vkey[strcspn(vkey, "\r\n")] = '\0';
        }
        /* A fleet's log: its name and the other hosts' keys, as the config says. */
        if (config_path) {
                struct phi_config *cfg = NULL;
                if (load_config(config_path, &cfg, true) < 0)
                        return 2;
                snprintf(origin, sizeof(origin), "%s", cfg->audit_origin);
                r = cfg->audit_trusted_keys[0]
                            ? phi_audit_keys_file_read(cfg->audit_trusted_keys, trusted, &n_trusted, why, sizeof(why))
                            : 0;
                phi_config_unref(cfg);
                if (r < 0) {
                        fprintf(stderr, "phiaccessd: [audit] trusted_keys: %s\n", why);
                        for (size_t i = 0; i < n_trusted; i++)
                                free(trusted[i]);
                        return 2;
                }
        }
        r = verify_audit_store(store_path, vkey, origin, trusted, n_trusted, journal_dir, journal);
        for (size_t i = 0; i < n_trusted; i++)
                free(trusted[i]);
        return r;
}

static int verify_audit_store(const char *store_path, const char *vkey, const char *origin, char **trusted,
                              size_t n_trusted, const char *journal_dir, bool journal) {
        _cleanup_store_ phi_store *store = NULL;
        struct phi_audit_verify_result res;
        struct stat st;
        int r;

        /* The store must exist: opening makes one otherwise. */
        if (stat(store_path, &st) < 0) {
                fprintf(stderr, "phiaccessd: %s: %s\n", store_path, phi_errno_text(-errno));
                return 2;
        }
        if (!S_ISREG(st.st_mode)) {
                fprintf(stderr, "phiaccessd: %s: not a regular file\n", store_path);
                return 2;
        }
        r = phi_store_open("sqlite", store_path, PHI_IDENTITIES_NONE, &store);
        if (r < 0) {
                fprintf(stderr, "phiaccessd: cannot open the store %s: %s\n", store_path, phi_errno_text(r));
                return 2;
        }
        const struct phi_audit_verify_input in = {
                .store = store, .vkey = vkey, .origin = origin, .trusted = (const char *const *) trusted,
                .n_trusted = n_trusted, .journal = journal, .journal_dir = journal_dir,
        };
        if (phi_audit_verify_run(&in, &res) < 0)
                return 2;
        printf("outcome:             %s\n", phi_audit_verify_outcome_name(res.outcome));
        if (res.outcome != PHI_AUDIT_VERIFY_OK) {
                if (res.has_bad_seq)
                        printf("first bad seq:       %llu\n", (unsigned long long) res.bad_seq);
                printf("error:               %s\n", res.what);
        }
        printf("records verified:    %llu\n"
               "checkpoints:         %llu stored, %llu journaled%s\n"
               "journal ignored:     %llu\n"
               "origin:              %s\n",
               (unsigned long long) res.records, (unsigned long long) res.checkpoints,
               (unsigned long long) res.journal_checkpoints, journal ? "" : " (journal not read)",
               (unsigned long long) res.journal_ignored, res.origin);
        return res.outcome == PHI_AUDIT_VERIFY_OK ? 0 : res.outcome == PHI_AUDIT_VERIFY_ERROR ? 2 : 1;
}

/* phiaccessd --init-store: the schema created or migrated, then exit; the
 * daemon does the same at start, with whatever rights its role has. */
static int init_store(const char *config_path) {
        _cleanup_(phi_store_freep) phi_store *s = NULL;
        struct phi_config *c = NULL;
        char where[512];
        unsigned version = 0;
        int r;

        if (load_config(config_path, &c, true) < 0)
                return 1;
        store_where(c, where, sizeof(where));
        if (strcmp(c->store_backend, "sqlite") == 0)
                ensure_parent_dir(c->store_path);
        r = phi_store_open_config(c, PHI_IDENTITIES_NONE, &s);
        if (r == 0)
                r = phi_store_schema_version(s, &version);
        if (r < 0)
                fprintf(stderr, "phiaccessd: cannot initialise the store %s: %s%s\n", where, phi_errno_text(r),
                        store_hint(r));
        else
                printf("store %s (%s): schema version %u\n", where, phi_store_backend_name(s), version);
        phi_config_unref(c);
        return r < 0 ? 1 : 0;
}

static void invoking_user(const struct phi_config *c, char *actor, size_t len) {
        _cleanup_free_ char *name = NULL;
        gid_t gid;

        /* From the passwd file (never NSS, as everywhere here). */
        if (phi_local_user_by_uid(c->passwd_file, getuid(), &name, &gid) == 0)
                snprintf(actor, len, "%s", name);
        else
                snprintf(actor, len, "uid %u", (unsigned) getuid());
}

/* phiaccessd --replay-floor: after the store was restored by other means. */
static int replay_floor(const char *config_path) {
        struct phi_config *c = NULL;
        char actor[64];
        int r;

        if (load_config(config_path, &c, true) < 0)
                return 1;
        invoking_user(c, actor, sizeof(actor));
        r = phi_backup_replay_floor(c, actor, stdout, stderr);
        phi_config_unref(c);
        return r < 0 ? 1 : 0;
}

static int restore(const char *config_path, const char *file) {
        struct phi_config *c = NULL;
        _cleanup_free_ char *name = NULL;
        char actor[64];
        gid_t gid;
        int fd = -1, r;

        if (load_config(config_path, &c, true) < 0)
                return 1;
        if (strcmp(c->store_backend, "sqlite") != 0) {
                fprintf(stderr, "phiaccessd: restore refused: the store is in PostgreSQL; restore the database "
                                "with its own tools (pg_restore, or point-in-time recovery), then run "
                                "phiaccessd --replay-floor (phiaccessd(8), BACKUP AND RESTORE)\n");
                phi_config_unref(c);
                return 1;
        }
        /* The invoking user, from the passwd file (never NSS, as everywhere here). */
        if (phi_local_user_by_uid(c->passwd_file, getuid(), &name, &gid) == 0)
                snprintf(actor, sizeof(actor), "%s", name);
        else
                snprintf(actor, sizeof(actor), "uid %u", (unsigned) getuid());
        r = instance_lock(c->store_path, "restore refused: stop it first (systemctl stop phiaccessd); the store "
                                         "was not changed", &fd);
        if (r == -EALREADY)
                ;   /* said by instance_lock() */
        else if (r < 0)
                fprintf(stderr, "phiaccessd: restore refused: cannot take the store's lock: %s; the store was not "
                                "changed\n", phi_errno_text(r));
        else
                r = phi_backup_restore(c, file, actor, stdout, stderr);
        (void) phi_close_safe(fd);
        phi_config_unref(c);
        return r < 0 ? 1 : 0;
}

int main(int argc, char **argv) {
        enum { OPT_CHECK = 256, OPT_VERSION, OPT_RESTORE, OPT_VERIFY_AUDIT, OPT_KEY, OPT_JOURNAL_DIR, OPT_NO_JOURNAL,
               OPT_INIT_STORE, OPT_REPLAY_FLOOR };
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "foreground", no_argument, NULL, 'f' },
                { "check-config", no_argument, NULL, OPT_CHECK },
                { "restore", required_argument, NULL, OPT_RESTORE },
                { "init-store", no_argument, NULL, OPT_INIT_STORE },
                { "replay-floor", no_argument, NULL, OPT_REPLAY_FLOOR },
                { "verify-audit", required_argument, NULL, OPT_VERIFY_AUDIT },
                { "key", required_argument, NULL, OPT_KEY },
                { "journal-dir", required_argument, NULL, OPT_JOURNAL_DIR },
                { "no-journal", no_argument, NULL, OPT_NO_JOURNAL },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, OPT_VERSION },
                {},
        };
        struct main_ctx m = { .config_path = PHI_CONFIG_PATH, .instance_fd = -1 };
        const char *restore_file = NULL, *verify_store = NULL, *key = NULL, *journal_dir = NULL;
        bool check = false, no_journal = false, config_given = false, init = false, floor = false;
        int c, r;

        /* libldap would otherwise read /etc/ldap/ldap.conf, $HOME/.ldaprc and an
         * ldaprc in the working directory, any of which could turn off certificate
         * checks (TLS_REQCERT never) behind phiaccessd.conf's back. */
        if (setenv("LDAPNOINIT", "1", 1) < 0)
                return 1;

        while ((c = getopt_long(argc, argv, "c:fh", options, NULL)) != -1) {
                switch (c) {
                case 'c':
                        m.config_path = optarg;
                        config_given = true;
                        break;
                case 'f':
                        break;
                case OPT_CHECK:
                        check = true;
                        break;
                case OPT_RESTORE:
                        restore_file = optarg;
                        break;
                case OPT_INIT_STORE:
                        init = true;
                        break;
                case OPT_REPLAY_FLOOR:
                        floor = true;
                        break;
                case OPT_VERIFY_AUDIT:
                        verify_store = optarg;
                        break;
                case OPT_KEY:
                        key = optarg;
                        break;
                case OPT_JOURNAL_DIR:
                        journal_dir = optarg;
                        break;
                case OPT_NO_JOURNAL:
                        no_journal = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                case OPT_VERSION:
                        puts("phiaccessd " PHI_VERSION);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "phiaccessd: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }
        if (restore_file && check) {
                fprintf(stderr, "phiaccessd: --restore and --check-config do not go together\n");
                return 2;
        }
        if ((key || journal_dir || no_journal) && !verify_store) {
                fprintf(stderr, "phiaccessd: --key, --journal-dir and --no-journal go with --verify-audit\n");
                return 2;
        }
        if (verify_store && (restore_file || check || (journal_dir && no_journal))) {
                fprintf(stderr, "phiaccessd: --verify-audit goes with none of --restore, --check-config; "
                                "--journal-dir not with --no-journal\n");
                return 2;
        }
        if ((init || floor) && (restore_file || check || verify_store || (init && floor))) {
                fprintf(stderr, "phiaccessd: --init-store and --replay-floor go with none of --restore, "
                                "--check-config, --verify-audit, nor with each other\n");
                return 2;
        }
        if (floor)
                return replay_floor(m.config_path);
        if (init)
                return init_store(m.config_path);
        if (verify_store)
                return verify_audit(verify_store, key, journal_dir, !no_journal,
                                    config_given ? m.config_path : NULL);
        if (restore_file)
                return restore(m.config_path, restore_file);
        if (check) {
                struct phi_config_errors errors = { 0 };
                struct phi_config *cfg = NULL;
                r = phi_config_load(m.config_path, &cfg, &errors);
                if (r < 0) {
                        phi_config_errors_print(&errors, stdout);
                        if (errors.n == 0)
                                printf("%s:0: %s\n", m.config_path, phi_errno_text(r));
                        phi_config_errors_clear(&errors);
                        return 1;
                }
                printf("%s: ok\n", m.config_path);
                r = check_policy(cfg->policy_path);
                if (cfg->audit_trusted_keys[0]) {
                        /* The fleet's keys, FILE:LINE as for the rest. */
                        char *keys[PHI_AUDIT_KEYS_MAX] = { 0 }, why[512];
                        size_t n = 0;
                        if (phi_audit_keys_file_read(cfg->audit_trusted_keys, keys, &n, why, sizeof(why)) < 0) {
                                printf("%s\n", why);
                                r = 1;
                        } else
                                printf("%s: %zu trusted audit key%s\n", cfg->audit_trusted_keys, n, n == 1 ? "" : "s");
                        for (size_t i = 0; i < n; i++)
                                free(keys[i]);
                }
                phi_config_unref(cfg);
                return r;
        }

        if (load_config(m.config_path, &m.daemon.config, true) < 0)
                return 1;
        /* A policy with errors is no policy to run on: every problem to stderr
         * (systemd journals it), as --check-config would print them. */
        {
                struct phi_policy_errors errors = { 0 };
                struct phi_policy *p = NULL;
                r = phi_policy_file_load(m.daemon.config->policy_path, &p, &errors);
                phi_policy_unref(p);
                if (r < 0 && r != -ENOENT) {
                        phi_policy_errors_print(&errors, stderr);
                        fprintf(stderr, "phiaccessd: the policy %s has errors; not starting\n",
                                m.daemon.config->policy_path);
                        phi_policy_errors_clear(&errors);
                        phi_config_unref(m.daemon.config);
                        return 1;
                }
                phi_policy_errors_clear(&errors);
        }
        m.daemon.reload = reload_all;
        m.daemon.reload_data = &m;
        m.daemon.started = (uint64_t) time(NULL);
        r = run(&m);
        /* The server is gone (run's cleanup), its last summaries queued. */
        phi_journal_async_stop();
        /* Stop the thread, then the store. */
        phi_sync_free(m.daemon.sync);
        phi_notify_stop();
        phi_audit_checks_free(m.daemon.audit_checks);
        phi_journal_set_audit_hook(NULL, NULL);
        phi_verifier_free(m.daemon.verifier);
        phi_store_free(m.daemon.store);
        phi_local_cache_drop();   /* every thread that looked up accounts has stopped */
        /* Last: a successor may start once the sockets and the store are let go. */
        (void) phi_close_safe(m.instance_fd);
        sd_event_unref(m.event);
        phi_config_unref(m.daemon.config);
        phi_policy_unref(m.daemon.policy);
        if (r < 0)
                phi_log(LOG_ERR, "exiting: %s", phi_errno_text(r));
        return r < 0 ? 1 : 0;
}

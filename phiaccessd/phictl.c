/* SPDX-License-Identifier: GPL-2.0-or-later */
/* phictl: the one command for users, approvers, admins and auditors. A thin
 * client: the daemon decides what each caller may do (by SO_PEERCRED), phictl
 * only formats requests and replies. */

#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "phi/client.h"
#include "phi/fs.h"
#include "phi/macro.h"
#include "phi/wire.h"

#include "phictl.h"

/* One row per verb (and sub-verb): both `phictl --help` and `phictl VERB
 * --help` print from here, and integration.phictl_help compares each synopsis
 * with phictl(1), so the three cannot drift apart. */
static const struct verb_help {
        const char *words;      /* "totp issue" */
        const char *args;       /* "USER [--expires DUR]", or "" */
        const char *summary;
} verb_help[] = {
        { "status", "", "daemon state: directory sync, counts, snapshot" },
        { "sync", "[--full]", "synchronise from the directory now (admin)" },
        { "user show", "NAME", "a user as the daemon sees it: ids, groups, token" },
        { "totp issue", "USER [--expires DUR]", "one-time enrolment ticket, 7 days by default (admin)" },
        { "totp enroll", "", "enrol your token: QR code, then a code to activate it" },
        { "totp reset", "USER", "remove a user's token (admin)" },
        { "reload", "", "re-read the configuration and the policy (admin)" },
        { "policy check", "USER [--host H] [--service S]", "would the policy let USER in? rule and reason (admin)" },
        { "sessions", "", "open login and sudo sessions, oldest first (admin, auditor)" },
        { "request", "ROLE --for DUR --reason TEXT [--start T] [--ticket REF]", "ask for a role for a while" },
        { "requests", "[--pending|--mine|--all]", "elevation requests (yours, or all for approvers)" },
        { "approve", "ID [--reason TEXT]", "approve a request (approver)" },
        { "deny", "ID --reason TEXT", "deny a request (approver)" },
        { "cancel", "ID", "withdraw your pending request" },
        { "revoke", "ID [--reason TEXT]", "end a grant now (requester, approver, admin)" },
        { "grants", "", "active grants with the time left" },
        { "breakglass", "ROLE --reason TEXT [--for DUR]", "emergency grant without approval, with your code" },
        { "review", "ID --note TEXT", "close the review of a break-glass grant (approver)" },
        { "doctor", "[--skip CHECK[,CHECK...]]", "find setups that go around phi, each with its fix (admin)" },
        { "backup", "FILE", "consistent copy of the store, taken while logins go on (admin)" },
        { "audit",
          "[--user U] [--actor U] [--role R] [--event E] [--host H] [--since T] [--until T] [--format table|json|csv]",
          "query the audit log; each query is itself audited (auditor)" },
        { "audit request", "ID [--format table|json|csv]",
          "a request's whole life: request, decisions, grant, each sudo use, end (auditor)" },
        { "audit export", "[--since T] [--until T]", "the records as JSON Lines with signed checkpoints, to stdout (auditor)" },
        { "audit verify", "[FILE --key PUBKEY]", "check an audit export offline with the log's public key; no FILE: the daemon checks the live log against its checkpoints and the journal (auditor)" },
};

static void usage(FILE *f) {
        fprintf(f, "Usage: phictl [--json] [--socket PATH] VERB [ARGS]...\n"
                   "Talk to phiaccessd, the phi access daemon.\n\nVerbs:\n");
        for (size_t i = 0; i < PHI_ELEMENTSOF(verb_help); i++) {
                const struct verb_help *h = &verb_help[i];
                int width = (int) (strlen(h->words) + (h->args[0] ? 1 + strlen(h->args) : 0));
                fprintf(f, "  %s%s%s", h->words, h->args[0] ? " " : "", h->args);
                if (width <= 17)
                        fprintf(f, "%*s%s\n", 18 - width, "", h->summary);
                else
                        fprintf(f, "\n%20s%s\n", "", h->summary);
        }
        fprintf(f, "\n"
                   "Options:\n"
                   "  -j, --json          machine-readable output\n"
                   "  -s, --socket PATH   daemon socket (default $PHI_SOCKET, else " PHI_SOCKET_PATH ")\n"
                   "  -h, --help          show this help and exit (after a verb: that verb's)\n"
                   "      --version       show the version and exit\n"
                   "\n"
                   "Exit status: 0 done, 1 refused or failed, 2 usage error, 3 daemon unreachable.\n");
}

/* `phictl VERB [SUB] ... --help`: the row whose words start the arguments
 * (the longest, so "totp issue" before a bare "totp"); false when the
 * arguments ask for no help. */
static bool verb_usage(int argc, char **argv) {
        const struct verb_help *best = NULL;
        bool asked = false;

        for (int i = 1; i < argc; i++)
                asked |= strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0;
        if (!asked)
                return false;
        for (size_t i = 0; i < PHI_ELEMENTSOF(verb_help); i++) {
                const char *w = verb_help[i].words;
                bool match = true;
                int k = 0;

                for (const char *p = w; *p && match; k++) {
                        size_t len = strcspn(p, " ");
                        match = k < argc && strlen(argv[k]) == len && strncmp(argv[k], p, len) == 0;
                        p += len + (p[len] == ' ');
                }
                if (match && (!best || strlen(w) > strlen(best->words)))
                        best = &verb_help[i];
        }
        if (!best) {
                /* "phictl totp --help": every row of that verb */
                printf("Usage:\n");
                for (size_t i = 0; i < PHI_ELEMENTSOF(verb_help); i++)
                        if (strncmp(verb_help[i].words, argv[0], strlen(argv[0])) == 0 &&
                            verb_help[i].words[strlen(argv[0])] == ' ')
                                printf("  phictl [--json] [--socket PATH] %s%s%s\n", verb_help[i].words,
                                       verb_help[i].args[0] ? " " : "", verb_help[i].args);
                return true;
        }
        printf("Usage: phictl [--json] [--socket PATH] %s%s%s\n%s.\nSee phictl(1).\n", best->words,
               best->args[0] ? " " : "", best->args, best->summary);
        return true;
}

void ctl_json_string(FILE *f, const char *s) {
        fputc('"', f);
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                if (*p == '"' || *p == '\\')
                        fprintf(f, "\\%c", *p);
                else if (*p < 0x20)
                        fprintf(f, "\\u%04x", *p);
                else
                        fputc(*p, f);
        }
        fputc('"', f);
}

/* Prints the value of field i, which follows a KEY: aligned in the table
 * (a flag as yes or no), typed in JSON (text as a string, a number as a
 * number, a flag as true or false). Fields of other tags are skipped. */
static void print_pair(const struct ctl *ctl, bool *first, const char *key, const phi_msg *m, size_t i) {
        const char *text = NULL, *json = NULL;
        const void *value;
        char number[24];
        uint16_t tag;
        uint64_t v;

        if (phi_msg_field(m, i, &tag, NULL, &value, NULL) < 0)
                return;
        if (tag == PHI_TAG_VALUE)
                text = value;
        else if ((tag == PHI_TAG_NUMBER || tag == PHI_TAG_FLAG) && phi_msg_field_u64(m, i, &v) == 0) {
                snprintf(number, sizeof(number), "%llu", (unsigned long long) v);
                text = tag == PHI_TAG_NUMBER ? number : v ? "yes" : "no";
                json = tag == PHI_TAG_NUMBER ? number : v ? "true" : "false";
        } else
                return;
        if (ctl->json) {
                fputs(*first ? "" : ",", stdout);
                ctl_json_string(stdout, key);
                fputc(':', stdout);
                if (json)
                        fputs(json, stdout);
                else
                        ctl_json_string(stdout, text);
        } else
                printf("%-20s %s\n", key, text);
        *first = false;
}

void print_pairs(const struct ctl *ctl, const phi_msg *m) {
        size_t n = phi_msg_field_count(m);
        const char *key = NULL;
        bool first = true;

        if (ctl->json)
                fputc('{', stdout);
        for (size_t i = 0; i < n; i++) {
                uint16_t tag;
                const void *value;

                if (phi_msg_field(m, i, &tag, NULL, &value, NULL) < 0)
                        continue;
                if (tag == PHI_TAG_KEY) {
                        key = value;
                        continue;
                }
                if (!key)
                        continue;
                print_pair(ctl, &first, key, m, i);
                key = NULL;
        }
        if (ctl->json)
                fputs("}\n", stdout);
}

/* How long a person at phictl waits for an answer once connected. Most
 * answers are a durable store commit (synchronous=FULL), and on a loaded host
 * one fdatasync can take seconds: 3 s, pam_phi's fail-closed login bound,
 * made `phictl totp enroll` give up on answers that were on their way. This
 * is systemctl's D-Bus default; connecting keeps the short bound, so a daemon
 * that is not there is still reported at once. */
#define CTL_REPLY_TIMEOUT_MS (25 * 1000)

/* One request, one reply; maps failures to the documented exit codes. An
 * ERROR reply with errno `quiet` (negative; 0 for none) is not printed, and
 * *ret_error says it was that one. */
static int ctl_call_full(const struct ctl *ctl, const phi_msg *req, int timeout_ms, int quiet, phi_msg **ret,
                         int *ret_error) {
        _cleanup_client_ phi_client *c = NULL;
        _cleanup_msg_ phi_msg *reply = NULL;
        const char *message;
        int r, error;

        if (ret_error)
                *ret_error = 0;
        r = phi_client_connect(ctl->socket_path, PHI_CLIENT_DEFAULT_TIMEOUT_MS, &c);
        if (r < 0) {
                fprintf(stderr, "phictl: cannot reach phiaccessd at %s: %s\n", ctl->socket_path,
                        phi_client_strerror(r));
                return EXIT_UNREACHABLE;
        }
        phi_client_set_timeout(c, timeout_ms);
        r = phi_client_call(c, req, &reply);
        if (r < 0) {
                fprintf(stderr, "phictl: no valid answer from phiaccessd: %s\n",
                        phi_wire_strerror(r));
                return EXIT_UNREACHABLE;
        }
        if (phi_msg_get_error(reply, &error, &message) == 0) {
                if (ret_error)
                        *ret_error = error;
                if (!quiet || error != quiet)
                        fprintf(stderr, "phictl: %s\n", message);
                return EXIT_REFUSED;
        }
        *ret = PHI_TAKE_PTR(reply);
        return EXIT_DONE;
}

static int ctl_call_timeout(const struct ctl *ctl, const phi_msg *req, int timeout_ms, phi_msg **ret) {
        return ctl_call_full(ctl, req, timeout_ms, 0, ret, NULL);
}

int ctl_call(const struct ctl *ctl, const phi_msg *req, phi_msg **ret) {
        return ctl_call_timeout(ctl, req, CTL_REPLY_TIMEOUT_MS, ret);
}

int ctl_call_quiet(const struct ctl *ctl, const phi_msg *req, int quiet, phi_msg **ret, int *ret_error) {
        return ctl_call_full(ctl, req, CTL_REPLY_TIMEOUT_MS, quiet, ret, ret_error);
}

/* A verb with no arguments whose answer is a list of pairs. */
static int call_simple(const struct ctl *ctl, int argc, char **argv, uint16_t type) {
        _cleanup_msg_ phi_msg *req = phi_msg_new(type);
        _cleanup_msg_ phi_msg *reply = NULL;
        int r;

        if (argc != 1) {
                fprintf(stderr, "phictl: %s takes no arguments\n", argv[0]);
                return EXIT_USAGE;
        }
        if (!req)
                return EXIT_REFUSED;
        r = ctl_call(ctl, req, &reply);
        if (r == EXIT_DONE)
                print_pairs(ctl, reply);
        return r;
}

static int verb_status(const struct ctl *ctl, int argc, char **argv) {
        return call_simple(ctl, argc, argv, PHI_MSG_STATUS);
}

/* A full sync of a large directory takes a while; the daemon answers when done. */
#define SYNC_TIMEOUT_MS (15 * 60 * 1000)

static int verb_sync(const struct ctl *ctl, int argc, char **argv) {
        _cleanup_msg_ phi_msg *req = phi_msg_new(PHI_MSG_SYNC);
        _cleanup_msg_ phi_msg *reply = NULL;
        const char *message = NULL;
        bool full = false;
        int r;

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--full") == 0)
                        full = true;
                else {
                        fprintf(stderr, "phictl: sync takes only --full, not '%s'\n", argv[i]);
                        return EXIT_USAGE;
                }
        }
        if (!req || phi_msg_put_u64(req, PHI_TAG_FULL, full ? 1 : 0) < 0)
                return EXIT_REFUSED;
        r = ctl_call_timeout(ctl, req, SYNC_TIMEOUT_MS, &reply);
        if (r != EXIT_DONE)
                return r;
        if (phi_msg_get_str(reply, PHI_TAG_MESSAGE, &message) < 0)
                message = "done";
        if (ctl->json) {
                fputs("{\"result\":", stdout);
                ctl_json_string(stdout, message);
                fputs("}\n", stdout);
        } else
                printf("%s\n", message);
        return EXIT_DONE;
}

static void print_field(const struct ctl *ctl, bool *first, const char *key, const char *value,
                        bool number) {
        if (ctl->json) {
                fputs(*first ? "" : ",", stdout);
                ctl_json_string(stdout, key);
                fputc(':', stdout);
                if (!value)
                        fputs("null", stdout);
                else if (number)
                        fputs(value, stdout);
                else
                        ctl_json_string(stdout, value);
        } else
                printf("%-8s %s\n", key, value);
        *first = false;
}

/* The value of the pair named key in a reply, or NULL. */
static const char *pair_get(const phi_msg *m, const char *key) {
        size_t n = phi_msg_field_count(m);

        for (size_t i = 0; i + 1 < n; i++) {
                uint16_t tag, next;
                const void *k, *v;

                if (phi_msg_field(m, i, &tag, NULL, &k, NULL) < 0 || tag != PHI_TAG_KEY || strcmp(k, key) != 0 ||
                    phi_msg_field(m, i + 1, &next, NULL, &v, NULL) < 0 || next != PHI_TAG_VALUE)
                        continue;
                return v;
        }
        return NULL;
}

static int verb_user(const struct ctl *ctl, int argc, char **argv) {
        _cleanup_msg_ phi_msg *req = phi_msg_new(PHI_MSG_USER_SHOW);
        _cleanup_msg_ phi_msg *reply = NULL;
        static const struct {
                uint16_t tag;
                const char *key;
        } fields[] = {
                { PHI_TAG_USER, "name" },   { PHI_TAG_UID, "uid" },     { PHI_TAG_GID, "gid" },
                { PHI_TAG_GECOS, "gecos" }, { PHI_TAG_HOME, "home" },   { PHI_TAG_SHELL, "shell" },
                { PHI_TAG_DN, "dn" },       { PHI_TAG_TOKEN, "token" },
        };
        const char *source, *locked, *ticket;
        bool first = true;
        int r;

        if (argc != 3 || strcmp(argv[1], "show") != 0) {
                fprintf(stderr, "phictl: usage: phictl user show NAME\n");
                return EXIT_USAGE;
        }
        if (!req)
                return EXIT_REFUSED;
        if (phi_msg_put_str(req, PHI_TAG_USER, argv[2]) < 0) {
                fprintf(stderr, "phictl: '%s' is not a possible user name\n", argv[2]);
                return EXIT_USAGE;
        }
        r = ctl_call(ctl, req, &reply);
        if (r != EXIT_DONE)
                return r;
        if (phi_msg_type(reply) != PHI_MSG_USER_INFO) {
                fprintf(stderr, "phictl: unexpected answer from phiaccessd\n");
                return EXIT_REFUSED;
        }
        if (ctl->json)
                fputc('{', stdout);
        for (size_t i = 0; i < PHI_ELEMENTSOF(fields); i++) {
                const char *sv;
                uint64_t v;
                char buf[24];
                if (phi_msg_get_str(reply, fields[i].tag, &sv) == 0)
                        print_field(ctl, &first, fields[i].key, sv, false);
                else if (phi_msg_get_u64(reply, fields[i].tag, &v) == 0) {
                        snprintf(buf, sizeof(buf), "%llu", (unsigned long long) v);
                        print_field(ctl, &first, fields[i].key, buf, true);
                }
        }
        /* The token's details: absent means none (null in JSON). */
        source = pair_get(reply, "source");
        locked = pair_get(reply, "locked_until");
        ticket = pair_get(reply, "ticket_expires");
        if (ctl->json) {
                print_field(ctl, &first, "locked_until", locked, false);
                print_field(ctl, &first, "ticket_expires", ticket, false);
                if (source)
                        print_field(ctl, &first, "source", source, false);
        } else {
                char buf[64];
                snprintf(buf, sizeof(buf), "until %s", locked ? locked : "");
                print_field(ctl, &first, "locked", locked ? buf : "no", false);
                snprintf(buf, sizeof(buf), "unused, valid until %s", ticket ? ticket : "");
                print_field(ctl, &first, "ticket", ticket ? buf : "none", false);
                if (source)
                        print_field(ctl, &first, "source", source, false);
        }
        /* Groups: one line in the table, an array in JSON. */
        {
                size_t n = phi_msg_field_count(reply);
                bool any = false;
                if (ctl->json)
                        fputs(",\"groups\":[", stdout);
                else
                        printf("%-8s ", "groups");
                for (size_t i = 0; i < n; i++) {
                        uint16_t tag;
                        const void *value;
                        if (phi_msg_field(reply, i, &tag, NULL, &value, NULL) < 0 || tag != PHI_TAG_GROUP)
                                continue;
                        if (ctl->json) {
                                fputs(any ? "," : "", stdout);
                                ctl_json_string(stdout, value);
                        } else
                                printf("%s%s", any ? ", " : "", (const char *) value);
                        any = true;
                }
                if (ctl->json)
                        fputs("]}\n", stdout);
                else
                        printf("%s\n", any ? "" : "(none)");
        }
        return EXIT_DONE;
}

static int verb_reload(const struct ctl *ctl, int argc, char **argv) {
        return call_simple(ctl, argc, argv, PHI_MSG_RELOAD);
}

/* Exit 0 when the policy allows, 1 when it denies: scripts can ask it. */
static int verb_policy(const struct ctl *ctl, int argc, char **argv) {
        _cleanup_msg_ phi_msg *req = phi_msg_new(PHI_MSG_POLICY_CHECK);
        _cleanup_msg_ phi_msg *reply = NULL;
        const char *user = NULL, *host = NULL, *service = "sshd";
        const char *key = NULL;
        bool allowed = false;
        int r;

        if (argc < 3 || strcmp(argv[1], "check") != 0) {
                fprintf(stderr, "phictl: usage: phictl policy check USER [--host H] [--service S]\n");
                return EXIT_USAGE;
        }
        for (int i = 2; i < argc; i++) {
                if (strcmp(argv[i], "--host") == 0 && i + 1 < argc)
                        host = argv[++i];
                else if (strcmp(argv[i], "--service") == 0 && i + 1 < argc)
                        service = argv[++i];
                else if (argv[i][0] != '-' && !user)
                        user = argv[i];
                else {
                        fprintf(stderr, "phictl: usage: phictl policy check USER [--host H] [--service S]\n");
                        return EXIT_USAGE;
                }
        }
        if (!req || !user)
                return !req ? EXIT_REFUSED : EXIT_USAGE;
        if (phi_msg_put_str(req, PHI_TAG_USER, user) < 0 || phi_msg_put_str(req, PHI_TAG_SERVICE, service) < 0 ||
            (host && phi_msg_put_str(req, PHI_TAG_HOST, host) < 0)) {
                fprintf(stderr, "phictl: a user, service or host that cannot be one\n");
                return EXIT_USAGE;
        }
        r = ctl_call(ctl, req, &reply);
        if (r != EXIT_DONE)
                return r;
        for (size_t i = 0, n = phi_msg_field_count(reply); i < n; i++) {
                uint16_t tag;
                const void *value;
                uint64_t v;
                if (phi_msg_field(reply, i, &tag, NULL, &value, NULL) < 0)
                        continue;
                if (tag == PHI_TAG_KEY)
                        key = value;
                else if (tag == PHI_TAG_FLAG && key && strcmp(key, "allowed") == 0 &&
                         phi_msg_field_u64(reply, i, &v) == 0)
                        allowed = v != 0;
        }
        print_pairs(ctl, reply);
        return allowed ? EXIT_DONE : EXIT_REFUSED;
}

/* The copy of a large store takes a while; the daemon answers when done. */
#define BACKUP_TIMEOUT_MS (10 * 60 * 1000)

/*
 * phictl backup FILE: FILE is made here, new (O_EXCL: never over something),
 * 0600 and the caller's, and its descriptor goes to the daemon with the
 * request; the daemon writes the copy into it. On failure the half-written
 * file is removed, if it is still the one made here.
 */
static int verb_backup(const struct ctl *ctl, int argc, char **argv) {
        _cleanup_msg_ phi_msg *req = phi_msg_new(PHI_MSG_BACKUP);
        _cleanup_msg_ phi_msg *reply = NULL;
        _cleanup_client_ phi_client *c = NULL;
        _cleanup_close_ int fd = -1;
        const char *path, *message;
        struct stat made, now;
        int r, error;

        if (argc != 2 || argv[1][0] == '-') {
                fprintf(stderr, "phictl: usage: phictl backup FILE\n");
                return EXIT_USAGE;
        }
        path = argv[1];
        if (!req)
                return EXIT_REFUSED;
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (fd < 0 || fstat(fd, &made) < 0) {
                fprintf(stderr, "phictl: cannot create %s: %s\n", path,
                        errno == EEXIST ? "it exists already (a backup is written only into a new file)"
                                        : phi_errno_text(errno));
                return EXIT_REFUSED;
        }
        r = phi_client_connect(ctl->socket_path, PHI_CLIENT_DEFAULT_TIMEOUT_MS, &c);
        if (r < 0) {
                fprintf(stderr, "phictl: cannot reach phiaccessd at %s: %s\n", ctl->socket_path,
                        phi_client_strerror(r));
                r = EXIT_UNREACHABLE;
                goto fail;
        }
        phi_client_set_timeout(c, BACKUP_TIMEOUT_MS);
        if ((r = phi_client_send_fd(c, req, fd)) < 0 || (r = phi_client_recv(c, &reply)) < 0) {
                fprintf(stderr, "phictl: no valid answer from phiaccessd: %s\n", phi_wire_strerror(r));
                r = EXIT_UNREACHABLE;
                goto fail;
        }
        if (phi_msg_get_error(reply, &error, &message) == 0) {
                fprintf(stderr, "phictl: %s\n", message);
                r = EXIT_REFUSED;
                goto fail;
        }
        /* The daemon synced the data; the name is ours to make durable. */
        if ((r = phi_fs_fsync_parent(path)) < 0) {
                fprintf(stderr, "phictl: cannot sync the directory of %s: %s\n", path, phi_errno_text(r));
                r = EXIT_REFUSED;
                goto fail;
        }
        print_pairs(ctl, reply);
        if (!ctl->json)
                printf("Backup written to %s. It holds the sealed TOTP seeds but not the master key: keep the key\n"
                       "apart, or the backup cannot be used. Restore: phiaccessd --restore %s, daemon stopped.\n",
                       path, path);
        return EXIT_DONE;
fail:
        if (stat(path, &now) == 0 && now.st_dev == made.st_dev && now.st_ino == made.st_ino)
                (void) unlink(path);
        return r;
}

static const struct {
        const char *name;
        int (*run)(const struct ctl *ctl, int argc, char **argv);
} verbs[] = {
        { "status", verb_status },
        { "sync", verb_sync },
        { "user", verb_user },
        { "totp", verb_totp },
        { "doctor", verb_doctor },
        { "audit", verb_audit },
        { "reload", verb_reload },
        { "policy", verb_policy },
        { "sessions", verb_sessions },
        { "request", verb_request },
        { "requests", verb_requests },
        { "approve", verb_approve },
        { "deny", verb_deny },
        { "cancel", verb_cancel },
        { "revoke", verb_revoke },
        { "grants", verb_grants },
        { "breakglass", verb_breakglass },
        { "review", verb_review },
        { "backup", verb_backup },
};

int main(int argc, char **argv) {
        enum { OPT_VERSION = 256 };
        static const struct option options[] = {
                { "json", no_argument, NULL, 'j' },
                { "socket", required_argument, NULL, 's' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, OPT_VERSION },
                {},
        };
        struct ctl ctl = { .socket_path = secure_getenv("PHI_SOCKET") };
        int c;

        if (!ctl.socket_path || !*ctl.socket_path)
                ctl.socket_path = PHI_SOCKET_PATH;
        /* '+': stop at the verb, so verbs can have options of their own. */
        while ((c = getopt_long(argc, argv, "+js:h", options, NULL)) != -1) {
                switch (c) {
                case 'j':
                        ctl.json = true;
                        break;
                case 's':
                        ctl.socket_path = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return EXIT_DONE;
                case OPT_VERSION:
                        puts("phictl " PHI_VERSION);
                        return EXIT_DONE;
                default:
                        usage(stderr);
                        return EXIT_USAGE;
                }
        }
        if (optind >= argc) {
                usage(stderr);
                return EXIT_USAGE;
        }
        for (size_t i = 0; i < PHI_ELEMENTSOF(verbs); i++)
                if (strcmp(argv[optind], verbs[i].name) == 0) {
                        if (verb_usage(argc - optind, argv + optind))
                                return EXIT_DONE;
                        return verbs[i].run(&ctl, argc - optind, argv + optind);
                }
        fprintf(stderr, "phictl: unknown verb '%s' (see phictl --help)\n", argv[optind]);
        return EXIT_USAGE;
}

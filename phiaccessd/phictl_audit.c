/* SPDX-License-Identifier: GPL-2.0-or-later */
/* phictl audit verify FILE --key PUBKEY: checks an audit export offline, on an
 * auditor's machine, with no daemon and no store: only the file and the log's
 * public key (phi-audit(5)). Everything is libphi_audit's; this file reads the
 * file and the keys and prints the verdict. */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "phi/audit.h"
#include "phi/client.h"
#include "phi/macro.h"
#include "phi/parse.h"

#include "phictl.h"

#define KEY_FILE_MAX 65536                      /* a file of verifier keys, one a line */
#define EXPORT_MAX (UINT64_C(64) << 30)         /* 64 GiB: some 200 million records */

static int audit_usage(void) {
        fprintf(stderr, "Usage: phictl audit verify FILE --key PUBKEY\n"
                        "       phictl audit verify           (the live store, by the daemon; auditors)\n"
                        "PUBKEY is the log's verifier key (NAME+KEYID+BASE64) or a file holding it.\n");
        return EXIT_USAGE;
}

static int query_usage(void) {
        fprintf(stderr, "Usage: phictl audit [--user U] [--actor U] [--role R] [--event E] [--host H] [--since T]\n"
                        "                    [--until T] [--format table|json|csv]\n"
                        "       phictl audit request ID [--format table|json|csv]\n"
                        "       phictl audit export [--since T] [--until T] > FILE\n"
                        "       phictl audit verify FILE --key PUBKEY\n"
                        "T: an ISO 8601 time in UTC (2026-12-02T14:00:00Z, 2026-12-02T14:00Z, 2026-12-02) or\n"
                        "relative to now (-24h, -30m, -7d).\n");
        return EXIT_USAGE;
}

/* Adds the keys of one --key: the key itself, or a file of keys, one a line
 * ('#' starts a comment line). */
static int add_keys(const char *arg, struct phi_audit_verifier *keys, size_t *n) {
        char buf[KEY_FILE_MAX + 1];
        const char *error = NULL;
        _cleanup_close_ int fd = -1;
        size_t len = 0, added = 0;
        ssize_t k;

        if (*n < PHI_AUDIT_KEYS_MAX && phi_audit_verifier_parse(arg, strlen(arg), &keys[*n], &error) == 0) {
                (*n)++;
                return 0;
        }
        fd = open(arg, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                if (strchr(arg, '+'))
                        fprintf(stderr, "phictl: --key %s: %s\n", arg, error ? error : "too many keys");
                else
                        fprintf(stderr, "phictl: --key %s: %s\n", arg, phi_errno_text(errno));
                return -EINVAL;
        }
        while (len <= KEY_FILE_MAX && (k = read(fd, buf + len, KEY_FILE_MAX + 1 - len)) > 0)
                len += (size_t) k;
        if (len > KEY_FILE_MAX) {
                fprintf(stderr, "phictl: --key %s: larger than %d bytes\n", arg, KEY_FILE_MAX);
                return -EFBIG;
        }
        for (size_t pos = 0, line = 1; pos < len; line++) {
                char *s = buf + pos, *end = memchr(s, '\n', len - pos);
                size_t l = end ? (size_t) (end - s) : len - pos;
                pos += l + 1;
                while (l > 0 && (s[l - 1] == ' ' || s[l - 1] == '\t' || s[l - 1] == '\r'))
                        l--;
                if (l == 0 || s[0] == '#')
                        continue;
                if (*n >= PHI_AUDIT_KEYS_MAX) {
                        fprintf(stderr, "phictl: --key: more than %d keys\n", PHI_AUDIT_KEYS_MAX);
                        return -E2BIG;
                }
                if (phi_audit_verifier_parse(s, l, &keys[*n], &error) < 0) {
                        fprintf(stderr, "phictl: %s:%zu: not a verifier key: %s\n", arg, line, error);
                        return -EINVAL;
                }
                (*n)++;
                added++;
        }
        if (added == 0) {
                fprintf(stderr, "phictl: --key %s: no verifier key in the file\n", arg);
                return -EINVAL;
        }
        return 0;
}

static int audit_verify(const struct ctl *ctl, int argc, char **argv) {
        static const struct option options[] = {
                { "key", required_argument, NULL, 'k' },
                {},
        };
        struct phi_audit_verifier keys[PHI_AUDIT_KEYS_MAX];
        struct phi_audit_export_result res;
        _cleanup_close_ int fd = -1;
        size_t n_keys = 0;
        const char *path;
        void *map = NULL;
        struct stat st;
        int c, r;

        optind = 0;     /* 0: glibc re-initialises its scan state (main() used getopt) */
        while ((c = getopt_long(argc, argv, "k:", options, NULL)) != -1) {
                if (c != 'k')
                        return audit_usage();
                if (add_keys(optarg, keys, &n_keys) < 0)
                        return EXIT_USAGE;
        }
        /* No FILE: the daemon verifies its live store. */
        if (optind == argc && n_keys == 0)
                return ctl_audit_verify_live(ctl);
        if (optind != argc - 1 || n_keys == 0) {
                if (n_keys == 0 && optind == argc - 1)
                        fprintf(stderr, "phictl: audit verify FILE needs the log's public key: --key PUBKEY\n");
                return audit_usage();
        }
        path = argv[optind];
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0 || fstat(fd, &st) < 0) {
                fprintf(stderr, "phictl: %s: %s\n", path, phi_errno_text(errno));
                return EXIT_USAGE;
        }
        if (!S_ISREG(st.st_mode) || (uint64_t) st.st_size > EXPORT_MAX) {
                fprintf(stderr, "phictl: %s: not a regular file of at most 64 GiB\n", path);
                return EXIT_USAGE;
        }
        if (st.st_size > 0) {
                map = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
                if (map == MAP_FAILED) {
                        fprintf(stderr, "phictl: %s: %s\n", path, phi_errno_text(errno));
                        return EXIT_REFUSED;
                }
                (void) madvise(map, (size_t) st.st_size, MADV_SEQUENTIAL);
        }
        r = phi_audit_export_verify(map, (size_t) st.st_size, keys, n_keys, &res);
        if (map)
                (void) munmap(map, (size_t) st.st_size);
        if (ctl->json) {
                if (r == 0)
                        printf("{\"verified\":true,\"records\":%llu,\"first\":%llu,\"tree_size\":%llu,"
                               "\"checkpoints\":%llu,\"origin\":",
                               (unsigned long long) res.records, (unsigned long long) res.first,
                               (unsigned long long) res.tree_size, (unsigned long long) res.checkpoints);
                else if (res.has_bad_seq)
                        printf("{\"verified\":false,\"bad_seq\":%llu,\"error\":", (unsigned long long) res.bad_seq);
                else
                        printf("{\"verified\":false,\"bad_seq\":null,\"error\":");
                ctl_json_string(stdout, r == 0 ? res.origin : res.what);
                if (r == 0) {
                        printf(",\"key\":");
                        ctl_json_string(stdout, res.key);
                }
                printf("}\n");
        } else if (r == 0) {
                printf("verified:    %s\n", path);
                if (res.records > 0)
                        printf("records:     %llu (seq %llu to %llu)\n", (unsigned long long) res.records,
                               (unsigned long long) res.first, (unsigned long long) (res.first + res.records - 1));
                else
                        printf("records:     0 (from seq %llu)\n", (unsigned long long) res.first);
                printf("tree size:   %llu\n"
                       "checkpoints: %llu\n"
                       "origin:      %s\n"
                       "signed by:   %s\n",
                       (unsigned long long) res.tree_size, (unsigned long long) res.checkpoints, res.origin,
                       res.key);
        } else
                fprintf(stderr, "phictl: %s: %s\n", path, res.what);
        return r == 0 ? EXIT_DONE : EXIT_REFUSED;
}

/* ------------------------------------------------ queries and exports */

/* Pages of a listing take a while on a large log; each is one round trip. */
#define PAGE_TIMEOUT_MS (120 * 1000)
/* How long an export waits for the checkpoint that covers its end. */
#define RETRY_WAIT_MS 100
#define RETRY_MAX 100

enum format { F_TABLE, F_JSON, F_CSV };

/* T: ISO 8601 in UTC (2026-12-02T14:00:00Z, 2026-12-02T14:00Z, 2026-12-02)
 * or relative to now (-24h, -30m, -7d, -90s). */
static int parse_when(const char *s, uint64_t *ret) {
        static const char *const forms[] = { "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%MZ", "%Y-%m-%d" };
        uint64_t d, now = (uint64_t) time(NULL);

        if (s[0] == '-') {
                if (phi_parse_duration(s + 1, 1, 100 * 366 * 86400ULL, &d) < 0 || d > now)
                        return -EINVAL;
                *ret = now - d;
                return 0;
        }
        for (size_t i = 0; i < PHI_ELEMENTSOF(forms); i++) {
                struct tm tm = { 0 };
                const char *end = strptime(s, forms[i], &tm);
                time_t t;
                if (end && !*end && (t = timegm(&tm)) > 0) {
                        *ret = (uint64_t) t;
                        return 0;
                }
        }
        return -EINVAL;
}

static int reply_number(const phi_msg *m, const char *key, uint16_t want, uint64_t *ret) {
        size_t n = phi_msg_field_count(m);

        for (size_t i = 0; i + 1 < n; i++) {
                uint16_t tag, next;
                const void *k;
                if (phi_msg_field(m, i, &tag, NULL, &k, NULL) < 0 || tag != PHI_TAG_KEY || strcmp(k, key) != 0 ||
                    phi_msg_field(m, i + 1, &next, NULL, NULL, NULL) < 0 || next != want)
                        continue;
                return phi_msg_field_u64(m, i + 1, ret);
        }
        return -ENOENT;
}

static bool reply_flag(const phi_msg *m, const char *key) {
        uint64_t v = 0;
        return reply_number(m, key, PHI_TAG_FLAG, &v) == 0 && v != 0;
}

/* One page on the connection kept for the whole listing. */
static int page_call(const struct ctl *ctl, phi_client **c, const phi_msg *req, phi_msg **ret) {
        _cleanup_msg_ phi_msg *reply = NULL;
        const char *message;
        int r, error;

        if (!*c) {
                r = phi_client_connect(ctl->socket_path, PHI_CLIENT_DEFAULT_TIMEOUT_MS, c);
                if (r < 0) {
                        fprintf(stderr, "phictl: cannot reach phiaccessd at %s: %s\n", ctl->socket_path,
                                phi_client_strerror(r));
                        return EXIT_UNREACHABLE;
                }
                phi_client_set_timeout(*c, PAGE_TIMEOUT_MS);
        }
        r = phi_client_call(*c, req, &reply);
        if (r < 0) {
                fprintf(stderr, "phictl: no valid answer from phiaccessd: %s\n", phi_wire_strerror(r));
                return EXIT_UNREACHABLE;
        }
        if (phi_msg_get_error(reply, &error, &message) == 0) {
                fprintf(stderr, "phictl: %s\n", message);
                return EXIT_REFUSED;
        }
        *ret = PHI_TAKE_PTR(reply);
        return EXIT_DONE;
}

static void time_text(uint64_t time_us, bool micro, char *buf, size_t len) {
        struct tm tm;
        time_t t = (time_t) (time_us / 1000000);
        char base[32];

        if (!gmtime_r(&t, &tm) || strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
                snprintf(base, sizeof(base), "%llu", (unsigned long long) t);
        if (micro)
                snprintf(buf, len, "%s.%06lluZ", base, (unsigned long long) (time_us % 1000000));
        else
                snprintf(buf, len, "%sZ", base);
}

static void csv_field(const char *s, bool last) {
        if (s && strpbrk(s, ",\"\r\n")) {
                putchar('"');
                for (; *s; s++) {
                        if (*s == '"')
                                putchar('"');
                        putchar(*s);
                }
                putchar('"');
        } else if (s)
                fputs(s, stdout);
        fputs(last ? "\r\n" : ",", stdout);
}

struct printer {
        enum format format;
        size_t shown;
};

static void print_start(struct printer *p) {
        if (p->format == F_JSON)
                putchar('[');
        else if (p->format == F_CSV)
                fputs("time,seq,event,user,actor,role,request_id,service,rhost,tty,rule,reason,expires,host,"
                      "target,command\r\n",
                      stdout);
        else
                printf("%-20s %6s %-20s %-12s %-12s %-10s %-12s %-10s %-15s %s\n", "TIME", "SEQ", "EVENT", "USER",
                       "ACTOR", "ROLE", "REQUEST", "SERVICE", "RHOST", "REASON");
}

static void print_record(struct printer *p, const struct phi_audit_record *x) {
        char t[48], seq[24], expires[32] = "";

        snprintf(seq, sizeof(seq), "%llu", (unsigned long long) x->seq);
        if (p->format == F_JSON) {
                const struct {
                        const char *key, *value;
                } texts[] = {
                        { "event", x->event },   { "user", x->user },       { "actor", x->actor },
                        { "role", x->role },     { "request_id", x->request_id }, { "service", x->service },
                        { "rhost", x->rhost },   { "tty", x->tty },         { "rule", x->rule },
                        { "reason", x->reason }, { "host", x->host },       { "command", x->command },
                        { "target", x->target },
                };
                time_text(x->time_us, true, t, sizeof(t));
                printf("%s{\"seq\":%s,\"time\":\"%s\",\"time_us\":%llu", p->shown ? "," : "", seq, t,
                       (unsigned long long) x->time_us);
                for (size_t i = 0; i < PHI_ELEMENTSOF(texts); i++)
                        if (texts[i].value) {
                                printf(",\"%s\":", texts[i].key);
                                ctl_json_string(stdout, texts[i].value);
                        }
                if (x->expires)
                        printf(",\"expires\":%llu", (unsigned long long) x->expires);
                putchar('}');
        } else if (p->format == F_CSV) {
                time_text(x->time_us, true, t, sizeof(t));
                if (x->expires)
                        time_text(x->expires * 1000000, false, expires, sizeof(expires));
                const char *fields[] = { t,          seq,        x->event,     x->user,   x->actor,
                                         x->role,    x->request_id, x->service, x->rhost,  x->tty,
                                         x->rule,    x->reason,  expires,      x->host,   x->target,
                                         x->command };
                for (size_t i = 0; i < PHI_ELEMENTSOF(fields); i++)
                        csv_field(fields[i], i + 1 == PHI_ELEMENTSOF(fields));
        } else {
                time_text(x->time_us, false, t, sizeof(t));
#define COL(s) ((s) && (s)[0] ? (s) : "-")
                /* A sudo record's command, after its reason: what an auditor
                 * reading a request's life wants to see. */
                printf("%-20s %6s %-20s %-12s %-12s %-10s %-12s %-10s %-15s %s%s%s%s%s\n", t, seq, x->event,
                       COL(x->user), COL(x->actor), COL(x->role), COL(x->request_id), COL(x->service),
                       COL(x->rhost), COL(x->reason), x->command ? ": " : "", x->target ? x->target : "",
                       x->command ? "$ " : "", x->command ? x->command : "");
#undef COL
        }
        p->shown++;
}

static void print_end(struct printer *p) {
        if (p->format == F_JSON)
                puts("]");
        else if (p->format == F_TABLE && p->shown == 0)
                puts("no audit records match");
}

/* Asks page after page and prints the records as they come: phictl holds one
 * page at a time. Rows the daemon reports (their indexed columns disagree
 * with the record) go to stderr and make the exit status 1. */
static int run_query(const struct ctl *ctl, phi_msg *req, enum format format) {
        _cleanup_client_ phi_client *c = NULL;
        _cleanup_free_ struct phi_audit_parsed *parsed = malloc(sizeof(*parsed));
        struct printer p = { .format = format };
        uint64_t next = 0, seal = 0, mismatches = 0;
        bool more = true, started = false;
        int r = EXIT_DONE;

        if (!parsed)
                return EXIT_REFUSED;
        for (unsigned page = 0; more && r == EXIT_DONE; page++) {
                _cleanup_msg_ phi_msg *reply = NULL;
                const char *key = NULL;
                uint64_t got;

                /* The seal proves to the daemon that this page follows its own
                 * (journaled) first one. */
                if (page > 0 && (phi_msg_put_str(req, PHI_TAG_KEY, "next") < 0 ||
                                 phi_msg_put_u64(req, PHI_TAG_NUMBER, next) < 0 ||
                                 phi_msg_put_str(req, PHI_TAG_KEY, "seal") < 0 ||
                                 phi_msg_put_u64(req, PHI_TAG_NUMBER, seal) < 0)) {
                        r = EXIT_REFUSED;
                        break;
                }
                if ((r = page_call(ctl, &c, req, &reply)) != EXIT_DONE)
                        break;
                if (!started) {
                        print_start(&p);
                        started = true;
                }
                for (size_t i = 0, n = phi_msg_field_count(reply); i < n; i++) {
                        uint16_t tag;
                        const void *value;
                        size_t len;
                        const char *error = NULL;

                        if (phi_msg_field(reply, i, &tag, NULL, &value, &len) < 0)
                                continue;
                        if (tag == PHI_TAG_KEY)
                                key = value;
                        else if (tag == PHI_TAG_VALUE && key && strcmp(key, "mismatch") == 0) {
                                fprintf(stderr, "phictl: the audit log's row disagrees with its record: %s\n",
                                        (const char *) value);
                                mismatches++;
                        } else if (tag == PHI_TAG_LINE) {
                                if (phi_audit_record_parse(value, len, parsed, &error) < 0) {
                                        fprintf(stderr, "phictl: phiaccessd sent a record that does not parse: %s\n",
                                                error);
                                        mismatches++;
                                } else
                                        print_record(&p, &parsed->rec);
                        }
                }
                more = reply_flag(reply, "more");
                if (reply_number(reply, "next", PHI_TAG_NUMBER, &got) < 0 || (more && got <= next && page > 0) ||
                    (more && reply_number(reply, "seal", PHI_TAG_NUMBER, &seal) < 0)) {
                        fprintf(stderr, "phictl: phiaccessd sent a page of the audit log that cannot be continued\n");
                        r = EXIT_REFUSED;
                        break;
                }
                next = got;
                /* The next request: the same filters, the cursor replaced. */
                if (more) {
                        phi_msg *again = phi_msg_new(PHI_MSG_AUDIT_QUERY);
                        if (!again) {
                                r = EXIT_REFUSED;
                                break;
                        }
                        for (size_t i = 0, n = phi_msg_field_count(req); i < n; i++) {
                                uint16_t tag;
                                const void *value;
                                uint64_t u;
                                if (phi_msg_field(req, i, &tag, NULL, &value, NULL) < 0 || tag == PHI_TAG_KEY ||
                                    tag == PHI_TAG_NUMBER)
                                        continue;
                                if ((tag == PHI_TAG_START || tag == PHI_TAG_UNTIL)
                                            ? phi_msg_field_u64(req, i, &u) < 0 || phi_msg_put_u64(again, tag, u) < 0
                                            : phi_msg_put_str(again, tag, value) < 0) {
                                        r = EXIT_REFUSED;
                                        break;
                                }
                        }
                        phi_msg_free(req);
                        req = again;
                }
        }
        phi_msg_free(req);
        if (started)
                print_end(&p);
        if (fflush(stdout) != 0) {
                fprintf(stderr, "phictl: cannot write the output: %s\n", phi_errno_text(errno));
                return EXIT_REFUSED;
        }
        if (r == EXIT_DONE && mismatches > 0) {
                fprintf(stderr, "phictl: %llu row%s of the audit log disagree%s with %s record%s: the store was "
                                "changed outside phiaccessd; run phictl audit verify\n",
                        (unsigned long long) mismatches, mismatches == 1 ? "" : "s", mismatches == 1 ? "s" : "",
                        mismatches == 1 ? "its" : "their", mismatches == 1 ? "" : "s");
                r = EXIT_REFUSED;
        }
        return r;
}

static int parse_format(const char *s, enum format *ret) {
        if (strcmp(s, "table") == 0)
                *ret = F_TABLE;
        else if (strcmp(s, "json") == 0)
                *ret = F_JSON;
        else if (strcmp(s, "csv") == 0)
                *ret = F_CSV;
        else {
                fprintf(stderr, "phictl: --format is table, json or csv, not '%s'\n", s);
                return -EINVAL;
        }
        return 0;
}

static int audit_query(const struct ctl *ctl, int argc, char **argv) {
        static const struct {
                const char *option;
                uint16_t tag;
        } texts[] = {
                { "--user", PHI_TAG_USER }, { "--actor", PHI_TAG_ACTOR }, { "--role", PHI_TAG_ROLE },
                { "--event", PHI_TAG_EVENT }, { "--host", PHI_TAG_HOST },
        };
        phi_msg *req = phi_msg_new(PHI_MSG_AUDIT_QUERY);
        enum format format = ctl->json ? F_JSON : F_TABLE;
        uint64_t since = 0, until = 0;

        if (!req)
                return EXIT_REFUSED;
        for (int i = 1; i < argc; i++) {
                const char *opt = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
                bool known = false;

                if (!value) {
                        fprintf(stderr, "phictl: audit %s needs a value\n", opt);
                        goto usage;
                }
                for (size_t k = 0; k < PHI_ELEMENTSOF(texts) && !known; k++)
                        if (strcmp(opt, texts[k].option) == 0) {
                                known = true;
                                if (!value[0] || phi_msg_put_str(req, texts[k].tag, value) < 0) {
                                        fprintf(stderr, "phictl: audit %s: '%s' cannot be one (given twice, empty "
                                                        "or too long)\n",
                                                opt, value);
                                        goto usage;
                                }
                        }
                if (known) {
                } else if (strcmp(opt, "--since") == 0 || strcmp(opt, "--until") == 0) {
                        uint64_t *t = opt[2] == 's' ? &since : &until;
                        if (parse_when(value, t) < 0) {
                                fprintf(stderr, "phictl: audit %s: '%s' is neither an ISO 8601 time in UTC nor "
                                                "relative to now (-24h)\n",
                                        opt, value);
                                goto usage;
                        }
                } else if (strcmp(opt, "--format") == 0) {
                        if (parse_format(value, &format) < 0)
                                goto usage;
                } else {
                        fprintf(stderr, "phictl: audit: unknown option '%s'\n", opt);
                        goto usage;
                }
                i++;
        }
        if (until && since >= until) {
                fprintf(stderr, "phictl: audit: --since must be before --until\n");
                goto usage;
        }
        if ((since && phi_msg_put_u64(req, PHI_TAG_START, since) < 0) ||
            (until && phi_msg_put_u64(req, PHI_TAG_UNTIL, until) < 0)) {
                phi_msg_free(req);
                return EXIT_REFUSED;
        }
        return run_query(ctl, req, format);
usage:
        phi_msg_free(req);
        return query_usage();
}

/* A request's whole life is every record that names its id, in order: the
 * request, each decision, the grant, each sudo use, the end. */
static int audit_request(const struct ctl *ctl, int argc, char **argv) {
        enum format format = ctl->json ? F_JSON : F_TABLE;
        phi_msg *req;

        if (argc != 2 && !(argc == 4 && strcmp(argv[2], "--format") == 0))
                return query_usage();
        if (argc == 4 && parse_format(argv[3], &format) < 0)
                return query_usage();
        if (strlen(argv[1]) != 12 || strspn(argv[1], "0123456789abcdef") != 12) {
                fprintf(stderr, "phictl: '%s' is not a request id (12 hex digits, as phictl requests shows)\n",
                        argv[1]);
                return EXIT_USAGE;
        }
        req = phi_msg_new(PHI_MSG_AUDIT_QUERY);
        if (!req || phi_msg_put_str(req, PHI_TAG_REQUEST, argv[1]) < 0) {
                phi_msg_free(req);
                return EXIT_REFUSED;
        }
        return run_query(ctl, req, format);
}

/* Writes the export to stdout page by page (phi-audit(5)); phictl holds one
 * page. The first page may ask to wait: no signed checkpoint covers the end
 * yet, and the query's own audit_query record brings one within a round. */
static int audit_export(const struct ctl *ctl, int argc, char **argv) {
        _cleanup_client_ phi_client *c = NULL;
        uint64_t since = 0, until = 0, next = 0, end = 0, first = 0, lines = 0, seal = 0;
        bool more = true, have_end = false, started = false;
        unsigned retries = 0;
        int r = EXIT_DONE;

        for (int i = 1; i < argc; i++) {
                uint64_t *t = strcmp(argv[i], "--since") == 0 ? &since : strcmp(argv[i], "--until") == 0 ? &until : NULL;
                if (!t || i + 1 >= argc || parse_when(argv[i + 1], t) < 0) {
                        if (t)
                                fprintf(stderr, "phictl: audit export %s: needs an ISO 8601 time in UTC or one "
                                                "relative to now (-24h)\n",
                                        argv[i]);
                        return query_usage();
                }
                i++;
        }
        if (until && since >= until) {
                fprintf(stderr, "phictl: audit export: --since must be before --until\n");
                return EXIT_USAGE;
        }
        while (more && r == EXIT_DONE) {
                _cleanup_msg_ phi_msg *req = phi_msg_new(PHI_MSG_AUDIT_EXPORT), *reply = NULL;
                uint64_t got_next = 0, got_end = 0;

                if (!req || (!started && since && phi_msg_put_u64(req, PHI_TAG_START, since) < 0) ||
                    (!started && until && phi_msg_put_u64(req, PHI_TAG_UNTIL, until) < 0) ||
                    (started && (phi_msg_put_str(req, PHI_TAG_KEY, "next") < 0 ||
                                 phi_msg_put_u64(req, PHI_TAG_NUMBER, next) < 0)) ||
                    (have_end && (phi_msg_put_str(req, PHI_TAG_KEY, "end") < 0 ||
                                  phi_msg_put_u64(req, PHI_TAG_NUMBER, end) < 0 ||
                                  phi_msg_put_str(req, PHI_TAG_KEY, "seal") < 0 ||
                                  phi_msg_put_u64(req, PHI_TAG_NUMBER, seal) < 0))) {
                        r = EXIT_REFUSED;
                        break;
                }
                if ((r = page_call(ctl, &c, req, &reply)) != EXIT_DONE)
                        break;
                if (!started && reply_flag(reply, "retry")) {
                        if (reply_number(reply, "end", PHI_TAG_NUMBER, &end) < 0 ||
                            reply_number(reply, "seal", PHI_TAG_NUMBER, &seal) < 0 || ++retries > RETRY_MAX) {
                                fprintf(stderr, "phictl: no signed checkpoint covers the export's end yet; "
                                                "try again in a minute\n");
                                r = EXIT_REFUSED;
                                break;
                        }
                        have_end = true;
                        (void) usleep(RETRY_WAIT_MS * 1000);
                        continue;
                }
                if (reply_number(reply, "next", PHI_TAG_NUMBER, &got_next) < 0 ||
                    reply_number(reply, "end", PHI_TAG_NUMBER, &got_end) < 0 ||
                    (!started && reply_number(reply, "first", PHI_TAG_NUMBER, &first) < 0) ||
                    (started && (got_end != end || got_next < next))) {
                        fprintf(stderr, "phictl: phiaccessd sent a page of the export that cannot be continued\n");
                        r = EXIT_REFUSED;
                        break;
                }
                more = reply_flag(reply, "more");
                if (more && reply_number(reply, "seal", PHI_TAG_NUMBER, &seal) < 0) {
                        fprintf(stderr, "phictl: phiaccessd sent a page of the export that cannot be continued\n");
                        r = EXIT_REFUSED;
                        break;
                }
                for (size_t i = 0, n = phi_msg_field_count(reply); i < n; i++) {
                        uint16_t tag;
                        const void *value;
                        size_t len;
                        if (phi_msg_field(reply, i, &tag, NULL, &value, &len) < 0 || tag != PHI_TAG_LINE)
                                continue;
                        if (fwrite(value, 1, len, stdout) != len) {
                                fprintf(stderr, "phictl: cannot write the export: %s\n", phi_errno_text(errno));
                                r = EXIT_REFUSED;
                                break;
                        }
                        lines++;
                }
                /* A page that neither moves on nor ends would loop forever. */
                if (r == EXIT_DONE && more && started && got_next == next && lines == 0) {
                        fprintf(stderr, "phictl: phiaccessd sent an empty page of the export\n");
                        r = EXIT_REFUSED;
                }
                started = true;
                have_end = true;
                next = got_next;
                end = got_end;
        }
        if (fflush(stdout) != 0 && r == EXIT_DONE) {
                fprintf(stderr, "phictl: cannot write the export: %s\n", phi_errno_text(errno));
                r = EXIT_REFUSED;
        }
        if (r == EXIT_DONE)
                fprintf(stderr, "phictl: exported %llu records (seq %llu to %llu) in %llu lines\n",
                        (unsigned long long) (end - first), (unsigned long long) first,
                        (unsigned long long) (end ? end - 1 : 0), (unsigned long long) lines);
        return r;
}

int verb_audit(const struct ctl *ctl, int argc, char **argv) {
        if (argc >= 2 && strcmp(argv[1], "verify") == 0)
                return audit_verify(ctl, argc - 1, argv + 1);
        if (argc >= 2 && strcmp(argv[1], "export") == 0)
                return audit_export(ctl, argc - 1, argv + 1);
        if (argc >= 2 && strcmp(argv[1], "request") == 0)
                return audit_request(ctl, argc - 1, argv + 1);
        if (argc >= 2 && argv[1][0] != '-') {
                fprintf(stderr, "phictl: unknown audit verb '%s'\n", argv[1]);
                return query_usage();
        }
        return audit_query(ctl, argc, argv);
}

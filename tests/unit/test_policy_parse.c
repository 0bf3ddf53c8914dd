/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The policy parser's refusals: every malformed-file error at its line, every
 * one of them in one file (not only the first, as inih alone would report),
 * the bounds, and a refused text building nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ini.h>
#include <stdio.h>

#include "phi/policy.h"

#define A "action = allow\nusers = a\nservices = sshd\nhosts = h\n"     /* a complete rule body */
#define R "grant_group = gg\neligible_groups = e\napprover_groups = ap\nhosts = h\n" /* a complete role body */

static bool has_error(const struct phi_policy_errors *e, unsigned line, const char *needle) {
        for (size_t i = 0; i < e->n; i++)
                if (e->items[i].line == line && strstr(e->items[i].message, needle))
                        return true;
        return false;
}

static void dump(const struct phi_policy_errors *e) {
        phi_policy_errors_print(e, stderr);
}

/* Parses text that must be refused with (at least) the error at line. */
static void expect_error(const char *text, size_t len, unsigned line, const char *needle) {
        struct phi_policy_errors e = { 0 };
        struct phi_policy *p = NULL;
        int r = phi_policy_parse(text, len, "t.conf", &p, &e);

        if (r != -EINVAL || !has_error(&e, line, needle)) {
                fprintf(stderr, "expected t.conf:%u: ...%s... for:\n%.300s\ngot:\n", line, needle, text);
                dump(&e);
        }
        assert_int_equal(r, -EINVAL);
        assert_null(p);
        assert_true(has_error(&e, line, needle));
        phi_policy_errors_clear(&e);
}

struct bad_case {
        const char *text;
        unsigned line;
        const char *message;
};

static const struct bad_case cases[] = {
        /* reader: lines that are no INI at all */
        { "[access:a]\n" A "this is no key\n", 6, "syntax error: expected [section], key = value or a # comment" },
        { "[access:a\n" A, 1, "section header has no closing ']'" },
        { "[access:a] extra\n" A, 1, "text after the section header's ']'" },
        { "[acces:a]\n" A, 1, "[acces:a] is not a known section (expected [access:NAME] or [role:NAME])" },
        { "[access]\n" A, 1, "[access] is not a known section" },
        { "[access:]\n" A, 1, "section name '' must be 1 to 32 letters" },
        { "[access:a b]\n" A, 1, "section name 'a b' must be 1 to 32 letters" },
        { "[access:-a]\n" A, 1, "section name '-a' must be" },
        { "[access:abcdefghijklmnopqrstuvwxyz0123456]\n" A, 1, "must be 1 to 32 letters" },
        { "[role:a/b]\n" R, 1, "section name 'a/b' must be" },
        { "[access:a]\n" A "[access:a]\n" A, 6, "[access:a] is defined twice (first on line 1)" },
        { "[access:default-deny]\n" A, 1, "section name 'default-deny' is reserved" },
        { "[role:default-deny]\n" R, 1, "section name 'default-deny' is reserved" },
        { "[role:r]\n" R "[role:r]\n" R, 6, "[role:r] is defined twice (first on line 1)" },
        { "users = a\n[access:a]\n" A, 1, "'users' is outside any section ([access:NAME] or [role:NAME])" },
        /* keys */
        { "[access:a]\n" A "user = b\n", 6, "unknown key 'user' in [access:a]" },
        { "[role:r]\n" R "max_time = 1h\n", 6, "unknown key 'max_time' in [role:r]" },
        { "[access:a]\n" A "= x\n", 6, "unknown key '' in [access:a]" },
        { "[access:a]\n" A "action = deny\n", 6, "action is set twice (first on line 2)" },
        { "[role:r]\n" R "approvals = 1\napprovals = 2\n", 7, "approvals is set twice (first on line 6)" },
        { "[access:a]\naction = allow\nusers =\nservices = sshd\nhosts = h\n", 3, "users has an empty value" },
        { "[access:a]\naction = permit\nusers = a\nservices = sshd\nhosts = h\n", 2,
          "action must be allow or deny, got 'permit'" },
        { "[access:a]\naction = allow\nusers = a b!\nservices = sshd\nhosts = h\n", 3,
          "users: 'b!' is not a valid user name" },
        { "[access:a]\naction = allow\nusers = 1234\nservices = sshd\nhosts = h\n", 3,
          "users: '1234' is not a valid user name" },
        { "[access:a]\naction = allow\ngroups = ok bad/group\nservices = sshd\nhosts = h\n", 3,
          "groups: 'bad/group' is not a valid group name" },
        { "[access:a]\naction = allow\ngroups = *\nservices = sshd\nhosts = h\n", 3,
          "groups: '*' is not a group (users = * names every user)" },
        { "[access:a]\naction = allow\nusers = a\nservices = ssh/d\nhosts = h\n", 4,
          "services: 'ssh/d' is not a valid PAM service name" },
        { "[access:a]\naction = allow\nusers = a\nservices = sshd\nhosts = db[12\n", 5,
          "hosts: 'db[12' is not a host name pattern" },
        { "[access:a]\naction = allow\nusers = a\nservices = sshd\nhosts = db\\1\n", 5, "is not a host name pattern" },
        { "[access:a]\naction = allow\nusers = a\nservices = sshd\nhosts = db[]\n", 5, "is not a host name pattern" },
        { "[access:a]\naction = allow\nusers = a\nservices = sshd\nhosts = db1 # main\n", 5,
          "hosts: '#' is not a host name pattern" },
        { "[access:a]\naction = allow\nusers = , ,\nservices = sshd\nhosts = h\n", 3, "users has no entries" },
        { "[access:a]\naction = allow\nuids = 0 x\nservices = sshd\nhosts = h\n", 3,
          "uids: 'x' is not a uid or a range LOW-HIGH of uids (0 to 4294967294)" },
        { "[access:a]\naction = allow\nuids = 10-5\nservices = sshd\nhosts = h\n", 3, "uids: '10-5' is not a uid" },
        { "[access:a]\naction = allow\nuids = 4294967295\nservices = sshd\nhosts = h\n", 3,
          "uids: '4294967295' is not a uid" },
        { "[access:a]\naction = allow\nuids = -1\nservices = sshd\nhosts = h\n", 3, "uids: '-1' is not a uid" },
        { "[access:a]\n" A "valid_from = 2027-02-29\n", 6,
          "valid_from must be a UTC date like 2027-03-31 or 2027-03-31T18:00:00Z, got '2027-02-29'" },
        { "[access:a]\n" A "valid_until = 2027-03-31 18:00\n", 6, "valid_until must be a UTC date" },
        { "[access:a]\n" A "valid_until = 2027-03-31T24:00:00Z\n", 6, "valid_until must be a UTC date" },
        { "[access:a]\n" A "valid_until = 1969-12-31\n", 6, "valid_until must be a UTC date" },
        { "[access:a]\n" A "valid_from = 2027-01-01\nvalid_until = 2027-01-01\n", 7,
          "valid_until must be later than valid_from (line 6)" },
        { "[access:a]\n" A "description = tab\there\n", 6, "description must be at most 256 bytes of text" },
        /* sections missing what they need, reported at the header */
        { "[access:a]\nusers = a\nservices = sshd\nhosts = h\n", 1, "[access:a] needs action = allow or action = deny" },
        { "[access:a]\naction = deny\nservices = sshd\nhosts = h\n", 1,
          "[access:a] names nobody: set users =, groups = or uids =" },
        { "[access:a]\naction = deny\nusers = a\nhosts = h\n", 1, "[access:a] needs services =" },
        { "[access:a]\naction = deny\nusers = a\nservices = sshd\n", 1, "[access:a] needs hosts =" },
        { "# comment\n[access:empty]\n", 2, "[access:empty] needs action" },
        { "[role:r]\neligible_groups = e\napprover_groups = ap\nhosts = h\n", 1, "[role:r] needs grant_group =" },
        { "[role:r]\ngrant_group = gg\napprover_groups = ap\nhosts = h\n", 1, "[role:r] needs eligible_groups =" },
        { "[role:r]\ngrant_group = gg\neligible_groups = e\nhosts = h\n", 1, "[role:r] needs approver_groups =" },
        { "[role:r]\ngrant_group = gg\neligible_groups = e\napprover_groups = ap\n", 1, "[role:r] needs hosts =" },
        /* role values */
        { "[role:r]\n" R "grant_group = bad group\n", 6, "grant_group is set twice" },
        { "[role:r]\ngrant_group = bad:group\neligible_groups = e\napprover_groups = ap\nhosts = h\n", 2,
          "grant_group: 'bad:group' is not a valid group name" },
        { "[role:r]\n" R "approvals = 0\n", 6, "approvals must be a whole number from 1 to 10, got '0'" },
        { "[role:r]\n" R "approvals = 11\n", 6, "approvals must be a whole number from 1 to 10, got '11'" },
        { "[role:r]\n" R "max_duration = 45d\n", 6,
          "max_duration must be a duration like 90s, 30m, 4h or 7d from 1m to 30d, got '45d'" },
        { "[role:r]\n" R "max_duration = 4 h\n", 6, "max_duration must be a duration" },
        { "[role:r]\n" R "pending_lifetime = 59s\n", 6, "pending_lifetime must be a duration like 90s, 30m, 4h or 7d from 1m to 30d" },
        { "[role:r]\n" R "breakglass = yes\nbreakglass_max = 2d\n", 7, "breakglass_max must be a duration like 90s, 30m, 4h or 7d from 1m to 1d" },
        { "[role:r]\n" R "reason_required = sometimes\n", 6, "reason_required must be yes or no, got 'sometimes'" },
        { "[role:r]\n" R "approver_totp = maybe\n", 6, "approver_totp must be yes or no" },
        { "[role:r]\n" R "breakglass = 2\n", 6, "breakglass must be yes or no" },
        { "[role:r]\n" R "eligible_groups = gg\n", 2, "grant_group gg is also in eligible_groups" },
        { "[role:r]\n" R "breakglass_max = 30m\n", 6, "breakglass_max is set but breakglass is not yes" },
        { "[role:r]\n" R "max_duration = 1h\nbreakglass = yes\nbreakglass_max = 2h\n", 8,
          "breakglass_max is longer than max_duration" },
        { "[role:r]\n" R "[role:s]\ngrant_group = gg\neligible_groups = x\napprover_groups = ap\nhosts = h\n", 7,
          "grant_group gg is already granted by [role:r] (line 1)" },
        { "[role:r]\n" R "description = \x7f\n", 6, "description must be at most" },
};

static void test_each_error_at_its_line(void **state) {
        (void) state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                expect_error(cases[i].text, strlen(cases[i].text), cases[i].line, cases[i].message);
}

static void test_bytes(void **state) {
        static const char nul[] = "[access:a]\n" A "users = b\0c\n";
        static const char utf8[] = "[access:a]\n" A "description = caf\xc3\n";
        static const char bom[] = "\xef\xbb\xbf[access:a]\n" A;
        static const char crlf[] = "[access:a]\r\naction = allow\r\nusers = a\r\nservices = sshd\r\nhosts = h\r\n";
        struct phi_policy_errors e = { 0 };
        struct phi_policy *p = NULL;
        char *longline;

        (void) state;
        expect_error(nul, sizeof(nul) - 1, 6, "line contains a NUL byte");
        expect_error(utf8, sizeof(utf8) - 1, 6, "line is not valid UTF-8");
        /* a byte order mark and CRLF line ends are accepted */
        assert_int_equal(phi_policy_parse(bom, sizeof(bom) - 1, "t.conf", &p, &e), 0);
        phi_policy_unref(p);
        assert_int_equal(phi_policy_parse(crlf, sizeof(crlf) - 1, "t.conf", &p, &e), 0);
        phi_policy_unref(p);

        /* the longest line passes; one byte more is refused, at its line, never split */
        longline = malloc(PHI_POLICY_MAX_LINE + 256);
        assert_non_null(longline);
        strcpy(longline, "[access:a]\n" A "description = ");
        {
                size_t head = strlen("description = "), start = strlen(longline);
                memset(longline + start, 'x', PHI_POLICY_MAX_LINE - head);
                strcpy(longline + start + PHI_POLICY_MAX_LINE - head, "\n");
        }
        expect_error(longline, strlen(longline), 6, "description must be at most 256 bytes");
        {
                size_t len = strlen(longline);
                memmove(longline + len - 1, "xx\nusers = ok\n", 15);
        }
        expect_error(longline, strlen(longline), 6, "line is longer than 4096 bytes");
        free(longline);
}

/* One file with a mistake on many lines: every one is reported, in line order. */
static void test_all_errors_reported(void **state) {
        static const char text[] =
                "[access:one]\n"                 /* 1: (needs hosts) */
                "action = allow\n"               /* 2 */
                "users = a b!\n"                 /* 3: bad user */
                "services = sshd\n"              /* 4 */
                "garbage line\n"                 /* 5: syntax */
                "[wrong]\n"                      /* 6: unknown section */
                "users = x\n"                    /* 7: (ignored: its section is bad) */
                "[access:two]\n"                 /* 8 */
                "action = allow\n"               /* 9 */
                "action = deny\n"                /* 10: twice */
                "users = a\n"                    /* 11 */
                "services = sshd\n"              /* 12 */
                "hosts = db[\n"                  /* 13: bad pattern */
                "colour = blue\n"                /* 14: unknown key */
                "[role:r]\n"                     /* 15: (needs approver_groups) */
                "grant_group = g\n"              /* 16 */
                "eligible_groups = e\n"          /* 17 */
                "hosts = *\n"                    /* 18 */
                "max_duration = forever\n"       /* 19: bad duration */
                "and more garbage\n";            /* 20: syntax, again */
        static const unsigned want[] = { 1, 3, 5, 6, 10, 13, 14, 15, 19, 20 };
        struct phi_policy_errors e = { 0 };
        struct phi_policy *p = NULL;

        (void) state;
        assert_int_equal(phi_policy_parse(text, strlen(text), "/etc/phi/policy.conf", &p, &e), -EINVAL);
        assert_null(p);
        dump(&e);
        assert_int_equal(e.n, sizeof(want) / sizeof(want[0]));
        for (size_t i = 0; i < e.n; i++) {
                assert_int_equal(e.items[i].line, want[i]);
                assert_string_equal(e.items[i].file, "/etc/phi/policy.conf");
        }
        assert_true(has_error(&e, 1, "[access:one] needs hosts ="));
        assert_true(has_error(&e, 15, "[role:r] needs approver_groups ="));
        {
                char *out = NULL;
                size_t len = 0;
                FILE *f = open_memstream(&out, &len);
                assert_non_null(f);
                phi_policy_errors_print(&e, f);
                fclose(f);
                assert_non_null(strstr(out, "/etc/phi/policy.conf:3: users: 'b!' is not a valid user name\n"));
                assert_non_null(strstr(out, "/etc/phi/policy.conf:10: action is set twice (first on line 9)\n"));
                free(out);
        }
        phi_policy_errors_clear(&e);
        assert_int_equal(e.n, 0);
}

/* n complete rules (6 lines each) or roles (5 lines each) */
static char *repeat_sections(bool roles, unsigned n, size_t *ret_len) {
        size_t cap = (size_t) n * 200 + 1, len = 0;
        char *text = malloc(cap);

        assert_non_null(text);
        for (unsigned i = 0; i < n; i++)
                if (roles)
                        len += (size_t) snprintf(text + len, cap - len,
                                                 "[role:r%u]\ngrant_group = g%u\neligible_groups = e\n"
                                                 "approver_groups = a\nhosts = h\n",
                                                 i, i);
                else
                        len += (size_t) snprintf(text + len, cap - len, "[access:r%u]\n" A "#%u\n", i, i);
        *ret_len = len;
        return text;
}

static void test_bounds(void **state) {
        struct phi_policy_errors e = { 0 };
        struct phi_policy *p = NULL;
        size_t len;
        char *text;

        (void) state;
        /* the most rules and roles pass */
        text = repeat_sections(false, PHI_POLICY_MAX_RULES, &len);
        assert_int_equal(phi_policy_parse(text, len, "t.conf", &p, &e), 0);
        assert_int_equal(phi_policy_n_rules(p), PHI_POLICY_MAX_RULES);
        phi_policy_unref(p);
        free(text);
        /* one more is refused at its header line (6 lines per section) */
        text = repeat_sections(false, PHI_POLICY_MAX_RULES + 1, &len);
        expect_error(text, len, PHI_POLICY_MAX_RULES * 6 + 1, "more than 4096 [access:...] sections");
        free(text);
        text = repeat_sections(true, PHI_POLICY_MAX_ROLES + 1, &len);
        expect_error(text, len, PHI_POLICY_MAX_ROLES * 5 + 1, "more than 256 [role:...] sections");
        free(text);

        /* entries of one list in one section, repeated lines counted together */
        {
                size_t cap = 64 * 1024, n = 0;
                text = malloc(cap);
                assert_non_null(text);
                n += (size_t) snprintf(text + n, cap - n, "[access:a]\naction = allow\nservices = sshd\nhosts = h\n");
                for (int line = 0; line < 2; line++) {
                        n += (size_t) snprintf(text + n, cap - n, "users =");
                        for (int i = 0; i < 600; i++)
                                n += (size_t) snprintf(text + n, cap - n, " u%d", line * 1000 + i);
                        n += (size_t) snprintf(text + n, cap - n, "\n");
                }
                expect_error(text, n, 6, "users: more than 1024 entries in one section");
                free(text);
        }
        /* entries of the whole file */
        {
                size_t cap = PHI_POLICY_MAX_SIZE, n = 0;
                unsigned line = 0, bad_line = 0, entries = 0;
                text = malloc(cap);
                assert_non_null(text);
                /* services and hosts count as entries too: 2 per section, on lines 3 and 4 */
                for (unsigned s = 0; s < 210 && bad_line == 0; s++) {
                        n += (size_t) snprintf(text + n, cap - n, "[access:s%u]\naction = allow\nservices = sshd\nhosts = h\n", s);
                        line += 4;
                        entries += 2;
                        if (entries > PHI_POLICY_MAX_ENTRIES)
                                bad_line = line - (entries - PHI_POLICY_MAX_ENTRIES == 2 ? 1 : 0);
                        for (unsigned l = 0; l < 8; l++) {
                                n += (size_t) snprintf(text + n, cap - n, "users =");
                                for (unsigned i = 0; i < 125; i++)
                                        n += (size_t) snprintf(text + n, cap - n, " u%u", i + 125 * l);
                                n += (size_t) snprintf(text + n, cap - n, "\n");
                                line++;
                                entries += 125;
                                if (entries > PHI_POLICY_MAX_ENTRIES && bad_line == 0)
                                        bad_line = line;
                        }
                }
                assert_true(bad_line > 0);
                expect_error(text, n, bad_line, "more than 200000 list entries in the policy");
                free(text);
        }
        /* the size of the whole text, before anything is read */
        text = calloc(1, PHI_POLICY_MAX_SIZE + 1);
        assert_non_null(text);
        memset(text, '\n', PHI_POLICY_MAX_SIZE + 1);
        expect_error(text, PHI_POLICY_MAX_SIZE + 1, 0, "policy is larger than 4194304 bytes");
        assert_int_equal(phi_policy_parse(text, PHI_POLICY_MAX_SIZE, "t.conf", &p, &e), 0);
        phi_policy_unref(p);
        free(text);
}

/* What a valid file means: defaults, repeated list keys, comments. */
static void test_values(void **state) {
        static const char text[] =
                "; a comment\n"
                "[access:a]   ; after the header\n"
                "action = allow\n"
                "users = a, b\n"
                "users = c   ; a comment after a value\n"
                "services = sshd\n"
                "hosts = h\n"
                "[role:dba]\n"
                "description = database admin (PHI)\n"
                "grant_group = phi-dba\n"
                "eligible_groups = dba-oncall\n"
                "eligible_groups = dev-leads\n"
                "approver_groups = leads\n"
                "hosts = db*\n"
                "[role:min]\n"
                "grant_group = g2\neligible_groups = e\napprover_groups = ap\nhosts = *\n"
                "max_duration = 7d\npending_lifetime = 30m\nreason_required = no\napprover_totp = off\n"
                "breakglass = yes\nbreakglass_max = 90s\napprovals = 3\n";
        struct phi_policy_errors e = { 0 };
        _cleanup_policy_ struct phi_policy *p = NULL;
        const struct phi_policy_role *r;
        const char *groups[] = { "x" };
        struct phi_policy_subject c = { "c", 1000, groups, 1 };
        struct phi_policy_decision d;

        (void) state;
        assert_int_equal(phi_policy_parse(text, strlen(text), "t.conf", &p, &e), 0);
        assert_int_equal(phi_policy_check_access(p, &c, "sshd", "h", 0, &d), 0);
        assert_true(d.allowed);
        r = phi_policy_role_find(p, "dba");
        assert_non_null(r);
        assert_string_equal(r->name, "dba");
        assert_string_equal(r->description, "database admin (PHI)");
        assert_int_equal(r->line, 8);
        assert_string_equal(r->grant_group, "phi-dba");
        assert_int_equal(r->n_eligible_groups, 2);
        assert_string_equal(r->eligible_groups[1], "dev-leads");
        assert_int_equal(r->approvals, 1);               /* defaults */
        assert_int_equal(r->max_duration, 3600);
        assert_int_equal(r->pending_lifetime, 86400);
        assert_true(r->reason_required);
        assert_true(r->approver_totp);
        assert_false(r->breakglass);
        assert_int_equal(r->breakglass_max, 0);
        r = phi_policy_role_find(p, "min");
        assert_non_null(r);
        assert_null(r->description);
        assert_int_equal(r->max_duration, 7 * 86400);
        assert_int_equal(r->pending_lifetime, 1800);
        assert_false(r->reason_required);
        assert_false(r->approver_totp);
        assert_true(r->breakglass);
        assert_int_equal(r->breakglass_max, 90);
        assert_int_equal(r->approvals, 3);
        assert_null(phi_policy_role_find(p, "nope"));
        assert_ptr_equal(phi_policy_role_at(p, 1), r);
        assert_null(phi_policy_role_at(p, 2));
}

/* inih's options are process-wide in Debian's build: a policy parse leaves
 * them as it found them, so the daemon's config parser is not changed by it. */
static void test_inih_options_restored(void **state) {
        static const char text[] = "[access:a]\n" A;
        struct phi_policy_errors e = { 0 };
        struct phi_policy *p = NULL;
        int initial, max;
        bool multiline, bom;
        char *inline_prefixes;

        (void) state;
        /* inih's own defaults, whatever earlier parses in this process did */
        ini_initial_alloc = 200;
        ini_max_line = 200;
        ini_allow_multiline = true;
        ini_allow_bom = true;
        initial = ini_initial_alloc;
        max = ini_max_line;
        multiline = ini_allow_multiline;
        bom = ini_allow_bom;
        inline_prefixes = ini_inline_comment_prefixes;
        assert_int_equal(phi_policy_parse(text, strlen(text), "t.conf", &p, &e), 0);
        phi_policy_unref(p);
        assert_int_equal(ini_initial_alloc, initial);
        assert_int_equal(ini_max_line, max);
        assert_int_equal(ini_allow_multiline, multiline);
        assert_int_equal(ini_allow_bom, bom);
        assert_ptr_equal(ini_inline_comment_prefixes, inline_prefixes);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_each_error_at_its_line),
                cmocka_unit_test(test_bytes),
                cmocka_unit_test(test_all_errors_reported),
                cmocka_unit_test(test_bounds),
                cmocka_unit_test(test_values),
                cmocka_unit_test(test_inih_options_restored),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

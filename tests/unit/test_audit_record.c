/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Audit records: the one canonical encoding (sorted keys, no whitespace, the
 * one escape of each byte), the round trip through the parser, and the
 * parser's refusal of every other spelling and of every bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "phi/audit.h"

static size_t encode(const struct phi_audit_record *r, char *buf, size_t cap) {
        const char *error = NULL;
        size_t len = 0;
        int e = phi_audit_record_encode(r, buf, cap, &len, &error);
        if (e < 0)
                fprintf(stderr, "encode: %s\n", error);
        assert_int_equal(e, 0);
        return len;
}

static void test_encode(void **state) {
        char buf[PHI_AUDIT_RECORD_MAX];
        size_t len;
        (void) state;

        struct phi_audit_record r = {
                .seq = 7, .time_us = 1764670000123456, .event = "access_granted", .user = "alice",
                .actor = "bob", .role = "dba", .request_id = "r-1", .service = "sshd", .rhost = "10.0.0.1",
                .tty = "pts/0", .rule = "clinic", .reason = "ticket \"42\" \\ on-call\n", .expires = 1764673600,
                .host = "db1",
        };
        len = encode(&r, buf, sizeof(buf));
        const char *want = "{\"actor\":\"bob\",\"event\":\"access_granted\",\"expires\":1764673600,\"host\":\"db1\","
                           "\"reason\":\"ticket \\\"42\\\" \\\\ on-call\\u000a\",\"request_id\":\"r-1\","
                           "\"rhost\":\"10.0.0.1\",\"role\":\"dba\",\"rule\":\"clinic\",\"seq\":7,"
                           "\"service\":\"sshd\",\"time_us\":1764670000123456,\"tty\":\"pts/0\",\"user\":\"alice\"}";
        assert_int_equal(len, strlen(want));
        assert_memory_equal(buf, want, len);

        /* absent fields are left out; only the three required remain */
        struct phi_audit_record min = { .seq = 0, .time_us = 0, .event = "ldap_sync", .user = "" };
        len = encode(&min, buf, sizeof(buf));
        assert_int_equal(len, strlen("{\"event\":\"ldap_sync\",\"seq\":0,\"time_us\":0}"));
        assert_memory_equal(buf, "{\"event\":\"ldap_sync\",\"seq\":0,\"time_us\":0}", len);

        /* non-ASCII and DEL are written as they are, control bytes as \u00xx */
        struct phi_audit_record u = { .seq = UINT64_MAX, .time_us = 1, .event = "auth_ok",
                                      .user = "j\xc3\xb6rg\x7f\x01\x1f" };
        len = encode(&u, buf, sizeof(buf));
        const char *want_u = "{\"event\":\"auth_ok\",\"seq\":18446744073709551615,\"time_us\":1,"
                             "\"user\":\"j\xc3\xb6rg\x7f\\u0001\\u001f\"}";
        assert_int_equal(len, strlen(want_u));
        assert_memory_equal(buf, want_u, len);
}

static void test_encode_refusals(void **state) {
        char buf[PHI_AUDIT_RECORD_MAX], big[PHI_AUDIT_STRING_MAX + 2];
        const char *error = NULL;
        size_t len;
        (void) state;

        struct phi_audit_record r = { .event = NULL };
        assert_int_equal(phi_audit_record_encode(&r, buf, sizeof(buf), &len, &error), -EINVAL);
        r.event = "Auth";
        assert_int_equal(phi_audit_record_encode(&r, buf, sizeof(buf), &len, &error), -EINVAL);
        r.event = "auth ok";
        assert_int_equal(phi_audit_record_encode(&r, buf, sizeof(buf), &len, &error), -EINVAL);
        r.event = "auth_ok";
        r.user = "bad\xff";
        assert_int_equal(phi_audit_record_encode(&r, buf, sizeof(buf), &len, &error), -EINVAL);
        assert_non_null(strstr(error, "UTF-8"));
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        r.user = big;
        assert_int_equal(phi_audit_record_encode(&r, buf, sizeof(buf), &len, &error), -EINVAL);
        big[PHI_AUDIT_STRING_MAX] = '\0';
        assert_int_equal(phi_audit_record_encode(&r, buf, sizeof(buf), &len, &error), 0);
        /* too small a buffer */
        assert_int_equal(phi_audit_record_encode(&r, buf, 100, &len, &error), -E2BIG);
        /* fields at their bound in control bytes: over 8 KiB once escaped */
        char ctl[PHI_AUDIT_STRING_MAX + 1];
        memset(ctl, 0x01, PHI_AUDIT_STRING_MAX);
        ctl[PHI_AUDIT_STRING_MAX] = '\0';
        struct phi_audit_record huge = { .event = "auth_ok", .user = ctl, .actor = ctl, .role = ctl };
        assert_int_equal(phi_audit_record_encode(&huge, buf, sizeof(buf), &len, &error), -E2BIG);
        assert_non_null(strstr(error, "8192"));
}

/* A sudo use's command and target are in the record, in key order; a
 * command over its bound, or a reason over its own, is cut (never split in
 * a character) so that the record still encodes. */
static void test_command_and_clip(void **state) {
        static char cmd[PHI_AUDIT_COMMAND_MAX + 200], reason[PHI_AUDIT_STRING_MAX + 50];
        char buf[PHI_AUDIT_RECORD_MAX];
        struct phi_audit_parsed p;
        struct phi_audit_clip clip;
        const char *error = NULL;
        size_t len = 0;
        (void) state;

        struct phi_audit_record r = { .seq = 4, .time_us = 9, .event = "sudo_escalation", .user = "alice",
                                      .command = "/usr/bin/psql -c \"vacuum\"", .target = "postgres" };
        assert_int_equal(phi_audit_record_encode(&r, buf, sizeof(buf), &len, &error), 0);
        const char *want = "{\"command\":\"/usr/bin/psql -c \\\"vacuum\\\"\",\"event\":\"sudo_escalation\","
                           "\"seq\":4,\"target\":\"postgres\",\"time_us\":9,\"user\":\"alice\"}";
        assert_int_equal(len, strlen(want));
        assert_memory_equal(buf, want, len);
        assert_int_equal(phi_audit_record_parse(buf, len, &p, &error), 0);
        assert_string_equal(p.rec.command, r.command);
        assert_string_equal(p.rec.target, "postgres");

        /* 'ö' (2 bytes) across the cut: the cut moves back to its first byte */
        memset(cmd, 'a', sizeof(cmd) - 1);
        cmd[PHI_AUDIT_COMMAND_MAX - 4] = (char) 0xc3;
        cmd[PHI_AUDIT_COMMAND_MAX - 3] = (char) 0xb6;
        memset(reason, 'r', sizeof(reason) - 1);
        r.command = cmd;
        r.reason = reason;
        assert_int_equal(phi_audit_record_encode(&r, buf, sizeof(buf), &len, &error), -EINVAL);
        phi_audit_record_clip(&r, &clip);
        assert_int_equal(strlen(r.command), PHI_AUDIT_COMMAND_MAX - 4 + 3);
        assert_string_equal(r.command + PHI_AUDIT_COMMAND_MAX - 4, "...");
        assert_int_equal(strlen(r.reason), PHI_AUDIT_STRING_MAX);
        assert_string_equal(r.reason + PHI_AUDIT_STRING_MAX - 3, "...");
        assert_string_equal(r.user, "alice");   /* within its bound: untouched */
        assert_int_equal(phi_audit_record_encode(&r, buf, sizeof(buf), &len, &error), 0);
        assert_int_equal(phi_audit_record_parse(buf, len, &p, &error), 0);
        /* over its bound in a record that reached a verifier: refused */
        char over[PHI_AUDIT_COMMAND_MAX + 64];
        int n = snprintf(over, sizeof(over), "{\"command\":\"%0*d\",\"event\":\"x\",\"seq\":1,\"time_us\":1}",
                         PHI_AUDIT_COMMAND_MAX + 1, 0);
        assert_int_equal(phi_audit_record_parse(over, (size_t) n, &p, &error), -EBADMSG);
        assert_non_null(strstr(error, "bound"));
}

static void test_round_trip(void **state) {
        char buf[PHI_AUDIT_RECORD_MAX], again[PHI_AUDIT_RECORD_MAX];
        struct phi_audit_parsed p;
        const char *error = NULL;
        size_t len, len2;
        (void) state;

        struct phi_audit_record r = {
                .seq = 123, .time_us = 99, .event = "sudo_escalation", .user = "\"q\"\\\t\n",
                .reason = "\xe2\x80\x94 dash", .expires = 5,
        };
        len = encode(&r, buf, sizeof(buf));
        assert_int_equal(phi_audit_record_parse(buf, len, &p, &error), 0);
        assert_int_equal(p.rec.seq, 123);
        assert_int_equal(p.rec.time_us, 99);
        assert_int_equal(p.rec.expires, 5);
        assert_string_equal(p.rec.event, "sudo_escalation");
        assert_string_equal(p.rec.user, "\"q\"\\\t\n");
        assert_string_equal(p.rec.reason, "\xe2\x80\x94 dash");
        assert_null(p.rec.actor);
        len2 = encode(&p.rec, again, sizeof(again));
        assert_int_equal(len, len2);
        assert_memory_equal(buf, again, len);
}

static void refuse(const char *s, const char *want) {
        struct phi_audit_parsed p;
        const char *error = NULL;
        int r = phi_audit_record_parse(s, strlen(s), &p, &error);
        if (r != -EBADMSG || !error || !strstr(error, want))
                fprintf(stderr, "%s: want '%s', got %d '%s'\n", s, want, r, error ? error : "(none)");
        assert_int_equal(r, -EBADMSG);
        assert_non_null(strstr(error, want));
}

#define E "\"event\":\"auth_ok\""
#define ST "\"seq\":1,\"time_us\":2"

static void test_parse_refusals(void **state) {
        (void) state;

        refuse("{" E "," ST "}x", "after the record");
        refuse("{" E "," ST "}\n", "after the record");
        refuse(" {" E "," ST "}", "'{' expected");
        refuse("{" E ", " ST "}", "expected a string");
        refuse("{\"event\": \"auth_ok\"," ST "}", "expected a string");
        refuse("{" ST "," E "}", "byte order");
        refuse("{" E ",\"seq\":1,\"seq\":1,\"time_us\":2}", "repeated");
        refuse("{" E ",\"nope\":1," ST "}", "unknown key");
        refuse("{" E ",\"a_very_long_unknown_key\":1," ST "}", "unknown key");
        refuse("{" E ",\"seq\":01,\"time_us\":2}", "leading zero");
        refuse("{" E ",\"seq\":-1,\"time_us\":2}", "decimal number");
        refuse("{" E ",\"seq\":1.0,\"time_us\":2}", "',' or '}'");
        refuse("{" E ",\"seq\":18446744073709551616,\"time_us\":2}", "2^64-1");
        refuse("{" E ",\"seq\":\"1\",\"time_us\":2}", "decimal number");
        refuse("{" E "," ST ",\"user\":\"a\\nb\"}", "an escape other than");
        refuse("{" E "," ST ",\"user\":\"a\\u000Ab\"}", "an escape other than");
        refuse("{" E "," ST ",\"user\":\"a\\u0041b\"}", "an escape other than");       /* 'A' needs no escape */
        refuse("{" E "," ST ",\"user\":\"a\\/b\"}", "an escape other than");
        refuse("{" E "," ST ",\"user\":\"a\\u0000b\"}", "NUL");
        refuse("{" E "," ST ",\"user\":\"a\tb\"}", "not escaped");
        refuse("{" E "," ST ",\"user\":\"a\xc3\"}", "not UTF-8");
        refuse("{" E "," ST ",\"user\":\"\xed\xa0\x80\"}", "not UTF-8");                 /* a surrogate */
        refuse("{" E "," ST ",\"user\":\"\xc0\xaf\"}", "not UTF-8");                     /* overlong */
        refuse("{" E "," ST ",\"user\":\"\"}", "empty");
        refuse("{" E "," ST ",\"user\":\"abc\"", "',' or '}'");
        refuse("{" E "," ST ",\"user\":\"abc", "unterminated");
        refuse("{\"event\":\"Auth\"," ST "}", "not an event name");
        refuse("{\"event\":1," ST "}", "expected a string");
        refuse("{\"seq\":1,\"time_us\":2}", "event is missing");
        refuse("{" E ",\"time_us\":2}", "seq is missing");
        refuse("{" E ",\"seq\":1}", "time_us is missing");
        refuse("{" E ",\"expires\":0," ST "}", "expires is 0");
        refuse("{}", "expected a string");
        refuse("", "'{' expected");
        refuse("[]", "'{' expected");

        /* a text of 513 bytes, and a record over 8 KiB */
        char s[PHI_AUDIT_RECORD_MAX + 600];
        int n = snprintf(s, sizeof(s), "{" E "," ST ",\"user\":\"");
        memset(s + n, 'u', PHI_AUDIT_STRING_MAX + 1);
        snprintf(s + n + PHI_AUDIT_STRING_MAX + 1, sizeof(s) - (size_t) n - PHI_AUDIT_STRING_MAX - 1, "\"}");
        refuse(s, "longer than its bound");
        s[n + PHI_AUDIT_STRING_MAX] = '"';
        s[n + PHI_AUDIT_STRING_MAX + 1] = '}';
        s[n + PHI_AUDIT_STRING_MAX + 2] = '\0';
        struct phi_audit_parsed p;
        const char *error;
        assert_int_equal(phi_audit_record_parse(s, strlen(s), &p, &error), 0);
        assert_int_equal(strlen(p.rec.user), PHI_AUDIT_STRING_MAX);
        memset(s, ' ', sizeof(s) - 1);
        s[sizeof(s) - 1] = '\0';
        refuse(s, "longer than 8192");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_encode),
                cmocka_unit_test(test_encode_refusals),
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_parse_refusals),
                cmocka_unit_test(test_command_and_clip),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

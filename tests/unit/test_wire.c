/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "phi/wire.h"

/* Hand-built bodies: tests must not rely on the encoder to describe bad input. */
struct body {
        uint8_t b[PHI_WIRE_MAX_BODY + 16];
        size_t n;
};

static void put_be(struct body *b, uint64_t v, size_t width) {
        for (size_t i = 0; i < width; i++)
                b->b[b->n++] = (uint8_t) (v >> (8 * (width - 1 - i)));
}

static void put_header(struct body *b, uint8_t version, uint16_t type, uint16_t nfields) {
        b->n = 0;
        put_be(b, version, 1);
        put_be(b, type, 2);
        put_be(b, nfields, 2);
}

static void put_field(struct body *b, uint16_t tag, uint8_t kind, const void *v, uint16_t len) {
        put_be(b, tag, 2);
        put_be(b, kind, 1);
        put_be(b, len, 2);
        memcpy(b->b + b->n, v, len);
        b->n += len;
}

static void put_str(struct body *b, uint16_t tag, const char *s) {
        put_field(b, tag, PHI_KIND_STR, s, (uint16_t) strlen(s));
}

static int decode(const struct body *b) {
        phi_msg *m = NULL;
        int r = phi_msg_decode(b->b, b->n, &m);
        if (r == 0)
                assert_non_null(m);
        else
                assert_null(m);
        phi_msg_free(m);
        return r;
}

/* A valid AUTH body: user, code, service. */
static void valid_auth(struct body *b) {
        put_header(b, PHI_WIRE_VERSION, PHI_MSG_AUTH, 3);
        put_str(b, PHI_TAG_USER, "alice");
        put_str(b, PHI_TAG_CODE, "123456");
        put_str(b, PHI_TAG_SERVICE, "sshd");
}

static void test_round_trip(void **state) {
        _cleanup_msg_ phi_msg *m = phi_msg_new(PHI_MSG_USER_INFO);
        _cleanup_msg_ phi_msg *d = NULL;
        _cleanup_free_ uint8_t *frame = NULL;
        const char *s;
        uint64_t v;
        size_t len, groups = 0;

        (void) state;
        assert_non_null(m);
        assert_int_equal(phi_msg_put_str(m, PHI_TAG_USER, "alice"), 0);
        assert_int_equal(phi_msg_put_u64(m, PHI_TAG_UID, 10001), 0);
        assert_int_equal(phi_msg_put_u64(m, PHI_TAG_GID, UINT64_MAX), 0);
        assert_int_equal(phi_msg_put_str(m, PHI_TAG_GECOS, "Alice Ærøskøbing"), 0);
        assert_int_equal(phi_msg_put_str(m, PHI_TAG_HOME, ""), 0);
        assert_int_equal(phi_msg_put_str(m, PHI_TAG_GROUP, "staff"), 0);
        assert_int_equal(phi_msg_put_str(m, PHI_TAG_GROUP, "phi-dba"), 0);
        assert_int_equal(phi_msg_encode(m, &frame, &len), 0);

        assert_int_equal(phi_msg_decode_frame(frame, len, &d), 0);
        assert_int_equal(phi_msg_type(d), PHI_MSG_USER_INFO);
        assert_int_equal(phi_msg_get_str(d, PHI_TAG_USER, &s), 0);
        assert_string_equal(s, "alice");
        assert_int_equal(phi_msg_get_u64(d, PHI_TAG_UID, &v), 0);
        assert_int_equal(v, 10001);
        assert_int_equal(phi_msg_get_u64(d, PHI_TAG_GID, &v), 0);
        assert_true(v == UINT64_MAX);
        assert_int_equal(phi_msg_get_str(d, PHI_TAG_GECOS, &s), 0);
        assert_string_equal(s, "Alice Ærøskøbing");
        assert_int_equal(phi_msg_get_str(d, PHI_TAG_HOME, &s), 0);
        assert_string_equal(s, "");
        assert_int_equal(phi_msg_get_str(d, PHI_TAG_SHELL, &s), -ENOENT);
        assert_int_equal(phi_msg_get_u64(d, PHI_TAG_USER, &v), -EINVAL);
        for (size_t i = 0; i < phi_msg_field_count(d); i++) {
                uint16_t tag;
                const void *value;
                assert_int_equal(phi_msg_field(d, i, &tag, NULL, &value, NULL), 0);
                if (tag == PHI_TAG_GROUP)
                        assert_string_equal(value, groups++ == 0 ? "staff" : "phi-dba");
        }
        assert_int_equal(groups, 2);
}

static void test_error_round_trip(void **state) {
        _cleanup_msg_ phi_msg *m = NULL, *d = NULL;
        _cleanup_free_ uint8_t *frame = NULL;
        const char *text;
        size_t len;
        int error;

        (void) state;
        assert_int_equal(phi_msg_new_error(-EACCES, &m, "sync needs the %s group", "phi-admin"), 0);
        assert_int_equal(phi_msg_encode(m, &frame, &len), 0);
        assert_int_equal(phi_msg_decode_frame(frame, len, &d), 0);
        assert_int_equal(phi_msg_get_error(d, &error, &text), 0);
        assert_int_equal(error, -EACCES);
        assert_string_equal(text, "sync needs the phi-admin group");
}

static void test_valid_hand_built(void **state) {
        struct body b;

        (void) state;
        valid_auth(&b);
        assert_int_equal(decode(&b), 0);
}

static void test_truncated(void **state) {
        struct body b;

        (void) state;
        valid_auth(&b);
        /* Every cut inside the body is refused as truncated; none is accepted. */
        for (size_t cut = PHI_WIRE_BODY_HEADER - 1; cut < b.n; cut++) {
                struct body c = b;
                c.n = cut;
                assert_int_equal(decode(&c), cut == 0 ? -EMSGSIZE : -EBADMSG);
        }
        b.n = 3;
        assert_int_equal(decode(&b), -EBADMSG);
}

static void test_truncated_frame(void **state) {
        _cleanup_msg_ phi_msg *m = phi_msg_new(PHI_MSG_STATUS);
        _cleanup_free_ uint8_t *frame = NULL;
        phi_msg *d = NULL;
        size_t len;

        (void) state;
        assert_int_equal(phi_msg_encode(m, &frame, &len), 0);
        assert_int_equal(phi_msg_decode_frame(frame, len - 1, &d), -EBADMSG);
        assert_int_equal(phi_msg_decode_frame(frame, 2, &d), -EBADMSG);
        assert_null(d);
}

static void test_oversized_length(void **state) {
        uint8_t header[4] = { 0x00, 0x01, 0x00, 0x00 }; /* 65536 > max body */
        uint8_t zero[4] = { 0 };
        size_t len = 0;
        struct body b;

        (void) state;
        assert_int_equal(phi_wire_frame_length(header, &len), -EMSGSIZE);
        assert_int_equal(phi_wire_frame_length(zero, &len), -EMSGSIZE);
        header[1] = 0;
        header[2] = 0xff;
        header[3] = 0xfc; /* 65532 == max body */
        assert_int_equal(phi_wire_frame_length(header, &len), 0);
        assert_int_equal(len, PHI_WIRE_MAX_BODY);
        valid_auth(&b);
        assert_int_equal(phi_msg_decode(b.b, PHI_WIRE_MAX_BODY + 1, &(phi_msg *){ NULL }), -EMSGSIZE);
}

static void test_bad_version(void **state) {
        struct body b;

        (void) state;
        valid_auth(&b);
        b.b[0] = PHI_WIRE_VERSION + 1;
        assert_int_equal(decode(&b), -EPROTONOSUPPORT);
}

static void test_unknown_type(void **state) {
        struct body b;

        (void) state;
        put_header(&b, PHI_WIRE_VERSION, 0x7777, 0);
        assert_int_equal(decode(&b), -EOPNOTSUPP);
}

static void test_unknown_tag(void **state) {
        struct body b;

        (void) state;
        valid_auth(&b);
        b.b[4] = 4; /* announce a fourth field */
        put_str(&b, PHI_TAG_GECOS, "not an auth field");
        assert_int_equal(decode(&b), -ENOMSG);
        valid_auth(&b);
        b.b[4] = 4;
        put_str(&b, 999, "x");
        assert_int_equal(decode(&b), -ENOMSG);
}

static void test_embedded_nul(void **state) {
        struct body b;

        (void) state;
        put_header(&b, PHI_WIRE_VERSION, PHI_MSG_USER_SHOW, 1);
        put_field(&b, PHI_TAG_USER, PHI_KIND_STR, "root\0alice", 10);
        assert_int_equal(decode(&b), -EILSEQ);
}

static void test_invalid_utf8(void **state) {
        static const char *const bad[] = { "\xc0\xaf", "\xed\xa0\x80", "\xff", "ab\xe2\x82" };
        struct body b;

        (void) state;
        for (size_t i = 0; i < PHI_ELEMENTSOF(bad); i++) {
                put_header(&b, PHI_WIRE_VERSION, PHI_MSG_USER_SHOW, 1);
                put_str(&b, PHI_TAG_USER, bad[i]);
                assert_int_equal(decode(&b), -EILSEQ);
        }
}

static void test_missing_field(void **state) {
        struct body b;

        (void) state;
        put_header(&b, PHI_WIRE_VERSION, PHI_MSG_AUTH, 2);
        put_str(&b, PHI_TAG_USER, "alice");
        put_str(&b, PHI_TAG_SERVICE, "sshd"); /* no code */
        assert_int_equal(decode(&b), -ENODATA);
        put_header(&b, PHI_WIRE_VERSION, PHI_MSG_ERROR, 0);
        assert_int_equal(decode(&b), -ENODATA);
}

static void test_trailing_bytes(void **state) {
        _cleanup_msg_ phi_msg *m = phi_msg_new(PHI_MSG_STATUS);
        _cleanup_free_ uint8_t *frame = NULL;
        uint8_t longer[64];
        phi_msg *d = NULL;
        struct body b;
        size_t len;

        (void) state;
        valid_auth(&b);
        b.b[b.n++] = 0;
        assert_int_equal(decode(&b), -EPROTO);

        assert_int_equal(phi_msg_encode(m, &frame, &len), 0);
        memcpy(longer, frame, len);
        longer[len] = 0x42;
        assert_int_equal(phi_msg_decode_frame(longer, len + 1, &d), -EPROTO);
}

static void test_duplicate_field(void **state) {
        struct body b;

        (void) state;
        valid_auth(&b);
        b.b[4] = 4;
        put_str(&b, PHI_TAG_USER, "root");
        assert_int_equal(decode(&b), -EEXIST);
}

static void test_wrong_kind(void **state) {
        struct body b;
        uint8_t four[4] = { 0 };

        (void) state;
        put_header(&b, PHI_WIRE_VERSION, PHI_MSG_USER_SHOW, 1);
        put_field(&b, PHI_TAG_USER, PHI_KIND_U64, "\0\0\0\0\0\0\0\1", 8);
        assert_int_equal(decode(&b), -EMEDIUMTYPE);
        put_header(&b, PHI_WIRE_VERSION, PHI_MSG_SYNC, 1);
        put_field(&b, PHI_TAG_FULL, PHI_KIND_U64, four, 4);
        assert_int_equal(decode(&b), -EMEDIUMTYPE);
}

static void test_value_over_bound(void **state) {
        char code[18];
        struct body b;

        (void) state;
        memset(code, '1', 17);
        code[17] = 0;
        put_header(&b, PHI_WIRE_VERSION, PHI_MSG_AUTH, 3);
        put_str(&b, PHI_TAG_USER, "alice");
        put_str(&b, PHI_TAG_CODE, code);
        put_str(&b, PHI_TAG_SERVICE, "sshd");
        assert_int_equal(decode(&b), -EMSGSIZE);
}

static void test_too_many_fields(void **state) {
        struct body b;

        (void) state;
        put_header(&b, PHI_WIRE_VERSION, PHI_MSG_ROW, PHI_WIRE_MAX_FIELDS + 1);
        assert_int_equal(decode(&b), -E2BIG);
}

static void test_builder_refuses(void **state) {
        _cleanup_msg_ phi_msg *m = phi_msg_new(PHI_MSG_AUTH);
        _cleanup_free_ uint8_t *frame = NULL;
        size_t len;
        char big[300];

        (void) state;
        assert_null(phi_msg_new(0x7777));
        assert_int_equal(phi_msg_put_str(m, PHI_TAG_GECOS, "x"), -EINVAL);
        assert_int_equal(phi_msg_put_u64(m, PHI_TAG_USER, 1), -EINVAL);
        assert_int_equal(phi_msg_put_str(m, PHI_TAG_USER, "\xff"), -EINVAL);
        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        assert_int_equal(phi_msg_put_str(m, PHI_TAG_USER, big), -EMSGSIZE);
        assert_int_equal(phi_msg_put_str(m, PHI_TAG_USER, "alice"), 0);
        assert_int_equal(phi_msg_put_str(m, PHI_TAG_USER, "bob"), -EINVAL);
        /* Code and service missing: nothing incomplete goes on the wire. */
        assert_int_equal(phi_msg_encode(m, &frame, &len), -ENODATA);
        assert_true(phi_tag_is_secret(PHI_TAG_CODE));
        assert_false(phi_tag_is_secret(PHI_TAG_USER));
}

static void test_builder_frame_limit(void **state) {
        _cleanup_msg_ phi_msg *m = phi_msg_new(PHI_MSG_ROW);
        _cleanup_free_ uint8_t *frame = NULL;
        phi_msg *d = NULL;
        char value[4001];
        size_t len;
        int r = 0, n = 0;

        (void) state;
        memset(value, 'v', sizeof(value) - 1);
        value[sizeof(value) - 1] = 0;
        while ((r = phi_msg_put_str(m, PHI_TAG_VALUE, value)) == 0)
                n++;
        assert_int_equal(r, -EMSGSIZE);
        assert_true(n > 10);
        assert_int_equal(phi_msg_encode(m, &frame, &len), 0);
        assert_true(len <= PHI_WIRE_MAX_FRAME);
        assert_int_equal(phi_msg_decode_frame(frame, len, &d), 0);
        phi_msg_free(d);
}

/* A KEY's value keeps its type on the way through: text, number, flag. */
static void test_typed_pairs(void **state) {
        _cleanup_msg_ phi_msg *m = phi_msg_new(PHI_MSG_OK);
        _cleanup_free_ uint8_t *frame = NULL;
        _cleanup_msg_ phi_msg *d = NULL;
        const void *value;
        uint16_t tag;
        uint64_t v;
        size_t len;

        (void) state;
        assert_non_null(m);
        assert_int_equal(phi_msg_put_pair(m, "state", "live"), 0);
        assert_int_equal(phi_msg_put_number(m, "users", UINT64_C(18446744073709551615)), 0);
        assert_int_equal(phi_msg_put_flag(m, "outage", true), 0);
        assert_int_equal(phi_msg_put_flag(m, "cookie", false), 0);
        assert_int_equal(phi_msg_encode(m, &frame, &len), 0);
        assert_int_equal(phi_msg_decode_frame(frame, len, &d), 0);
        assert_int_equal(phi_msg_field_count(d), 8);
        assert_int_equal(phi_msg_field(d, 1, &tag, NULL, &value, NULL), 0);
        assert_int_equal(tag, PHI_TAG_VALUE);
        assert_string_equal(value, "live");
        assert_int_equal(phi_msg_field_u64(d, 1, &v), -EINVAL);   /* text is not a number */
        assert_int_equal(phi_msg_field(d, 3, &tag, NULL, NULL, NULL), 0);
        assert_int_equal(tag, PHI_TAG_NUMBER);
        assert_int_equal(phi_msg_field_u64(d, 3, &v), 0);
        assert_true(v == UINT64_C(18446744073709551615));
        assert_int_equal(phi_msg_field(d, 5, &tag, NULL, NULL, NULL), 0);
        assert_int_equal(tag, PHI_TAG_FLAG);
        assert_int_equal(phi_msg_field_u64(d, 5, &v), 0);
        assert_int_equal(v, 1);
        assert_int_equal(phi_msg_field_u64(d, 7, &v), 0);
        assert_int_equal(v, 0);
        assert_int_equal(phi_msg_field_u64(d, 8, &v), -ERANGE);
        /* Only where the schema has pairs: a login request takes none. */
        {
                _cleanup_msg_ phi_msg *auth = phi_msg_new(PHI_MSG_AUTH);
                assert_int_equal(phi_msg_put_number(auth, "users", 1), -EINVAL);
        }
}

/* phi_msg_room counts down to the frame limit, and a put that fits it works. */
static void test_room(void **state) {
        _cleanup_msg_ phi_msg *m = phi_msg_new(PHI_MSG_USER_INFO);
        char name[201];
        size_t before;

        (void) state;
        assert_int_equal(phi_msg_room(m), PHI_WIRE_MAX_BODY - PHI_WIRE_BODY_HEADER);
        memset(name, 'g', sizeof(name) - 1);
        name[sizeof(name) - 1] = 0;
        while (phi_msg_room(m) >= strlen(name) + PHI_WIRE_FIELD_HEADER) {
                before = phi_msg_room(m);
                assert_int_equal(phi_msg_put_str(m, PHI_TAG_GROUP, name), 0);
                assert_int_equal(phi_msg_room(m), before - strlen(name) - PHI_WIRE_FIELD_HEADER);
        }
        assert_int_equal(phi_msg_put_str(m, PHI_TAG_GROUP, name), -EMSGSIZE);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_error_round_trip),
                cmocka_unit_test(test_valid_hand_built),
                cmocka_unit_test(test_truncated),
                cmocka_unit_test(test_truncated_frame),
                cmocka_unit_test(test_oversized_length),
                cmocka_unit_test(test_bad_version),
                cmocka_unit_test(test_unknown_type),
                cmocka_unit_test(test_unknown_tag),
                cmocka_unit_test(test_embedded_nul),
                cmocka_unit_test(test_invalid_utf8),
                cmocka_unit_test(test_missing_field),
                cmocka_unit_test(test_trailing_bytes),
                cmocka_unit_test(test_duplicate_field),
                cmocka_unit_test(test_wrong_kind),
                cmocka_unit_test(test_value_over_bound),
                cmocka_unit_test(test_too_many_fields),
                cmocka_unit_test(test_builder_refuses),
                cmocka_unit_test(test_builder_frame_limit),
                cmocka_unit_test(test_typed_pairs),
                cmocka_unit_test(test_room),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The codec for the protocol described in phi/wire.h. The schema table below is
 * the single source of truth for what each message may carry. */

#include <stdarg.h>
#include <stdio.h>

#include "phi/parse.h"
#include "phi/secret.h"
#include "phi/wire.h"

enum {
        F_REQUIRED = 1 << 0,
        F_REPEATS = 1 << 1,
        F_SECRET = 1 << 2,
};

struct field_spec {
        uint16_t tag;
        uint8_t kind;
        uint8_t flags;
        uint16_t max_len;
};

struct msg_spec {
        uint16_t type;
        const char *name;
        const struct field_spec *fields;
        size_t n_fields;
};

/* Bounds are generous for real data and small enough that no single field can
 * make the daemon or a PAM module allocate much. */
#define NAME_BOUND 256
#define HOST_BOUND 255
#define TEXT_BOUND 1024
#define PATH_BOUND 4096
#define QR_BOUND 24576
/* An export line: a checkpoint line is the longest, its note escaped and its
 * proof (PHI_AUDIT_EXPORT_LINE_MAX, 38,848 bytes). */
#define LINE_BOUND 40960

static const struct field_spec ok_fields[] = {
        { PHI_TAG_KEY, PHI_KIND_STR, F_REPEATS, 64 },
        { PHI_TAG_VALUE, PHI_KIND_STR, F_REPEATS, PATH_BOUND },
        { PHI_TAG_NUMBER, PHI_KIND_U64, F_REPEATS, 8 },
        { PHI_TAG_FLAG, PHI_KIND_U64, F_REPEATS, 8 },
        { PHI_TAG_MESSAGE, PHI_KIND_STR, 0, TEXT_BOUND },
        { PHI_TAG_SESSION, PHI_KIND_STR, 0, 32 },
        { PHI_TAG_LINE, PHI_KIND_STR, F_REPEATS, LINE_BOUND },
};
static const struct field_spec error_fields[] = {
        { PHI_TAG_ERRNO, PHI_KIND_U64, F_REQUIRED, 8 },
        { PHI_TAG_MESSAGE, PHI_KIND_STR, F_REQUIRED, TEXT_BOUND },
};
static const struct field_spec row_fields[] = {
        { PHI_TAG_KEY, PHI_KIND_STR, F_REPEATS, 64 },
        { PHI_TAG_VALUE, PHI_KIND_STR, F_REPEATS, PATH_BOUND },
        { PHI_TAG_NUMBER, PHI_KIND_U64, F_REPEATS, 8 },
        { PHI_TAG_FLAG, PHI_KIND_U64, F_REPEATS, 8 },
};
static const struct field_spec sync_fields[] = {
        { PHI_TAG_FULL, PHI_KIND_U64, 0, 8 },
};
static const struct field_spec user_show_fields[] = {
        { PHI_TAG_USER, PHI_KIND_STR, F_REQUIRED, NAME_BOUND },
};
static const struct field_spec user_info_fields[] = {
        { PHI_TAG_USER, PHI_KIND_STR, F_REQUIRED, NAME_BOUND },
        { PHI_TAG_UID, PHI_KIND_U64, F_REQUIRED, 8 },
        { PHI_TAG_GID, PHI_KIND_U64, F_REQUIRED, 8 },
        { PHI_TAG_GECOS, PHI_KIND_STR, 0, TEXT_BOUND },
        { PHI_TAG_HOME, PHI_KIND_STR, 0, PATH_BOUND },
        { PHI_TAG_SHELL, PHI_KIND_STR, 0, PATH_BOUND },
        { PHI_TAG_DN, PHI_KIND_STR, 0, PATH_BOUND },
        { PHI_TAG_TOKEN, PHI_KIND_STR, 0, 32 },
        { PHI_TAG_GROUP, PHI_KIND_STR, F_REPEATS, NAME_BOUND },
        { PHI_TAG_KEY, PHI_KIND_STR, F_REPEATS, 64 },
        { PHI_TAG_VALUE, PHI_KIND_STR, F_REPEATS, PATH_BOUND },
        { PHI_TAG_NUMBER, PHI_KIND_U64, F_REPEATS, 8 },
        { PHI_TAG_FLAG, PHI_KIND_U64, F_REPEATS, 8 },
};
static const struct field_spec auth_fields[] = {
        { PHI_TAG_USER, PHI_KIND_STR, F_REQUIRED, NAME_BOUND },
        { PHI_TAG_CODE, PHI_KIND_STR, F_REQUIRED | F_SECRET, 16 },
        { PHI_TAG_SERVICE, PHI_KIND_STR, F_REQUIRED, 64 },
        { PHI_TAG_RHOST, PHI_KIND_STR, 0, HOST_BOUND },
        { PHI_TAG_TTY, PHI_KIND_STR, 0, 64 },
        { PHI_TAG_ENROLL, PHI_KIND_U64, 0, 8 },
};
static const struct field_spec account_fields[] = {
        { PHI_TAG_USER, PHI_KIND_STR, F_REQUIRED, NAME_BOUND },
        { PHI_TAG_SERVICE, PHI_KIND_STR, F_REQUIRED, 64 },
        { PHI_TAG_RHOST, PHI_KIND_STR, 0, HOST_BOUND },
        { PHI_TAG_TTY, PHI_KIND_STR, 0, 64 },
        { PHI_TAG_ELEVATE, PHI_KIND_U64, 0, 8 },
};
static const struct field_spec session_fields[] = {
        { PHI_TAG_USER, PHI_KIND_STR, F_REQUIRED, NAME_BOUND },
        { PHI_TAG_SERVICE, PHI_KIND_STR, F_REQUIRED, 64 },
        { PHI_TAG_STATE, PHI_KIND_STR, F_REQUIRED, 32 },
        { PHI_TAG_RHOST, PHI_KIND_STR, 0, HOST_BOUND },
        { PHI_TAG_TTY, PHI_KIND_STR, 0, 64 },
        { PHI_TAG_SESSION, PHI_KIND_STR, 0, 32 },
        { PHI_TAG_RUSER, PHI_KIND_STR, 0, NAME_BOUND },
        { PHI_TAG_ELEVATE, PHI_KIND_U64, 0, 8 },
};
/* A command line longer than this is cut by sudo_phi, which says so in it. */
#define COMMAND_BOUND 8192
static const struct field_spec sudo_check_fields[] = {
        { PHI_TAG_USER, PHI_KIND_STR, F_REQUIRED, NAME_BOUND },
        { PHI_TAG_STATE, PHI_KIND_STR, F_REQUIRED, 32 },
        { PHI_TAG_COMMAND, PHI_KIND_STR, F_REQUIRED, COMMAND_BOUND },
        { PHI_TAG_RUNAS, PHI_KIND_STR, 0, NAME_BOUND },
        { PHI_TAG_RUNAS_GROUP, PHI_KIND_STR, 0, NAME_BOUND },
        { PHI_TAG_CWD, PHI_KIND_STR, 0, PATH_BOUND },
        { PHI_TAG_TTY, PHI_KIND_STR, 0, 64 },
        { PHI_TAG_RHOST, PHI_KIND_STR, 0, HOST_BOUND },
        { PHI_TAG_SERVICE, PHI_KIND_STR, 0, 64 },
        { PHI_TAG_REASON, PHI_KIND_STR, 0, TEXT_BOUND },
};
static const struct field_spec sessions_fields[] = {
        { PHI_TAG_SESSION, PHI_KIND_STR, 0, 32 },
};

static const struct field_spec elev_request_fields[] = {
        { PHI_TAG_ROLE, PHI_KIND_STR, F_REQUIRED, 64 },
        { PHI_TAG_DURATION, PHI_KIND_U64, F_REQUIRED, 8 },
        { PHI_TAG_REASON, PHI_KIND_STR, 0, TEXT_BOUND },
        { PHI_TAG_START, PHI_KIND_U64, 0, 8 },
        { PHI_TAG_TICKET, PHI_KIND_STR, 0, 128 },
};
static const struct field_spec elev_decide_fields[] = {
        { PHI_TAG_REQUEST, PHI_KIND_STR, F_REQUIRED, 32 },
        { PHI_TAG_STATE, PHI_KIND_STR, F_REQUIRED, 32 },
        { PHI_TAG_REASON, PHI_KIND_STR, 0, TEXT_BOUND },
        { PHI_TAG_CODE, PHI_KIND_STR, F_SECRET, 16 },
};
static const struct field_spec elev_cancel_fields[] = {
        { PHI_TAG_REQUEST, PHI_KIND_STR, F_REQUIRED, 32 },
};
static const struct field_spec elev_revoke_fields[] = {
        { PHI_TAG_REQUEST, PHI_KIND_STR, F_REQUIRED, 32 },
        { PHI_TAG_REASON, PHI_KIND_STR, 0, TEXT_BOUND },
};
static const struct field_spec elev_list_fields[] = {
        { PHI_TAG_STATE, PHI_KIND_STR, F_REQUIRED, 32 },
        { PHI_TAG_REQUEST, PHI_KIND_STR, 0, 32 },
};
static const struct field_spec breakglass_fields[] = {
        { PHI_TAG_ROLE, PHI_KIND_STR, F_REQUIRED, 64 },
        { PHI_TAG_REASON, PHI_KIND_STR, F_REQUIRED, TEXT_BOUND },
        { PHI_TAG_CODE, PHI_KIND_STR, F_REQUIRED | F_SECRET, 16 },
        { PHI_TAG_DURATION, PHI_KIND_U64, 0, 8 },
};
static const struct field_spec review_fields[] = {
        { PHI_TAG_REQUEST, PHI_KIND_STR, F_REQUIRED, 32 },
        { PHI_TAG_REASON, PHI_KIND_STR, F_REQUIRED, TEXT_BOUND },
};

static const struct field_spec policy_check_fields[] = {
        { PHI_TAG_USER, PHI_KIND_STR, F_REQUIRED, NAME_BOUND },
        { PHI_TAG_SERVICE, PHI_KIND_STR, F_REQUIRED, 64 },
        { PHI_TAG_HOST, PHI_KIND_STR, 0, HOST_BOUND },
};

static const struct field_spec totp_issue_fields[] = {
        { PHI_TAG_USER, PHI_KIND_STR, F_REQUIRED, NAME_BOUND },
        { PHI_TAG_DURATION, PHI_KIND_U64, 0, 8 },
};
static const struct field_spec totp_secret_fields[] = {
        { PHI_TAG_USER, PHI_KIND_STR, F_REQUIRED, NAME_BOUND },
        { PHI_TAG_URI, PHI_KIND_STR, F_REQUIRED | F_SECRET, TEXT_BOUND },
        /* A URI of TEXT_BOUND bytes makes at most a version 26 code at level M:
         * 121 modules and a quiet zone of 2 either side, drawn as 63 lines of
         * 125 three-byte half blocks (23,689 bytes). */
        { PHI_TAG_QR, PHI_KIND_STR, F_SECRET, QR_BOUND },
};
static const struct field_spec totp_activate_fields[] = {
        { PHI_TAG_CODE, PHI_KIND_STR, F_REQUIRED | F_SECRET, 16 },
        { PHI_TAG_USER, PHI_KIND_STR, 0, NAME_BOUND },
        { PHI_TAG_SERVICE, PHI_KIND_STR, 0, 64 },
        { PHI_TAG_RHOST, PHI_KIND_STR, 0, HOST_BOUND },
        { PHI_TAG_TTY, PHI_KIND_STR, 0, 64 },
};
static const struct field_spec totp_reset_fields[] = {
        { PHI_TAG_USER, PHI_KIND_STR, F_REQUIRED, NAME_BOUND },
};

/* phictl audit: the filters; the cursor comes back as KEY NUMBER pairs. */
static const struct field_spec audit_query_fields[] = {
        { PHI_TAG_USER, PHI_KIND_STR, 0, NAME_BOUND },
        { PHI_TAG_ACTOR, PHI_KIND_STR, 0, NAME_BOUND },
        { PHI_TAG_ROLE, PHI_KIND_STR, 0, 64 },
        { PHI_TAG_EVENT, PHI_KIND_STR, 0, 64 },
        { PHI_TAG_HOST, PHI_KIND_STR, 0, HOST_BOUND },
        { PHI_TAG_REQUEST, PHI_KIND_STR, 0, 32 },
        { PHI_TAG_START, PHI_KIND_U64, 0, 8 },
        { PHI_TAG_UNTIL, PHI_KIND_U64, 0, 8 },
        { PHI_TAG_KEY, PHI_KIND_STR, F_REPEATS, 64 },
        { PHI_TAG_NUMBER, PHI_KIND_U64, F_REPEATS, 8 },
};
static const struct field_spec audit_export_fields[] = {
        { PHI_TAG_START, PHI_KIND_U64, 0, 8 },
        { PHI_TAG_UNTIL, PHI_KIND_U64, 0, 8 },
        { PHI_TAG_KEY, PHI_KIND_STR, F_REPEATS, 64 },
        { PHI_TAG_NUMBER, PHI_KIND_U64, F_REPEATS, 8 },
};
#define SPEC(t, n, f) { t, n, f, PHI_ELEMENTSOF(f) }
#define SPEC_EMPTY(t, n) { t, n, NULL, 0 }
static const struct msg_spec msg_specs[] = {
        SPEC(PHI_MSG_OK, "ok", ok_fields),
        SPEC(PHI_MSG_ERROR, "error", error_fields),
        SPEC(PHI_MSG_ROW, "row", row_fields),
        SPEC_EMPTY(PHI_MSG_STATUS, "status"),
        SPEC(PHI_MSG_SYNC, "sync", sync_fields),
        SPEC(PHI_MSG_USER_SHOW, "user-show", user_show_fields),
        SPEC_EMPTY(PHI_MSG_RELOAD, "reload"),
        SPEC(PHI_MSG_POLICY_CHECK, "policy-check", policy_check_fields),
        SPEC(PHI_MSG_USER_INFO, "user-info", user_info_fields),
        SPEC(PHI_MSG_AUTH, "auth", auth_fields),
        SPEC(PHI_MSG_ACCOUNT, "account", account_fields),
        SPEC(PHI_MSG_SESSION, "session", session_fields),
        SPEC(PHI_MSG_SESSIONS, "sessions", sessions_fields),
        SPEC(PHI_MSG_SUDO_CHECK, "sudo-check", sudo_check_fields),
        SPEC(PHI_MSG_ELEV_REQUEST, "request", elev_request_fields),
        SPEC(PHI_MSG_ELEV_DECIDE, "decide", elev_decide_fields),
        SPEC(PHI_MSG_ELEV_CANCEL, "cancel", elev_cancel_fields),
        SPEC(PHI_MSG_ELEV_REVOKE, "revoke", elev_revoke_fields),
        SPEC(PHI_MSG_ELEV_LIST, "requests", elev_list_fields),
        SPEC(PHI_MSG_BREAKGLASS, "breakglass", breakglass_fields),
        SPEC(PHI_MSG_REVIEW, "review", review_fields),
        SPEC(PHI_MSG_TOTP_ISSUE, "totp-issue", totp_issue_fields),
        SPEC_EMPTY(PHI_MSG_TOTP_ENROLL, "totp-enroll"),
        SPEC(PHI_MSG_TOTP_SECRET, "totp-secret", totp_secret_fields),
        SPEC(PHI_MSG_TOTP_ACTIVATE, "totp-activate", totp_activate_fields),
        SPEC(PHI_MSG_TOTP_RESET, "totp-reset", totp_reset_fields),
        /* backup: no fields; the file is the descriptor passed with it */
        SPEC_EMPTY(PHI_MSG_BACKUP, "backup"),
        SPEC(PHI_MSG_AUDIT_QUERY, "audit", audit_query_fields),
        SPEC(PHI_MSG_AUDIT_EXPORT, "audit export", audit_export_fields),
        SPEC_EMPTY(PHI_MSG_AUDIT_VERIFY, "audit-verify"),
};

static const char *const tag_names[_PHI_TAG_MAX] = {
        [PHI_TAG_ERRNO] = "errno",     [PHI_TAG_MESSAGE] = "message", [PHI_TAG_USER] = "user",
        [PHI_TAG_CODE] = "code",       [PHI_TAG_SERVICE] = "service", [PHI_TAG_RHOST] = "rhost",
        [PHI_TAG_TTY] = "tty",         [PHI_TAG_FULL] = "full",       [PHI_TAG_UID] = "uid",
        [PHI_TAG_GID] = "gid",         [PHI_TAG_GECOS] = "gecos",     [PHI_TAG_HOME] = "home",
        [PHI_TAG_SHELL] = "shell",     [PHI_TAG_GROUP] = "group",     [PHI_TAG_KEY] = "key",
        [PHI_TAG_VALUE] = "value",     [PHI_TAG_ELEVATE] = "elevate", [PHI_TAG_DN] = "dn",
        [PHI_TAG_TOKEN] = "token",     [PHI_TAG_STATE] = "state",
        [PHI_TAG_DURATION] = "duration", [PHI_TAG_URI] = "uri",
        [PHI_TAG_ENROLL] = "enroll",   [PHI_TAG_QR] = "qr",
        [PHI_TAG_NUMBER] = "number",   [PHI_TAG_FLAG] = "flag",     [PHI_TAG_HOST] = "host",
        [PHI_TAG_SESSION] = "session", [PHI_TAG_ROLE] = "role",    [PHI_TAG_REQUEST] = "request",
        [PHI_TAG_REASON] = "reason",   [PHI_TAG_START] = "start",   [PHI_TAG_TICKET] = "ticket",
        [PHI_TAG_ACTOR] = "actor",     [PHI_TAG_EVENT] = "event",   [PHI_TAG_LINE] = "line",
        [PHI_TAG_UNTIL] = "until",
        [PHI_TAG_RUNAS] = "runas",     [PHI_TAG_COMMAND] = "command", [PHI_TAG_CWD] = "cwd",
        [PHI_TAG_RUSER] = "ruser",     [PHI_TAG_RUNAS_GROUP] = "runas-group",
};

/* One bit per tag records which non-repeating tags were seen. */
_Static_assert(_PHI_TAG_MAX <= 64, "tag set must fit the seen-mask");

struct field {
        uint16_t tag;
        uint8_t kind;
        uint16_t len;
        size_t offset; /* into data; STR values are followed by a NUL there */
};

struct phi_msg {
        const struct msg_spec *spec;
        struct field *fields;
        size_t n_fields, cap_fields;
        uint8_t *data;
        size_t data_len, data_cap;
        size_t body_len; /* encoded size so far, to hold the frame limit while building */
        uint64_t seen;
};

static const struct msg_spec *spec_find(uint16_t type) {
        for (size_t i = 0; i < PHI_ELEMENTSOF(msg_specs); i++)
                if (msg_specs[i].type == type)
                        return &msg_specs[i];
        return NULL;
}

static const struct field_spec *field_spec_find(const struct msg_spec *spec, uint16_t tag) {
        for (size_t i = 0; i < spec->n_fields; i++)
                if (spec->fields[i].tag == tag)
                        return &spec->fields[i];
        return NULL;
}

const char *phi_msg_type_name(uint16_t type) {
        const struct msg_spec *s = spec_find(type);
        return s ? s->name : NULL;
}

const char *phi_tag_name(uint16_t tag) {
        return tag < _PHI_TAG_MAX ? tag_names[tag] : NULL;
}

bool phi_tag_is_secret(uint16_t tag) {
        for (size_t i = 0; i < PHI_ELEMENTSOF(msg_specs); i++) {
                const struct field_spec *f = field_spec_find(&msg_specs[i], tag);
                if (f && (f->flags & F_SECRET))
                        return true;
        }
        return false;
}

phi_msg *phi_msg_new(uint16_t type) {
        const struct msg_spec *spec = spec_find(type);
        phi_msg *m = NULL;

        if (spec) {
                m = calloc(1, sizeof(*m));
                if (m) {
                        m->spec = spec;
                        m->body_len = PHI_WIRE_BODY_HEADER;
                }
        }
        return m;
}

void phi_msg_free(phi_msg *m) {
        if (!m)
                return;
        /* Every message may hold a code or other secret; wiping all is cheaper than
         * deciding, and a reviewer need not check which ones do. */
        phi_secret_wipe(m->data, m->data_cap);
        free(m->data);
        free(m->fields);
        free(m);
}

uint16_t phi_msg_type(const phi_msg *m) {
        return m->spec->type;
}

/* realloc() could leave a copy of a secret behind in freed memory, so grow by hand. */
static int data_reserve(phi_msg *m, size_t extra) {
        size_t need = m->data_len + extra;
        size_t cap;
        uint8_t *p;

        if (need <= m->data_cap)
                return 0;
        cap = m->data_cap ? m->data_cap : 256;
        while (cap < need)
                cap *= 2;
        p = malloc(cap);
        if (!p)
                return -ENOMEM;
        if (m->data) {
                memcpy(p, m->data, m->data_len);
                phi_secret_wipe(m->data, m->data_cap);
                free(m->data);
        }
        m->data = p;
        m->data_cap = cap;
        return 0;
}

static int fields_reserve(phi_msg *m) {
        struct field *p;
        size_t cap;

        if (m->n_fields < m->cap_fields)
                return 0;
        cap = m->cap_fields ? m->cap_fields * 2 : 8;
        p = reallocarray(m->fields, cap, sizeof(*p));
        if (!p)
                return -ENOMEM;
        m->fields = p;
        m->cap_fields = cap;
        return 0;
}

/* Appends a field already checked against the schema. */
static int field_append(phi_msg *m, uint16_t tag, uint8_t kind, const void *value, size_t len) {
        size_t stored = len + (kind == PHI_KIND_STR ? 1 : 0);
        int r;

        if (m->n_fields >= PHI_WIRE_MAX_FIELDS)
                return -E2BIG;
        if ((r = data_reserve(m, stored)) < 0 || (r = fields_reserve(m)) < 0)
                return r;
        if (len > 0)
                memcpy(m->data + m->data_len, value, len);
        if (kind == PHI_KIND_STR)
                m->data[m->data_len + len] = 0;
        m->fields[m->n_fields++] = (struct field){
                .tag = tag, .kind = kind, .len = (uint16_t) len, .offset = m->data_len
        };
        m->data_len += stored;
        m->body_len += PHI_WIRE_FIELD_HEADER + len;
        if (tag < 64)
                m->seen |= UINT64_C(1) << tag;
        return 0;
}

static int put_checked(phi_msg *m, uint16_t tag, uint8_t kind, const void *value, size_t len) {
        const struct field_spec *f = field_spec_find(m->spec, tag);

        if (!f || f->kind != kind)
                return -EINVAL;
        if (!(f->flags & F_REPEATS) && (m->seen & (UINT64_C(1) << tag)))
                return -EINVAL;
        if (len > f->max_len || m->body_len + PHI_WIRE_FIELD_HEADER + len > PHI_WIRE_MAX_BODY)
                return -EMSGSIZE;
        return field_append(m, tag, kind, value, len);
}

int phi_msg_put_str(phi_msg *m, uint16_t tag, const char *s) {
        size_t len = strlen(s);

        if (len > UINT16_MAX)
                return -EMSGSIZE;
        if (!phi_utf8_valid(s, len))
                return -EINVAL;
        return put_checked(m, tag, PHI_KIND_STR, s, len);
}

int phi_msg_put_u64(phi_msg *m, uint16_t tag, uint64_t v) {
        uint8_t be[8];

        for (int i = 0; i < 8; i++)
                be[i] = (uint8_t) (v >> (56 - 8 * i));
        return put_checked(m, tag, PHI_KIND_U64, be, sizeof(be));
}

int phi_msg_put_bytes(phi_msg *m, uint16_t tag, const void *p, size_t n) {
        if (n > 0 && !p)
                return -EINVAL;
        return put_checked(m, tag, PHI_KIND_BYTES, p, n);
}

int phi_msg_put_pair(phi_msg *m, const char *key, const char *value) {
        int r;

        if ((r = phi_msg_put_str(m, PHI_TAG_KEY, key)) < 0 ||
            (r = phi_msg_put_str(m, PHI_TAG_VALUE, value)) < 0)
                return r;
        return 0;
}

int phi_msg_put_number(phi_msg *m, const char *key, uint64_t value) {
        int r;

        if ((r = phi_msg_put_str(m, PHI_TAG_KEY, key)) < 0 || (r = phi_msg_put_u64(m, PHI_TAG_NUMBER, value)) < 0)
                return r;
        return 0;
}

int phi_msg_put_flag(phi_msg *m, const char *key, bool value) {
        int r;

        if ((r = phi_msg_put_str(m, PHI_TAG_KEY, key)) < 0 || (r = phi_msg_put_u64(m, PHI_TAG_FLAG, value ? 1 : 0)) < 0)
                return r;
        return 0;
}

size_t phi_msg_room(const phi_msg *m) {
        size_t bytes = m->body_len < PHI_WIRE_MAX_BODY ? PHI_WIRE_MAX_BODY - m->body_len : 0;

        /* Out of fields is out of room too. */
        return m->n_fields < PHI_WIRE_MAX_FIELDS ? bytes : 0;
}

static const struct field *field_find(const phi_msg *m, uint16_t tag) {
        for (size_t i = 0; i < m->n_fields; i++)
                if (m->fields[i].tag == tag)
                        return &m->fields[i];
        return NULL;
}

static uint64_t read_be(const uint8_t *p, size_t n) {
        uint64_t v = 0;

        for (size_t i = 0; i < n; i++)
                v = (v << 8) | p[i];
        return v;
}

int phi_msg_get_str(const phi_msg *m, uint16_t tag, const char **ret) {
        const struct field *f = field_find(m, tag);

        if (!f)
                return -ENOENT;
        if (f->kind != PHI_KIND_STR)
                return -EINVAL;
        *ret = (const char *) m->data + f->offset;
        return 0;
}

int phi_msg_get_u64(const phi_msg *m, uint16_t tag, uint64_t *ret) {
        const struct field *f = field_find(m, tag);

        if (!f)
                return -ENOENT;
        if (f->kind != PHI_KIND_U64)
                return -EINVAL;
        *ret = read_be(m->data + f->offset, 8);
        return 0;
}

size_t phi_msg_field_count(const phi_msg *m) {
        return m->n_fields;
}

int phi_msg_field(const phi_msg *m, size_t index, uint16_t *ret_tag, uint8_t *ret_kind,
                  const void **ret_value, size_t *ret_len) {
        const struct field *f;

        if (index >= m->n_fields)
                return -ERANGE;
        f = &m->fields[index];
        if (ret_tag)
                *ret_tag = f->tag;
        if (ret_kind)
                *ret_kind = f->kind;
        if (ret_value)
                *ret_value = m->data + f->offset;
        if (ret_len)
                *ret_len = f->len;
        return 0;
}

int phi_msg_field_u64(const phi_msg *m, size_t index, uint64_t *ret) {
        const struct field *f;

        if (index >= m->n_fields)
                return -ERANGE;
        f = &m->fields[index];
        if (f->kind != PHI_KIND_U64 || f->len != 8)
                return -EINVAL;
        *ret = read_be(m->data + f->offset, 8);
        return 0;
}

static int required_present(const phi_msg *m) {
        for (size_t i = 0; i < m->spec->n_fields; i++) {
                const struct field_spec *f = &m->spec->fields[i];
                if ((f->flags & F_REQUIRED) && !(m->seen & (UINT64_C(1) << f->tag)))
                        return -ENODATA;
        }
        return 0;
}

static uint8_t *write_be(uint8_t *p, uint64_t v, size_t n) {
        for (size_t i = 0; i < n; i++)
                p[i] = (uint8_t) (v >> (8 * (n - 1 - i)));
        return p + n;
}

int phi_msg_encode(const phi_msg *m, uint8_t **ret_frame, size_t *ret_len) {
        size_t total = PHI_WIRE_HEADER_SIZE + m->body_len;
        uint8_t *frame, *p;
        int r;

        if ((r = required_present(m)) < 0)
                return r;
        frame = malloc(total);
        if (!frame)
                return -ENOMEM;
        p = write_be(frame, m->body_len, 4);
        p = write_be(p, PHI_WIRE_VERSION, 1);
        p = write_be(p, m->spec->type, 2);
        p = write_be(p, m->n_fields, 2);
        for (size_t i = 0; i < m->n_fields; i++) {
                const struct field *f = &m->fields[i];
                p = write_be(p, f->tag, 2);
                p = write_be(p, f->kind, 1);
                p = write_be(p, f->len, 2);
                memcpy(p, m->data + f->offset, f->len);
                p += f->len;
        }
        *ret_frame = frame;
        *ret_len = total;
        return 0;
}

int phi_wire_frame_length(const uint8_t header[PHI_WIRE_HEADER_SIZE], size_t *ret_body_len) {
        uint64_t len = read_be(header, PHI_WIRE_HEADER_SIZE);

        if (len == 0 || len > PHI_WIRE_MAX_BODY)
                return -EMSGSIZE;
        *ret_body_len = (size_t) len;
        return 0;
}

/* Checks one field's header and value against the schema; returns the spec. */
static int field_check(const phi_msg *m, uint16_t tag, uint8_t kind, const uint8_t *value,
                       size_t len) {
        const struct field_spec *f = field_spec_find(m->spec, tag);

        if (!f)
                return -ENOMSG;
        if (f->kind != kind || (kind == PHI_KIND_U64 && len != 8))
                return -EMEDIUMTYPE;
        if (len > f->max_len)
                return -EMSGSIZE;
        if (kind == PHI_KIND_STR &&
            (memchr(value, 0, len) || !phi_utf8_valid((const char *) value, len)))
                return -EILSEQ;
        if (!(f->flags & F_REPEATS) && (m->seen & (UINT64_C(1) << tag)))
                return -EEXIST;
        return 0;
}

int phi_msg_decode(const uint8_t *body, size_t len, phi_msg **ret) {
        _cleanup_msg_ phi_msg *m = NULL;
        size_t pos = PHI_WIRE_BODY_HEADER, n_fields;
        int r;

        if (!body || len == 0 || len > PHI_WIRE_MAX_BODY)
                return -EMSGSIZE;
        if (body[0] != PHI_WIRE_VERSION)
                return -EPROTONOSUPPORT;
        if (len < PHI_WIRE_BODY_HEADER)
                return -EBADMSG;
        m = phi_msg_new((uint16_t) read_be(body + 1, 2));
        if (!m)
                return spec_find((uint16_t) read_be(body + 1, 2)) ? -ENOMEM : -EOPNOTSUPP;
        n_fields = (size_t) read_be(body + 3, 2);
        if (n_fields > PHI_WIRE_MAX_FIELDS)
                return -E2BIG;

        for (size_t i = 0; i < n_fields; i++) {
                uint16_t tag;
                uint8_t kind;
                size_t flen;

                if (len - pos < PHI_WIRE_FIELD_HEADER)
                        return -EBADMSG;
                tag = (uint16_t) read_be(body + pos, 2);
                kind = body[pos + 2];
                flen = (size_t) read_be(body + pos + 3, 2);
                pos += PHI_WIRE_FIELD_HEADER;
                if (len - pos < flen)
                        return -EBADMSG;
                if ((r = field_check(m, tag, kind, body + pos, flen)) < 0 ||
                    (r = field_append(m, tag, kind, body + pos, flen)) < 0)
                        return r;
                pos += flen;
        }
        if (pos != len)
                return -EPROTO;
        if ((r = required_present(m)) < 0)
                return r;
        *ret = PHI_TAKE_PTR(m);
        return 0;
}

int phi_msg_decode_frame(const uint8_t *frame, size_t len, phi_msg **ret) {
        size_t body_len;
        int r;

        if (!frame || len < PHI_WIRE_HEADER_SIZE)
                return -EBADMSG;
        if ((r = phi_wire_frame_length(frame, &body_len)) < 0)
                return r;
        if (len - PHI_WIRE_HEADER_SIZE < body_len)
                return -EBADMSG;
        if (len - PHI_WIRE_HEADER_SIZE > body_len)
                return -EPROTO;
        return phi_msg_decode(frame + PHI_WIRE_HEADER_SIZE, body_len, ret);
}

int phi_msg_new_error(int error, phi_msg **ret, const char *fmt, ...) {
        _cleanup_msg_ phi_msg *m = phi_msg_new(PHI_MSG_ERROR);
        char text[TEXT_BOUND + 1];
        va_list ap;
        int r;

        if (!m)
                return -ENOMEM;
        va_start(ap, fmt);
        (void) vsnprintf(text, sizeof(text), fmt, ap);
        va_end(ap);
        if (!phi_utf8_valid(text, strlen(text)))
                (void) snprintf(text, sizeof(text), "%s", phi_errno_text(error));
        if ((r = phi_msg_put_u64(m, PHI_TAG_ERRNO, (uint64_t) (error < 0 ? -error : error))) < 0 ||
            (r = phi_msg_put_str(m, PHI_TAG_MESSAGE, text)) < 0)
                return r;
        *ret = PHI_TAKE_PTR(m);
        return 0;
}

int phi_msg_get_error(const phi_msg *m, int *ret_error, const char **ret_message) {
        uint64_t e;
        int r;

        if (m->spec->type != PHI_MSG_ERROR)
                return -EINVAL;
        if ((r = phi_msg_get_u64(m, PHI_TAG_ERRNO, &e)) < 0)
                return r;
        if (ret_error)
                *ret_error = (e == 0 || e > 4095) ? -EIO : -(int) e;
        if (ret_message && phi_msg_get_str(m, PHI_TAG_MESSAGE, ret_message) < 0)
                *ret_message = "unknown error";
        return 0;
}

const char *phi_wire_strerror(int error) {
        switch (error) {
        case -EMSGSIZE: return "frame or field longer than allowed";
        case -EBADMSG: return "truncated frame";
        case -EPROTONOSUPPORT: return "unsupported protocol version";
        case -EOPNOTSUPP: return "unknown message type";
        case -ENOMSG: return "field not allowed in this message";
        case -EMEDIUMTYPE: return "field has the wrong kind";
        case -EILSEQ: return "text field contains NUL or invalid UTF-8";
        case -EEXIST: return "field repeated";
        case -ENODATA: return "required field missing";
        case -EPROTO: return "trailing bytes after the message";
        case -E2BIG: return "too many fields";
        default: return phi_errno_text(error);
        }
}

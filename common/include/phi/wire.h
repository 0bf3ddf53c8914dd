/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The phi wire protocol: how pam_phi and phictl talk to phiaccessd over the
 * Unix stream socket /run/phiaccessd/socket.
 *
 * Conversation
 *   The client connects, sends one request frame, and reads reply frames until
 *   it has a final one; then either side may close. A client may send further
 *   requests on the same connection after a final reply. The daemon learns who
 *   the caller is from SO_PEERCRED, never from anything in a frame: there is no
 *   "I am user X" field that grants anything.
 *
 *   Most verbs have one reply. Listing verbs (requests, grants, audit) may send
 *   any number of PHI_MSG_ROW frames before their final reply, so a long listing
 *   never needs one frame larger than the maximum.
 *
 * Framing
 *   frame := length:u32 body[length]
 *   All integers are big-endian. 1 <= length <= PHI_WIRE_MAX_BODY. A reader
 *   that sees a larger length stops reading that connection: it cannot
 *   resynchronise, and an attacker must not make it allocate.
 *
 * Body
 *   body  := version:u8 type:u16 nfields:u16 field{nfields}
 *   field := tag:u16 kind:u8 length:u16 value[length]
 *
 *   version is PHI_WIRE_VERSION; any other value is refused.
 *   type names the message (enum phi_msg_type). Each type has a schema in
 *   wire.c: the tags it may carry, each tag's kind, whether it is required,
 *   whether it may repeat, and the longest value allowed. A body is accepted
 *   only when it matches its schema exactly: every field announced is present,
 *   no byte follows the last field, no unknown tag, no repeat of a tag that may
 *   not repeat, no required tag missing.
 *
 * Kinds
 *   PHI_KIND_STR    UTF-8 text, no NUL byte, 0 <= length <= the schema's bound.
 *                   The decoder NUL-terminates its copy.
 *   PHI_KIND_U64    exactly 8 bytes; unsigned. Times are Unix seconds,
 *                   durations are seconds, booleans are 0 or 1.
 *   PHI_KIND_BYTES  opaque bytes up to the schema's bound.
 *
 * Errors
 *   The final reply to a refused or failed request is PHI_MSG_ERROR with
 *   PHI_TAG_ERRNO (a positive errno value: EACCES not permitted for this
 *   caller, EINVAL bad argument, ENOENT no such object, EBUSY try later,
 *   EPROTO malformed request, ...) and PHI_TAG_MESSAGE, a sentence meant for a
 *   person. Clients print the message; PAM maps every error to a denial.
 *
 * Secrets
 *   Fields marked secret in the schema (a TOTP code) are wiped from the
 *   decoder's copy when the message is freed. Every message buffer is wiped
 *   on free anyway; the mark tells reviewers and debug output which fields
 *   must never be printed.
 *
 * Compatibility
 *   A new optional tag or a new type keeps PHI_WIRE_VERSION. Changing the
 *   meaning or kind of an existing tag bumps it; pam_phi, phictl and the
 *   daemon ship together in one source package and are upgraded together.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "phi/macro.h"

#define PHI_WIRE_VERSION       1
#define PHI_WIRE_HEADER_SIZE   4u     /* length:u32 */
#define PHI_WIRE_BODY_HEADER   5u     /* version:u8 type:u16 nfields:u16 */
#define PHI_WIRE_FIELD_HEADER  5u     /* tag:u16 kind:u8 length:u16 */
#define PHI_WIRE_MAX_BODY      (64u * 1024u - PHI_WIRE_HEADER_SIZE)
#define PHI_WIRE_MAX_FRAME     (PHI_WIRE_HEADER_SIZE + PHI_WIRE_MAX_BODY)
#define PHI_WIRE_MAX_FIELDS    4096u

enum phi_field_kind {
        PHI_KIND_STR = 1,
        PHI_KIND_U64 = 2,
        PHI_KIND_BYTES = 3,
};

/* Tags are global so that a field means the same thing in every message. */
enum phi_tag {
        PHI_TAG_ERRNO = 1,       /* u64: positive errno of a failure */
        PHI_TAG_MESSAGE = 2,     /* str: sentence for a person */
        PHI_TAG_USER = 3,        /* str: login name the request is about */
        PHI_TAG_CODE = 4,        /* str, secret: one-time code as typed */
        PHI_TAG_SERVICE = 5,     /* str: PAM service */
        PHI_TAG_RHOST = 6,       /* str: PAM_RHOST */
        PHI_TAG_TTY = 7,         /* str: PAM_TTY */
        PHI_TAG_FULL = 8,        /* u64 bool: full refresh */
        PHI_TAG_UID = 9,         /* u64 */
        PHI_TAG_GID = 10,        /* u64 */
        PHI_TAG_GECOS = 11,      /* str */
        PHI_TAG_HOME = 12,       /* str */
        PHI_TAG_SHELL = 13,      /* str */
        PHI_TAG_GROUP = 14,      /* str, repeats: group name */
        PHI_TAG_KEY = 15,        /* str: name of a key/value pair; pairs with VALUE */
        PHI_TAG_VALUE = 16,      /* str: value for the preceding KEY */
        PHI_TAG_ELEVATE = 17,    /* u64 bool: account check needs an active grant */
        PHI_TAG_DN = 18,         /* str: directory entry */
        PHI_TAG_TOKEN = 19,      /* str: token state (none, pending, active) */
        PHI_TAG_STATE = 20,      /* str: short machine-readable outcome */
        PHI_TAG_DURATION = 21,   /* u64: seconds (TOTP ticket lifetime) */
        PHI_TAG_URI = 22,        /* str, secret: otpauth:// URI holding a TOTP seed */
        PHI_TAG_ENROLL = 23,     /* u64 bool: this PAM stack lets an unenrolled user enrol */
        PHI_TAG_QR = 24,         /* str, secret: the URI drawn as a QR code for a terminal */
        PHI_TAG_NUMBER = 25,     /* u64: value for the preceding KEY, a count or figure */
        PHI_TAG_FLAG = 26,       /* u64 bool: value for the preceding KEY, yes (1) or no (0) */
        PHI_TAG_HOST = 27,       /* str: the host a policy question is about */
        PHI_TAG_SESSION = 28,    /* str: a session id (32 hex digits) */
        PHI_TAG_ROLE = 29,       /* str: a [role:NAME] of the policy */
        PHI_TAG_REQUEST = 30,    /* str: an elevation request id (12 hex digits) */
        PHI_TAG_REASON = 31,     /* str: why, as a person wrote it */
        PHI_TAG_START = 32,      /* u64: Unix seconds a grant is to start at; a time range starts at */
        PHI_TAG_TICKET = 33,     /* str: an outside reference (change ticket) */
        /* The audit log's queries and exports (phictl audit). */
        PHI_TAG_ACTOR = 34,      /* str: who did it (a record's actor) */
        PHI_TAG_EVENT = 35,      /* str: an event name (auth_ok, elevation_approved...) */
        PHI_TAG_LINE = 36,       /* str, repeats: an audit record, or a line of an export */
        PHI_TAG_UNTIL = 37,      /* u64: Unix seconds a time range ends at (exclusive); START begins it */
        /* 34-40: the audit messages (0x05xx). */
        PHI_TAG_RUNAS = 41,      /* str: the user a sudo command runs as */
        PHI_TAG_COMMAND = 42,    /* str: a sudo command line, control bytes escaped (sudo_phi(8)) */
        PHI_TAG_CWD = 43,        /* str: the directory a sudo command runs in */
        PHI_TAG_RUSER = 44,      /* str: PAM_RUSER, who asked (sudo: the invoking user) */
        PHI_TAG_RUNAS_GROUP = 45, /* str: the group a sudo command runs as (sudo -g) */
        _PHI_TAG_MAX,
};

enum phi_msg_type {
        /* Final replies. */
        PHI_MSG_OK = 0x0001,          /* success; optional KEY/VALUE pairs */
        PHI_MSG_ERROR = 0x0002,       /* failure: ERRNO + MESSAGE */
        PHI_MSG_ROW = 0x0003,         /* one row of a listing; KEY/VALUE pairs */

        /* Requests. */
        PHI_MSG_STATUS = 0x0100,      /* -> OK with KEY/VALUE pairs */
        PHI_MSG_SYNC = 0x0101,        /* [FULL] -> OK */
        PHI_MSG_USER_SHOW = 0x0102,   /* USER -> USER_INFO */
        PHI_MSG_USER_INFO = 0x0103,   /* reply: USER UID GID GECOS HOME SHELL DN TOKEN GROUP* */
        PHI_MSG_RELOAD = 0x0104,      /* -> OK (pairs: config, policy) | ERROR when either is refused */
        PHI_MSG_POLICY_CHECK = 0x0105, /* USER SERVICE [HOST] -> OK (pairs: allowed, rule, reason,
                                        * refusal, host, service) */
        PHI_MSG_SESSIONS = 0x0110,    /* [SESSION after] -> OK (pairs per session, each starting
                                       * with "session"; flag "more", then ask again after the last) */
        /* phictl backup: the file to write comes with the request as a descriptor
         * (SCM_RIGHTS: exactly one, on this type only; the daemon cannot open
         * the caller's paths). -> OK (pairs: bytes, schema_version, counts,
         * integrity, taken_at) */
        PHI_MSG_BACKUP = 0x0106,
        PHI_MSG_AUTH = 0x0200,        /* USER CODE SERVICE [RHOST] [TTY] [ENROLL] -> OK | ERROR
                                       * | TOTP_SECRET (enrolment at login) */
        PHI_MSG_ACCOUNT = 0x0201,     /* USER SERVICE [RHOST] [TTY] [ELEVATE] -> OK | ERROR */
        PHI_MSG_SESSION = 0x0202,     /* USER SERVICE STATE(open|close) [RHOST] [TTY] [SESSION]
                                       * [RUSER] [ELEVATE] -> OK (open: SESSION, the new id); ELEVATE
                                       * (sudo's stack) ties the session to RUSER's active grant,
                                       * and the daemon ends it when the grant ends */

        /* sudo_phi, the sudo plugin, on the PAM socket (root only). STATE is
         * check (the approval plugin: may USER run COMMAND now?), accept,
         * reject or error (the audit plugin: what sudo did; REASON is sudo's
         * message). check and accept are refused (EACCES) unless USER holds
         * an active grant covering this host. */
        PHI_MSG_SUDO_CHECK = 0x0600,  /* USER STATE COMMAND [RUNAS] [RUNAS_GROUP] [CWD] [TTY] [RHOST]
                                       * [SERVICE] [REASON] -> OK (pairs: role, request) | ERROR */

        /* Just-in-time elevation (phictl request ...). The caller is the
         * requester, the approver or the admin, known by SO_PEERCRED. */
        PHI_MSG_ELEV_REQUEST = 0x0400,  /* ROLE DURATION [REASON] [START] [TICKET] -> OK (pairs) */
        PHI_MSG_ELEV_DECIDE = 0x0401,   /* REQUEST STATE(approve|deny) [REASON] [CODE] -> OK (pairs) */
        PHI_MSG_ELEV_CANCEL = 0x0402,   /* REQUEST -> OK */
        PHI_MSG_ELEV_REVOKE = 0x0403,   /* REQUEST [REASON] -> OK */
        PHI_MSG_ELEV_LIST = 0x0404,     /* STATE(pending|mine|all|grants) [REQUEST after] -> OK (pairs
                                         * per request, each starting with "id"; flag "more") */
        PHI_MSG_BREAKGLASS = 0x0405,    /* ROLE REASON CODE [DURATION] -> OK (pairs) */
        PHI_MSG_REVIEW = 0x0406,        /* REQUEST REASON(the note) -> OK */

        /* The audit log, for the auditor group (phictl audit). Both page: the
         * reply says where to go on (NUMBER pairs), the next request gives
         * those pairs back (KEY NUMBER in the request). */
        PHI_MSG_AUDIT_QUERY = 0x0500,   /* [USER] [ACTOR] [ROLE] [EVENT] [HOST] [REQUEST] [START] [UNTIL]
                                         * [KEY NUMBER: next] -> OK (LINE per record, pairs "mismatch"
                                         * per row whose columns disagree with its record; NUMBER next,
                                         * FLAG more) */
        PHI_MSG_AUDIT_EXPORT = 0x0501,  /* [START] [UNTIL] [KEY NUMBER: next, end] -> OK (LINE per export
                                         * line; NUMBER first, next, end; FLAG more; or FLAG retry while
                                         * no checkpoint covers the export's end yet) */

        /* TOTP enrolment (phictl totp ...). The caller of ENROLL and ACTIVATE is the
         * user enrolling, known by SO_PEERCRED; ISSUE and RESET are admin verbs. */
        PHI_MSG_TOTP_ISSUE = 0x0300,    /* USER [DURATION] -> OK (pairs: user, expires) */
        PHI_MSG_TOTP_ENROLL = 0x0301,   /* (caller's ticket) -> TOTP_SECRET: a new pending token */
        PHI_MSG_TOTP_SECRET = 0x0302,   /* reply: USER URI [QR] */
        PHI_MSG_TOTP_ACTIVATE = 0x0303, /* CODE -> OK: the pending token becomes active; on the
                                         * PAM socket also USER SERVICE [RHOST] [TTY] */
        PHI_MSG_TOTP_RESET = 0x0304,    /* USER -> OK: the user's tokens and ticket removed */

        /* phictl audit verify (no FILE): the daemon checks its stored log
         * against its checkpoints and the journal's; answered when done.
         * -> OK (pairs: verified, outcome, [bad_seq],
         * [error], records, checkpoints, journal_checkpoints, ...) */
        PHI_MSG_AUDIT_VERIFY = 0x0502,
};

/* A decoded or to-be-encoded message. Opaque; see phi_msg_new(). */
typedef struct phi_msg phi_msg;

/* Human name of a type ("status", "auth"...) or NULL if unknown. */
const char *phi_msg_type_name(uint16_t type);
/* Human name of a tag ("user", "code"...) or NULL if unknown. */
const char *phi_tag_name(uint16_t tag);
/* True when the schema marks the tag secret in any message. */
bool phi_tag_is_secret(uint16_t tag);

/* Allocates an empty message of a known type; NULL on ENOMEM or unknown type. */
phi_msg *phi_msg_new(uint16_t type) _phi_warn_unused_;
/* Wipes and frees; accepts NULL. */
void phi_msg_free(phi_msg *m);
PHI_DEFINE_TRIVIAL_CLEANUP_FUNC(phi_msg *, phi_msg_free);
#define _cleanup_msg_ _cleanup_(phi_msg_freep)

uint16_t phi_msg_type(const phi_msg *m) _phi_nonnull_;

/* Builders. Return 0, or -EINVAL (tag not in this type's schema, wrong kind,
 * repeat of a non-repeating tag, NUL in a string), -EMSGSIZE (over the
 * schema's bound or the frame limit), -ENOMEM. */
int phi_msg_put_str(phi_msg *m, uint16_t tag, const char *s) _phi_warn_unused_ _phi_nonnull_;
int phi_msg_put_u64(phi_msg *m, uint16_t tag, uint64_t v) _phi_warn_unused_ _phi_nonnull_;
int phi_msg_put_bytes(phi_msg *m, uint16_t tag, const void *p, size_t n) _phi_warn_unused_
        _phi_nonnull_args_(1);
/* Convenience: one KEY field followed by one VALUE field. A KEY is followed
 * by exactly one VALUE (text), NUMBER or FLAG, so that clients print each
 * with its type (phictl --json: string, number, boolean). */
int phi_msg_put_pair(phi_msg *m, const char *key, const char *value) _phi_warn_unused_
        _phi_nonnull_;
int phi_msg_put_number(phi_msg *m, const char *key, uint64_t value) _phi_warn_unused_ _phi_nonnull_;
int phi_msg_put_flag(phi_msg *m, const char *key, bool value) _phi_warn_unused_ _phi_nonnull_;
/* Bytes the body can still take before the frame limit: a builder that adds
 * a long list keeps room for what follows it. */
size_t phi_msg_room(const phi_msg *m) _phi_nonnull_;

/* Getters: 0 and *ret set, -ENOENT if absent, -EINVAL if the tag has another kind.
 * Strings point into the message and live as long as it does. */
int phi_msg_get_str(const phi_msg *m, uint16_t tag, const char **ret) _phi_warn_unused_
        _phi_nonnull_;
int phi_msg_get_u64(const phi_msg *m, uint16_t tag, uint64_t *ret) _phi_warn_unused_
        _phi_nonnull_;

/* Fields in wire order, for repeated tags and generic printing. */
size_t phi_msg_field_count(const phi_msg *m) _phi_nonnull_;
/* index < field_count; any out pointer may be NULL. For STR, *ret_value is NUL-terminated. */
int phi_msg_field(const phi_msg *m, size_t index, uint16_t *ret_tag, uint8_t *ret_kind,
                  const void **ret_value, size_t *ret_len) _phi_nonnull_args_(1);

/* The value of a U64 field by index; -EINVAL if the field is not U64. */
int phi_msg_field_u64(const phi_msg *m, size_t index, uint64_t *ret) _phi_warn_unused_ _phi_nonnull_;

/* Encodes a whole frame (length prefix included) into a new buffer the caller frees with
 * free(); required fields are checked here (-ENODATA if one is missing). */
int phi_msg_encode(const phi_msg *m, uint8_t **ret_frame, size_t *ret_len) _phi_warn_unused_
        _phi_nonnull_;

/* Reads the length prefix of a frame: 0 and *ret_body_len, -EMSGSIZE when it is 0 or
 * over PHI_WIRE_MAX_BODY. */
int phi_wire_frame_length(const uint8_t header[PHI_WIRE_HEADER_SIZE], size_t *ret_body_len)
        _phi_warn_unused_ _phi_nonnull_;

/*
 * Decodes exactly one body (without its length prefix) into a new message.
 * Errors, each for one kind of malformed input:
 *   -EMSGSIZE         body empty or longer than PHI_WIRE_MAX_BODY; a value over its bound
 *   -EBADMSG          truncated: a header or value runs past the end of the body
 *   -EPROTONOSUPPORT  version is not PHI_WIRE_VERSION
 *   -EOPNOTSUPP       unknown message type
 *   -ENOMSG           a tag this type's schema does not have
 *   -EMEDIUMTYPE      a field's kind differs from the schema's, or a U64 not 8 bytes long
 *   -EILSEQ           a NUL byte or invalid UTF-8 inside a string
 *   -EEXIST           a non-repeating tag given twice
 *   -ENODATA          a required tag missing
 *   -EPROTO           bytes left after the last announced field
 *   -E2BIG            more than PHI_WIRE_MAX_FIELDS fields
 *   -ENOMEM
 */
int phi_msg_decode(const uint8_t *body, size_t len, phi_msg **ret) _phi_warn_unused_
        _phi_nonnull_args_(3);

/* Decodes a whole frame held in one buffer: the prefix must match len exactly
 * (-EBADMSG when shorter, -EPROTO when bytes follow the frame). */
int phi_msg_decode_frame(const uint8_t *frame, size_t len, phi_msg **ret) _phi_warn_unused_
        _phi_nonnull_args_(3);

/* Builds PHI_MSG_ERROR from a negative errno and a printf-style message. */
int phi_msg_new_error(int error, phi_msg **ret, const char *fmt, ...) _phi_warn_unused_
        _phi_printf_(3, 4);

/* For an ERROR message: *ret_error as a negative errno and *ret_message; otherwise -EINVAL. */
int phi_msg_get_error(const phi_msg *m, int *ret_error, const char **ret_message) _phi_nonnull_args_(1);

/* A sentence for a wire decode error code, for logs and phictl. */
const char *phi_wire_strerror(int error);

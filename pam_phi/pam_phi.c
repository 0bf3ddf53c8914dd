/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pam_phi: the PAM face of phiaccessd. A thin client: it gathers the PAM items,
 * asks the daemon over the socket, and obeys. It holds no secret and no policy.
 *
 * Fail closed: every path that is not an explicit "yes" from the daemon returns a
 * denial (PAM_AUTHINFO_UNAVAIL when the daemon cannot be asked, PAM_PERM_DENIED
 * or PAM_AUTH_ERR otherwise), never PAM_SUCCESS and never PAM_IGNORE, so that a
 * stack written with "sufficient" or "[default=ignore]" cannot fall through.
 *
 * Security events (auth_ok, auth_fail, ...) are journaled by the daemon, which
 * knows why a code failed; this module logs only its own trouble (pam_syslog),
 * and with "debug" a trace of what it does -- never a code or a password.
 */

#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <syslog.h>

#include "phi/authtok.h"
#include "phi/client.h"
#include "phi/macro.h"
#include "phi/parse.h"
#include "phi/secret.h"

#define CODE_PROMPT "Verification code: "
#define ENROLL_TRIES 3
/* pam_set_data() key of the session id, from open to close. */
#define PHI_PAM_SESSION_DATA "phi_session_id"

struct pam_phi_options {
        const char *socket_path;
        int timeout_ms;
        unsigned digits;
        bool debug;
        bool combined;
        bool openvpn;
        bool elevate;
        bool enroll;
};

/* Options come from the stack file (root-owned), but a typo must still be loud:
 * an unknown option is an error, not silently ignored. */
static int phi_pam_parse_options(pam_handle_t *pamh, int argc, const char **argv,
                                 struct pam_phi_options *ret) {
        struct pam_phi_options o = {
                .socket_path = PHI_PAM_SOCKET_PATH,
                .timeout_ms = PHI_CLIENT_DEFAULT_TIMEOUT_MS,
                .digits = 6,
        };
        int r = 0;

        for (int i = 0; i < argc && r == 0; i++) {
                const char *a = argv[i];
                uint64_t v;

                if (strncmp(a, "timeout=", 8) == 0) {
                        if (phi_parse_u64(a + 8, 1, 60, &v) < 0) {
                                pam_syslog(pamh, LOG_ERR, "bad option '%s': seconds from 1 to 60", a);
                                r = -EINVAL;
                        } else
                                o.timeout_ms = (int) v * 1000;
                } else if (strncmp(a, "digits=", 7) == 0) {
                        if (phi_parse_u64(a + 7, 6, 8, &v) < 0 || v == 7) {
                                pam_syslog(pamh, LOG_ERR, "bad option '%s': 6 or 8", a);
                                r = -EINVAL;
                        } else
                                o.digits = (unsigned) v;
                } else if (strncmp(a, "socket=", 7) == 0 && a[7] == '/')
                        o.socket_path = a + 7;
                else if (strcmp(a, "debug") == 0)
                        o.debug = true;
                else if (strcmp(a, "combined") == 0)
                        o.combined = true;
                else if (strcmp(a, "openvpn") == 0)
                        o.openvpn = true;
                else if (strcmp(a, "elevate") == 0)
                        o.elevate = true;
                else if (strcmp(a, "enroll") == 0)
                        o.enroll = true;
                else {
                        pam_syslog(pamh, LOG_ERR, "unknown option '%s'", a);
                        r = -EINVAL;
                }
        }
        if (r == 0 && o.combined && o.openvpn) {
                pam_syslog(pamh, LOG_ERR, "options 'combined' and 'openvpn' exclude each other");
                r = -EINVAL;
        }
        /* A one-field VPN client could not show the QR code, nor ask for a second code. */
        if (r == 0 && o.enroll && (o.combined || o.openvpn)) {
                pam_syslog(pamh, LOG_ERR, "option 'enroll' needs the code prompt: not with 'combined' or 'openvpn'");
                r = -EINVAL;
        }
        if (r == 0)
                *ret = o;
        return r;
}

/* The user as PAM knows it, if it is a name the directory could hold at all. */
static int phi_pam_user(pam_handle_t *pamh, const char **ret) {
        const char *user = NULL;

        if (pam_get_user(pamh, &user, NULL) != PAM_SUCCESS || !user)
                return -ENOENT;
        if (!phi_name_valid(user))
                return -EINVAL;
        *ret = user;
        return 0;
}

/* Adds SERVICE, RHOST and TTY when PAM has them. A value the schema refuses
 * (too long, not UTF-8) fails the request: a shortened RHOST in an audit
 * record would be worse than a denial. */
static int phi_pam_put_items(pam_handle_t *pamh, phi_msg *m, bool service_required) {
        static const struct {
                int item;
                uint16_t tag;
        } items[] = {
                { PAM_SERVICE, PHI_TAG_SERVICE },
                { PAM_RHOST, PHI_TAG_RHOST },
                { PAM_TTY, PHI_TAG_TTY },
        };
        int r;

        for (size_t i = 0; i < PHI_ELEMENTSOF(items); i++) {
                const void *v = NULL;

                if (pam_get_item(pamh, items[i].item, &v) != PAM_SUCCESS || !v || !*(const char *) v) {
                        if (items[i].item == PAM_SERVICE && service_required)
                                return -ENODATA;
                        continue;
                }
                if ((r = phi_msg_put_str(m, items[i].tag, v)) < 0)
                        return r;
        }
        return 0;
}

/*
 * One request, one final reply. 0 when the daemon said OK, or answered with
 * the reply type `other` (then in *ret_other, which may hold a secret: freed
 * with phi_msg_free, which wipes); -EACCES when it refused (the only errno
 * that means "no" rather than "could not decide"); any other negative errno
 * when the daemon could not be asked or answered nonsense. The request is
 * freed (and so wiped) by the caller.
 */
static int phi_pam_exchange(pam_handle_t *pamh, const struct pam_phi_options *o, const phi_msg *req,
                            uint16_t other, phi_msg **ret_other) {
        _cleanup_client_ phi_client *c = NULL;
        _cleanup_msg_ phi_msg *reply = NULL;
        const char *message = NULL;
        int r, error;

        r = phi_client_connect(o->socket_path, o->timeout_ms, &c);
        if (r < 0) {
                pam_syslog(pamh, LOG_ERR, "cannot reach phiaccessd at %s: %s", o->socket_path,
                           phi_client_strerror(r));
                return r;
        }
        r = phi_client_call(c, req, &reply);
        if (r < 0) {
                pam_syslog(pamh, LOG_ERR, "no valid answer from phiaccessd: %s", phi_wire_strerror(r));
                return r;
        }
        /* First, so that `other` may be OK itself (a session's id comes in one). */
        if (ret_other && phi_msg_type(reply) == other) {
                *ret_other = PHI_TAKE_PTR(reply);
                return 0;
        }
        if (phi_msg_type(reply) == PHI_MSG_OK)
                return 0;
        if (phi_msg_get_error(reply, &error, &message) < 0) {
                pam_syslog(pamh, LOG_ERR, "unexpected %s reply from phiaccessd",
                           phi_msg_type_name(phi_msg_type(reply)));
                return -EPROTO;
        }
        if (error != -EACCES)
                pam_syslog(pamh, LOG_ERR, "phiaccessd could not decide: %s", message);
        else if (o->debug)
                pam_syslog(pamh, LOG_DEBUG, "phiaccessd refused: %s", message);
        return error == -EACCES ? -EACCES : (error < 0 ? error : -EPROTO);
}

static int phi_pam_call(pam_handle_t *pamh, const struct pam_phi_options *o, const phi_msg *req) {
        return phi_pam_exchange(pamh, o, req, 0, NULL);
}

/* Asks for the code. A prompt with echo off is what keyboard-interactive
 * shows as a question; nothing is ever sent as PAM_TEXT_INFO alone, since
 * sshd holds such messages back until a prompt follows. */
static int phi_pam_prompt_code(pam_handle_t *pamh, char **ret) {
        char *answer = NULL;

        if (pam_prompt(pamh, PAM_PROMPT_ECHO_OFF, &answer, "%s", CODE_PROMPT) != PAM_SUCCESS || !answer) {
                phi_secret_free_str(answer);
                return -ECANCELED;
        }
        *ret = answer;
        return 0;
}

/* The password already given (prompting for it if no module did), so that the
 * one-field modes can split it. */
static int phi_pam_authtok(pam_handle_t *pamh, const char **ret) {
        const char *tok = NULL;

        if (pam_get_authtok(pamh, PAM_AUTHTOK, &tok, NULL) != PAM_SUCCESS || !tok)
                return -ECANCELED;
        *ret = tok;
        return 0;
}

/* Finds the code for this login: from the conversation, or split off the
 * password in combined/openvpn mode, in which case the password part replaces
 * PAM_AUTHTOK for the modules that follow (use_first_pass). */
static int phi_pam_get_code(pam_handle_t *pamh, const struct pam_phi_options *o, char **ret_code) {
        _cleanup_secret_str_ char *password = NULL;
        const char *tok = NULL;
        char *code = NULL;
        int r;

        if (!o->combined && !o->openvpn)
                return phi_pam_prompt_code(pamh, ret_code);
        if ((r = phi_pam_authtok(pamh, &tok)) < 0)
                return r;
        if (o->openvpn)
                r = phi_authtok_parse_scrv1(tok, &password, &code);
        else
                r = phi_authtok_split_combined(tok, o->digits, &password, &code);
        if (r < 0)
                return r;
        if (pam_set_item(pamh, PAM_AUTHTOK, password) != PAM_SUCCESS) {
                phi_secret_free_str(code);
                return -ENOMEM;
        }
        *ret_code = code;
        return 0;
}

/*
 * Enrolment at login: the daemon answered the code with a new token for this
 * user (option enroll, [totp] enroll_at_login, a valid ticket, no active
 * token). Shows it, then asks for the first code the app makes, up to
 * ENROLL_TRIES times: 0 once the daemon has activated the token, -EACCES when
 * every code was wrong. The offer is wiped by the caller; the copies in the
 * conversation belong to the application.
 */
static int phi_pam_enroll(pam_handle_t *pamh, const struct pam_phi_options *o, const char *user,
                          const phi_msg *offer) {
        const char *uri = NULL, *qr = NULL, *named = NULL;
        int r = -EACCES;

        if (phi_msg_get_str(offer, PHI_TAG_URI, &uri) < 0 || phi_msg_get_str(offer, PHI_TAG_USER, &named) < 0 ||
            strcmp(named, user) != 0) {
                pam_syslog(pamh, LOG_ERR, "phiaccessd offered a token that is not %s's; denying", user);
                return -EPROTO;
        }
        if (phi_msg_get_str(offer, PHI_TAG_QR, &qr) < 0)
                qr = "(the daemon drew no QR code)\n";
        /* Always followed by a prompt: sshd shows text only together with one. */
        if (pam_info(pamh, "No verification token is set up for %s yet; your enrolment ticket lets you set one up now.\n"
                           "Scan this QR code with your authenticator app:\n\n%s\n"
                           "Or enter this URI in the app by hand:\n%s\n\n"
                           "Then type the code the app shows.",
                     user, qr, uri) != PAM_SUCCESS)
                return -ECANCELED;
        for (int i = 0; i < ENROLL_TRIES && r == -EACCES; i++) {
                _cleanup_secret_str_ char *code = NULL;
                _cleanup_msg_ phi_msg *req = NULL;

                if (i > 0 && pam_error(pamh, "Wrong code; check the app and try again.") != PAM_SUCCESS) {
                        r = -ECANCELED;
                        break;
                }
                if ((r = phi_pam_prompt_code(pamh, &code)) < 0)
                        break;
                if (!*code || strlen(code) > PHI_CODE_MAX) {
                        r = -EACCES;
                        continue;
                }
                req = phi_msg_new(PHI_MSG_TOTP_ACTIVATE);
                if (!req || phi_msg_put_str(req, PHI_TAG_USER, user) < 0 ||
                    phi_msg_put_str(req, PHI_TAG_CODE, code) < 0 || phi_pam_put_items(pamh, req, true) < 0) {
                        pam_syslog(pamh, LOG_ERR, "cannot build the activation request for %s", user);
                        r = -ENOMEM;
                        break;
                }
                phi_secret_free_str(PHI_TAKE_PTR(code));
                r = phi_pam_call(pamh, o, req);
        }
        if (r == 0)
                pam_syslog(pamh, LOG_NOTICE, "new TOTP token of %s activated at login", user);
        return r;
}

_phi_export_ int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        _cleanup_secret_str_ char *code = NULL;
        _cleanup_msg_ phi_msg *req = NULL, *offer = NULL;
        struct pam_phi_options o;
        const char *user = NULL;
        int r, ret = PAM_AUTHINFO_UNAVAIL;

        (void) flags;
        if (phi_pam_parse_options(pamh, argc, argv, &o) < 0)
                goto out;
        r = phi_pam_user(pamh, &user);
        if (r < 0) {
                /* No such name can be enrolled anywhere: the same answer as a wrong code. */
                if (r == -EINVAL)
                        pam_syslog(pamh, LOG_NOTICE, "user name is not valid; denying");
                ret = r == -EINVAL ? PAM_AUTH_ERR : PAM_AUTHINFO_UNAVAIL;
                goto out;
        }
        r = phi_pam_get_code(pamh, &o, &code);
        if (r < 0) {
                if (o.debug || r != -ECANCELED)
                        pam_syslog(pamh, LOG_NOTICE, "no usable code for %s: %s", user,
                                   r == -ECANCELED ? "conversation gave no answer"
                                   : o.openvpn ? "not an OpenVPN static-challenge response"
                                   : o.combined ? "password does not end in a code"
                                   : phi_errno_text(r));
                ret = r == -ENOMEM ? PAM_AUTHINFO_UNAVAIL : PAM_AUTH_ERR;
                goto out;
        }
        /* The wire refuses codes longer than any token makes; so does this. An
         * empty answer is what someone without a token yet gives: with enroll,
         * the daemon decides. */
        if ((!*code && !o.enroll) || strlen(code) > PHI_CODE_MAX) {
                ret = PAM_AUTH_ERR;
                goto out;
        }
        req = phi_msg_new(PHI_MSG_AUTH);
        if (!req || phi_msg_put_str(req, PHI_TAG_USER, user) < 0 ||
            phi_msg_put_str(req, PHI_TAG_CODE, code) < 0 ||
            phi_pam_put_items(pamh, req, true) < 0 ||
            (o.enroll && phi_msg_put_u64(req, PHI_TAG_ENROLL, 1) < 0)) {
                pam_syslog(pamh, LOG_ERR, "cannot build the request for %s", user);
                goto out;
        }
        phi_secret_free_str(PHI_TAKE_PTR(code));
        r = phi_pam_exchange(pamh, &o, req, PHI_MSG_TOTP_SECRET, o.enroll ? &offer : NULL);
        if (r == 0 && offer)
                r = phi_pam_enroll(pamh, &o, user, offer);
        ret = r == 0 ? PAM_SUCCESS : r == -EACCES || r == -ECANCELED ? PAM_AUTH_ERR : PAM_AUTHINFO_UNAVAIL;
        if (o.debug)
                pam_syslog(pamh, LOG_DEBUG, "auth for %s: %s", user, pam_strerror(pamh, ret));
out:
        return ret;
}

_phi_export_ int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        (void) pamh, (void) flags, (void) argc, (void) argv;
        /* No credentials to establish; succeeding here grants nothing by itself. */
        return PAM_SUCCESS;
}

_phi_export_ int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        _cleanup_msg_ phi_msg *req = NULL;
        struct pam_phi_options o;
        const char *user = NULL;
        int r, ret = PAM_PERM_DENIED;

        (void) flags;
        if (phi_pam_parse_options(pamh, argc, argv, &o) < 0) {
                ret = PAM_AUTHINFO_UNAVAIL;
                goto out;
        }
        if (phi_pam_user(pamh, &user) < 0)
                goto out;
        req = phi_msg_new(PHI_MSG_ACCOUNT);
        if (!req || phi_msg_put_str(req, PHI_TAG_USER, user) < 0 ||
            phi_pam_put_items(pamh, req, true) < 0 ||
            (o.elevate && phi_msg_put_u64(req, PHI_TAG_ELEVATE, 1) < 0)) {
                pam_syslog(pamh, LOG_ERR, "cannot build the request for %s", user);
                ret = PAM_AUTHINFO_UNAVAIL;
                goto out;
        }
        /* Default deny: only the daemon's OK opens the account. A daemon that
         * said no is PAM_PERM_DENIED; one that could not be asked (or could
         * not decide) is PAM_AUTHINFO_UNAVAIL, so that the log tells them
         * apart -- neither lets anyone in. */
        r = phi_pam_call(pamh, &o, req);
        ret = r == 0 ? PAM_SUCCESS : r == -EACCES ? PAM_PERM_DENIED : PAM_AUTHINFO_UNAVAIL;
        if (o.debug)
                pam_syslog(pamh, LOG_DEBUG, "account for %s: %s", user, pam_strerror(pamh, ret));
out:
        return ret;
}

/* PAM_RUSER, who asked: sudo sets it to the invoking user, whose grant a
 * session opened with elevate runs under (PAM_USER is the run-as user by
 * then). A name that could not be a user's fails the request. */
static int phi_pam_put_ruser(pam_handle_t *pamh, phi_msg *m) {
        const void *v = NULL;

        if (pam_get_item(pamh, PAM_RUSER, &v) != PAM_SUCCESS || !v || !*(const char *) v)
                return 0;
        if (!phi_name_valid(v))
                return -EINVAL;
        return phi_msg_put_str(m, PHI_TAG_RUSER, v);
}

static void phi_pam_session_id_free(pam_handle_t *pamh, void *data, int error_status) {
        (void) pamh, (void) error_status;
        free(data);
}

/*
 * The daemon records the session at open and answers with its id, kept in
 * the handle (pam_set_data) for the close, which the same process makes, and
 * put in the session's environment as PHI_SESSION_ID, so that what runs in
 * it can be matched to the journal. A session the daemon cannot record is
 * refused (PAM_SESSION_ERR): sshd and sudo then end the login, which is what
 * "every session is on record" means.
 */
static int phi_pam_session(pam_handle_t *pamh, int argc, const char **argv, bool open) {
        _cleanup_msg_ phi_msg *req = NULL, *reply = NULL;
        struct pam_phi_options o;
        const char *user = NULL, *id = NULL;
        const void *kept = NULL;
        char env[sizeof("PHI_SESSION_ID=") + 64];
        char *copy = NULL;
        int r, ret = PAM_SESSION_ERR;

        if (phi_pam_parse_options(pamh, argc, argv, &o) < 0 || phi_pam_user(pamh, &user) < 0)
                goto out;
        if (!open && (pam_get_data(pamh, PHI_PAM_SESSION_DATA, &kept) != PAM_SUCCESS || !kept)) {
                pam_syslog(pamh, LOG_NOTICE, "closing a session of %s that pam_phi did not open here", user);
                goto out;
        }
        req = phi_msg_new(PHI_MSG_SESSION);
        if (!req || phi_msg_put_str(req, PHI_TAG_USER, user) < 0 ||
            phi_msg_put_str(req, PHI_TAG_STATE, open ? "open" : "close") < 0 ||
            phi_pam_put_items(pamh, req, true) < 0 || (!open && phi_msg_put_str(req, PHI_TAG_SESSION, kept) < 0) ||
            (open && phi_pam_put_ruser(pamh, req) < 0) || (open && o.elevate && phi_msg_put_u64(req, PHI_TAG_ELEVATE, 1) < 0)) {
                pam_syslog(pamh, LOG_ERR, "cannot build the request for %s", user);
                goto out;
        }
        /* An OK reply carries the id; the exchange hands back no other type. */
        r = phi_pam_exchange(pamh, &o, req, PHI_MSG_OK, &reply);
        if (r < 0)
                goto out;
        if (!open) {
                (void) pam_set_data(pamh, PHI_PAM_SESSION_DATA, NULL, NULL);
                ret = PAM_SUCCESS;
                goto out;
        }
        if (!reply || phi_msg_get_str(reply, PHI_TAG_SESSION, &id) < 0 || strlen(id) != 32) {
                pam_syslog(pamh, LOG_ERR, "phiaccessd recorded the session of %s without an id", user);
                goto out;
        }
        copy = strdup(id);
        if (!copy || pam_set_data(pamh, PHI_PAM_SESSION_DATA, copy, phi_pam_session_id_free) != PAM_SUCCESS) {
                free(copy);
                goto out;
        }
        snprintf(env, sizeof(env), "PHI_SESSION_ID=%s", id);
        (void) pam_putenv(pamh, env);
        if (o.debug)
                pam_syslog(pamh, LOG_DEBUG, "session %s of %s opened", id, user);
        ret = PAM_SUCCESS;
out:
        return ret;
}

_phi_export_ int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        (void) flags;
        return phi_pam_session(pamh, argc, argv, true);
}

_phi_export_ int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        (void) flags;
        return phi_pam_session(pamh, argc, argv, false);
}

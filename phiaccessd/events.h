/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The PHI_EVENT values of SPEC.md and their MESSAGE_IDs (phi.catalog holds the
 * explanations journalctl -x shows). The ids are fixed forever once shipped. */

enum phi_event {
        PHI_EVENT_AUTH_OK,
        PHI_EVENT_AUTH_FAIL,
        PHI_EVENT_TOTP_REPLAY,
        PHI_EVENT_LOCKOUT,
        PHI_EVENT_ACCESS_DENIED,
        PHI_EVENT_SESSION_OPEN,
        PHI_EVENT_SESSION_CLOSE,
        PHI_EVENT_ELEVATION_REQUESTED,
        PHI_EVENT_ELEVATION_APPROVED,
        PHI_EVENT_ELEVATION_DENIED,
        PHI_EVENT_ELEVATION_EXPIRED,
        PHI_EVENT_ELEVATION_REVOKED,
        PHI_EVENT_SUDO_ESCALATION,
        PHI_EVENT_SUDO_DENIED,
        PHI_EVENT_BREAKGLASS,
        PHI_EVENT_BREAKGLASS_REVIEWED,
        PHI_EVENT_TICKET_ISSUED,
        PHI_EVENT_ENROLLED,
        PHI_EVENT_TOKEN_RESET,
        PHI_EVENT_TOKEN_REVOKED,
        PHI_EVENT_POLICY_RELOAD,
        PHI_EVENT_AUDIT_QUERY,
        PHI_EVENT_LDAP_SYNC,
        PHI_EVENT_CHECKPOINT,
        PHI_EVENT_ACCESS_GRANTED,
        PHI_EVENT_ELEVATION_CANCELLED,
        PHI_EVENT_STORE_RESTORED,
        PHI_EVENT_SESSION_ENDED,
        PHI_EVENT_STORE_UNREACHABLE,
        PHI_EVENT_STORE_RECOVERED,
        _PHI_EVENT_MAX,
};

struct phi_event_info {
        const char *name;       /* PHI_EVENT= value */
        const char *message_id; /* MESSAGE_ID= value */
};

static const struct phi_event_info phi_events[_PHI_EVENT_MAX] = {
        [PHI_EVENT_AUTH_OK] = { "auth_ok", "daa52b50d3854e5590496e546591beff" },
        [PHI_EVENT_AUTH_FAIL] = { "auth_fail", "8e7fe0bc96124c7586402ac918fe160a" },
        [PHI_EVENT_TOTP_REPLAY] = { "totp_replay", "2831e3ad85804b13b7863506aec487cd" },
        [PHI_EVENT_LOCKOUT] = { "lockout", "15bfe21adffa4ca3af7b2b79e6fd52ba" },
        [PHI_EVENT_ACCESS_DENIED] = { "access_denied", "b87f9d9e614b4157b39b351465e40405" },
        [PHI_EVENT_SESSION_OPEN] = { "session_open", "b464e10a8613414685100166fa3bec1c" },
        [PHI_EVENT_SESSION_CLOSE] = { "session_close", "92158f3ca135441bafff9cc3cc54206c" },
        [PHI_EVENT_ELEVATION_REQUESTED] = { "elevation_requested", "ea9f370c5f1d408494fa1f250dfcefda" },
        [PHI_EVENT_ELEVATION_APPROVED] = { "elevation_approved", "707b8fd1efda4c53868a302c14b50587" },
        [PHI_EVENT_ELEVATION_DENIED] = { "elevation_denied", "5f192d6dddf7430cbe8f53e4cdcdb1a7" },
        [PHI_EVENT_ELEVATION_EXPIRED] = { "elevation_expired", "e972089d11384777bd86e8a3a1c38410" },
        [PHI_EVENT_ELEVATION_REVOKED] = { "elevation_revoked", "6e8bb0124e0544e0bc7ce5c6fa2ce2c4" },
        [PHI_EVENT_SUDO_ESCALATION] = { "sudo_escalation", "225e5bcd4025424588b998221af4ff83" },
        [PHI_EVENT_SUDO_DENIED] = { "sudo_denied", "6f43afc5bc6e4729a93c2361bd4cea6f" },
        [PHI_EVENT_BREAKGLASS] = { "breakglass", "ddc98629bede44a690e7ebf4b37cad8b" },
        [PHI_EVENT_BREAKGLASS_REVIEWED] = { "breakglass_reviewed", "2a2aa7c60db841a38cc9bd639d231b77" },
        [PHI_EVENT_TICKET_ISSUED] = { "ticket_issued", "9f21b8876bec41d79cffafd91e0a5715" },
        [PHI_EVENT_ENROLLED] = { "enrolled", "ea9bfc8b48044e3a8280de656f80e9d8" },
        [PHI_EVENT_TOKEN_RESET] = { "token_reset", "0106771cb6e64512a09685305e47e1b4" },
        [PHI_EVENT_TOKEN_REVOKED] = { "token_revoked", "94a4896113bc45d9a365e24464625511" },
        [PHI_EVENT_POLICY_RELOAD] = { "policy_reload", "2e1f6648d1bb4d9784bcc6f44ab395fb" },
        [PHI_EVENT_AUDIT_QUERY] = { "audit_query", "fd17d30aa8be47b8af00223a92f59da4" },
        [PHI_EVENT_LDAP_SYNC] = { "ldap_sync", "50710b7363c14ed29f494648bd1eb9ea" },
        [PHI_EVENT_CHECKPOINT] = { "checkpoint", "9b1e2f3f99c84d81b21cc88e6dc5629a" },
        [PHI_EVENT_ACCESS_GRANTED] = { "access_granted", "30cffe775822487d99d7cdb3530d7ba9" },
        [PHI_EVENT_ELEVATION_CANCELLED] = { "elevation_cancelled", "12cc31241b2043b08d8cbf941aeabd51" },
        [PHI_EVENT_STORE_RESTORED] = { "store_restored", "c899cb0daa12446a9af3c88433359c5f" },
        [PHI_EVENT_SESSION_ENDED] = { "session_ended", "69364946378744cf8eb4299c7c7886fe" },
        [PHI_EVENT_STORE_UNREACHABLE] = { "store_unreachable", "ba6b1f14064041ea94b05b854882c2c3" },
        [PHI_EVENT_STORE_RECOVERED] = { "store_recovered", "1cffb3adc4c94ba3a66be17f3bc55ecc" },
};

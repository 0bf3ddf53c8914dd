#!/usr/bin/env bash
# TOTP two-factor at a real VPN login: an OpenVPN 2.6 server (Debian's
# openvpn, its auth-pam plugin running the PAM service "openvpn", a stack with
# pam_unix and pam_phi) and client in two network namespaces joined by a veth
# pair, TUN devices on both sides, the client answered through its management
# interface as a VPN GUI answers it. Against the real phiaccessd, with codes
# computed by oathtool and a real password checked by pam_unix. Two ways a
# VPN client sends the code:
#   - the static challenge (`static-challenge "Verification code" 1`): the
#     client sends SCRV1:base64(password):base64(code); the plugin decodes it
#     and answers pam_phi's prompt with the code (its "verification OTP" pair);
#   - one field, password followed by the code: pam_phi combined.
# In each: a right code brings the tunnel up (a ping crosses it), the same
# code again and a wrong code get AUTH_FAILED, a wrong password with a right
# code too; every outcome is journaled by the daemon with PHI_SERVICE=openvpn
# and the client's address. And pam_phi's openvpn option behind this plugin,
# which decodes SCRV1 before PAM sees it: denied, and pam_phi says why.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=totp-lib.bash
source "$(dirname "$0")/totp-lib.bash"
# shellcheck source-path=SCRIPTDIR source=openvpn-lib.bash
source "$(dirname "$0")/openvpn-lib.bash"
phi_harness_init "$@"
PAM_PHI=$PHI_BUILD_DIR/pam_phi/pam_phi.so
[ -r "$PAM_PHI" ] || phi_die "build the tree first ($PAM_PHI)"

totp_setup
totp_daemon_start
vpn_setup

event() { # CURSOR EVENT USER: the daemon's journal entries for it (waits up to 5 s)
    phi_journal_wait --timeout 5 --after "$1" SYSLOG_IDENTIFIER=phiaccessd "PHI_EVENT=$2" "PHI_USER=$3"
}
field() { # JSON FIELD
    printf '%s\n' "$1" | sed -n 1p | phi_json_field "$2"
}
daemon_events() { # CURSOR USER: how many entries the daemon journaled about USER
    phi_journal_json --after "$1" SYSLOG_IDENTIFIER=phiaccessd "PHI_USER=$2" | wc -l
}
openvpn_said() { # CURSOR: MESSAGEs of openvpn's processes (the PAM modules in them too) since CURSOR
    phi_journal_json --after "$1" SYSLOG_IDENTIFIER=openvpn | phi_json_field MESSAGE
}
# check_event EV WHAT: the event names the VPN's PAM service and the client.
check_event() {
    phi_assert_eq "$(field "$1" PHI_SERVICE)" openvpn "$2 names the PAM service openvpn"
    phi_assert_eq "$(field "$1" PHI_RHOST)" "$VPN_CLIENT_IP" "$2 names the VPN client's address"
}
expect_connected() { # WHAT SUBNET
    phi_assert_eq "$VPN_RESULT" CONNECTED "$1: the tunnel comes up"
    phi_check "$1: a ping crosses the tunnel" vpn_ping "$2"
}
expect_auth_failed() { # WHAT USER
    phi_assert_eq "$VPN_RESULT" AUTH_FAILED "$1: the client gets AUTH_FAILED"
    phi_assert_contains "$(cat "$VPN_SERVER_LOG")" "AUTH-PAM: BACKGROUND: user '$2' failed to authenticate" \
        "$1: the server's PAM plugin says the user failed"
    phi_check_fails "$1: no tunnel (no ping)" vpn_ping "$3"
}

for u in alice bob carol dave erin; do
    totp_enroll "$u"
done

# Host-access policy on the VPN service comes with pam_phi's account type
# (issue "Default-deny host access"): then every stack below gets
# "account required pam_phi.so" instead of pam_unix alone, and this test a
# case of a user with a right password and code whom the policy refuses for
# the service openvpn (AUTH_FAILED, journaled with PHI_SERVICE=openvpn).
# Until the daemon answers account requests there is nothing to test here.

# ---------------------------------------------------------------- static challenge
# The plugin splits SCRV1 itself and answers each PAM prompt by its name:
# pam_get_user's "login:", pam_unix's "Password:" and pam_phi's
# "Verification code:" (README.auth-pam: OTP is the static-challenge response).
totp_stack openvpn-static "auth requisite pam_unix.so" \
    "auth required $PAM_PHI" \
    "account required pam_unix.so"
SC_PORT=1194
SC_NET=198.51.100
vpn_server_start static "$SC_PORT" "$SC_NET" openvpn-static \
    login USERNAME password PASSWORD verification OTP

cur=$(phi_journal_cursor)
step=$(totp_fresh_step alice)
code=$(totp_code alice "$step")
vpn_login static-ok "$SC_PORT" "$SC_NET" alice "$(vpn_scrv1 "$VPN_PASSWORD" "$code")" static
phi_assert_eq "$VPN_ASKED" ">PASSWORD:Need 'Auth' username/password SC:1,Verification code" \
    "the client asks for password and the static challenge 'Verification code'"
expect_connected "static challenge, right password and code" "$SC_NET"
TOTP_LAST[alice]=$step
check_event "$(event "$cur" auth_ok alice)" "auth_ok (static challenge)"
vpn_client_stop

cur=$(phi_journal_cursor)
vpn_login static-replay "$SC_PORT" "$SC_NET" alice "$(vpn_scrv1 "$VPN_PASSWORD" "$code")" static
expect_auth_failed "static challenge, the same code again" alice "$SC_NET"
check_event "$(event "$cur" totp_replay alice)" "totp_replay (static challenge)"
vpn_client_stop

cur=$(phi_journal_cursor)
vpn_login static-wrong "$SC_PORT" "$SC_NET" alice \
    "$(vpn_scrv1 "$VPN_PASSWORD" "$(totp_code alice $((step + 7)))")" static
expect_auth_failed "static challenge, wrong code" alice "$SC_NET"
ev=$(event "$cur" auth_fail alice)
check_event "$ev" "auth_fail (static challenge)"
phi_assert_eq "$(field "$ev" PHI_REASON)" wrong_code "auth_fail says wrong_code"
vpn_client_stop

# The password first: a wrong one stops the stack before the code is asked
# for. (Another user: alice's next code may be a step away.)
cur=$(phi_journal_cursor)
step=$(totp_fresh_step dave)
vpn_login static-badpw "$SC_PORT" "$SC_NET" dave \
    "$(vpn_scrv1 "not $VPN_PASSWORD" "$(totp_code dave "$step")")" static
expect_auth_failed "static challenge, wrong password, right code" dave "$SC_NET"
phi_assert_contains "$(openvpn_said "$cur")" "pam_unix(openvpn:auth): authentication failure" \
    "pam_unix refused the password"
phi_assert_eq "$(daemon_events "$cur" dave)" 0 "the code never reached the daemon"
vpn_client_stop
vpn_server_stop

# ---------------------------------------------------------------- combined
# One field: the plugin answers pam_phi's password prompt with all of it;
# pam_phi splits off the code, and pam_unix (use_first_pass) checks what is left.
totp_stack openvpn-combined "auth requisite $PAM_PHI combined" \
    "auth required pam_unix.so use_first_pass" \
    "account required pam_unix.so"
CB_PORT=1195
CB_NET=203.0.113
vpn_server_start combined "$CB_PORT" "$CB_NET" openvpn-combined

cur=$(phi_journal_cursor)
step=$(totp_fresh_step bob)
code=$(totp_code bob "$step")
vpn_login combined-ok "$CB_PORT" "$CB_NET" bob "$VPN_PASSWORD$code"
phi_assert_eq "$VPN_ASKED" ">PASSWORD:Need 'Auth' username/password" \
    "the client asks for username and password only"
expect_connected "combined, right password and code" "$CB_NET"
TOTP_LAST[bob]=$step
check_event "$(event "$cur" auth_ok bob)" "auth_ok (combined)"
phi_assert_not_contains "$(openvpn_said "$cur")" "authentication failure" \
    "pam_unix took the password part as PAM_AUTHTOK"
vpn_client_stop

cur=$(phi_journal_cursor)
vpn_login combined-replay "$CB_PORT" "$CB_NET" bob "$VPN_PASSWORD$code"
expect_auth_failed "combined, the same code again" bob "$CB_NET"
check_event "$(event "$cur" totp_replay bob)" "totp_replay (combined)"
vpn_client_stop

cur=$(phi_journal_cursor)
vpn_login combined-wrong "$CB_PORT" "$CB_NET" bob "$VPN_PASSWORD$(totp_code bob $((step + 7)))"
expect_auth_failed "combined, wrong code" bob "$CB_NET"
ev=$(event "$cur" auth_fail bob)
check_event "$ev" "auth_fail (combined)"
phi_assert_eq "$(field "$ev" PHI_REASON)" wrong_code "auth_fail says wrong_code"
vpn_client_stop

# pam_phi comes first here (it must split the field), so the code is used up
# even when the password part is wrong; pam_unix still refuses the login.
cur=$(phi_journal_cursor)
step=$(totp_fresh_step erin)
vpn_login combined-badpw "$CB_PORT" "$CB_NET" erin "not $VPN_PASSWORD$(totp_code erin "$step")"
expect_auth_failed "combined, wrong password, right code" erin "$CB_NET"
TOTP_LAST[erin]=$step
check_event "$(event "$cur" auth_ok erin)" "the code's auth_ok (combined, wrong password)"
phi_assert_contains "$(openvpn_said "$cur")" "pam_unix(openvpn:auth): authentication failure" \
    "pam_unix refused the password part"
vpn_client_stop
vpn_server_stop

# ---------------------------------------------------------------- the openvpn option
# pam_phi's openvpn option reads SCRV1 from PAM_AUTHTOK. OpenVPN 2.6's plugin
# decodes SCRV1 before PAM runs and answers the password prompt with the
# password alone, so behind it the option finds no code and denies, saying
# why (pam_phi(8) says to use the plugin's OTP pair instead).
totp_stack openvpn-option "auth requisite $PAM_PHI openvpn" \
    "auth required pam_unix.so use_first_pass" \
    "account required pam_unix.so"
OP_PORT=1196
OP_NET=10.200.0
vpn_server_start option "$OP_PORT" "$OP_NET" openvpn-option

cur=$(phi_journal_cursor)
step=$(totp_fresh_step carol)
vpn_login option "$OP_PORT" "$OP_NET" carol "$(vpn_scrv1 "$VPN_PASSWORD" "$(totp_code carol "$step")")" static
expect_auth_failed "the openvpn option behind OpenVPN 2.6's plugin" carol "$OP_NET"
phi_assert_contains "$(openvpn_said "$cur")" \
    "pam_phi(openvpn:auth): no usable code for carol: not an OpenVPN static-challenge response" \
    "pam_phi says it was given no static-challenge response"
phi_assert_eq "$(daemon_events "$cur" carol)" 0 "no code reached the daemon"
vpn_client_stop
vpn_server_stop

vpn_san_check

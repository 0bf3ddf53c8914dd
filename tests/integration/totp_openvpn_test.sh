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
# Each stack also has `account required pam_phi.so`: the daemon's access
# policy (default deny) must let the user use the service openvpn on this
# host. In each way: a right code brings the tunnel up (a ping crosses it)
# and access_granted names the rule; the same code again and a wrong code get
# AUTH_FAILED, a wrong password with a right code too; a user whom the policy
# refuses on openvpn gets AUTH_FAILED after a right password and code
# (access_denied with the deny rule), and `phictl policy check USER --service
# openvpn` gives the same answers and rules; every outcome is journaled by the
# daemon with PHI_SERVICE=openvpn and the client's address. And pam_phi's
# openvpn option behind this plugin, which decodes SCRV1 before PAM sees it:
# denied, and pam_phi says why.
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

# The host the policy is asked about: the daemon's host name, set in the
# test's own UTS namespace.
VPN_HOST=vpn-gw1
hostname "$VPN_HOST"
# The access policy (TOTP_DIR is $PHI_TMP/phi; [daemon] may be given twice).
VPN_POLICY=$PHI_TMP/phi/policy.conf
TOTP_EXTRA_CONFIG="[daemon]
policy = $VPN_POLICY"
totp_setup
cat >"$VPN_POLICY" <<'POLICY'
[access:vpn-users]
description = the VPN's users
action = allow
users = alice bob carol dave erin frank grace
services = openvpn
hosts = vpn-gw*

# frank and grace keep their accounts and codes but lose the VPN: the deny
# rule wins over vpn-users.
[access:no-vpn-contractors]
action = deny
users = frank grace
services = openvpn
hosts = *
POLICY
chmod 0644 "$VPN_POLICY"
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

for u in alice bob carol dave erin frank grace; do
    totp_enroll "$u"
done

# What the administrator is told before anyone connects; the logins below
# must agree with it.
policy_check() { # USER: exit status in $pc_rc, the JSON answer in $pc_out
    pc_rc=0
    pc_out=$(totp_phictl_as root --json policy check "$1" --service openvpn) || pc_rc=$?
}
policy_check alice
phi_assert_eq "$pc_rc" 0 "phictl policy check alice --service openvpn: allowed (exit 0)"
phi_assert_eq "$(jq -r '[.allowed, .rule, .host] | @tsv' <<<"$pc_out")" $'true\tvpn-users\t'"$VPN_HOST" \
    "allowed by vpn-users, on the daemon's host"
policy_check frank
phi_assert_eq "$pc_rc" 1 "phictl policy check frank --service openvpn: denied (exit 1)"
phi_assert_eq "$(jq -r '[.allowed, .rule, .refusal] | @tsv' <<<"$pc_out")" $'false\tno-vpn-contractors\tdeny-rule' \
    "denied by the deny rule no-vpn-contractors"

# check_granted CURSOR USER WHAT: the account check journaled access_granted
# for the VPN service with the rule that allowed it.
check_granted() {
    local ev
    ev=$(event "$1" access_granted "$2")
    check_event "$ev" "access_granted ($3)"
    phi_assert_eq "$(field "$ev" PHI_RULE)" vpn-users "access_granted ($3) names the rule vpn-users"
}
# expect_denied_by_policy CURSOR USER SUBNET WHAT: right password and code,
# refused by the account check: AUTH_FAILED, the code used up (auth_ok), and
# access_denied naming the deny rule, as phictl policy check does.
expect_denied_by_policy() {
    local cur=$1 user=$2 subnet=$3 what=$4 ev
    expect_auth_failed "$what" "$user" "$subnet"
    phi_assert_contains "$(cat "$VPN_SERVER_LOG")" \
        "AUTH-PAM: BACKGROUND: user '$user' failed to authenticate: Permission denied" \
        "$what: the plugin says PAM's account check said no"
    check_event "$(event "$cur" auth_ok "$user")" "the code's auth_ok ($what)"
    ev=$(event "$cur" access_denied "$user")
    check_event "$ev" "access_denied ($what)"
    phi_assert_eq "$(field "$ev" PHI_RULE)" no-vpn-contractors "access_denied ($what) names the deny rule"
    phi_assert_eq "$(field "$ev" PRIORITY)" 5 "access_denied ($what) at notice"
    phi_assert_contains "$(field "$ev" PHI_REASON)" no-vpn-contractors "access_denied ($what) says why"
    policy_check "$user"
    phi_assert_eq "$pc_rc" 1 "phictl policy check $user --service openvpn agrees: denied"
    phi_assert_eq "$(jq -r .rule <<<"$pc_out")" "$(field "$ev" PHI_RULE)" "phictl policy check $user names the same rule"
    phi_assert_not_contains "$(event_names "$cur" "$user")" access_granted "$what: no access_granted"
}
event_names() { # CURSOR USER: the PHI_EVENTs the daemon journaled about USER
    phi_journal_json --after "$1" SYSLOG_IDENTIFIER=phiaccessd "PHI_USER=$2" | phi_json_field PHI_EVENT
}
# no_account_check CURSOR USER WHAT: a refused code ends the login before
# the account check (the daemon journals in order, so the auth event already
# read would come before it).
no_account_check() {
    phi_assert_not_contains "$(event_names "$1" "$2")" access_ "$3: the account check never ran"
}

# ---------------------------------------------------------------- static challenge
# The plugin splits SCRV1 itself and answers each PAM prompt by its name:
# pam_get_user's "login:", pam_unix's "Password:" and pam_phi's
# "Verification code:" (README.auth-pam: OTP is the static-challenge response).
totp_stack openvpn-static "auth requisite pam_unix.so" \
    "auth required $PAM_PHI" \
    "account required $PAM_PHI" "account required pam_unix.so"
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
check_granted "$cur" alice "static challenge"
vpn_client_stop

cur=$(phi_journal_cursor)
vpn_login static-replay "$SC_PORT" "$SC_NET" alice "$(vpn_scrv1 "$VPN_PASSWORD" "$code")" static
expect_auth_failed "static challenge, the same code again" alice "$SC_NET"
check_event "$(event "$cur" totp_replay alice)" "totp_replay (static challenge)"
no_account_check "$cur" alice "static challenge, the same code again"
vpn_client_stop

cur=$(phi_journal_cursor)
vpn_login static-wrong "$SC_PORT" "$SC_NET" alice \
    "$(vpn_scrv1 "$VPN_PASSWORD" "$(totp_code alice $((step + 7)))")" static
expect_auth_failed "static challenge, wrong code" alice "$SC_NET"
ev=$(event "$cur" auth_fail alice)
check_event "$ev" "auth_fail (static challenge)"
phi_assert_eq "$(field "$ev" PHI_REASON)" wrong_code "auth_fail says wrong_code"
no_account_check "$cur" alice "static challenge, wrong code"
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

# Right password, right code, but the policy keeps frank off the VPN.
cur=$(phi_journal_cursor)
step=$(totp_fresh_step frank)
vpn_login static-denied "$SC_PORT" "$SC_NET" frank "$(vpn_scrv1 "$VPN_PASSWORD" "$(totp_code frank "$step")")" static
TOTP_LAST[frank]=$step
expect_denied_by_policy "$cur" frank "$SC_NET" "static challenge, a user the policy refuses on openvpn"
vpn_client_stop
vpn_server_stop

# ---------------------------------------------------------------- combined
# One field: the plugin answers pam_phi's password prompt with all of it;
# pam_phi splits off the code, and pam_unix (use_first_pass) checks what is left.
totp_stack openvpn-combined "auth requisite $PAM_PHI combined" \
    "auth required pam_unix.so use_first_pass" \
    "account required $PAM_PHI" "account required pam_unix.so"
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
check_granted "$cur" bob combined
phi_assert_not_contains "$(openvpn_said "$cur")" "authentication failure" \
    "pam_unix took the password part as PAM_AUTHTOK"
vpn_client_stop

cur=$(phi_journal_cursor)
vpn_login combined-replay "$CB_PORT" "$CB_NET" bob "$VPN_PASSWORD$code"
expect_auth_failed "combined, the same code again" bob "$CB_NET"
check_event "$(event "$cur" totp_replay bob)" "totp_replay (combined)"
no_account_check "$cur" bob "combined, the same code again"
vpn_client_stop

cur=$(phi_journal_cursor)
vpn_login combined-wrong "$CB_PORT" "$CB_NET" bob "$VPN_PASSWORD$(totp_code bob $((step + 7)))"
expect_auth_failed "combined, wrong code" bob "$CB_NET"
ev=$(event "$cur" auth_fail bob)
check_event "$ev" "auth_fail (combined)"
phi_assert_eq "$(field "$ev" PHI_REASON)" wrong_code "auth_fail says wrong_code"
no_account_check "$cur" bob "combined, wrong code"
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

cur=$(phi_journal_cursor)
step=$(totp_fresh_step grace)
vpn_login combined-denied "$CB_PORT" "$CB_NET" grace "$VPN_PASSWORD$(totp_code grace "$step")"
TOTP_LAST[grace]=$step
expect_denied_by_policy "$cur" grace "$CB_NET" "combined, a user the policy refuses on openvpn"
vpn_client_stop
vpn_server_stop

# ---------------------------------------------------------------- the openvpn option
# pam_phi's openvpn option reads SCRV1 from PAM_AUTHTOK. OpenVPN 2.6's plugin
# decodes SCRV1 before PAM runs and answers the password prompt with the
# password alone, so behind it the option finds no code and denies, saying
# why (pam_phi(8) says to use the plugin's OTP pair instead).
totp_stack openvpn-option "auth requisite $PAM_PHI openvpn" \
    "auth required pam_unix.so use_first_pass" \
    "account required $PAM_PHI" "account required pam_unix.so"
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

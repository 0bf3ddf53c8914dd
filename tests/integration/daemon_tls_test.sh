#!/usr/bin/env bash
# The default, secure path: StartTLS with certificate verification against
# ca_file and a simple bind with a password file. A server whose certificate
# does not verify is never used, and a wrong password is reported.
# shellcheck disable=SC2016 # bash -c snippets read their arguments as $0, $1
# shellcheck disable=SC2119 # harness functions take optional arguments
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=daemon_lib.bash
source "$(dirname "$0")/daemon_lib.bash"
phi_harness_init "$@"

command -v openssl >/dev/null || phi_die "openssl is missing; run ./scripts/setup"
suffix=dc=example,dc=org
phi_gen_ldif --suffix "$suffix" --users 50 --groups 5 >"$PHI_TMP/dir.ldif"
phi_slapd_start "$suffix" "$PHI_TMP/dir.ldif"
phi_slapd_stop

# A CA, a server certificate for 127.0.0.1 signed by it, and an unrelated CA.
pki=$PHI_TMP/pki
mkdir -p "$pki"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=phi-test-ca -keyout "$pki/ca.key" \
    -out "$pki/ca.pem" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other-ca -keyout "$pki/other.key" \
    -out "$pki/other.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout "$pki/server.key" -out "$pki/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$pki/ext"
openssl x509 -req -in "$pki/server.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial -days 2 \
    -extfile "$pki/ext" -out "$pki/server.pem" 2>/dev/null
# TLS settings are global: they go before the first database line.
sed -i "0,/^database /s||TLSCACertificateFile $pki/ca.pem\nTLSCertificateFile $pki/server.pem\nTLSCertificateKeyFile $pki/server.key\n\ndatabase |" \
    "$PHI_SLAPD_DIR/slapd.conf"
phi_slapd_restart
phi_check "the test slapd speaks StartTLS" env LDAPTLS_CACERT="$pki/ca.pem" \
    ldapsearch -x -ZZ -H "$PHI_LDAP_URI" -b "$suffix" -s base 1.1

daemon_setup
cp "$PHI_LDAP_ROOTPW_FILE" "$DAEMON_DIR/bindpw"
chmod 600 "$DAEMON_DIR/bindpw"
write_conf() { # TLS-LINES...
    DAEMON_EXTRA="bind_dn = $PHI_LDAP_ROOTDN
bind_password_file = $DAEMON_DIR/bindpw
$*" daemon_config "$PHI_LDAP_URI"
    # daemon_config writes tls = none; the default (starttls) is what is tested here.
    sed -i '/^tls = none$/d' "$DAEMON_CONF"
}

# Wrong CA first: the server must not be used.
write_conf "ca_file = $pki/other.pem"
phi_check "config without tls= (StartTLS by default) is valid" "$PHI_DAEMON" --check-config --config "$DAEMON_CONF"
daemon_start
phi_check "an unverifiable server is reported" phi_wait_for --timeout 20 \
    bash -c '"$0" --socket "$1" --json status | jq -r .last_error | grep -q "StartTLS failed"' "$PHI_CTL" "$DAEMON_SOCKET"
phi_assert_eq "$(status_get users)" 0 "and nothing was read from it"
phi_assert_eq "$(status_get outage)" true "status shows the directory as unavailable"
daemon_stop

# Right CA, wrong password.
printf 'wrong\n' >"$DAEMON_DIR/bindpw"
write_conf "ca_file = $pki/ca.pem"
daemon_start
phi_check "a wrong bind password is reported" phi_wait_for --timeout 20 \
    bash -c '"$0" --socket "$1" --json status | jq -r .last_error | grep -q "bind failed: Invalid credentials"' "$PHI_CTL" "$DAEMON_SOCKET"
daemon_stop

# Right CA, right password: synchronised over TLS.
cp "$PHI_LDAP_ROOTPW_FILE" "$DAEMON_DIR/bindpw"
daemon_start
phi_check "StartTLS + verified certificate + bind: users arrive" wait_users 50 30
phi_assert_eq "$(ctl --json user show user00007 | jq -r .uid)" 10007 "user data over TLS"
phi_check "the password never reaches the log" bash -c '! grep -qF "$(cat "$0")" "$1"' "$PHI_LDAP_ROOTPW_FILE" "$PHI_TMP/phiaccessd.log"

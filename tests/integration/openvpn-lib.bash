# shellcheck shell=bash disable=SC2034 # the variables are for the tests that source this
# Helpers for tests with a real OpenVPN 2.6 server and client (Debian's
# openvpn package, its auth-pam plugin). Source after tests/lib/harness.bash
# and totp-lib.bash; call vpn_setup after totp_setup.
#
# What they set up, all inside the test's own namespaces:
#   - two network namespaces, $VPN_SRV_NS and $VPN_CLI_NS, made with
#     `ip netns add` under a private /run/netns (so the names, like the
#     namespaces, exist only in this test's mount namespace), joined by a veth
#     pair: the server's end $VPN_SERVER_IP, the client's $VPN_CLIENT_IP.
#     The test's own network namespace (the harness's) holds neither end, so
#     no address is ever added outside namespaces the test created;
#   - TLS material made by openssl in $VPN_DIR: a CA, a server and a client
#     certificate;
#   - passwd and shadow files naming the TOTP test users with the password
#     $VPN_PASSWORD, bound over /etc/passwd and /etc/shadow in the server's
#     mount namespace only, so that pam_unix in the server's PAM stack checks a
#     real password;
#   - vpn_server_start: an openvpn server in $VPN_SRV_NS whose auth-pam plugin
#     uses the PAM service "openvpn", bound to a stack of the test's;
#   - vpn_login: an openvpn client in $VPN_CLI_NS answered through its
#     management interface (a TCP port on the client namespace's loopback),
#     as a VPN GUI does.

VPN_PLUGIN=/usr/lib/x86_64-linux-gnu/openvpn/plugins/openvpn-plugin-auth-pam.so
VPN_SRV_NS=phi-vpn-srv
VPN_CLI_NS=phi-vpn-cli
VPN_SERVER_IP=192.0.2.1
VPN_CLIENT_IP=192.0.2.2
VPN_PASSWORD="s3cret pass"
VPN_MGMT_PORT=7505

vpn_setup() {
    command -v openvpn >/dev/null || phi_die "openvpn is missing; run ./scripts/setup"
    [ -r "$VPN_PLUGIN" ] || phi_die "$VPN_PLUGIN is missing (openvpn package); run ./scripts/setup"
    command -v ping >/dev/null || phi_die "ping is missing (iputils-ping); run ./scripts/setup"
    command -v openssl >/dev/null || phi_die "openssl is missing; run ./scripts/setup"
    [ -c /dev/net/tun ] || phi_skip "no /dev/net/tun: the kernel offers no TUN devices here"
    VPN_DIR=$PHI_TMP/vpn
    mkdir -p "$VPN_DIR"
    VPN_VERSION=$(openvpn --version | sed -n '1s/^OpenVPN \([^ ]*\) .*/\1/p')
    phi_log "OpenVPN $VPN_VERSION"
    vpn_netns
    vpn_pki
    vpn_users
    vpn_san_env
}

vpn_netns() {
    phi_private_dir /run/netns
    ip netns add "$VPN_SRV_NS"
    ip netns add "$VPN_CLI_NS"
    ip link add veth-vpn-s netns "$VPN_SRV_NS" type veth peer name veth-vpn-c netns "$VPN_CLI_NS"
    ip -n "$VPN_SRV_NS" link set lo up
    ip -n "$VPN_CLI_NS" link set lo up
    ip -n "$VPN_SRV_NS" addr add "$VPN_SERVER_IP/24" dev veth-vpn-s
    ip -n "$VPN_CLI_NS" addr add "$VPN_CLIENT_IP/24" dev veth-vpn-c
    ip -n "$VPN_SRV_NS" link set veth-vpn-s up
    ip -n "$VPN_CLI_NS" link set veth-vpn-c up
    phi_wait_for --timeout 10 --what "the veth pair carries a ping" \
        ip netns exec "$VPN_CLI_NS" ping -c 1 -W 1 "$VPN_SERVER_IP" ||
        phi_die "the veth pair between $VPN_CLI_NS and $VPN_SRV_NS does not work"
}

vpn_pki() {
    local d=$VPN_DIR name eku
    local -a ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    openssl req -x509 "${ec[@]}" -keyout "$d/ca.key" -out "$d/ca.crt" -days 2 \
        -subj /CN=phi-test-vpn-ca -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    for name in server client; do
        eku=serverAuth
        [ "$name" = server ] || eku=clientAuth
        openssl req -new "${ec[@]}" -keyout "$d/$name.key" -out "$d/$name.csr" \
            -subj "/CN=phi-test-vpn-$name" 2>/dev/null
        printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\n' \
            "$eku" >"$d/$name.ext"
        openssl x509 -req -in "$d/$name.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
            -set_serial "0x$(openssl rand -hex 8)" -days 2 -extfile "$d/$name.ext" \
            -out "$d/$name.crt" 2>/dev/null
    done
    chmod 0600 "$d"/*.key
}

# The server's users: the host's passwd and shadow (openvpn's own lookups)
# with the TOTP test users in front, all with the password $VPN_PASSWORD.
vpn_users() {
    local users_re hash
    users_re="^($(IFS='|'; echo "${TOTP_USERS[*]}")):"
    hash=$(openssl passwd -6 "$VPN_PASSWORD")
    {
        grep '^root:' /etc/passwd
        grep -v '^root:' "$TOTP_DIR/passwd"
        grep -v -E "^root:|$users_re" /etc/passwd || true
    } >"$VPN_DIR/passwd"
    {
        grep '^root:' /etc/shadow
        for u in "${TOTP_USERS[@]}"; do
            echo "$u:$hash:19000:0:99999:7:::"
        done
        grep -v -E "^root:|$users_re" /etc/shadow || true
    } >"$VPN_DIR/shadow"
    chmod 0644 "$VPN_DIR/passwd"
    chmod 0600 "$VPN_DIR/shadow"
}

# The sanitizer build's pam_phi needs its runtimes loaded first in openvpn (as
# in sshd); reports go to files that vpn_san_check reads at the end.
vpn_san_env() {
    local san
    VPN_ENV=()
    VPN_SAN=""
    san=$(ldd "$PHI_BUILD_DIR/pam_phi/pam_phi.so" | awk '/libasan|libubsan/ { printf "%s%s", sep, $3; sep = " " }')
    [ -n "$san" ] || return 0
    VPN_SAN=$san
    # libcrypt too: the sanitizers' crypt() interceptor looks the real one up
    # once, at start-up, and calls a null pointer when libcrypt arrives later
    # (pam_unix brings it in) -- a crash in pam_unix that is not ours.
    # (awk reads to the end: leaving early would kill ldconfig with SIGPIPE,
    # which pipefail turns into a failure now and then.)
    VPN_ENV=(env "LD_PRELOAD=$san $(ldconfig -p | awk '$1 == "libcrypt.so.1" && /x86-64/ && !found { print $NF; found = 1 }')"
        "ASAN_OPTIONS=detect_leaks=0:log_path=$VPN_DIR/asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
        "UBSAN_OPTIONS=print_stacktrace=1:log_path=$VPN_DIR/ubsan${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}")
}

vpn_san_check() {
    local reports
    [ -n "$VPN_SAN" ] || return 0
    reports=$(cat "$VPN_DIR"/asan.* "$VPN_DIR"/ubsan.* 2>/dev/null || true)
    phi_assert_eq "$reports" "" "no sanitizer report from pam_phi inside openvpn"
}

# vpn_server_start NAME PORT SUBNET STACK [PLUGIN ARG...]: an openvpn server
# in $VPN_SRV_NS on UDP $VPN_SERVER_IP:PORT handing out addresses of
# SUBNET.0/24 (the server is SUBNET.1), whose auth-pam plugin runs the PAM
# service "openvpn" -- the file STACK in $TOTP_DIR/pam.d, bound over
# /etc/pam.d/openvpn in the server's mount namespace only. PLUGIN ARGs after
# the service name are the plugin's name/value pairs (README.auth-pam).
# Sets VPN_SERVER_PID and VPN_SERVER_LOG.
vpn_server_start() {
    local name=$1 port=$2 subnet=$3 stack=$4 conf pidfile plugin_line
    shift 4
    conf=$VPN_DIR/server.$name.conf
    pidfile=$VPN_DIR/server.$name.pid
    # One config word: the plugin takes its arguments as one quoted string.
    plugin_line="plugin $VPN_PLUGIN \"openvpn${*:+ $*}\""
    cat >"$conf" <<CONF
mode server
tls-server
dev vpns-$name
dev-type tun
disable-dco
proto udp
local $VPN_SERVER_IP
port $port
topology subnet
server $subnet.0 255.255.255.0
ca $VPN_DIR/ca.crt
cert $VPN_DIR/server.crt
key $VPN_DIR/server.key
dh none
$plugin_line
writepid $pidfile
verb 3
CONF
    phi_spawn "openvpn-server-$name" phi_ns_run --bind "$VPN_DIR/passwd:/etc/passwd" \
        --bind "$VPN_DIR/shadow:/etc/shadow" --bind "$TOTP_DIR/pam.d/$stack:/etc/pam.d/openvpn" -- \
        "${VPN_ENV[@]}" ip netns exec "$VPN_SRV_NS" openvpn --config "$conf"
    # phi_ns_run is a function, so the spawned pid is a subshell whose child
    # is openvpn; openvpn's own pid comes from its pid file.
    VPN_SERVER_SPAWNED=$PHI_LAST_PID
    VPN_SERVER_DEV=vpns-$name
    VPN_SERVER_LOG=$PHI_TMP/openvpn-server-$name.log
    phi_wait_for --timeout 20 --what "openvpn server $name ready" \
        grep -q 'Initialization Sequence Completed' "$VPN_SERVER_LOG" ||
        phi_die "the openvpn server ($name) did not start; its log:"$'\n'"$(tail -n 30 "$VPN_SERVER_LOG")"
    VPN_SERVER_PID=$(cat "$pidfile")
    if [ -n "$VPN_SAN" ]; then
        phi_assert_contains "$(cat "/proc/$VPN_SERVER_PID/maps")" libasan \
            "openvpn ($name) runs with the sanitizer runtimes that pam_phi needs"
    fi
}

vpn_server_stop() {
    phi_stop_pid "$VPN_SERVER_PID"
    phi_stop_pid "$VPN_SERVER_SPAWNED"
    phi_check_fails "the openvpn server's TUN device is gone with it" \
        ip -n "$VPN_SRV_NS" link show "$VPN_SERVER_DEV"
}

# vpn_login NAME PORT SUBNET USER PASSWORD [static]: an openvpn client in
# $VPN_CLI_NS connecting to the server on PORT; its management interface is
# answered with USER and PASSWORD (the field as the GUI sends it: for a static
# challenge the caller builds the SCRV1 string, as the management protocol
# wants). With "static" the client has `static-challenge "Verification code" 1`.
# Afterwards:
#   VPN_RESULT   CONNECTED, AUTH_FAILED or TIMEOUT
#   VPN_ASKED    the client's password request line (">PASSWORD:Need ...")
#   VPN_MGMT     the management transcript
#   VPN_CLIENT_PID
# A connected client keeps running until vpn_client_stop.
vpn_login() {
    local name=$1 port=$2 subnet=$3 user=$4 password=$5 static=${6:-} conf mport rc=0
    VPN_MGMT_PORT=$((VPN_MGMT_PORT + 1))
    mport=$VPN_MGMT_PORT
    conf=$VPN_DIR/client.$name.conf
    cat >"$conf" <<CONF
client
dev phi-vpn-c
dev-type tun
disable-dco
proto udp
remote $VPN_SERVER_IP $port
nobind
ca $VPN_DIR/ca.crt
cert $VPN_DIR/client.crt
key $VPN_DIR/client.key
remote-cert-tls server
auth-user-pass
auth-nocache
auth-retry none
connect-retry-max 1
management 127.0.0.1 $mport
management-hold
management-query-passwords
verb 3
CONF
    if [ "$static" = static ]; then
        echo 'static-challenge "Verification code" 1' >>"$conf"
    fi
    phi_spawn "openvpn-client-$name" ip netns exec "$VPN_CLI_NS" openvpn --config "$conf"
    VPN_CLIENT_PID=$PHI_LAST_PID
    VPN_MGMT=$(timeout 40 ip netns exec "$VPN_CLI_NS" bash -c "$(declare -f vpn_mgmt_drive); vpn_mgmt_drive \"\$@\"" \
        vpn-mgmt "$mport" "$user" "$password" 2>&1) || rc=$?
    case "$rc" in
        0) VPN_RESULT=CONNECTED ;;
        3) VPN_RESULT=AUTH_FAILED ;;
        *) VPN_RESULT=TIMEOUT
           phi_log "vpn_login $name: management driver status $rc:"$'\n'"$VPN_MGMT" ;;
    esac
    VPN_ASKED=$(printf '%s\n' "$VPN_MGMT" | grep -m 1 '^>PASSWORD:Need' || true)
}

vpn_client_stop() {
    phi_stop_pid "$VPN_CLIENT_PID"
}

# vpn_mgmt_drive PORT USER PASSWORD: runs inside $VPN_CLI_NS (bash's /dev/tcp
# connects in the caller's network namespace), so it is passed to the inner
# bash with `declare -f` and uses nothing else from the test. Prints the
# transcript; exits 0 once the tunnel is up, 3 on AUTH_FAILED, 4 when the
# client exits otherwise, 124 after 30 s.
vpn_mgmt_drive() {
    local port=$1 user=$2 password=$3 line part="" i rc deadline
    deadline=$((SECONDS + 30))
    for ((i = 0; i < 200; i++)); do
        { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null && break
        sleep 0.05
    done
    [ "$i" -lt 200 ] || { echo "no management interface on port $port"; return 124; }
    # Management quoting: backslash and double quote are escaped.
    password=${password//\\/\\\\}
    password=${password//\"/\\\"}
    printf 'state on\r\nhold release\r\n' >&3
    while [ "$SECONDS" -lt "$deadline" ]; do
        rc=0
        IFS= read -r -t 1 line <&3 || rc=$?
        # Over 128: timed out, keeping what came of a line so far; else the end.
        if [ "$rc" -gt 128 ]; then
            part+=$line
            continue
        elif [ "$rc" != 0 ]; then
            echo "the client closed its management interface"
            return 4
        fi
        line=$part${line%$'\r'}
        part=""
        printf '%s\n' "$line"
        case "$line" in
            ">PASSWORD:Need 'Auth' username/password"*)
                printf 'username "Auth" "%s"\r\npassword "Auth" "%s"\r\n' "$user" "$password" >&3 ;;
            ">PASSWORD:Verification Failed: 'Auth'"*) return 3 ;;
            ">STATE:"*",CONNECTED,SUCCESS,"*) return 0 ;;
            ">STATE:"*",EXITING,"*) return 4 ;;
        esac
    done
    echo "timed out"
    return 124
}

# vpn_ping SUBNET: one ping from the client through the tunnel to the server's
# tunnel address (SUBNET.1), which only the tunnel reaches.
vpn_ping() {
    ip netns exec "$VPN_CLI_NS" ping -c 1 -W 5 "$1.1"
}

# vpn_scrv1 PASSWORD CODE: the static-challenge password field a GUI sends
# over the management interface (management-notes.txt: SCRV1).
vpn_scrv1() {
    printf 'SCRV1:%s:%s' "$(printf '%s' "$1" | base64 -w0)" "$(printf '%s' "$2" | base64 -w0)"
}

#!/usr/bin/env bash
# `cmake --install` of this build, as the README describes it, puts every file
# where the program that loads it looks: pam_phi.so beside the host's own PAM
# modules (libpam searches only its multiarch security/ directory), the NSS
# module beside libc (glibc's dlopen of libnss_phi.so.2 searches only the
# system library directories), the journal catalog where `journalctl
# --update-catalog` reads, the units where systemd reads, and the example that
# phiaccessd.conf(5) names at the path it names. The install goes to a temp
# DESTDIR: nothing on the host changes.
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
phi_harness_init "$@"

root=$PHI_TMP/root
out=$(DESTDIR=$root cmake --install "$PHI_BUILD_DIR" 2>&1) || phi_fail "cmake --install failed" "$out"

# The directories the host's loaders really use, found from files they load.
pam_unix=$(find /lib /usr/lib -path '*/security/pam_unix.so' -print -quit)
[ -n "$pam_unix" ] || phi_die "the host has no pam_unix.so to locate libpam's module directory"
pam_dir=$(dirname "$(readlink -f "$pam_unix")")
# (awk reads to the end: quitting early would kill ldconfig with SIGPIPE.)
libc=$(ldconfig -p | awk '$1 == "libc.so.6" && /x86-64/ && !found { print $NF; found = 1 }')
[ -n "$libc" ] || phi_die "ldconfig names no libc.so.6"
lib_dir=$(dirname "$(readlink -f "$libc")")

phi_check "pam_phi.so is installed in libpam's module directory ($pam_dir)" \
    test -f "$root$pam_dir/pam_phi.so"
phi_check "libnss_phi.so.2 is installed beside libc ($lib_dir)" test -f "$root$lib_dir/libnss_phi.so.2"
# sudo finds a plugin named without a path where its own sudoers.so is.
sudoers_so=$(find /usr/libexec /usr/lib -name sudoers.so -path '*sudo*' -print -quit)
[ -n "$sudoers_so" ] || phi_die "the host has no sudoers.so to locate sudo's plugin directory"
phi_check "sudo_phi.so is installed in sudo's plugin directory ($(dirname "$sudoers_so"))" \
    test -f "$root$(dirname "$sudoers_so")/sudo_phi.so"
phi_check_fails "no unversioned libnss_phi.so (glibc never loads it; a dev symlink would only mislead)" \
    test -e "$root$lib_dir/libnss_phi.so"
phi_check "the catalog is where journalctl --update-catalog reads it" \
    test -f "$root/usr/lib/systemd/catalog/phi.catalog"
for unit in phiaccessd.service phiaccessd.socket phiaccessd-pam.socket; do
    phi_check "$unit is in systemd's unit directory" test -f "$root/usr/lib/systemd/system/$unit"
done
phi_check "phiaccessd is in /usr/sbin, which the unit's ExecStart names" test -x "$root/usr/sbin/phiaccessd"
exec_start=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$PHI_SOURCE_DIR/phiaccessd/phiaccessd.service")
phi_check "the unit's ExecStart ($exec_start) is the installed daemon" test -x "$root$exec_start"
phi_check "phictl is in /usr/bin" test -x "$root/usr/bin/phictl"

# Every man page that another one or the README points to is installed.
for page in man1/phictl.1 man5/phiaccessd.conf.5 man5/phi-policy.conf.5 man8/phiaccessd.8 man8/pam_phi.8 man8/sudo_phi.8 man8/nss-phi.8; do
    phi_check "$page is installed" test -f "$root/usr/share/man/$page"
done
example=$(sed -n '/^\.SH EXAMPLE/,/^\.SH/s/^\.I \(\/[^ ]*example\)\.\{0,1\}$/\1/p' \
    "$PHI_SOURCE_DIR/phiaccessd/man/phiaccessd.conf.5")
phi_assert_match "$example" '^/usr/share/doc/' "phiaccessd.conf(5) names an example file ($example)"
phi_check "the example phiaccessd.conf(5) names is installed there" test -f "$root$example"
phi_check "the installed example is the one in the source tree" \
    cmp "$root$example" "$PHI_SOURCE_DIR/phiaccessd/phiaccessd.conf.example"
for f in policy.conf policy.conf.clinic-example pam.d/sshd pam.d/sudo pam.d/openvpn sudo.conf.example sudoers.example; do
    phi_check "the shipped $f is in /usr/share/doc/phi" test -f "$root/usr/share/doc/phi/$f"
done
phi_check_fails "the install writes no policy into /etc (it would replace the one in force)" \
    test -e "$root/etc/phi/policy.conf"
phi_check_fails "nothing is installed under /usr/local" test -e "$root/usr/local"
phi_pass "install layout checked"

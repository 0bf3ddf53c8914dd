# shellcheck shell=bash
# Helpers shared by the tests of the Debian packages (deb_install_test.sh,
# quickstart_test.sh). Source after tests/lib/harness.bash; call them after
# phi_harness_init.
#
#   deb_build            builds the three packages from a copy of the tree
#                        (never in the tree itself: dpkg-buildpackage writes
#                        ../*.deb and debian/ build files); sets DEB_VERSION,
#                        DEB_ARCH, DEB_CHANGES and DEB[package] (the .deb).
#   deb_machine          a throwaway machine: an overlay of the host's root,
#                        every write in a tmpfs, the host's files the read-only
#                        lower layer, with its own /dev, /run, /tmp and the
#                        test's journald; sets DEB_ROOT and copies the packages
#                        into it (DEB_IN_ROOT[package], their paths inside).
#   in_root CMD...       CMD chrooted into the machine, with a clean environment.
#   deb_daemon_start     phiaccessd started from the installed unit, as systemd
#                        would start it (systemd is not PID 1 in the chroot);
#                        deb_daemon_stop stops it.
#   etc_state DIR        names, modes, owners, link targets and contents of
#                        the files under DIR, to compare before and after.
#
# Sourcing it also defines the harness's outer hooks: from outside the
# namespaces, before and after the test, the host's /etc, dpkg database,
# package paths and host name must be the same.
#
# PHI_DEB_DIR=DIR (for working on a test, never set by ctest) takes the
# packages from DIR instead of building them, which saves the build.

# The DEB_* variables are set for the tests that source this file:
# shellcheck disable=SC2034
DEB_PACKAGES=(phiaccessd libpam-phi libnss-phi)
declare -gA DEB=() DEB_IN_ROOT=()

# Names, modes, owners, link targets and contents of the files of an /etc.
etc_state() {
    local etc=$1
    (cd "$etc" && find . -xdev -printf '%p %m %U:%G %l\n' | LC_ALL=C sort)
    (cd "$etc" && find . -xdev -type f -exec sha256sum {} + | LC_ALL=C sort -k 2)
}

host_state() {
    etc_state /etc
    echo "host name: $(hostname)"
    local p
    for p in "${DEB_PACKAGES[@]}"; do
        # shellcheck disable=SC2016 # dpkg-query's ${field}, not the shell's
        printf '%s: %s\n' "$p" "$(dpkg-query -W -f '${db:Status-Abbrev}' "$p" 2>/dev/null || echo unknown)"
    done
    for p in /usr/sbin/phiaccessd /var/lib/phiaccessd /var/lib/systemd/credential.secret \
        /etc/credstore.encrypted; do
        if [ -e "$p" ]; then echo "$p present"; else echo "$p absent"; fi
    done
}

phi_outer_before() {
    host_state >"$PHI_RUN_DIR/host.before"
}

phi_outer_after() {
    host_state >"$PHI_RUN_DIR/host.after"
    phi_check "the host's /etc, dpkg database, package paths and host name are as before the test" \
        diff -u "$PHI_RUN_DIR/host.before" "$PHI_RUN_DIR/host.after"
}

deb_build() {
    local src p t0
    for p in dpkg-buildpackage dh; do
        command -v "$p" >/dev/null || phi_die "$p is missing; run ./scripts/setup"
    done
    [ -e /usr/share/perl5/Debian/Debhelper/Sequence/installnss.pm ] ||
        phi_die "dh-nss is missing; run ./scripts/setup"
    DEB_VERSION=$(dpkg-parsechangelog -l "$PHI_SOURCE_DIR/debian/changelog" -S Version)
    DEB_ARCH=$(dpkg --print-architecture)
    if [ -n "${PHI_DEB_DIR:-}" ]; then
        phi_log "taking the packages from $PHI_DEB_DIR (PHI_DEB_DIR is set)"
        DEB_CHANGES=$PHI_DEB_DIR/phi_${DEB_VERSION}_${DEB_ARCH}.changes
        for p in "${DEB_PACKAGES[@]}"; do
            DEB[$p]=$PHI_DEB_DIR/${p}_${DEB_VERSION}_${DEB_ARCH}.deb
            [ -f "${DEB[$p]}" ] || phi_die "PHI_DEB_DIR has no ${DEB[$p]##*/}"
        done
        return 0
    fi
    src=$PHI_TMP/src/phi
    mkdir -p "$src"
    if git -C "$PHI_SOURCE_DIR" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        # Tracked and new files as they are in the tree, without build dirs.
        git -C "$PHI_SOURCE_DIR" ls-files -z -c -o --exclude-standard |
            (cd "$PHI_SOURCE_DIR" && tar -c --null --no-recursion -T -) | tar -x -C "$src"
    else
        (cd "$PHI_SOURCE_DIR" && tar -c --exclude='./build' --exclude='./build-*' .) | tar -x -C "$src"
    fi
    phi_log "building the packages"
    t0=$SECONDS
    if ! (cd "$src" && DEB_BUILD_OPTIONS="nocheck parallel=2" dpkg-buildpackage -b -us -uc) \
        >"$PHI_TMP/build.log" 2>&1; then
        phi_fail "dpkg-buildpackage -b -us -uc" "$(tail -n 40 "$PHI_TMP/build.log")"
    fi
    phi_log "built in $((SECONDS - t0)) s"
    DEB_CHANGES=$PHI_TMP/src/phi_${DEB_VERSION}_${DEB_ARCH}.changes
    phi_check "dpkg-buildpackage wrote the .changes" test -f "$DEB_CHANGES"
    for p in "${DEB_PACKAGES[@]}"; do
        DEB[$p]=$PHI_TMP/src/${p}_${DEB_VERSION}_${DEB_ARCH}.deb
        phi_check "$p was built" test -f "${DEB[$p]}"
    done
}

deb_machine() {
    local scratch node name major minor fd p
    scratch=$PHI_TMP/machine
    mkdir -p "$scratch"
    mount -t tmpfs -o mode=0700 phi-machine "$scratch"
    mkdir -p "$scratch/upper" "$scratch/work" "$scratch/root"
    DEB_ROOT=$scratch/root
    mount -t overlay phi-root -o "lowerdir=/,upperdir=$scratch/upper,workdir=$scratch/work" "$DEB_ROOT"
    mount -t proc proc "$DEB_ROOT/proc"
    mount -t sysfs -o ro sysfs "$DEB_ROOT/sys"
    mount -t tmpfs -o mode=0755 phi-run "$DEB_ROOT/run"
    mount -t tmpfs -o mode=1777 phi-tmp "$DEB_ROOT/tmp"
    # A /dev of its own: the host's device nodes are never reachable for
    # writing through the chroot.
    mount -t tmpfs -o mode=0755 phi-dev "$DEB_ROOT/dev"
    for node in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
        IFS=: read -r name major minor <<<"$node"
        mknod -m 0666 "$DEB_ROOT/dev/$name" c "$major" "$minor"
    done
    mkdir "$DEB_ROOT/dev/pts" "$DEB_ROOT/dev/shm"
    mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$DEB_ROOT/dev/pts"
    ln -s pts/ptmx "$DEB_ROOT/dev/ptmx"
    ln -s /proc/self/fd "$DEB_ROOT/dev/fd"
    for fd in stdin:0 stdout:1 stderr:2; do
        ln -s "/proc/self/fd/${fd#*:}" "$DEB_ROOT/dev/${fd%:*}"
    done
    mount -t tmpfs -o mode=1777 phi-shm "$DEB_ROOT/dev/shm"
    # The test's own journald, which the chrooted daemon and journalctl use.
    phi_journald_start --no-devlog
    mkdir -p "$DEB_ROOT/run/systemd/journal" "$DEB_ROOT/run/log/journal"
    mount --bind /run/systemd/journal "$DEB_ROOT/run/systemd/journal"
    mount --bind /run/log/journal "$DEB_ROOT/run/log/journal"
    # No init system runs in the chroot (no /run/systemd/system): maintainer
    # scripts must cope, as in a container or an image build.
    # man-db's trigger rebuilds the whole manual index after every dpkg run,
    # which takes most of each run's time here; man -w finds pages without it.
    rm -f "$DEB_ROOT/var/lib/man-db/auto-update"
    mkdir -p "$DEB_ROOT/tmp/debs"
    cp "${DEB[@]}" "$DEB_ROOT/tmp/debs/"
    for p in "${DEB_PACKAGES[@]}"; do
        DEB_IN_ROOT[$p]=/tmp/debs/${DEB[$p]##*/}
    done
}

in_root() {
    chroot "$DEB_ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive "$@"
}

# The installed unit and its drop-ins: KEY's values, one a line.
_deb_unit_value() {
    sed -n "s/^$1=//p" "$DEB_ROOT/lib/systemd/system/phiaccessd.service" \
        "$DEB_ROOT"/lib/systemd/system/phiaccessd.service.d/*.conf
}

DEB_CREDS_DIR=/run/credentials/phiaccessd.service

# deb_daemon_start: what systemd does for the installed unit: its runtime
# directory, its credentials (LoadCredentialEncrypted= names, found in the
# credential store and decrypted), its umask, ExecStartPre, ExecStart. The
# daemon's pid is left in DEB_DAEMON_PID, its output in $PHI_TMP/phiaccessd.log.
deb_daemon_start() {
    local name cmd umask
    rm -rf "${DEB_ROOT:?}$DEB_CREDS_DIR"
    mkdir -p "$DEB_ROOT${DEB_CREDS_DIR%/*}"
    mkdir -m 0700 "$DEB_ROOT$DEB_CREDS_DIR"
    for name in $(_deb_unit_value RuntimeDirectory); do
        mkdir -p "$DEB_ROOT/run/$name"
        chmod 0755 "$DEB_ROOT/run/$name"
    done
    while IFS= read -r name; do
        [ -n "$name" ] || continue
        # With no path, systemd looks the name up in the credential stores and
        # skips a credential it does not find there.
        [ -f "$DEB_ROOT/etc/credstore.encrypted/$name" ] || continue
        (umask 0377 && in_root systemd-creds decrypt --name="$name" "/etc/credstore.encrypted/$name" \
            "$DEB_CREDS_DIR/$name") || phi_fail "systemd-creds decrypt of the credential $name"
    done < <(_deb_unit_value LoadCredentialEncrypted)
    umask=$(_deb_unit_value UMask)
    cmd=$(_deb_unit_value ExecStartPre)
    # shellcheck disable=SC2086 # the unit's command line, split as systemd splits this one
    phi_check "ExecStartPre ($cmd) passes" in_root CREDENTIALS_DIRECTORY="$DEB_CREDS_DIR" $cmd
    cmd=$(_deb_unit_value ExecStart)
    # shellcheck disable=SC2086,SC2016
    phi_spawn phiaccessd chroot "$DEB_ROOT" env -i PATH=/usr/sbin:/usr/bin CREDENTIALS_DIRECTORY="$DEB_CREDS_DIR" \
        bash -c 'umask "$1"; shift; exec "$@"' umask "${umask:-0022}" $cmd
    DEB_DAEMON_PID=$PHI_LAST_PID
    phi_wait_for --timeout 15 --what "phiaccessd's sockets" \
        test -S "$DEB_ROOT/run/phiaccessd/socket" -a -S "$DEB_ROOT/run/phiaccessd/pam" ||
        phi_fail "phiaccessd did not start from the installed unit" "$(tail -n 20 "$PHI_TMP/phiaccessd.log")"
}

deb_daemon_stop() {
    phi_stop_pid "$DEB_DAEMON_PID"
    rm -rf "${DEB_ROOT:?}$DEB_CREDS_DIR"
}

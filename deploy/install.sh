#!/usr/bin/env bash
# deploy/install.sh — install linecert as a systemd service (docs/operations.md).
#
# For plant IT, after deploy/setup.sh has built the programs. It creates the
# accounts, installs the programs, the unit and the documentation, and lays
# out /etc/linecert and /var/lib/linecert with the owners and modes the
# daemon checks. It is idempotent: run it again after every rebuild. It
# never touches an existing station.ini or PIN file, and it starts nothing
# unless --start is given.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: deploy/install.sh [--root DIR] [--build-dir DIR] [--audit-readers] [--no-acl]
                         [--start]

Installs the built linecert programs and the linecertd systemd unit, and
prepares the accounts and folders the service needs. Safe to run again.
Starts nothing unless --start is given.

  --root DIR       install into DIR instead of / (an image, a chroot, a test
                   tree). Accounts are added to DIR/etc/passwd and
                   DIR/etc/group when those files exist, and skipped
                   otherwise; systemctl is never called.
  --build-dir DIR  the CMake build to install (default: build/ next to this
                   script's folder). Its CMAKE_INSTALL_PREFIX decides where
                   the programs go: linecertd looks for linecert-signer there.
  --audit-readers  let the groups linecert-operators and linecert-security
                   read the audit store (linecert-ui, linecert audit verify):
                   a POSIX ACL on /var/lib/linecert. Needs setfacl (acl).
  --no-acl         do not give those two groups read access to
                   /etc/linecert (which linecert status|pause|resume and
                   linecert-ui need to read station.ini).
  --start          systemctl enable --now linecertd (not with --root)
  -h, --help       show this help

What it sets up:
  user linecert (system, no login, home /var/lib/linecert), its group
  linecert, and the groups linecert-operators and linecert-security
  PREFIX/bin/linecert, PREFIX/sbin/linecertd,
  PREFIX/libexec/linecert/linecert-signer (cmake --install)
  /etc/systemd/system/linecertd.service, PREFIX/share/doc/linecert/*.md
  /etc/linecert       root:linecert 0750, with station.ini.example
  /var/lib/linecert   linecert:linecert 0700
EOF
}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
root=""
build="$repo/build"
audit_readers=0
acl=1
start=0

while [ $# -gt 0 ]; do
    case $1 in
    --root)
        [ $# -ge 2 ] || { echo "install.sh: --root needs a folder" >&2; exit 2; }
        root=$2
        shift
        ;;
    --build-dir)
        [ $# -ge 2 ] || { echo "install.sh: --build-dir needs a folder" >&2; exit 2; }
        build=$2
        shift
        ;;
    --audit-readers) audit_readers=1 ;;
    --no-acl) acl=0 ;;
    --start) start=1 ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "install.sh: unknown option: $1" >&2
        usage >&2
        exit 2
        ;;
    esac
    shift
done

say() { printf 'install.sh: %s\n' "$*"; }
warn() { printf 'install.sh: warning: %s\n' "$*" >&2; }
die() {
    printf 'install.sh: %s\n' "$*" >&2
    exit 1
}

if [ -n "$root" ]; then
    mkdir -p "$root"
    root=$(cd "$root" && pwd -P)
    [ "$root" != / ] || root=""
    [ $start -eq 0 ] || die "--start cannot be used with --root"
fi
is_root=0
[ "$(id -u)" -eq 0 ] && is_root=1
[ $is_root -eq 1 ] || [ -n "$root" ] || die "run as root (or install into a folder with --root DIR)"

# ---- the build ----
[ -f "$build/CMakeCache.txt" ] || die "$build is not a CMake build folder (run deploy/setup.sh first, or give --build-dir)"
build=$(cd "$build" && pwd -P)
for prog in linecert linecertd linecert-signer; do
    [ -x "$build/$prog" ] || die "$build/$prog is missing: build the project first (deploy/setup.sh)"
done
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
[ -n "$prefix" ] || die "$build/CMakeCache.txt names no CMAKE_INSTALL_PREFIX"

# ---- accounts ----
# Without --root the system's tools and databases; with --root the files in
# DIR/etc (useradd/groupadd --prefix), if it has them.
accounts=1
if [ -n "$root" ] && ! { [ -f "$root/etc/passwd" ] && [ -f "$root/etc/group" ]; }; then
    accounts=0
    warn "$root/etc/passwd or $root/etc/group missing: no accounts created, files stay owned by the installing user"
fi
if [ $accounts -eq 1 ] && [ $is_root -eq 0 ]; then
    accounts=0
    warn "not root: no accounts created, files stay owned by the installing user"
fi

group_id() {
    if [ -z "$root" ]; then
        getent group "$1" | cut -d: -f3
    else
        awk -F: -v n="$1" '$1 == n { print $3 }' "$root/etc/group"
    fi
}
user_id() {
    if [ -z "$root" ]; then
        getent passwd "$1" | cut -d: -f3
    else
        awk -F: -v n="$1" '$1 == n { print $3 }' "$root/etc/passwd"
    fi
}
prefix_opt=()
[ -z "$root" ] || prefix_opt=(--prefix "$root")

if [ $accounts -eq 1 ]; then
    for g in linecert-operators linecert-security; do
        if [ -z "$(group_id "$g")" ]; then
            groupadd "${prefix_opt[@]}" --system "$g"
            say "created group $g"
        fi
    done
    if [ -z "$(user_id linecert)" ]; then
        # --user-group makes the group linecert too (if it is missing).
        if [ -n "$(group_id linecert)" ]; then
            useradd "${prefix_opt[@]}" --system --gid linecert --home-dir /var/lib/linecert \
                --no-create-home --shell /usr/sbin/nologin --comment "linecert station daemon" linecert
        else
            useradd "${prefix_opt[@]}" --system --user-group --home-dir /var/lib/linecert \
                --no-create-home --shell /usr/sbin/nologin --comment "linecert station daemon" linecert
        fi
        say "created system user linecert"
    fi
fi
uid=$(user_id linecert || true)
gid=$(group_id linecert || true)
ops=$(group_id linecert-operators || true)
sec=$(group_id linecert-security || true)
own=0
[ $is_root -eq 1 ] && [ -n "$uid" ] && [ -n "$gid" ] && own=1

# ---- programs, unit, documentation ----
say "installing the programs of $build under $root$prefix"
DESTDIR="$root" cmake --install "$build" | sed 's/^/  /'

unitdir="$root/etc/systemd/system"
install -d -m 0755 "$unitdir"
# The unit names /usr; a build for another prefix gets its own paths.
sed -e "s#/usr/sbin/linecertd#$prefix/sbin/linecertd#" \
    -e "s#/usr/share/doc/linecert#$prefix/share/doc/linecert#" \
    "$repo/deploy/linecertd.service" >"$unitdir/linecertd.service.tmp"
chmod 0644 "$unitdir/linecertd.service.tmp"
mv -f "$unitdir/linecertd.service.tmp" "$unitdir/linecertd.service"
say "installed $unitdir/linecertd.service"

docdir="$root$prefix/share/doc/linecert"
install -d -m 0755 "$docdir"
install -m 0644 "$repo"/docs/*.md "$docdir/"

# ---- folders ----
etc="$root/etc/linecert"
state="$root/var/lib/linecert"
if [ $own -eq 1 ]; then
    install -d -m 0750 -o 0 -g "$gid" "$etc"
    install -m 0640 -o 0 -g "$gid" "$repo/deploy/station.example.ini" "$etc/station.ini.example"
    install -d -m 0700 -o "$uid" -g "$gid" "$state"
else
    install -d -m 0750 "$etc"
    install -m 0640 "$repo/deploy/station.example.ini" "$etc/station.ini.example"
    install -d -m 0700 "$state"
fi
say "prepared $etc (0750) and $state (0700)"

# The daemon refuses a configuration that someone other than root (or the
# daemon's user) could have written: say so now rather than at the first start.
if [ -f "$etc/station.ini" ]; then
    mode=$(stat -c %a "$etc/station.ini")
    owner=$(stat -c %u "$etc/station.ini")
    if [ $((8#$mode & 8#022)) -ne 0 ] || { [ "$owner" != 0 ] && [ "$owner" != "$uid" ]; }; then
        warn "$etc/station.ini is mode $mode, owner uid $owner: linecertd will refuse it; chown root:linecert and chmod 0640 it"
    fi
fi

# ---- read access for the two groups (POSIX ACLs) ----
if [ $acl -eq 1 ] || [ $audit_readers -eq 1 ]; then
    if ! command -v setfacl >/dev/null; then
        warn "setfacl not found (apt-get install acl): members of linecert-operators and linecert-security cannot read $etc/station.ini, which linecert status|pause|resume and linecert-ui need; see docs/operations.md"
    elif [ -z "$ops" ] || [ -z "$sec" ]; then
        warn "groups linecert-operators/linecert-security not found: no ACLs set"
    else
        if [ $acl -eq 1 ]; then
            setfacl -m "g:$ops:rx,g:$sec:rx" "$etc"
            [ ! -f "$etc/station.ini" ] || setfacl -m "g:$ops:r,g:$sec:r" "$etc/station.ini"
            setfacl -m "g:$ops:r,g:$sec:r" "$etc/station.ini.example"
            say "linecert-operators and linecert-security may read $etc"
        fi
        if [ $audit_readers -eq 1 ]; then
            # The default entries reach the files linecertd creates there
            # (the audit store and its -wal/-shm), whatever its umask.
            setfacl -m "g:$ops:rx,g:$sec:rx" -m "d:g:$ops:r,d:g:$sec:r" "$state"
            find "$state" -mindepth 1 -maxdepth 1 -type f -name 'audit.db*' \
                -exec setfacl -m "g:$ops:r,g:$sec:r" {} +
            say "linecert-operators and linecert-security may read the audit store in $state"
        fi
    fi
fi

# ---- systemd ----
if [ -z "$root" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    if [ $start -eq 1 ]; then
        systemctl enable --now linecertd.service
        say "linecertd enabled and started"
    fi
elif [ $start -eq 1 ]; then
    die "systemd is not running here: cannot start linecertd"
fi

if [ $start -eq 0 ]; then
    cat <<EOF
install.sh: done. Nothing was started. Next:
  1. $etc/station.ini from station.ini.example: chown root:linecert, chmod 0640
  2. the token PIN: install -m 0600 -o linecert -g linecert PINFILE $etc/pin
  3. people: usermod -aG linecert-operators NAME; usermod -aG linecert-security NAME
  4. systemctl enable --now linecertd   (or run this script again with --start)
EOF
fi

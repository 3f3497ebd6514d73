#!/usr/bin/env bash
# Make a Debian/Ubuntu host ready for the isobench podman and sandbox backends, idempotently:
#   1. install podman (crun, conmon, uidmap, slirp4netns, fuse-overlayfs, the containers' default
#      seccomp profile), bubblewrap and libseccomp;
#   2. create the rootless user (isobench-rootless) with /etc/subuid and /etc/subgid ranges.
# Podman needs no daemon: the backend starts `podman system service` itself, for each run.
# Run as root. Safe to run again: it only does what is missing.
set -euo pipefail

readonly ROOTLESS_USER=${ISOBENCH_PODMAN_USER:-isobench-rootless}
readonly SUBID_COUNT=65536

say() { printf '[provision-podman] %s\n' "$*"; }
die() { printf '[provision-podman] ERROR: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages and creates a user)"

packages=(podman crun conmon uidmap slirp4netns fuse-overlayfs golang-github-containers-common
  bubblewrap libseccomp2 python3-seccomp)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  command -v apt-get >/dev/null 2>&1 || die "${missing[*]} missing and no apt-get: install them by hand"
  say "installing ${missing[*]} from the distribution"
  apt-get update -qq || say "apt-get update failed; trying the install with the current lists"
  tries=0
  until DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; do
    tries=$((tries + 1))
    ((tries < 10)) || die "apt-get install ${missing[*]} failed"
    say "apt-get failed (dpkg lock held?); retrying in 6 s ($tries/10)"
    sleep 6
  done
else
  say "packages already installed: ${packages[*]}"
fi

# --- rootless user ------------------------------------------------------------------------------
if ! id "$ROOTLESS_USER" >/dev/null 2>&1; then
  say "creating the rootless user $ROOTLESS_USER"
  useradd --system --create-home --shell /usr/sbin/nologin "$ROOTLESS_USER"
fi
uid=$(id -u "$ROOTLESS_USER")
# A subordinate range no other entry overlaps: after the highest range already allocated.
next_free() {
  awk -F: -v min=200000 'BEGIN{n=min} {end=$2+$3; if (end>n) n=end} END{print n}' "$1" 2>/dev/null || echo 200000
}
for file in /etc/subuid /etc/subgid; do
  touch "$file"
  if grep -q "^$ROOTLESS_USER:" "$file"; then
    say "$file already maps $ROOTLESS_USER ($(grep "^$ROOTLESS_USER:" "$file"))"
  else
    start=$(next_free "$file")
    echo "$ROOTLESS_USER:$start:$SUBID_COUNT" >>"$file"
    say "$file: $ROOTLESS_USER gets $start..$((start + SUBID_COUNT - 1))"
  fi
done
say "ready: podman $(podman --version | awk '{print $3}'), bwrap $(bwrap --version | awk '{print $2}'), rootless user $ROOTLESS_USER (uid $uid)"

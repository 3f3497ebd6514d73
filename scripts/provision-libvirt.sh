#!/usr/bin/env bash
# Provision QEMU + libvirt + Vagrant (vagrant-libvirt) on a Debian/Ubuntu host, as root.
#
# Idempotent: every step checks first and says what it does. Works without an init system
# (containers, CI sandboxes): the daemons are then started by hand.
#   scripts/provision-libvirt.sh            # called by scripts/provision / `isobench provision`
set -euo pipefail

PACKAGES=(qemu-system-x86 qemu-utils libvirt-daemon-system libvirt-clients dnsmasq-base
          iptables vagrant vagrant-libvirt e2fsprogs)
VIRSH=(virsh -c qemu:///system)

step() { printf '==> [libvirt] %s\n' "$*"; }
die() { printf 'provision-libvirt: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages and starts libvirtd)"
command -v apt-get >/dev/null || die "only Debian/Ubuntu (apt-get) hosts are supported"

# 1. packages -------------------------------------------------------------------------------
missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [[ $status == "install ok installed" ]] || missing+=("$pkg")
done
if ((${#missing[@]})); then
    step "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Another apt/dpkg may hold the lock (other provisioning steps): retry for a while.
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
        if apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
            break
        fi
        ((attempt < 10)) || die "apt-get install failed"
        step "apt/dpkg busy, retrying in 10 s (attempt $attempt)"
        sleep 10
    done
else
    step "packages present: ${PACKAGES[*]}"
fi

# 2. QEMU must be able to read the box's kernel/initrd under VAGRANT_HOME (/root/.vagrant.d):
#    run QEMU as root when libvirt would drop to libvirt-qemu.
qemu_conf=/etc/libvirt/qemu.conf
conf_changed=0
if [[ -f $qemu_conf ]]; then
    if ! grep -qE '^user *= *"root"' "$qemu_conf" || ! grep -qE '^group *= *"root"' "$qemu_conf"; then
        step "setting user/group = \"root\" in $qemu_conf (QEMU must read the box kernel)"
        sed -i -E '/^(user|group) *=/d' "$qemu_conf"
        printf 'user = "root"\ngroup = "root"\n' >>"$qemu_conf"
        conf_changed=1
    else
        step "$qemu_conf already runs QEMU as root"
    fi
fi

# 3. daemons ----------------------------------------------------------------------------------
have_systemd=0
[[ -d /run/systemd/system ]] && have_systemd=1
if ((have_systemd)); then
    step "systemd present: enabling virtlogd and libvirtd"
    systemctl enable --now virtlogd.socket libvirtd.service >/dev/null 2>&1 \
        || systemctl start virtlogd libvirtd
    ((conf_changed)) && { step "restarting libvirtd"; systemctl restart libvirtd; }
else
    mkdir -p /run/libvirt /var/log/libvirt
    if ! pgrep -x virtlogd >/dev/null; then
        step "starting virtlogd (no init system)"
        virtlogd -d
    else
        step "virtlogd running"
    fi
    if pgrep -x libvirtd >/dev/null && ((conf_changed)); then
        step "restarting libvirtd to apply $qemu_conf"
        # libvirtd -d writes its pid file; stop exactly that process.
        [[ -s /run/libvirtd.pid ]] && kill -TERM "$(cat /run/libvirtd.pid)" 2>/dev/null || true
        for _ in $(seq 50); do pgrep -x libvirtd >/dev/null || break; sleep 0.2; done
    fi
    if ! pgrep -x libvirtd >/dev/null; then
        step "starting libvirtd (no init system)"
        libvirtd -d
    else
        step "libvirtd running"
    fi
fi

step "waiting for libvirtd to answer"
for i in $(seq 60); do
    "${VIRSH[@]}" version >/dev/null 2>&1 && break
    ((i < 60)) || die "libvirtd does not answer on qemu:///system (see /var/log/libvirt)"
    sleep 0.5
done
"${VIRSH[@]}" version | sed -e '/^ *$/d' -e 's/^/    /'

# 4. the default NAT network (vagrant-libvirt creates its own management network itself) -------
# (output captured first: `grep -q` closing the pipe early would trip pipefail)
if net_info=$("${VIRSH[@]}" net-info default 2>/dev/null); then
    if grep -qE '^Active: +no' <<<"$net_info"; then
        step "starting libvirt network 'default'"
        "${VIRSH[@]}" net-start default >/dev/null
    else
        step "libvirt network 'default' active"
    fi
fi

# 5. vagrant-libvirt plugin visible to vagrant -------------------------------------------------
plugins=$(vagrant plugin list 2>/dev/null || true)
if grep -q vagrant-libvirt <<<"$plugins"; then
    step "vagrant-libvirt plugin: $(grep vagrant-libvirt <<<"$plugins")"
else
    die "vagrant does not list the vagrant-libvirt plugin (apt-get install vagrant-libvirt)"
fi
step "done"

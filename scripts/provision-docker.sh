#!/usr/bin/env bash
# Make a Debian/Ubuntu host ready for the isobench docker backend, idempotently:
#   1. install docker.io and crun from the distribution when missing;
#   2. register crun as a dockerd runtime in /etc/docker/daemon.json (merged, never clobbered);
#   3. start dockerd when nothing manages it and the socket does not answer;
#   4. wait (up to ISOBENCH_DOCKER_WAIT seconds, default 60) until `docker info` answers.
# Every step is announced; a failure exits non-zero with the reason.
# Run as root. Safe to run again: it only does what is missing.
set -euo pipefail

readonly DAEMON_JSON=/etc/docker/daemon.json
readonly LOG=/var/log/isobench-dockerd.log
readonly PIDFILE=/run/isobench-dockerd.pid
readonly WAIT_SECONDS=${ISOBENCH_DOCKER_WAIT:-60}

say() { printf '[provision-docker] %s\n' "$*"; }
die() { printf '[provision-docker] ERROR: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages and starts dockerd)"

apt_install() {
  # The dpkg lock may be held by another provisioning step: retry for a while.
  local tries=0
  until DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"; do
    tries=$((tries + 1))
    ((tries < 10)) || die "apt-get install $* failed (see output above)"
    say "apt-get failed (dpkg lock held?); retrying in 6 s ($tries/10)"
    sleep 6
  done
}

# --- 1. packages -----------------------------------------------------------------------------
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v crun >/dev/null 2>&1 || missing+=(crun)
if ((${#missing[@]})); then
  command -v apt-get >/dev/null 2>&1 || die "${missing[*]} missing and no apt-get: install them by hand"
  say "installing ${missing[*]} from the distribution"
  apt-get update -qq || say "apt-get update failed; trying the install with the current lists"
  apt_install "${missing[@]}"
else
  say "docker.io and crun are installed ($(dockerd --version 2>/dev/null || echo dockerd); crun $(crun --version 2>/dev/null | head -n1 | awk '{print $3}'))"
fi

# --- 2. crun runtime in daemon.json ------------------------------------------------------------
crun_path=$(command -v crun)
mkdir -p "$(dirname "$DAEMON_JSON")"
config_changed=$(
  python3 - "$DAEMON_JSON" "$crun_path" <<'EOF'
import json, os, sys
path, crun = sys.argv[1], sys.argv[2]
try:
    with open(path) as fh:
        text = fh.read()
    config = json.loads(text) if text.strip() else {}
except FileNotFoundError:
    config = {}
except json.JSONDecodeError as exc:
    sys.exit(f"{path} is not valid JSON ({exc}); fix it by hand, refusing to overwrite it")
runtimes = config.setdefault("runtimes", {})
if runtimes.get("crun", {}).get("path") == crun:
    print("no")
    sys.exit(0)
runtimes["crun"] = {"path": crun}
tmp = path + ".isobench-tmp"
with open(tmp, "w") as fh:
    json.dump(config, fh, indent=2)
    fh.write("\n")
os.replace(tmp, path)
print("yes")
EOF
) || die "could not merge the crun runtime into $DAEMON_JSON"
if [[ $config_changed == yes ]]; then
  say "registered crun ($crun_path) as a runtime in $DAEMON_JSON"
else
  say "crun already registered in $DAEMON_JSON"
fi

# --- 2b. hybrid cgroups: crun refuses to run while cgroup2 holds any controller -------------------
# On a cgroup v1 host whose unified (v2) hierarchy still owns a controller nobody mounted in v1
# (typically hugetlb), crun fails with "cgroups in hybrid mode not supported, drop all
# controllers from cgroupv2". Mounting that controller as a v1 hierarchy moves it out of v2.
# Only controllers v2 does not actively use (absent from subtree_control) are moved.
unified=/sys/fs/cgroup/unified
if [[ ${ISOBENCH_NO_CGROUP_FIX:-0} != 1 && ! -e /sys/fs/cgroup/cgroup.controllers && -r $unified/cgroup.controllers ]]; then
  for controller in $(<"$unified/cgroup.controllers"); do
    if grep -qw "$controller" "$unified/cgroup.subtree_control" 2>/dev/null; then
      say "NOTE: cgroup2 controller $controller is in use; crun will not work on this host"
      continue
    fi
    say "hybrid cgroups: mounting the $controller controller as cgroup v1 so crun can run"
    mkdir -p "/sys/fs/cgroup/$controller"
    mount -t cgroup -o "$controller" cgroup "/sys/fs/cgroup/$controller" ||
      say "NOTE: could not move $controller out of cgroup2; crun will not work on this host"
  done
fi

# --- 3. dockerd --------------------------------------------------------------------------------
docker_answers() { docker info >/dev/null 2>&1; }

our_dockerd_pid() {
  # The pid in our pidfile, only if it is still a dockerd (pids get reused).
  [[ -s $PIDFILE ]] || return 1
  local pid
  pid=$(<"$PIDFILE")
  [[ -r /proc/$pid/comm && $(</proc/"$pid"/comm) == dockerd ]] || return 1
  echo "$pid"
}

init_manages_docker() {
  [[ $(cat /proc/1/comm 2>/dev/null) == systemd ]] && systemctl cat docker.service >/dev/null 2>&1
}

start_dockerd() {
  if init_manages_docker; then
    say "starting dockerd through systemd"
    systemctl start docker.service || die "systemctl start docker failed: see journalctl -u docker"
    return
  fi
  say "no init system manages dockerd: starting it with setsid (log: $LOG, pidfile: $PIDFILE)"
  setsid dockerd >>"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
}

wait_for_docker() {
  say "waiting up to ${WAIT_SECONDS}s for dockerd to answer"
  local deadline=$((SECONDS + WAIT_SECONDS))
  until docker_answers; do
    if ((SECONDS >= deadline)); then
      die "dockerd did not answer within ${WAIT_SECONDS}s; last lines of $LOG: $(tail -n 5 "$LOG" 2>/dev/null | tr '\n' ' ')"
    fi
    if [[ -s $PIDFILE ]] && ! our_dockerd_pid >/dev/null; then
      die "dockerd exited during start-up; last lines of $LOG: $(tail -n 5 "$LOG" 2>/dev/null | tr '\n' ' ')"
    fi
    sleep 0.5
  done
  say "dockerd answers"
}

crun_registered() { docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"crun"'; }

if docker_answers; then
  say "dockerd already answers"
elif pgrep -x dockerd >/dev/null 2>&1; then
  say "a dockerd process exists but does not answer yet"
  wait_for_docker
else
  start_dockerd
  wait_for_docker
fi

if ! crun_registered; then
  if pid=$(our_dockerd_pid); then
    # dockerd reloads "runtimes" from daemon.json on SIGHUP without stopping containers.
    say "crun not known to dockerd (pid $pid, started by isobench): reloading its configuration"
    kill -HUP "$pid"
    for _ in $(seq 1 20); do crun_registered && break; sleep 0.5; done
    if ! crun_registered; then
      say "reload did not register crun: restarting our dockerd"
      kill -TERM "$pid"
      for _ in $(seq 1 60); do [[ -d /proc/$pid ]] || break; sleep 0.5; done
      [[ -d /proc/$pid ]] && die "dockerd (pid $pid) did not stop within 30 s"
      start_dockerd
      wait_for_docker
    fi
  else
    say "NOTE: dockerd was not started by isobench, so it is left alone; crun stays unavailable" \
      "until dockerd is restarted or reloaded (kill -HUP <dockerd pid>)"
  fi
fi

runtimes=$(docker info --format '{{range $name, $_ := .Runtimes}}{{$name}} {{end}}' 2>/dev/null || true)
say "ready: $(docker info --format 'engine {{.ServerVersion}}, storage {{.Driver}}, cgroup v{{.CgroupVersion}} ({{.CgroupDriver}}), default runtime {{.DefaultRuntime}}' 2>/dev/null); runtimes: ${runtimes:-?}"

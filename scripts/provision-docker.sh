#!/usr/bin/env bash
# Make a Debian/Ubuntu host ready for the isobench docker backend, idempotently:
#   1. install docker.io, crun and runsc (gVisor) from the distribution when missing;
#   2. register crun, and runsc with the gVisor platform that works on this host (detected by
#      running a sandbox, never assumed), as dockerd runtimes in /etc/docker/daemon.json
#      (merged, never clobbered);
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
[[ ${ISOBENCH_NO_GVISOR:-0} == 1 ]] || command -v runsc >/dev/null 2>&1 || missing+=(runsc)
if ((${#missing[@]})); then
  command -v apt-get >/dev/null 2>&1 || die "${missing[*]} missing and no apt-get: install them by hand"
  say "installing ${missing[*]} from the distribution"
  apt-get update -qq || say "apt-get update failed; trying the install with the current lists"
  apt_install "${missing[@]}"
else
  say "docker.io and crun are installed ($(dockerd --version 2>/dev/null || echo dockerd); crun $(crun --version 2>/dev/null | head -n1 | awk '{print $3}'))"
fi

# --- 2. crun and runsc runtimes in daemon.json ------------------------------------------------
# gVisor's platform: the first of systrap, kvm, ptrace that runs a sandbox here within 20 s
# (systrap needs a newer runsc; kvm needs working hardware virtualization, and hangs on hosts
# whose /dev/kvm cannot run it). Its network stack does not work in every host network
# namespace, so the sandbox gets none (--network=none): the variant label says so.
# The platform registered by an earlier run is tried first (a kvm probe costs 20 s of timeout);
# ISOBENCH_GVISOR_REDETECT=1 tries them all in order again.
runsc_platform=""
runsc_path=$(command -v runsc || true)
if [[ -n $runsc_path ]]; then
  candidates=(systrap kvm ptrace)
  registered=$(grep -o -- '--platform=[a-z]*' "$DAEMON_JSON" 2>/dev/null | head -n 1 | cut -d= -f2 || true)
  if [[ -n $registered && ${ISOBENCH_GVISOR_REDETECT:-0} != 1 ]]; then
    candidates=("$registered" "${candidates[@]/$registered/}")
  fi
  for platform in "${candidates[@]}"; do
    [[ -n $platform ]] || continue
    if out=$(cd / && timeout -k 5 20 "$runsc_path" --platform="$platform" --network=none do uname -r 2>&1) \
        && [[ $out == *[0-9].[0-9]* ]]; then
      runsc_platform=$platform
      say "gVisor platform $platform works here (kernel inside: ${out##*$'\n'})"
      break
    fi
    say "gVisor platform $platform does not work here: $(tail -n 1 <<<"${out:-timed out}")"
  done
  [[ -n $runsc_platform ]] || say "NOTE: no gVisor platform works on this host; runsc is not registered"
fi
crun_path=$(command -v crun)
mkdir -p "$(dirname "$DAEMON_JSON")"
config_changed=$(
  python3 - "$DAEMON_JSON" "$crun_path" "$runsc_path" "$runsc_platform" <<'EOF'
import json, os, sys
path, crun, runsc, platform = sys.argv[1:5]
try:
    with open(path) as fh:
        text = fh.read()
    config = json.loads(text) if text.strip() else {}
except FileNotFoundError:
    config = {}
except json.JSONDecodeError as exc:
    sys.exit(f"{path} is not valid JSON ({exc}); fix it by hand, refusing to overwrite it")
runtimes = config.setdefault("runtimes", {})
wanted = {"crun": {"path": crun}}
if runsc and platform:
    wanted["runsc"] = {"path": runsc, "runtimeArgs": [f"--platform={platform}", "--network=none"]}
if all(runtimes.get(name) == spec for name, spec in wanted.items()):
    print("no")
    sys.exit(0)
runtimes.update(wanted)
tmp = path + ".isobench-tmp"
with open(tmp, "w") as fh:
    json.dump(config, fh, indent=2)
    fh.write("\n")
os.replace(tmp, path)
print("yes")
EOF
) || die "could not merge the crun/runsc runtimes into $DAEMON_JSON"
if [[ $config_changed == yes ]]; then
  say "registered crun ($crun_path)${runsc_platform:+ and runsc (platform $runsc_platform)} as runtimes in $DAEMON_JSON"
else
  say "crun${runsc_platform:+ and runsc} already registered in $DAEMON_JSON"
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

# Every runtime daemon.json names must be known to the running dockerd (else: reload it).
crun_registered() {
  local known
  known=$(docker info --format '{{json .Runtimes}}' 2>/dev/null) || return 1
  [[ $known == *'"crun"'* ]] || return 1
  if [[ -n $runsc_platform ]]; then
    [[ $known == *"--platform=$runsc_platform"* ]] || return 1
  fi
}

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
    say "runtimes in $DAEMON_JSON not yet known to dockerd (pid $pid, started by isobench): reloading its configuration (SIGHUP)"
    kill -HUP "$pid"
    for _ in $(seq 1 20); do crun_registered && break; sleep 0.5; done
    if ! crun_registered; then
      say "reload did not register the runtimes: restarting our dockerd"
      kill -TERM "$pid"
      for _ in $(seq 1 60); do [[ -d /proc/$pid ]] || break; sleep 0.5; done
      [[ -d /proc/$pid ]] && die "dockerd (pid $pid) did not stop within 30 s"
      start_dockerd
      wait_for_docker
    fi
  else
    say "NOTE: dockerd was not started by isobench, so it is left alone; crun/runsc stay unavailable" \
      "until dockerd is restarted or reloaded (kill -HUP <dockerd pid>)"
  fi
fi

runtimes=$(docker info --format '{{range $name, $_ := .Runtimes}}{{$name}} {{end}}' 2>/dev/null || true)
say "ready: $(docker info --format 'engine {{.ServerVersion}}, storage {{.Driver}}, cgroup v{{.CgroupVersion}} ({{.CgroupDriver}}), default runtime {{.DefaultRuntime}}' 2>/dev/null); runtimes: ${runtimes:-?}"

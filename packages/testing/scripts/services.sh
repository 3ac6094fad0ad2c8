#!/usr/bin/env bash
# The real services nabla-build's tests run against: a private Docker engine (its own dockerd, containerd,
# bridge, data-root and exec-root) and two registries (Debian's docker-registry, distribution v2) on 127.0.0.1:
# one open, one behind htpasswd basic auth.
#
#   services.sh start    start what is not running (reuses what is running and healthy); prints `env`
#   services.sh stop     kill running containers, stop dockerd and the registries, unmount leftovers,
#                        remove the bridge this script created (images and registry data are kept)
#   services.sh env      print shell-sourceable settings: eval "$(bash services.sh env)"
#   services.sh status   exit 0 when everything is running and answers
#   services.sh reload [RUNTIME [PATH]]
#                        make the private dockerd re-read its daemon.json ($NABLA_SERVICES_DIR/daemon.json,
#                        where `nabla-build runtime register --daemon-json` adds runnc): SIGHUP to that
#                        dockerd only, then wait until the engine lists RUNTIME (with that PATH)
#   services.sh purge    stop, then delete the whole state directory
#
# (packages/testing/scripts/services.sh from the repository root; the vitest global setup runs it.)
#
# Settings (environment):
#   NABLA_SERVICES_DIR          state directory, absolute and short (unix socket paths are limited to 107
#                               bytes); default /tmp/nbs
#   NABLA_SERVICES_BRIDGE       bridge for containers; default nbs0
#   NABLA_SERVICES_BRIDGE_CIDR  its address (link-local on purpose); default 169.254.213.1/24
#   NABLA_SERVICES_TIMEOUT      seconds to wait for readiness; default 60
#
# Everything runs as root. Processes are only ever signalled by PIDs this script (or dockerd/containerd
# for their children) recorded under the state directory, after checking that the PID still runs the
# expected program with this state directory on its command line.
set -euo pipefail

# This script and its neighbour as messages name them (the path it was run by).
SELF="bash $0"
HOST_DEPS="bash $(dirname "$0")/host-deps.sh"

S=${NABLA_SERVICES_DIR:-/tmp/nbs}
BRIDGE=${NABLA_SERVICES_BRIDGE:-nbs0}
BRIDGE_CIDR=${NABLA_SERVICES_BRIDGE_CIDR:-169.254.213.1/24}
TIMEOUT=${NABLA_SERVICES_TIMEOUT:-60}
AUTH_USER=nabla
AUTH_PASSWORD=nabla-test-password
HTTP_SECRET=nabla-build-test-registry-http-secret
# Pools for `docker network create`: link-local too, away from the bridge, never a private range.
ADDRESS_POOL=169.254.216.0/21

export PATH="$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SOCK=$S/docker.sock
EXEC=$S/exec
DATA=$S/docker
REGISTRIES=(registry auth-registry)

log() { echo "services: $*" >&2; }
die() {
  echo "services: error: $*" >&2
  exit 1
}

check_state_dir() {
  [[ $S == /* ]] || die "NABLA_SERVICES_DIR must be an absolute path (got '$S')"
  S=${S%/}
  # containerd's sockets live under <exec-root>/containerd/ (e.g. .../containerd/containerd.sock.ttrpc).
  ((${#S} <= 60)) || die "NABLA_SERVICES_DIR '$S' is too long (${#S} chars, max 60): unix socket paths under it would exceed 107 bytes"
}

# ---------------------------------------------------------------------------------------------- processes

# Prints the PID recorded in FILE when that process is alive (not a zombie), runs COMM and has NEEDLE on
# its command line. Returns 1 otherwise.
live_pid() {
  local file=$1 comm=$2 needle=$3 pid
  [[ -s $file ]] || return 1
  pid=$(<"$file")
  pid_matches "$pid" "$comm" "$needle" || return 1
  echo "$pid"
}

pid_matches() {
  local pid=$1 comm=$2 needle=$3 stat cmdline
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  # Field 3 (after the parenthesised comm) is the state; Z = zombie, X = dead.
  stat=${stat##*) }
  [[ ${stat%% *} != [ZX] ]] || return 1
  [[ -z $comm || $(cat "/proc/$pid/comm" 2>/dev/null) == "$comm" ]] || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *"$needle"* ]]
}

alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != [ZX] ]]
}

ppid_of() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  read -r _ ppid _ <<<"$stat"
  echo "$ppid"
}

# Sends SIGTERM, waits up to GRACE seconds, then SIGKILL (and waits for it).
terminate() {
  local pid=$1 what=$2 grace=$3 i
  alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < grace * 10; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  log "$what (pid $pid) did not stop within ${grace}s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  log "warning: $what (pid $pid) is still alive after SIGKILL"
}

# ------------------------------------------------------------------------------------------------- engine

curl_() { curl --silent --noproxy '*' --max-time "${CURL_MAX_TIME:-3}" "$@"; }

docker_ping() { [[ $(curl_ --unix-socket "$SOCK" http://localhost/_ping 2>/dev/null) == OK ]]; }

dockerd_pid() { live_pid "$S/dockerd.pid" dockerd "--exec-root $EXEC "; }

dockerd_log_tail() {
  echo "--- last lines of $S/dockerd.log:" >&2
  grep -v 'module=grpc' "$S/dockerd.log" 2>/dev/null | tail -n 25 >&2 || true
}

wait_for_docker() {
  local pid=$1 deadline=$((SECONDS + TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! alive "$pid"; then
      dockerd_log_tail
      die "dockerd (pid $pid) exited before answering on $SOCK (log: $S/dockerd.log)"
    fi
    CURL_MAX_TIME=1 docker_ping && return 0
    sleep 0.1
  done
  dockerd_log_tail
  die "dockerd (pid $pid) did not answer GET /_ping on $SOCK within ${TIMEOUT}s (log: $S/dockerd.log); try: $SELF stop"
}

ensure_bridge() {
  if ip link show dev "$BRIDGE" >/dev/null 2>&1; then
    if [[ $(cat "$S/bridge" 2>/dev/null) == "$BRIDGE" ]]; then
      ip addr show dev "$BRIDGE" | grep -qF "inet $BRIDGE_CIDR " || ip addr add "$BRIDGE_CIDR" dev "$BRIDGE"
      ip link set "$BRIDGE" up
    elif ! ip -4 addr show dev "$BRIDGE" | grep -q 'inet '; then
      # dockerd would pick an address from its default (private) pools for it: refuse.
      die "bridge $BRIDGE exists, was not created by this script and has no IPv4 address; set NABLA_SERVICES_BRIDGE to another name"
    fi
    return 0
  fi
  ip link add "$BRIDGE" type bridge || die "cannot create bridge $BRIDGE (ip link add needs root and CAP_NET_ADMIN)"
  echo "$BRIDGE" >"$S/bridge"
  ip addr add "$BRIDGE_CIDR" dev "$BRIDGE"
  ip link set "$BRIDGE" up
}

# Kills what a crashed or killed dockerd left behind, found through what containerd and runc recorded under our
# exec-root: each task's bundle has init.pid (the container's init, whose parent is its shim) and address (the
# shim's socket). A shim counts as ours only when its command line names our containerd socket. Inits die
# first (SIGKILL), then the shims, then containerd itself (containerd.pid).
kill_engine_leftovers() {
  local bundle pid ppid sock shim_needle="-address $EXEC/containerd/containerd.sock" inits=() shims=() p
  [[ -d $EXEC ]] || return 0
  while IFS= read -r bundle; do
    if [[ -s $bundle/init.pid ]]; then
      pid=$(<"$bundle/init.pid")
      if alive "$pid" && ppid=$(ppid_of "$pid") && pid_matches "$ppid" '' "$shim_needle"; then
        inits+=("$pid")
        shims+=("$ppid")
      fi
    fi
    if [[ -s $bundle/address ]]; then
      sock=$(<"$bundle/address")
      sock=${sock#unix://}
      pid=$(ss -Hxlp 2>/dev/null | awk -v s="$sock" '$5 == s { if (match($0, /pid=[0-9]+/)) print substr($0, RSTART + 4, RLENGTH - 4); exit }')
      [[ -n $pid ]] && pid_matches "$pid" '' "$shim_needle" && shims+=("$pid")
    fi
  done < <(find "$EXEC/containerd" -mindepth 4 -maxdepth 4 -type d -path '*/io.containerd.runtime.v2.task/*' 2>/dev/null)
  for pid in "${inits[@]}"; do
    log "killing container process left behind (pid $pid)"
    kill -KILL "$pid" 2>/dev/null || true
  done
  for pid in $(printf '%s\n' "${shims[@]}" | sort -un); do
    log "stopping containerd-shim left behind (pid $pid)"
    terminate "$pid" containerd-shim 5
  done
  if pid=$(live_pid "$EXEC/containerd/containerd.pid" containerd "$EXEC/"); then
    log "stopping containerd left behind by a previous dockerd (pid $pid)"
    terminate "$pid" containerd 10
  fi
  return 0
}

# Unmounts every mount point under the state directory, deepest first (overlay, shm, netns leftovers).
unmount_leftovers() {
  local pass mp mounts
  for pass in 1 2 3 4 5; do
    mounts=$(awk -v pre="$S/" '{ p = $5; gsub(/\\040/, " ", p); if (index(p, pre) == 1) print length(p) "\t" p }' /proc/self/mountinfo |
      sort -rn | cut -f2-)
    [[ -n $mounts ]] || return 0
    while IFS= read -r mp; do
      umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || log "warning: cannot unmount $mp"
    done <<<"$mounts"
  done
  log "warning: mounts remain under $S: $(awk -v pre="$S/" 'index($5, pre) == 1 { print $5 }' /proc/self/mountinfo | tr '\n' ' ')"
}

start_dockerd() {
  local pid
  if pid=$(dockerd_pid); then
    if docker_ping; then
      log "dockerd already running (pid $pid), reusing it"
      REUSED+=(dockerd)
      return 0
    fi
    log "dockerd (pid $pid) is running but does not answer yet; waiting"
    wait_for_docker "$pid"
    REUSED+=(dockerd)
    return 0
  fi
  # Not running: clear what a previous instance may have left (a stale containerd.pid under the exec-root
  # whose PID got reused makes the next start time out).
  kill_engine_leftovers
  unmount_leftovers
  rm -rf "$EXEC"
  rm -f "$SOCK" "$S/dockerd.pid"
  mkdir -p "$EXEC" "$DATA"
  ensure_bridge
  cat >"$S/daemon.json" <<EOF
{
  "default-address-pools": [{ "base": "$ADDRESS_POOL", "size": 24 }]
}
EOF
  [[ -f $S/dockerd.log ]] && mv -f "$S/dockerd.log" "$S/dockerd.log.prev"
  local started=$SECONDS
  # Accidental pulls from Docker Hub must fail at once, not hang: point dockerd at a closed proxy.
  env -i PATH="$PATH" HOME=/root \
    HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 \
    NO_PROXY=localhost,127.0.0.0/8 no_proxy=localhost,127.0.0.0/8 \
    setsid dockerd \
    --config-file "$S/daemon.json" \
    --host "unix://$SOCK" \
    --data-root "$DATA" \
    --exec-root "$EXEC" \
    --pidfile "$EXEC/dockerd.pid" \
    --bridge "$BRIDGE" \
    --iptables=false --ip-masq=false --ip-forward=false \
    </dev/null >"$S/dockerd.log" 2>&1 9>&- &
  pid=$!
  echo "$pid" >"$S/dockerd.pid"
  wait_for_docker "$pid"
  log "dockerd started (pid $pid, $SOCK) in $((SECONDS - started))s"
  STARTED+=(dockerd)
}

# Kills running containers through the engine API (only our engine's socket is ever addressed).
kill_containers() {
  local ids id
  ids=$(curl_ --unix-socket "$SOCK" 'http://localhost/containers/json' | grep -o '"Id":"[0-9a-f]*"' | cut -d'"' -f4) || return 0
  for id in $ids; do
    log "killing container ${id:0:12}"
    curl_ --max-time 15 --unix-socket "$SOCK" -X POST "http://localhost/containers/$id/kill" -o /dev/null || true
  done
}

stop_dockerd() {
  local pid
  if pid=$(dockerd_pid); then
    docker_ping && kill_containers
    log "stopping dockerd (pid $pid)"
    terminate "$pid" dockerd 30
  fi
  kill_engine_leftovers
  rm -f "$S/dockerd.pid" "$SOCK"
}

# ------------------------------------------------------------------------------------------------ registries

registry_dir() { echo "$S/$1"; }

registry_pid() { live_pid "$S/$1/registry.pid" docker-registry "$S/$1/config.yml "; }

registry_expected_status() { [[ $1 == auth-registry ]] && echo 401 || echo 200; }

registry_status() { curl_ -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/v2/" 2>/dev/null || true; }

port_in_use() { [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]; }

write_registry_config() {
  local name=$1 port=$2 d
  d=$(registry_dir "$name")
  {
    cat <<EOF
version: 0.1
log:
  level: info
  fields:
    service: $name
storage:
  filesystem:
    rootdirectory: $d/data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: $HTTP_SECRET
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: false
EOF
    if [[ $name == auth-registry ]]; then
      cat <<EOF
auth:
  htpasswd:
    realm: nabla-build-test
    path: $d/htpasswd
EOF
    fi
  } >"$d/config.yml"
}

start_registry() {
  local name=$1 d pid port want code started=$SECONDS deadline
  d=$(registry_dir "$name")
  want=$(registry_expected_status "$name")
  if pid=$(registry_pid "$name"); then
    port=$(cat "$d/port" 2>/dev/null || true)
    if [[ -n $port && $(registry_status "$port") == "$want" ]]; then
      log "$name already running (pid $pid, 127.0.0.1:$port), reusing it"
      REUSED+=("$name")
      return 0
    fi
    log "$name (pid $pid) does not answer on 127.0.0.1:${port:-?}; restarting it"
    terminate "$pid" "$name" 5
  fi
  mkdir -p "$d/data"
  if [[ $name == auth-registry ]] && ! grep -q "^$AUTH_USER:" "$d/htpasswd" 2>/dev/null; then
    htpasswd -B -b -c "$d/htpasswd" "$AUTH_USER" "$AUTH_PASSWORD" 2>/dev/null ||
      die "htpasswd failed (install apache2-utils: $HOST_DEPS)"
  fi
  # Keep the previous port when it is free, so a restart keeps the same settings; otherwise let the kernel
  # pick a free one and read it back from the listening socket.
  port=$(cat "$d/port" 2>/dev/null || true)
  if [[ ! $port =~ ^[0-9]+$ ]] || port_in_use "$port"; then port=0; fi
  write_registry_config "$name" "$port"
  rm -f "$d/port"
  [[ -f $d/registry.log ]] && mv -f "$d/registry.log" "$d/registry.log.prev"
  env -i PATH="$PATH" HOME=/root setsid docker-registry serve "$d/config.yml" </dev/null >"$d/registry.log" 2>&1 9>&- &
  pid=$!
  echo "$pid" >"$d/registry.pid"
  deadline=$((SECONDS + TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! alive "$pid"; then
      tail -n 15 "$d/registry.log" >&2 || true
      die "$name (pid $pid) exited during startup (log: $d/registry.log)"
    fi
    if [[ $port == 0 ]]; then
      port=$(ss -Hltnp 2>/dev/null | awk -v p="pid=$pid," 'index($0, p) { n = split($4, a, ":"); print a[n]; exit }')
      [[ -n $port ]] || port=0
    fi
    if [[ $port != 0 ]]; then
      code=$(registry_status "$port")
      if [[ $code == "$want" ]]; then
        echo "$port" >"$d/port"
        log "$name started (pid $pid, 127.0.0.1:$port) in $((SECONDS - started))s"
        STARTED+=("$name")
        return 0
      fi
    fi
    sleep 0.05
  done
  tail -n 15 "$d/registry.log" >&2 || true
  die "$name (pid $pid) did not answer GET /v2/ with $want within ${TIMEOUT}s (log: $d/registry.log)"
}

stop_registry() {
  local name=$1 pid d
  d=$(registry_dir "$name")
  if pid=$(registry_pid "$name"); then
    log "stopping $name (pid $pid)"
    terminate "$pid" "$name" 10
  fi
  rm -f "$d/registry.pid"
}

# ---------------------------------------------------------------------------------------------------- env

print_env() {
  local reg auth name
  dockerd_pid >/dev/null || die "dockerd is not running (state: $S); run: $SELF start"
  for name in "${REGISTRIES[@]}"; do
    registry_pid "$name" >/dev/null || die "$name is not running (state: $S); run: $SELF start"
  done
  reg=$(cat "$S/registry/port" 2>/dev/null) || die "not started (no $S/registry/port); run: $SELF start"
  auth=$(cat "$S/auth-registry/port" 2>/dev/null) || die "not started (no $S/auth-registry/port); run: $SELF start"
  printf 'export DOCKER_HOST=%q\n' "unix://$SOCK"
  printf 'export NABLA_TEST_REGISTRY=%q\n' "127.0.0.1:$reg"
  printf 'export NABLA_TEST_AUTH_REGISTRY=%q\n' "127.0.0.1:$auth"
  printf 'export NABLA_TEST_AUTH_USER=%q\n' "$AUTH_USER"
  printf 'export NABLA_TEST_AUTH_PASSWORD=%q\n' "$AUTH_PASSWORD"
  printf 'export NABLA_TEST_DAEMON_JSON=%q\n' "$S/daemon.json"
}

healthy() {
  local name port
  dockerd_pid >/dev/null && docker_ping || return 1
  for name in "${REGISTRIES[@]}"; do
    registry_pid "$name" >/dev/null || return 1
    port=$(cat "$S/$name/port" 2>/dev/null) || return 1
    [[ $(registry_status "$port") == "$(registry_expected_status "$name")" ]] || return 1
  done
}

lock() {
  mkdir -p "$S"
  exec 9>"$S/services.lock"
  # Daemons are started with fd 9 closed (9>&-): an inherited lock fd would hold the lock for their lifetime.
  flock -w 300 9 || die "another services.sh has held $S/services.lock for 300s"
}

need_root_and_tools() {
  ((EUID == 0)) || die "must run as root (dockerd and the bridge need it)"
  local t missing=()
  for t in dockerd docker-registry htpasswd curl ip ss setsid flock; do
    command -v "$t" >/dev/null || missing+=("$t")
  done
  ((${#missing[@]} == 0)) || die "missing commands: ${missing[*]}; run: sudo $HOST_DEPS"
}

cmd_start() {
  need_root_and_tools
  lock
  STARTED=() REUSED=()
  start_dockerd
  for name in "${REGISTRIES[@]}"; do start_registry "$name"; done
  # Comments, so the output stays sourceable; services.ts reads them to decide whether to stop at teardown.
  echo "# started: ${STARTED[*]}"
  echo "# reused: ${REUSED[*]}"
  print_env
}

cmd_stop() {
  ((EUID == 0)) || die "must run as root"
  lock
  stop_dockerd
  for name in "${REGISTRIES[@]}"; do stop_registry "$name"; done
  unmount_leftovers
  rm -rf "$EXEC"
  if [[ -s $S/bridge ]]; then
    local br
    br=$(<"$S/bridge")
    if ip link show dev "$br" >/dev/null 2>&1; then
      ip link del "$br" || log "warning: cannot delete bridge $br"
    fi
    rm -f "$S/bridge"
  fi
  log "stopped"
}

# SIGHUP to our dockerd (checked PID) reloads daemon.json, runtimes included; nothing else is signalled.
cmd_reload() {
  local runtime=${1:-} path=${2:-} pid deadline want
  pid=$(dockerd_pid) || die "dockerd is not running (state: $S); run: $SELF start"
  kill -HUP "$pid" || die "cannot signal dockerd (pid $pid)"
  [[ -n $runtime ]] || return 0
  want="\"$runtime\":{\"path\":"
  [[ -z $path ]] || want+="\"$path\""
  deadline=$((SECONDS + TIMEOUT))
  while ((SECONDS < deadline)); do
    if curl_ --unix-socket "$SOCK" http://localhost/info 2>/dev/null | grep -qF "$want"; then
      log "dockerd (pid $pid) reloaded $S/daemon.json; runtime $runtime is registered"
      return 0
    fi
    sleep 0.1
  done
  grep -i 'reload' "$S/dockerd.log" | tail -n 5 >&2 || true
  die "dockerd (pid $pid) does not list runtime $runtime ${TIMEOUT}s after SIGHUP; is it in $S/daemon.json? (log: $S/dockerd.log)"
}

check_state_dir
case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  env) print_env ;;
  reload) cmd_reload "${2:-}" "${3:-}" ;;
  status)
    if healthy; then
      echo "running"
    else
      echo "not running"
      exit 1
    fi
    ;;
  purge)
    cmd_stop
    rm -rf "$S"
    ;;
  *)
    echo "usage: $0 start|stop|env|status|purge|reload [RUNTIME [PATH]]" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# Installs the Debian packages that nabla-build's test suite needs (a real Docker engine and registry, skopeo,
# umoci, the C toolchain for fixture builds, Go for runnc, e2fsprogs for rootfs images...). Idempotent: when everything is
# already installed it only asks dpkg and exits (a few milliseconds).
#
#   host-deps.sh           install what is missing (as root)
#   host-deps.sh --check   list what is missing; exit 1 if anything is, never install
#
# Installs with --no-install-recommends (docker.io recommends needrestart, which slows every later apt run)
# and keeps the distribution's docker/docker-registry services from being started by the install: the tests
# run a private dockerd and private registries (services.sh beside this script), never the system ones.
set -euo pipefail

PACKAGES=(
  docker.io docker-registry skopeo umoci
  # zstd: `--compression zstd` layers; pigz: the `tar | pigz | sha256sum` baseline of npm run bench.
  zstd pigz
  e2fsprogs apache2-utils iproute2 patch gawk bison flex bc pkg-config libseccomp-dev
  # gcc only *recommends* libc6-dev, so without it gcc cannot compile anything (no headers, no libc.a for -static).
  gcc libc6-dev make git curl
  # clang: recipes/node.yaml `requires:` it, and builds refuse a target whose requirements are missing (the
  # world build of the tests plans node).
  clang
  # runnc (recipes/runnc.yaml, `nabla-build runtime install`) is Go, built offline in GOPATH mode: Debian 12's
  # Go 1.19 and the Debian packages of every library it imports (under /usr/share/gocode), one per import:
  # urfave/cli, pkg/errors, runtime-spec, logrus, runc (libcontainer/{system,utils}), selinux (label, since
  # patches/runnc/0002), x/sys, netns, netlink, docker (pkg/term).
  golang-go
  golang-github-urfave-cli-dev golang-github-pkg-errors-dev golang-github-opencontainers-specs-dev
  golang-github-sirupsen-logrus-dev golang-github-opencontainers-runc-dev golang-github-opencontainers-selinux-dev
  golang-golang-x-sys-dev golang-github-vishvananda-netns-dev golang-github-vishvananda-netlink-dev
  golang-github-docker-docker-dev
)

check_only=0
case "${1:-}" in
  --check) check_only=1 ;;
  '') ;;
  -h | --help)
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "host-deps: unknown argument '$1' (usage: $0 [--check])" >&2
    exit 2
    ;;
esac

# One dpkg-query for all packages; a package dpkg has never heard of is not printed at all.
missing=()
declare -A installed=()
while read -r name status; do
  [[ $status == ii ]] && installed[${name%%:*}]=1
done < <(dpkg-query -W -f='${binary:Package} ${db:Status-Abbrev}\n' "${PACKAGES[@]}" 2>/dev/null || true)
for p in "${PACKAGES[@]}"; do
  [[ -n ${installed[$p]:-} ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  exit 0
fi
if ((check_only)); then
  echo "host-deps: missing Debian packages: ${missing[*]}" >&2
  echo "host-deps: install them with: sudo bash $0" >&2
  exit 1
fi
if ((EUID != 0)); then
  echo "host-deps: missing Debian packages: ${missing[*]}; installing them needs root" >&2
  echo "host-deps: run: sudo bash $0" >&2
  exit 1
fi

echo "host-deps: installing ${missing[*]}" >&2
started=$SECONDS
export DEBIAN_FRONTEND=noninteractive

# Keep maintainer scripts from starting docker.service / docker-registry.service (a system dockerd would create
# docker0, set the FORWARD policy to DROP and share nothing with the tests). Only when no policy is in place.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\n# temporary, written by nabla-build host-deps.sh\nexit 101\n' >"$policy"
  chmod 0755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi

apt_opts=(-y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
if ! apt-get update -q >&2; then
  echo "host-deps: apt-get update failed (is Debian's mirror reachable?)" >&2
  exit 1
fi
if ! apt-get install "${apt_opts[@]}" "${missing[@]}" >&2; then
  echo "host-deps: apt-get install ${missing[*]} failed" >&2
  exit 1
fi
echo "host-deps: installed ${#missing[@]} package(s) in $((SECONDS - started)) s" >&2

#!/usr/bin/env bash
# Runs nabla-build's shipped recipes against local clones of the real upstreams and prints how far they get.
# Opt-in, by hand: CI never runs it (it needs the clones, takes minutes, and builds real upstream code).
# docs/fidelity.md records its results.
#
# Usage: scripts/real-upstreams.sh [--keep] [--stages LIST] <dir-of-clones>
#
# <dir-of-clones> holds non-bare git clones named after the upstream repositories (each must contain the locked
# commit of recipes/nabla.lock; the branch checked out does not matter):
#   frankenlibc        github.com/retrage/frankenlibc        (21efa155, branch solo5)
#   solo5              github.com/Solo5/solo5                (b326416)
#   musl               github.com/ukontainer/musl            (14f67ac)
#   rumprun-packages   github.com/retrage/rumprun-packages   (03b9191, branch lkl-nabla)
#   runnc              github.com/retrage/runnc              (0fc3e2b, branch lkl-musl)
# and optionally lkl-linux (github.com/ukontainer/lkl-linux, da4435fc, ~2.7 GB) and llvm-project
# (github.com/llvm/llvm-project, d2298e74). E.g. from bare snapshots:  git clone /snapshots/retrage+frankenlibc/repo
# <dir>/frankenlibc (and so on). Package tarballs (Python-3.5.2.tar.xz, nginx-1.8.0.tar.gz, …, the file names
# of recipes/sources.yaml) are looked for in <dir>/tarballs/ only, never downloaded: the stages that need a
# missing one report it.
#
# What this script does outside nabla-build, in <dir-of-clones> only:
# - frankenlibc snapshots without two compiler_rt test blobs. Some snapshots of retrage/frankenlibc lack the blobs
#   of src/sys/external/bsd/compiler_rt/dist/test/{,builtins/}Unit/udivmodti4_test.c (`git fsck`: "missing blob";
#   a checkout of the pin fails with "unable to read sha1 file", a fetch of it with "possible repository
#   corruption"). build.sh never reads them. When they are missing, the script commits, on the branch
#   `nabla-real-upstreams/blob-placeholders` of <dir>/frankenlibc, the pin with those two files replaced by a
#   one-line comment, and points nabla-build at that commit with a top-level override (`frankenlibc: { rev }`).
#   Every submodule rev still comes from the pin's gitlinks, which that commit keeps.
# - Absent lkl-linux / llvm-project. Without <dir>/lkl-linux the script makes <dir>/.placeholders/lkl-linux: one
#   commit holding only the lines of linux/arch/lkl/kernel/threads.c that frankenlibc's own patches/solo5 series
#   reads (rebuilt from that patch's hunks, so the series applies), and no arch/lkl/Makefile, so build.sh stops
#   where a missing LKL tree stops it: buildrump.sh's "Cannot find …/linux/arch/lkl/Makefile!". Without
#   <dir>/llvm-project, an empty one-commit repository. Both are used through per-submodule overrides
#   (`frankenlibc/linux`, `frankenlibc/llvm`). Nothing of either is real upstream code.
#
# Everything else happens in a work directory (default: <dir-of-clones>/.nabla-real, kept; --keep keeps the cache
# of the previous run, otherwise it starts empty): the config (real-upstreams.yaml), the cache, one log per stage.
#
# Stages (--stages, comma-separated; default all, in this order):
#   fetch-all   nabla-build fetch world: every missing source is reported at once (expected: the tarballs)
#   fetch       nabla-build fetch solo5-hello nabla-run hello: the git sources at their pins
#   plan        nabla-build plan hello
#   solo5-hello nabla-build solo5-hello --output oci:…, then nabla-build run on it (Solo5's "Hello, World")
#   nabla-run   nabla-build nabla-run --output oci:…
#   toolchain   nabla-build hello --output oci:… (the whole frankenlibc build.sh: Solo5, tools, buildrump, LKL, …)
#   python3     nabla-build python3 --output oci:… (needs the tarballs too)
# Environment: NABLA_BUILD (default: this checkout's packages/cli/bin/nabla-build.js via node), JOBS (default 2).
set -uo pipefail

usage() {
  sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

keep=0
stages=fetch-all,fetch,plan,solo5-hello,nabla-run,toolchain,python3
while [ $# -gt 0 ]; do
  case "$1" in
  --keep) keep=1 ;;
  --stages)
    stages=${2:?--stages needs a list}
    shift
    ;;
  -h | --help) usage ;;
  -*)
    echo "real-upstreams.sh: unknown option $1" >&2
    usage
    ;;
  *) break ;;
  esac
  shift
done
[ $# -eq 1 ] || usage
clones=$(cd "$1" 2>/dev/null && pwd) || {
  echo "real-upstreams.sh: $1: no such directory" >&2
  exit 2
}
here=$(cd "$(dirname "$0")/.." && pwd)
jobs=${JOBS:-2}
work=${NABLA_REAL_WORK:-${clones}/.nabla-real}
lock=${here}/recipes/nabla.lock

# The locked commit of a source (or source/submodule) from recipes/nabla.lock.
pin() {
  awk -v want="$1" '
    /^git:/ { g = 1; next } /^[a-z]/ { g = 0 }
    g && /^  [a-z0-9-]+:$/ { src = substr($1, 1, length($1) - 1); sub_ = ""; next }
    g && /^      [a-z0-9-]+:$/ { sub_ = substr($1, 1, length($1) - 1); next }
    g && /^    submodules:/ { next }
    g && $1 == "rev:" { id = (sub_ == "" ? src : src "/" sub_); if (id == want) { print $2; exit } }
  ' "${lock}"
}

die() {
  echo "real-upstreams.sh: $*" >&2
  exit 2
}

for r in frankenlibc solo5 musl rumprun-packages runnc; do
  [ -d "${clones}/${r}/.git" ] || die "${clones}/${r} is not a git clone (see --help for the expected layout)"
done
for id in frankenlibc frankenlibc/solo5 frankenlibc/musl rumprun-packages runnc; do
  rev=$(pin "${id}")
  [ -n "${rev}" ] || die "no pin for ${id} in ${lock}"
  repo=${id#frankenlibc/}
  git -C "${clones}/${repo}" cat-file -e "${rev}^{commit}" 2>/dev/null ||
    die "${clones}/${repo} lacks ${id}'s locked commit ${rev} (fetch it into that clone first)"
done

gitc() { git -c user.name=real-upstreams -c user.email=real-upstreams@localhost "$@"; }

# ---- frankenlibc: the two missing compiler_rt blobs ----
flpin=$(pin frankenlibc)
flrev=${flpin}
fl=${clones}/frankenlibc
missing=$(git -C "${fl}" ls-tree -r "${flpin}" -- src/sys/external/bsd/compiler_rt/dist/test |
  while read -r _ type oid path; do
    [ "${type}" = blob ] && ! git -C "${fl}" cat-file -e "${oid}" 2>/dev/null && printf '%s\n' "${path}"
  done)
if [ -n "${missing}" ]; then
  branch=nabla-real-upstreams/blob-placeholders
  existing=$(git -C "${fl}" rev-parse -q --verify "refs/heads/${branch}" 2>/dev/null || true)
  if [ -n "${existing}" ] && [ "$(git -C "${fl}" rev-parse "${existing}^")" = "${flpin}" ]; then
    flrev=${existing}
  else
    idx=$(mktemp)
    GIT_INDEX_FILE=${idx} git -C "${fl}" read-tree "${flpin}"
    while IFS= read -r path; do
      oid=$(printf '/* placeholder: this blob is missing from the local snapshot (never built by build.sh) */\n' |
        git -C "${fl}" hash-object -w --stdin)
      GIT_INDEX_FILE=${idx} git -C "${fl}" update-index --cacheinfo "100644,${oid},${path}"
    done <<<"${missing}"
    tree=$(GIT_INDEX_FILE=${idx} git -C "${fl}" write-tree)
    rm -f "${idx}"
    flrev=$(GIT_AUTHOR_DATE='2020-09-15T00:00:00Z' GIT_COMMITTER_DATE='2020-09-15T00:00:00Z' gitc -C "${fl}" \
      commit-tree "${tree}" -p "${flpin}" -m "placeholders for compiler_rt test blobs missing from this snapshot")
    git -C "${fl}" update-ref "refs/heads/${branch}" "${flrev}"
  fi
  echo ">> frankenlibc: $(wc -l <<<"${missing}") blobs missing at ${flpin:0:12}; using ${flrev:0:12} (${branch})"
fi

# ---- placeholders for absent lkl-linux and llvm-project ----
placeholder() { # name, then files as path=content-file pairs
  local name=$1 dir=${clones}/.placeholders/$1
  shift
  rm -rf "${dir}"
  mkdir -p "${dir}"
  git -C "${dir}" init -q
  printf 'Placeholder for the absent %s (made by nabla-build scripts/real-upstreams.sh). Not upstream code.\n' \
    "${name}" >"${dir}/README.nabla-placeholder"
  local pair
  for pair in "$@"; do
    mkdir -p "${dir}/$(dirname "${pair%%=*}")"
    cp "${pair#*=}" "${dir}/${pair%%=*}"
  done
  git -C "${dir}" add -A
  GIT_AUTHOR_DATE='2020-09-15T00:00:00Z' GIT_COMMITTER_DATE='2020-09-15T00:00:00Z' gitc -C "${dir}" commit -q \
    -m "placeholder: ${name} is not available on this machine"
  git -C "${dir}" rev-parse HEAD
}
# The pre-image lines of every hunk of one file in a unified diff, at their line numbers ('' elsewhere).
preimage() { # patch, path (after a/)
  awk -v want="$2" '
    /^--- / { on = ($2 == "a/" want); next }
    /^\+\+\+ / { next }
    on && /^@@ / { split($2, a, ","); line = -a[1]; next }
    on && /^[ -]/ { while (n < line - 1) { print ""; n++ } print substr($0, 2); n++; line++ }
  ' "$1"
}
linux_url=file://${clones}/lkl-linux
llvm_url=file://${clones}/llvm-project
overrides=
if [ ! -d "${clones}/lkl-linux/.git" ]; then
  tmp=$(mktemp)
  ref=$(git -C "${fl}" ls-tree --name-only "${flrev}" patches/solo5/ | grep -i linux | head -1)
  git -C "${fl}" show "${flrev}:${ref}" >"${tmp}.patch"
  preimage "${tmp}.patch" linux/arch/lkl/kernel/threads.c >"${tmp}"
  rev=$(placeholder lkl-linux "arch/lkl/kernel/threads.c=${tmp}") || die "cannot make the lkl-linux placeholder"
  rm -f "${tmp}" "${tmp}.patch"
  linux_url=file://${clones}/.placeholders/lkl-linux
  overrides+="  frankenlibc/linux: { git: '${linux_url}', rev: '${rev}' }"$'\n'
  echo ">> lkl-linux: absent; placeholder ${rev:0:12} (no arch/lkl/Makefile: build.sh is expected to stop there)"
fi
if [ ! -d "${clones}/llvm-project/.git" ]; then
  rev=$(placeholder llvm-project) || die "cannot make the llvm-project placeholder"
  llvm_url=file://${clones}/.placeholders/llvm-project
  overrides+="  frankenlibc/llvm: { git: '${llvm_url}', rev: '${rev}' }"$'\n'
  echo ">> llvm-project: absent; empty placeholder ${rev:0:12}"
fi
[ "${flrev}" = "${flpin}" ] || overrides="  frankenlibc: { rev: '${flrev}' }"$'\n'"${overrides}"

# ---- config and work directory ----
[ "${keep}" = 1 ] || rm -rf "${work}/cache" "${work}/out"
mkdir -p "${work}/logs" "${work}/out"
config=${work}/real-upstreams.yaml
{
  echo "# Written by scripts/real-upstreams.sh for the clones in ${clones}."
  echo 'mirrors:'
  for m in retrage/frankenlibc:frankenlibc Solo5/solo5:solo5 ukontainer/musl:musl \
    retrage/rumprun-packages:rumprun-packages retrage/runnc:runnc; do
    echo "  - { prefix: 'https://github.com/${m%%:*}.git', replace: 'file://${clones}/${m#*:}' }"
    echo "  - { prefix: 'https://github.com/${m%%:*}', replace: 'file://${clones}/${m#*:}' }"
  done
  for m in "ukontainer/lkl-linux ${linux_url}" "llvm/llvm-project ${llvm_url}"; do
    echo "  - { prefix: 'https://github.com/${m%% *}.git', replace: '${m#* }' }"
    echo "  - { prefix: 'https://github.com/${m%% *}', replace: '${m#* }' }"
  done
  # Tarballs: every candidate URL of recipes/sources.yaml → <dir-of-clones>/tarballs/<file>, so nothing leaves
  # this machine; a tarball that is not there is reported missing.
  grep -Eo 'https?://[^ ]+\.(tar\.gz|tar\.xz|tgz|tar\.bz2)' "${here}/recipes/sources.yaml" | sort -u |
    while read -r url; do echo "  - { prefix: '${url}', replace: 'file://${clones}/tarballs/${url##*/}' }"; done
  echo 'allowLocal: true'
  if [ -n "${overrides}" ]; then
    echo 'overrides:'
    printf '%s' "${overrides}"
  fi
} >"${config}"
echo ">> config: ${config}"

if [ -n "${NABLA_BUILD:-}" ]; then
  read -r -a nb <<<"${NABLA_BUILD}"
else
  nb=(node "${here}/packages/cli/bin/nabla-build.js")
fi
export NABLA_BUILD_CONFIG=${config} CI=true

furthest=none
declare -A result
stage() { # name, then the nabla-build arguments
  local name=$1 log=${work}/logs/$1.log start rc
  shift
  echo ">> stage ${name}: nabla-build $*"
  start=$(date +%s)
  "${nb[@]}" --cache-dir "${work}/cache" --jobs "${jobs}" "$@" >"${log}" 2>&1
  rc=$?
  local took=$(($(date +%s) - start))
  if [ "${rc}" = 0 ]; then
    result[${name}]="ok (${took} s)"
    furthest=${name}
  else
    result[${name}]="FAILED, exit ${rc} (${took} s): $(grep '^error:' "${log}" | tail -1 | grep . || tail -1 "${log}")"
  fi
  echo "   ${result[${name}]}  [log: ${log}]"
  return "${rc}"
}

want() { case ",${stages}," in *",$1,"*) return 0 ;; esac; return 1; }
want fetch-all && stage fetch-all fetch world
want fetch && stage fetch fetch solo5-hello nabla-run hello
want plan && stage plan plan hello
if want solo5-hello && stage solo5-hello solo5-hello --output "oci:${work}/out/solo5-hello"; then
  stage solo5-hello-run run solo5-hello &&
    grep -q 'Hello, World' "${work}/logs/solo5-hello-run.log" && furthest=solo5-hello-run
fi
want nabla-run && stage nabla-run nabla-run --output "oci:${work}/out/nabla-run"
if want toolchain && ! stage toolchain hello --output "oci:${work}/out/hello"; then
  # How far build.sh got: buildrump.sh checks the LKL tree before the NetBSD tools, and uses it after them.
  if grep -q "can't cd to tools/lkl" "${work}/logs/toolchain.log"; then
    furthest='toolchain: build.sh built Solo5 and the NetBSD host tools, stopped at the LKL build (no LKL tree)'
  elif grep -q 'Cannot find .*arch/lkl/Makefile' "${work}/logs/toolchain.log"; then
    furthest='toolchain: build.sh built Solo5, stopped at buildrump.sh'"'"'s LKL check (lkl-linux absent)'
  fi
fi
want python3 && stage python3 python3 --output "oci:${work}/out/python3"

echo
echo "== results (clones: ${clones}; $(gcc --version | head -1); $(ld --version | head -1); $(make --version | head -1))"
for s in fetch-all fetch plan solo5-hello solo5-hello-run nabla-run toolchain python3; do
  [ -n "${result[${s}]:-}" ] && printf '  %-16s %s\n' "${s}" "${result[${s}]}"
done
echo "furthest stage reached: ${furthest}"

#!/bin/sh
# canonical-root.sh: runs a command with host directories bind-mounted at fixed paths under /mnt/nabla-build,
# so that every path a build records (DWARF comp_dir and include directories, paths in generated wrappers and
# scripts) is the same whatever the cache directory, on any machine. Part of @nabla-build/toolchain (see
# src/canonical-root.ts, which is the only intended caller).
#
# Usage, as the first process of a new private mount namespace:
#
#   unshare --mount --propagation private [--user --map-root-user] \
#     sh canonical-root.sh CWD N HOST_1 CANONICAL_1 ... HOST_N CANONICAL_N COMMAND [ARG...]
#
# Every value arrives as its own argument and is only ever expanded inside double quotes: nothing here is
# evaluated, whatever the paths or arguments contain. Steps:
#
#   1. A tmpfs is mounted on /mnt (in this namespace only: nothing on the host changes). Whatever the host had
#      in /mnt (a data disk, WSL's /mnt/c, other mounts) is put back at the same paths first, read through the
#      shell's working directory, which still is the covered /mnt: a cache directory under /mnt keeps working.
#   2. Each HOST directory is bind-mounted (recursively) at its CANONICAL path under /mnt/nabla-build.
#   3. The tmpfs is made read-only: a build writing next to its tree, outside the mounted directories, fails
#      instead of losing its files when the namespace goes away.
#   4. cd CWD (which must physically be under /mnt/nabla-build), PWD exported, OLDPWD as it came in, and
#      `exec COMMAND ARG...`: the command keeps this process's PID and process group, so killing the group
#      from outside stops the whole build.
#
# A step with several commands sets the root up once: its first process runs, as COMMAND, a holder that
# keeps the namespace alive (until its stdin closes), and each command enters it with
#
#   nsenter -t HOLDER_PID -m [-U --preserve-credentials] sh canonical-root.sh --enter CWD COMMAND [ARG...]
#
# which runs step 4 alone.
#
# Exit status: the command's; 125 when the root cannot be set up; 127 when COMMAND is not found.

nabla_cr_root=/mnt/nabla-build

nabla_cr_die() {
	printf 'nabla-build canonical-root: %s\n' "$*" >&2
	exit 125
}

# Our own commands come from the system directories, never from a PATH the build prepends (the toolchain's
# rump/bin appears under /mnt/nabla-build once mounted). The command's PATH is restored before it is looked up.
if [ "${PATH+set}" = set ]; then nabla_cr_path_set=1 nabla_cr_path=$PATH; else nabla_cr_path_set=0; fi
if [ "${OLDPWD+set}" = set ]; then nabla_cr_oldpwd_set=1 nabla_cr_oldpwd=$OLDPWD; else nabla_cr_oldpwd_set=0; fi
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# Step 4 (and all of --enter): cd CWD, checked to be physically under the root, and exec the command.
nabla_cr_exec() {
	cd -P "$nabla_cr_cwd" || nabla_cr_die "cannot enter $nabla_cr_cwd"
	# Physically under the root too: where /mnt is a symbolic link (to /var/mnt, say), getcwd() and so every
	# recorded path would name the link's target, and builds would differ from other hosts' after all.
	# (`cd -P` leaves the physical path in PWD: no `$(pwd -P)` subshell.)
	case $PWD in
	"$nabla_cr_root" | "$nabla_cr_root"/*) ;;
	*) nabla_cr_die "$nabla_cr_cwd is physically $PWD, outside $nabla_cr_root (is /mnt a symbolic link?)" ;;
	esac
	PWD=$nabla_cr_cwd
	export PWD
	if [ "$nabla_cr_oldpwd_set" = 1 ]; then OLDPWD=$nabla_cr_oldpwd; else unset OLDPWD; fi
	if [ "$nabla_cr_path_set" = 1 ]; then PATH=$nabla_cr_path; else unset PATH; fi
	if ! command -v "$1" >/dev/null 2>&1; then
		printf 'nabla-build canonical-root: %s: command not found\n' "$1" >&2
		exit 127
	fi
	unset nabla_cr_root nabla_cr_path_set nabla_cr_path nabla_cr_oldpwd_set nabla_cr_oldpwd nabla_cr_cwd nabla_cr_n \
		nabla_cr_e nabla_cr_i nabla_cr_a nabla_cr_j nabla_cr_b
	exec "$@"
}

# --enter CWD COMMAND [ARG...]: in a namespace set up before (entered with nsenter), step 4 alone.
if [ "$1" = --enter ] && [ "$#" -ge 3 ]; then
	nabla_cr_cwd=$2
	shift 2
	nabla_cr_exec "$@"
fi
[ "$#" -ge 3 ] || nabla_cr_die "usage: canonical-root.sh CWD N HOST_1 CANONICAL_1 ... COMMAND [ARG...]"
nabla_cr_cwd=$1
nabla_cr_n=$2
shift 2
case $nabla_cr_n in
'' | *[!0-9]*) nabla_cr_die "the number of mounts must be a decimal number, not '$nabla_cr_n'" ;;
esac
[ "$#" -gt $((2 * nabla_cr_n)) ] || nabla_cr_die "expected $nabla_cr_n HOST CANONICAL pairs and a command"
case $nabla_cr_cwd in
"$nabla_cr_root" | "$nabla_cr_root"/*) ;;
*) nabla_cr_die "the working directory $nabla_cr_cwd is not under $nabla_cr_root" ;;
esac

# 1. The tmpfs on /mnt, with the host's entries of /mnt put back.
cd /mnt || nabla_cr_die "/mnt does not exist or cannot be entered"
mount -t tmpfs -o mode=0755,size=1m,nr_inodes=4096 nabla-build /mnt || nabla_cr_die "cannot mount a tmpfs on /mnt"
for nabla_cr_e in * .[!.]* ..?*; do
	[ -e "$nabla_cr_e" ] || [ -L "$nabla_cr_e" ] || continue
	[ "$nabla_cr_e" = nabla-build ] && continue
	if [ -L "$nabla_cr_e" ]; then
		cp -P "./$nabla_cr_e" "/mnt/$nabla_cr_e"
	elif [ -d "$nabla_cr_e" ]; then
		# --no-canonicalize: the relative source is resolved by the kernel against the covered /mnt (a
		# canonicalized source would be the new, empty /mnt/$nabla_cr_e).
		# X-mount.mkdir: mount creates the mount point (no mkdir process).
		mount --no-canonicalize --rbind -o X-mount.mkdir "./$nabla_cr_e" "/mnt/$nabla_cr_e"
	else
		: >"/mnt/$nabla_cr_e" && mount --no-canonicalize --bind "./$nabla_cr_e" "/mnt/$nabla_cr_e"
	fi || nabla_cr_die "cannot put /mnt/$nabla_cr_e back over the tmpfs"
done
cd / || nabla_cr_die "cannot enter /"
# (Created by the first bind's X-mount.mkdir when there is one: one process less per command.)
[ "$nabla_cr_n" -gt 0 ] || mkdir "$nabla_cr_root" || nabla_cr_die "cannot create $nabla_cr_root"

# 2. The mounts: every mount point is created in the tmpfs (never inside a mounted host directory: no canonical
# path may lie inside another), by mount itself (X-mount.mkdir, util-linux), as its host directory is bound.
nabla_cr_i=0
for nabla_cr_a in "$@"; do
	[ "$nabla_cr_i" -lt $((2 * nabla_cr_n)) ] || break
	if [ $((nabla_cr_i % 2)) -eq 1 ]; then
		case $nabla_cr_a in
		"$nabla_cr_root"/*) ;;
		*) nabla_cr_die "the canonical path $nabla_cr_a is not under $nabla_cr_root" ;;
		esac
		case $nabla_cr_a/ in
		*/../* | */./* | *//*) nabla_cr_die "the canonical path $nabla_cr_a is not a normalized absolute path" ;;
		esac
		nabla_cr_j=0
		for nabla_cr_b in "$@"; do
			[ "$nabla_cr_j" -lt $((2 * nabla_cr_n)) ] || break
			if [ $((nabla_cr_j % 2)) -eq 1 ] && [ "$nabla_cr_j" -ne "$nabla_cr_i" ]; then
				case $nabla_cr_b/ in
				"$nabla_cr_a"/*) nabla_cr_die "the canonical paths $nabla_cr_a and $nabla_cr_b overlap" ;;
				esac
			fi
			nabla_cr_j=$((nabla_cr_j + 1))
		done
	fi
	nabla_cr_i=$((nabla_cr_i + 1))
done
nabla_cr_i=0
while [ "$nabla_cr_i" -lt "$nabla_cr_n" ]; do
	case $1 in
	/*) ;;
	*) nabla_cr_die "the host path $1 is not absolute" ;;
	esac
	[ -d "$1" ] || nabla_cr_die "the host directory $1 does not exist"
	mount --rbind -o X-mount.mkdir "$1" "$2" || nabla_cr_die "cannot bind $1 at $2"
	shift 2
	nabla_cr_i=$((nabla_cr_i + 1))
done

# 3. Nothing but the mounted directories is writable under /mnt.
mount -o remount,bind,ro /mnt || nabla_cr_die "cannot make the tmpfs on /mnt read-only"

# 4. The command, in the canonical working directory.
nabla_cr_exec "$@"

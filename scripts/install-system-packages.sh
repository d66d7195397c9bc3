#!/usr/bin/env bash
# Installs the Debian packages that the end-to-end suites and benchmarks need, only when missing.
# Called by `npm run test:e2e`, `npm run bench:read` and .ci/run; needs root (or sudo) to install.
set -euo pipefail

# command-or-file → package that provides it
declare -A want=(
  [tshark]=tshark
  [qemu-system-x86_64]=qemu-system-x86
  [cpio]=cpio
  [nfs-ls]=libnfs-utils
  [nfs-cat]=libnfs-utils
  [rpcinfo]=rpcbind
  [showmount]=nfs-common
  [/usr/bin/chromium]=chromium
  [bc]=bc
  [ganesha.nfsd]=nfs-ganesha
  [/usr/lib/x86_64-linux-gnu/ganesha/libfsalvfs.so]=nfs-ganesha-vfs
  [/usr/include/nfsc/libnfs-raw.h]=libnfs-dev
  [perf]=linux-perf
)
need=()
for what in "${!want[@]}"; do
  if [[ $what == /* ]]; then [[ -e $what ]] && continue; else command -v "$what" >/dev/null 2>&1 && continue; fi
  need+=("${want[$what]}")
done
# run-guest needs a busybox with insmod (busybox-static)
{ [[ -x /bin/busybox ]] && /bin/busybox --list | grep -qx insmod; } || need+=(busybox-static)

if [[ ${#need[@]} -eq 0 ]]; then echo "system packages: all present"; exit 0; fi
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
echo "system packages: installing ${need[*]}"
sudo=""; [[ $(id -u) -eq 0 ]] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# rpcbind/nfs-common/ganesha try to start services; nothing here should be started by the package manager.
policy=/usr/sbin/policy-rc.d; created_policy=0
if [[ ! -e $policy ]]; then printf '#!/bin/sh\nexit 101\n' | $sudo tee $policy >/dev/null; $sudo chmod +x $policy; created_policy=1; fi
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
[[ $created_policy -eq 1 ]] && $sudo rm -f $policy
echo "system packages: done"

#!/bin/sh
# The compose client: installs the NFS client tools, mounts the server's export with NFSv3 over TCP
# (ports from the server's portmapper), and checks reads and writes round-trip.
set -eu
apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nfs-common >/dev/null
mkdir -p /mnt/pagelife
mount -t nfs -o vers=3,proto=tcp,nolock "$NFS_SERVER:$NFS_EXPORT" /mnt/pagelife
cd /mnt/pagelife
ls -la
test -n "$(cat hello.txt)"
dd if=/dev/urandom of=compose-smoke.bin bs=64k count=16 2>/dev/null
a=$(md5sum compose-smoke.bin | cut -d' ' -f1)
sync; echo 3 > /proc/sys/vm/drop_caches || true
b=$(md5sum compose-smoke.bin | cut -d' ' -f1)
test "$a" = "$b"
rm compose-smoke.bin
cd / && umount /mnt/pagelife
echo "compose smoke: ok"

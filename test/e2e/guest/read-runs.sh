# Issue 11 acceptance 3: RUNS runs in one boot, each on a mount of its own — a fresh TCP connection
# to the server that starts in slow start with the initial RTO, as any first read does — reading
# each of FILES into the guest's memory; then one more mount writes every copy back to the export
# as out/NAME-RUN, so the host can check every page the guest's kernel accepted. Busybox sh; run
# with --no-mount (SERVER: the server's address, EXPORT: the export path).
set -e
opts="vers=3,proto=tcp,nolock,addr=$SERVER"
mkdir -p /tmp/runs
i=1
while [ "$i" -le "$RUNS" ]; do
  mount -t nfs -o "$opts" "$SERVER:$EXPORT" /mnt
  for name in $FILES; do cat "/mnt/$name" > "/tmp/runs/$name-$i"; done
  umount /mnt
  i=$((i + 1))
done
mount -t nfs -o "$opts" "$SERVER:$EXPORT" /mnt
mkdir -p /mnt/out
cp /tmp/runs/* /mnt/out/
umount /mnt
echo "read-runs: ok"

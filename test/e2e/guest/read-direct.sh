# Issue 15: reads FILE ROUNDS times with O_DIRECT (the guest's page cache can neither serve nor tear
# a block) and writes each copy back to the export as out/FILE-ROUND for the host to check. Busybox
# sh and dd; the export is mounted at /mnt (cwd).
set -e
mkdir -p out
i=1
while [ "$i" -le "$ROUNDS" ]; do
  dd if="$FILE" of=/tmp/copy bs=1048576 iflag=direct 2>/dev/null
  cp /tmp/copy "out/$FILE-$i"
  rm /tmp/copy
  i=$((i + 1))
done
sync
echo "read-direct: ok"

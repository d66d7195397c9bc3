# Issue 5 acceptance 1: reads each of FILES from the server ROUNDS times (dropping the guest's page
# cache each time) and writes each copy back to the export as out/NAME-ROUND, so the host can check
# every page of what the guest received. Busybox sh; the export is mounted at /mnt (cwd).
set -e
mkdir -p out
for name in $FILES; do
  i=1
  while [ "$i" -le "$ROUNDS" ]; do
    echo 3 > /proc/sys/vm/drop_caches
    cat "$name" > /tmp/copy
    cp /tmp/copy "out/$name-$i"
    rm /tmp/copy
    i=$((i + 1))
  done
done
sync
echo "read-copies: ok"

# Mounted with --locking (no `nolock`): the kernel's lockd takes fcntl locks over NLM. The host side
# of the test (locking.test.ts) watches /api/locks and plays a second client with its own NLM calls.
set -e
./lockf quick.lock -s | grep -qx locked || { echo "locking: FAIL shared"; exit 1; }
./lockf quick.lock | grep -qx locked || { echo "locking: FAIL exclusive"; exit 1; }
echo "locking: shared and exclusive taken and released"
# Held 12 s: the host sees it, is refused, queues a blocking LOCK, and is granted when this ends.
./lockf data.lock 12 | grep -qx locked || { echo "locking: FAIL hold"; exit 1; }
echo "locking: held and released"
# Now the host holds data.lock (granted by callback): refused without waiting...
out=$(./lockf data.lock || true)
echo "locking: while the host holds it: $out"
# ...and granted once the host releases it (the kernel re-sends its blocked LOCK).
./lockf data.lock -w | grep -qx locked || { echo "locking: FAIL wait"; exit 1; }
echo "locking: waited and locked"
grep ' /mnt ' /proc/mounts

# Mounted by run-guest with the options under test; proves the mount works and reads a file.
set -e
[ "$(cat hello.txt)" = "hello from pagelife" ] || { echo "mount-only: FAIL read"; exit 1; }
grep ' /mnt ' /proc/mounts
echo "mount-only: ok"

# Runs in the guest with the export mounted at /mnt (cwd). Busybox sh.
# EXPECT: "name:md5 name:md5 ..." computed on the host; MANY: entries in many/.
set -e
fail() { echo "read-core: FAIL $*"; exit 1; }

n=$(ls -la many | grep -c '^-')
[ "$n" = "$MANY" ] || fail "many/ lists $n regular entries, want $MANY"
[ "$(ls many | wc -l)" = "$MANY" ] || fail "ls many/ count"

for pair in $EXPECT; do
  name=${pair%%:*}; want=${pair#*:}
  got=$(md5sum "$name" | cut -d' ' -f1)
  [ "$got" = "$want" ] || fail "md5 $name: got $got want $want"
  size=$(stat -c %s "$name")
  echo "read-core: $name $size bytes ok"
done
# Read again from the server, not the guest's page cache.
echo 3 > /proc/sys/vm/drop_caches
for pair in $EXPECT; do
  name=${pair%%:*}; want=${pair#*:}
  [ "$(md5sum "$name" | cut -d' ' -f1)" = "$want" ] || fail "md5 after drop_caches $name"
done

[ "$(readlink link-to-small)" = "small.bin" ] || fail "readlink"
[ "$(cat link-to-small | md5sum | cut -d' ' -f1)" = "$(md5sum small.bin | cut -d' ' -f1)" ] || fail "read through symlink"
[ "$(stat -c %F sub)" = "directory" ] || fail "stat sub"
[ "$(stat -c %s empty.bin)" = "0" ] || fail "stat empty"
[ "$(stat -c %a mode640.txt)" = "640" ] || fail "mode 640: $(stat -c %a mode640.txt)"
df . | tail -n 1 | grep -q /mnt || fail "df"
[ "$(cat sub/nested.txt)" = "nested file" ] || fail "nested read"
if ls nonexistent 2>/dev/null; then fail "nonexistent name listed"; fi
cd ..; cd /mnt/sub/..; [ "$(pwd)" = "/mnt" ] || fail "cd .."
echo "read-core: ok"

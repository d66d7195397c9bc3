# Runs in the guest on the raw wire (run-guest --wire-udp), export mounted at /mnt (cwd) from 10.0.3.1
# with no port options. EXPECT: "name:md5 ..." from the host; MANY: entries in many/;
# WRITES: "name:bytes ..." to write (each file fsynced); ROUNDS: how many times to read everything again (the host injects
# bad frames meanwhile); TAR=0 skips the tar round trip. Busybox sh.
set -e
fail() { echo "wire-core: FAIL $*"; exit 1; }
grep -q ' /mnt nfs .*addr=10.0.3.1' /proc/mounts || fail "not mounted from 10.0.3.1: $(grep /mnt /proc/mounts)"
echo "wire-core: mount $(grep ' /mnt nfs' /proc/mounts | cut -d' ' -f4)"

n=$(ls -la many | grep -c '^-')
[ "$n" = "$MANY" ] || fail "many/ lists $n regular entries, want $MANY"

check_all() {
  for pair in $EXPECT; do
    name=${pair%%:*}; want=${pair#*:}
    got=$(md5sum "$name" | cut -d' ' -f1)
    [ "$got" = "$want" ] || fail "md5 $name: got $got want $want ($1)"
  done
}
check_all first
echo "wire-core: reads ok"

for spec in $WRITES; do
  name=${spec%%:*}; size=${spec#*:}
  head -c "$size" /dev/urandom > "/tmp/$name"
  # conv=fsync: fsync(2) on the written file before dd exits (the client's WRITEs, then COMMIT).
  dd if="/tmp/$name" of="w-$name" bs=1M conv=fsync 2>/dev/null
  echo "wire-core: wrote $name $(md5sum "/tmp/$name" | cut -d' ' -f1)"
done
echo 3 > /proc/sys/vm/drop_caches
for spec in $WRITES; do
  name=${spec%%:*}
  [ "$(md5sum "w-$name" | cut -d' ' -f1)" = "$(md5sum "/tmp/$name" | cut -d' ' -f1)" ] || fail "read back w-$name"
  rm "/tmp/$name"
done

# tar round trip: pack a tree from the mount, unpack it onto the mount, compare (TAR=0 skips it).
if [ "${TAR:-1}" = 1 ]; then
tar cf /tmp/t.tar sub many
rm -rf rt
mkdir rt
tar xf /tmp/t.tar -C rt
[ "$(ls rt/many | wc -l)" = "$MANY" ] || fail "tar round trip count"
[ "$(cat rt/sub/nested.txt)" = "nested file" ] || fail "tar round trip content"
[ "$(cd rt && find . -type f | sort | xargs cat | md5sum)" = "$(find sub many -type f | sort | sed 's,^,./,' | xargs cat | md5sum)" ] || fail "tar round trip bytes"
echo "wire-core: tar ok"
fi

i=0
while [ "$i" -lt "${ROUNDS:-0}" ]; do
  echo 3 > /proc/sys/vm/drop_caches
  check_all "round $i"
  i=$((i + 1))
done
echo "wire-core: rounds ok"
awk '/^Tcp:/ { n++; if (n == 2) print "wire-core: guest tcp in=" $11 " out=" $12 " retrans=" $13 }' /proc/net/snmp
echo "wire-core: ok"

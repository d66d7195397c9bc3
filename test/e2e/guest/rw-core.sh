# Issue 4 acceptance 1: the export as an ordinary read-write filesystem. Runs in the guest with the
# export mounted at /mnt (cwd), as root, export no_root_squash. Busybox sh.
# Env: SQUASH_PATH, SQUASH_PORT, SQUASH_MOUNTPORT: a root_squash export of the same server.
set -e
fail() { echo "rw-core: FAIL $*"; exit 1; }
ok() { echo "rw-core: $*"; }
md5() { md5sum "$1" | cut -d' ' -f1; }

mkdir -p w/a w/b
# Sizes from 1 B to 256 MiB: dd with conv=fsync (FILE_SYNC/COMMIT before close returns) and
# unstable writes flushed by sync.
for spec in 1:1 4095:1 4097:1 1048577:1 16777216:4 268435456:16; do
  size=${spec%%:*}; bs_mib=${spec#*:}
  # The guest's RAM is small: the source lives on the export too (written unstable).
  want=$(head -c "$size" /dev/urandom | tee w/a/src | md5sum | cut -d' ' -f1)
  dd if=w/a/src of="w/a/f$size" bs=${bs_mib}M conv=fsync 2>/dev/null
  dd if=w/a/src of="w/a/u$size" bs=${bs_mib}M 2>/dev/null
  sync
  echo 3 > /proc/sys/vm/drop_caches
  [ "$(md5 w/a/src)" = "$want" ] || fail "unstable write of the source, $size"
  [ "$(md5 "w/a/f$size")" = "$want" ] || fail "fsync write $size"
  [ "$(md5 "w/a/u$size")" = "$want" ] || fail "unstable write $size"
  [ "$(stat -c %s "w/a/f$size")" = "$size" ] || fail "size $size"
  rm -f "w/a/u$size" w/a/src
  [ "$size" -gt 16777216 ] && rm -f "w/a/f$size"
done
ok "writes 1 B .. 256 MiB"

printf 'one\n' > w/app.txt; printf 'two\n' >> w/app.txt; printf 'three\n' >> w/app.txt
echo 3 > /proc/sys/vm/drop_caches
[ "$(cat w/app.txt | wc -l)" = "3" ] || fail "append"
truncate -s 4 w/app.txt 2>/dev/null || dd if=/dev/null of=w/app.txt bs=1 seek=4 2>/dev/null
[ "$(stat -c %s w/app.txt)" = "4" ] || fail "truncate down: $(stat -c %s w/app.txt)"
dd if=/dev/null of=w/app.txt bs=1 seek=100000 2>/dev/null
[ "$(stat -c %s w/app.txt)" = "100000" ] || fail "truncate up"
ok "append, truncate"

mv w/a/f1 w/b/moved && [ -f w/b/moved ] && [ ! -e w/a/f1 ] || fail "rename across directories"
mv w/b w/c && [ -f w/c/moved ] || fail "rename directory"
ln w/c/moved w/hard && [ "$(stat -c %h w/hard)" = "2" ] || fail "hard link count"
ln -s c/moved w/sym && [ "$(readlink w/sym)" = "c/moved" ] && [ "$(md5 w/sym)" = "$(md5 w/hard)" ] || fail "symlink"
chmod 0604 w/hard && [ "$(stat -c %a w/c/moved)" = "604" ] || fail "chmod"
chown 1234:2345 w/hard && [ "$(stat -c %u:%g w/c/moved)" = "1234:2345" ] || fail "chown"
touch -d '2001-02-03 04:05:06' w/hard 2>/dev/null && [ "$(stat -c %Y w/hard)" = "$(date -d '2001-02-03 04:05:06' +%s)" ] || fail "set mtime"
mkfifo w/fifo && [ "$(stat -c %F w/fifo)" = "fifo" ] || fail "mkfifo"
if mkdir w/c 2>/dev/null; then fail "mkdir over existing"; fi
if rmdir w/c 2>/dev/null; then fail "rmdir of non-empty"; fi
ok "rename, link, symlink, chmod, chown, utimes, mkfifo, errors"

# A tree of >= 5,000 files: untar the host's tarball, list checksums, re-tar.
mkdir w/untar
tar -xf tree.tar -C w/untar
(cd w/untar && find . -type f | sort | xargs md5sum) > /tmp/guest.md5
n=$(wc -l < /tmp/guest.md5)
[ "$n" -ge 5000 ] || fail "untarred only $n files"
cp /tmp/guest.md5 w/guest.md5
(cd w/untar && tar -cf ../retar.tar .)
sync
ok "untar $n files, re-tar"

rm -rf w/a w/c w/hard w/sym w/fifo w/app.txt
[ ! -e w/a ] && [ ! -e w/c ] || fail "rm -rf"
ok "remove files and trees"

if [ -n "$SQUASH_PORT" ]; then
  mkdir -p /mnt2
  mount -t nfs -o vers=3,proto=tcp,nolock,port=$SQUASH_PORT,mountport=$SQUASH_MOUNTPORT,mountproto=tcp "10.0.2.2:$SQUASH_PATH" /mnt2 || fail "mount $SQUASH_PATH"
  if cat /mnt2/secret.txt >/dev/null 2>&1; then fail "root read a 0600 file of another user under root_squash"; fi
  [ "$(cat /mnt2/public.txt)" = "public" ] || fail "root_squash: public file unreadable"
  if touch /mnt2/rootfile 2>/dev/null && [ "$(stat -c %u /mnt2/rootfile)" = "0" ]; then fail "root_squash created a file owned by root"; fi
  umount /mnt2
  ok "root_squash"
fi
echo "rw-core: ok"

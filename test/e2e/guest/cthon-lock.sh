# The Connectathon lock suite (tlocklfs, tlock64: built on the host from cthon04's lock/tlock.c) run
# from the mount, mounted with --locking. Each exits 0 only when every test passed.
mkdir -p cthon-lock
for t in tlocklfs tlock64; do
  echo "cthon-lock: running $t"
  ./$t "$PWD/cthon-lock"; rc=$?
  echo "cthon-lock: $t exit $rc"
  [ $rc = 0 ] || exit 1
done
echo "cthon-lock: all passed"

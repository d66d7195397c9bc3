# Across a kill -9 and restart of the server (driven by locking.test.ts): hold a lock while the server
# dies, then, once the host says the new server runs, take a new lock — refused while the server is
# in grace (the kernel's lockd waits and retries), granted after it.
./lockf held.lock 25 > held.out &
while [ ! -e restarted ]; do sleep 1; done
echo "locking-restart: the server restarted"
./lockf other.lock -w 5 | grep -qx locked || { echo "locking-restart: FAIL other"; exit 1; }
echo "locking-restart: new lock granted"
wait
echo "locking-restart: held.lock holder said: $(cat held.out)"

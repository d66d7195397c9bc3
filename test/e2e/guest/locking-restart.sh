# Across a kill -9 and restart of the server, on the raw wire (driven by locking.test.ts): hold a lock
# while the server dies and comes back; the new server's SM_NOTIFY makes this kernel's lockd reclaim it.
# Looking up the host's markers every second keeps the guest's NFS connection talking, so the new
# server hears the wire again. The lock is released when the host writes `release`.
./lockf held.lock 3600 > held.out &
holder=$!
while [ ! -e restarted ]; do sleep 1; done
echo "locking-restart: the server restarted"
while [ ! -e release ]; do sleep 1; done
kill $holder
wait $holder
echo "locking-restart: held.lock holder said: $(cat held.out)"

/**
 * NSM's persistent state under `<var-dir>/nsm/state.json`, as rpc.statd keeps `sm/` and `state`:
 * the state number (odd while up, advanced on every start), the hosts monitored, and the hosts still
 * to be told (SM_NOTIFY) that we restarted. Written aside and renamed, so a kill -9 leaves the old
 * or the new file, never a torn one. Writes are serialized, and saves that arrive while one waits to
 * start share it (a burst of new clients costs one write, not one each).
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';

const MyIdSchema = z.object({ myName: z.string(), prog: z.number().int(), vers: z.number().int(), proc: z.number().int() });

/** A monitored host: a client that holds locks (no myId), or an SM_MON registration (myId, priv). */
const MonitorSchema = z.object({
  monName: z.string(),
  /** Where the host called from: SM_NOTIFY goes there. */
  address: z.string().optional(),
  /** The address of ours the host used: the name it knows us by, sent as mon_name in SM_NOTIFY. */
  serverAddress: z.string().optional(),
  myId: MyIdSchema.optional(),
  priv: z.string().optional(),
});

const StateSchema = z.object({
  state: z.number().int(),
  monitors: z.array(MonitorSchema),
  notify: z.array(MonitorSchema),
});

export type MonitorRecord = z.infer<typeof MonitorSchema>;
export type MyId = z.infer<typeof MyIdSchema>;
export type NsmState = z.infer<typeof StateSchema>;

export const NSM_STATE_FILE = 'state.json';

export class NsmStore {
  /** The last write started or queued, and the one not yet started (that later saves join). */
  private current: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  private latest: NsmState | undefined;

  constructor(readonly dir: string) {}

  /** The saved state; undefined on first start. A file that does not parse is an error (never silently dropped). */
  async load(): Promise<NsmState | undefined> {
    let text: string;
    try {
      text = await readFile(path.join(this.dir, NSM_STATE_FILE), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    const r = StateSchema.safeParse(JSON.parse(text));
    if (!r.success) throw new Error(`${path.join(this.dir, NSM_STATE_FILE)}: ${r.error.issues[0]?.message ?? 'invalid'}`);
    return r.data;
  }

  /** Resolves once a write that includes `s` is on disk. */
  save(s: NsmState): Promise<void> {
    this.latest = s;
    if (this.queued) return this.queued;
    const prev = this.current;
    const p = (async () => {
      await prev?.catch(() => undefined);
      this.queued = undefined;
      await this.write(JSON.stringify(this.latest));
    })();
    this.queued = p;
    this.current = p;
    return p;
  }

  private async write(text: string): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const file = path.join(this.dir, NSM_STATE_FILE);
    await writeFile(`${file}.tmp`, text, { mode: 0o600 });
    await rename(`${file}.tmp`, file);
  }
}

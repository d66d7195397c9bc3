// Steps the library does not exercise on their own: a file changed behind the server's back, a
// MOUNT call, a step that cannot run.
import { describe, expect, it } from 'vitest';
import { ReplayStepError } from '../../server/replay/errors.ts';
import { parseFixture } from '../../server/replay/load.ts';
import { replay } from '../../server/replay/runner.ts';

const read = (label: string) => ({ do: 'call', client: 'c1', label, proc: 'READ', args: [{ fh: 'a.bin' }, { uint64: 0 }, { uint32: 4096 }] });

describe('replay steps', () => {
  it('write-behind: the next READ sees the new bytes (the cache drops pages of an older version)', async () => {
    const f = parseFixture(
      {
        version: 1,
        name: 'behind',
        description: '',
        files: { 'a.bin': { fill: 'A', size: 4096 } },
        steps: [read('before'), { do: 'write-behind', file: 'a.bin', offset: 0, content: { fill: 'C', size: 4096 } }, read('after'), { do: 'settle' }],
        expect: {
          destructor: {
            replies: { before: { data: { fill: 'A', size: 4096 } }, after: { data: { fill: 'C', size: 4096 } } },
            end: { pinnedPages: 0, destructorsFired: 2 },
          },
        },
      },
      'behind.json',
    );
    const r = await replay(f, { mode: 'destructor' });
    expect(r.failures).toEqual([]);
  });

  it('MOUNT calls go through the same dispatcher and reply path', async () => {
    const f = parseFixture(
      {
        version: 1,
        name: 'mnt',
        description: '',
        steps: [{ do: 'call', client: 'c1', label: 'mnt', program: 'mount', proc: 'MNT', args: [{ string: '/export' }] }, { do: 'call', client: 'c1', label: 'nope', program: 'mount', proc: 'MNT', args: [{ string: '/elsewhere' }] }],
        expect: { copy: { replies: { mnt: { status: 'MNT3_OK' }, nope: { status: 'MNT3ERR_NOENT' } } } },
      },
      'mnt.json',
    );
    const r = await replay(f, { mode: 'copy' });
    expect(r.failures).toEqual([]);
  });

  it('a call on a file that does not exist is a step error naming the step', async () => {
    const f = parseFixture({ version: 1, name: 'missing', description: '', steps: [read('r1')], expect: {} }, 'missing.json');
    await expect(replay(f, { mode: 'destructor', source: 'missing.json' })).rejects.toThrow(ReplayStepError);
    await expect(replay(f, { mode: 'destructor', source: 'missing.json' })).rejects.toThrow(/missing\.json: steps\[0\] \(call\): arguments:/);
  });
});

describe('pinnedWrite: wait', () => {
  it('a WRITE to pages the network holds waits, in virtual time, for the retransmission to be acknowledged', async () => {
    const f = parseFixture(
      {
        version: 1,
        name: 'wait',
        description: '',
        config: { net: { mss: 1448 }, pageCache: { pages: 64, pinnedWrite: 'wait' } },
        files: { 'a.bin': { fill: 'A', size: 8192 } },
        steps: [
          { do: 'drop-range', client: 'c1', from: 8000, to: 8001 },
          { do: 'call', client: 'c1', label: 'r1', proc: 'READ', args: [{ fh: 'a.bin' }, { uint64: 0 }, { uint32: 8192 }] },
          { do: 'call', client: 'c2', label: 'w1', proc: 'WRITE', args: [{ fh: 'a.bin' }, { uint64: 0 }, { uint32: 8192 }, { uint32: 2 }, { opaque: { fill: 'B', size: 8192 } }] },
          { do: 'check', label: 'written' },
          { do: 'settle' },
        ],
        expect: {
          destructor: {
            replies: { r1: { data: 'intact' }, w1: { status: 'NFS3_OK' } },
            checkpoints: { written: { retransmits: 1, destructorsFired: 1, cowCopies: 0 } },
            files: { 'a.bin': { fill: 'B', size: 8192 } },
          },
        },
      },
      'wait.json',
    );
    const a = await replay(f, { mode: 'destructor' });
    expect(a.failures, a.log.join('\n')).toEqual([]);
    const b = await replay(f, { mode: 'destructor' });
    expect(b.events).toEqual(a.events);
  });
});

import { loadFixture } from '../../server/replay/load.ts';
import { replay } from '../../server/replay/runner.ts';
const f = await loadFixture(process.argv[2]!);
const r = await replay(f, { mode: process.argv[3] as 'destructor' });
console.log(r.events.join('\n'));

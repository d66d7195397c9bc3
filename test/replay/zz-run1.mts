import { loadFixture } from '/work/main/server/replay/load.ts';
import { replay } from '/work/main/server/replay/runner.ts';
const f = await loadFixture(process.argv[2]!);
for (const mode of ['destructor', 'legacy', 'copy'] as const) {
  const r = await replay(f, { mode, pcap: true, trace: true });
  console.log(mode, r.pass ? 'PASS' : 'FAIL', r.failures, `${r.virtualMs}ms virt ${r.wallMs.toFixed(0)}ms wall events=${r.events.length}`);
  if (process.argv[3] === '-v') console.log(r.log.join('\n'));
}

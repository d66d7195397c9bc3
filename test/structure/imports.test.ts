/**
 * The folder rules of docs/DESIGN.md, checked against the real imports: every source file belongs to
 * a unit of the table, imports only the units its row allows, and no files import each other around
 * a circle (type-only imports included). The table is read from DESIGN.md itself, so the map and
 * this check cannot drift apart.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/server-process.ts';

const SOURCE_ROOTS = ['xdr', 'netstack', 'rpc', 'server', 'bench', 'test/support'];

interface Rule {
  unit: string;
  mayImport: string[];
}

function readRules(): Rule[] {
  const design = readFileSync(path.join(REPO_ROOT, 'docs/DESIGN.md'), 'utf8');
  const table = /<!-- import-rules:start -->([\s\S]*?)<!-- import-rules:end -->/.exec(design)?.[1];
  if (!table) throw new Error('docs/DESIGN.md has no import-rules table');
  const rules: Rule[] = [];
  for (const line of table.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    const unit = /^`([^`]+)`$/.exec(cells[1] ?? '')?.[1];
    if (!unit) continue;
    const mayImport = [...(cells[3] ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    rules.push({ unit, mayImport });
  }
  return rules;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(path.join(REPO_ROOT, dir), { withFileTypes: true })) {
    const rel = path.posix.join(dir, e.name);
    if (e.isDirectory()) out.push(...sourceFiles(rel));
    else if (e.name.endsWith('.ts')) out.push(rel);
  }
  return out;
}

/** Every module a file names: static imports and re-exports (type-only too), bare imports, import(). */
function importsOf(file: string): string[] {
  const src = readFileSync(path.join(REPO_ROOT, file), 'utf8');
  const specs = [
    ...src.matchAll(/^\s*(?:import|export)\b[^;'"]*?\bfrom\s*'([^']+)'/gms),
    ...src.matchAll(/^\s*import\s*'([^']+)'/gm),
    ...src.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g),
  ].map((m) => m[1]!);
  return specs.filter((s) => s.startsWith('.')).map((s) => path.posix.normalize(path.posix.join(path.posix.dirname(file), s)));
}

const rules = readRules();

function unitOf(file: string): string | undefined {
  let best: string | undefined;
  for (const r of rules) {
    const match = r.unit.endsWith('/') ? file.startsWith(r.unit) : file === r.unit;
    if (match && (!best || r.unit.length > best.length)) best = r.unit;
  }
  return best;
}

const files = SOURCE_ROOTS.flatMap(sourceFiles);
const graph = new Map(files.map((f) => [f, importsOf(f)]));

describe('structure (docs/DESIGN.md, folders and which may import which)', () => {
  it('reads a table with a row for every unit it names', () => {
    expect(rules.length).toBeGreaterThan(10);
    const units = new Set(rules.map((r) => r.unit));
    for (const r of rules) for (const u of r.mayImport) expect(units.has(u) || u === 'server/', `${r.unit} names ${u}`).toBe(true);
  });

  it('places every source file in a unit', () => {
    expect(files.filter((f) => !unitOf(f))).toEqual([]);
  });

  it('every import is allowed by the importing unit’s row', () => {
    const refused: string[] = [];
    for (const [file, targets] of graph) {
      const from = unitOf(file)!;
      const allowed = rules.find((r) => r.unit === from)!.mayImport;
      for (const t of targets) {
        if (!graph.has(t)) {
          refused.push(`${file} imports ${t}, which is not a source file`);
          continue;
        }
        const to = unitOf(t)!;
        if (to === from || allowed.some((a) => (a.endsWith('/') ? t.startsWith(a) : t === a))) continue;
        refused.push(`${file} (${from}) imports ${t} (${to})`);
      }
    }
    expect(refused).toEqual([]);
  });

  it('no files import each other around a circle', () => {
    // Tarjan's strongly connected components over the file graph.
    let index = 0;
    const idx = new Map<string, number>();
    const low = new Map<string, number>();
    const stack: string[] = [];
    const on = new Set<string>();
    const circles: string[][] = [];
    const visit = (v: string): void => {
      idx.set(v, index);
      low.set(v, index++);
      stack.push(v);
      on.add(v);
      for (const w of graph.get(v) ?? []) {
        if (!graph.has(w)) continue;
        if (!idx.has(w)) {
          visit(w);
          low.set(v, Math.min(low.get(v)!, low.get(w)!));
        } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
      }
      if (low.get(v) === idx.get(v)) {
        const scc: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          on.delete(w);
          scc.push(w);
        } while (w !== v);
        if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) circles.push(scc.sort());
      }
    };
    for (const f of files) if (!idx.has(f)) visit(f);
    expect(circles).toEqual([]);
  });
});

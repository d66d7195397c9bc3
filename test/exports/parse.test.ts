import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_EXPORT_OPTIONS,
  ExportsConfigSchema,
  ExportsParseError,
  exportFromFlags,
  loadExportsFile,
  parseExports,
  type ClientRule,
  type ExportEntry,
} from '../../server/exports/index.ts';

const one = (text: string): ExportEntry => {
  const entries = parseExports(text, 'exports');
  expect(entries).toHaveLength(1);
  return entries[0]!;
};
const rule = (text: string): ClientRule => one(text).rules[0]!;

/** Parses `text`, expecting an ExportsParseError; returns it for inspection. */
function parseError(text: string, file = 'exports'): ExportsParseError {
  try {
    parseExports(text, file);
  } catch (e) {
    expect(e).toBeInstanceOf(ExportsParseError);
    return e as ExportsParseError;
  }
  throw new Error(`expected a parse error for ${JSON.stringify(text)}`);
}

describe('exports file syntax', () => {
  it('reads several exports, comments, blank lines; client-visible path = directory', () => {
    const entries = parseExports(
      ['# exports for the lab', '', '/srv/a   *(rw)   # everyone', '   /srv/b 10.0.0.1', '#/srv/c *', ''].join('\n'),
      'exports',
    );
    expect(entries.map((e) => [e.path, e.dir])).toEqual([
      ['/srv/a', '/srv/a'],
      ['/srv/b', '/srv/b'],
    ]);
    expect(entries[0]!.rules[0]).toMatchObject({ kind: 'any', spec: '*', options: { ...DEFAULT_EXPORT_OPTIONS, rw: true } });
  });

  it('normalizes the path (trailing slash, //, .), keeps /', () => {
    expect(one('/srv//data/./x/ *').path).toBe('/srv/data/x');
    expect(one('/ *').path).toBe('/');
  });

  it('accepts CRLF line endings and tabs', () => {
    expect(parseExports('/a\t*(rw)\r\n/b\t*\r\n', 'f').map((e) => e.path)).toEqual(['/a', '/b']);
  });

  it('joins lines ending in a backslash, also inside an option list', () => {
    const e = one('/srv/data 10.0.0.1(rw) \\\n   10.0.0.2(rw,\\\n     no_root_squash)  \\   \n  10.0.0.3\n');
    expect(e.rules.map((r) => [r.spec, r.options.rw, r.options.rootSquash])).toEqual([
      ['10.0.0.1', true, true],
      ['10.0.0.2', true, false],
      ['10.0.0.3', false, true],
    ]);
  });

  it('takes quoted paths with spaces and \\ooo octal escapes', () => {
    expect(one('"/srv/my data"  *').path).toBe('/srv/my data');
    expect(one('/srv/my\\040data *').path).toBe('/srv/my data');
    expect(one('"/srv/#not a comment" *').path).toBe('/srv/#not a comment');
  });

  it('applies -defaults to every client of the line, client options on top', () => {
    const e = one('/srv -rw,insecure,anonuid=7 10.0.0.1 10.0.0.2(ro) 10.0.0.3(secure)');
    expect(e.rules.map((r) => [r.options.rw, r.options.secure, r.options.anonuid])).toEqual([
      [true, false, 7],
      [false, false, 7],
      [true, true, 7],
    ]);
  });

  it('gives every rule its own options object', () => {
    const [r1, r2] = one('/srv -rw 10.0.0.1 10.0.0.2').rules;
    expect(r1!.options).toEqual(r2!.options);
    expect(r1!.options).not.toBe(r2!.options);
  });

  it('lets the later of two contradicting options win, as Linux does', () => {
    expect(rule('/a *(ro,rw)').options.rw).toBe(true);
    expect(rule('/a *(rw,ro)').options.rw).toBe(false);
  });
});

describe('export options', () => {
  const opts = (list: string) => rule(`/a *(${list})`).options;

  it('defaults to Linux: ro, root_squash, no all_squash, secure, anon 65534', () => {
    expect(rule('/a *').options).toEqual({ rw: false, rootSquash: true, allSquash: false, anonuid: 65534, anongid: 65534, secure: true });
  });

  it.each([
    ['rw', { rw: true }],
    ['ro', { rw: false }],
    ['no_root_squash', { rootSquash: false }],
    ['root_squash', { rootSquash: true }],
    ['all_squash', { allSquash: true }],
    ['all_squash,no_all_squash', { allSquash: false }],
    ['insecure', { secure: false }],
    ['insecure,secure', { secure: true }],
    ['anonuid=1000', { anonuid: 1000 }],
    ['anongid=0', { anongid: 0 }],
    ['anonuid=4294967295', { anonuid: 4294967295 }],
  ])('%s', (list, expected) => {
    expect(opts(list)).toEqual({ ...DEFAULT_EXPORT_OPTIONS, ...expected });
  });

  it('accepts sync, no_subtree_check silently and async, subtree_check with a note', () => {
    const quiet = rule('/a *(sync,no_subtree_check)');
    expect(quiet.options).toEqual(DEFAULT_EXPORT_OPTIONS);
    expect(quiet.notes).toEqual([]);
    const noted = rule('/a *(async,subtree_check)');
    expect(noted.options).toEqual(DEFAULT_EXPORT_OPTIONS);
    expect(noted.notes).toHaveLength(2);
    expect(noted.notes.join(' ')).toMatch(/async.*subtree_check/s);
  });

  it('takes a numeric fsid as the export id, notes root and UUIDs', () => {
    expect(one('/a *(fsid=42)').fsid).toBe(42);
    expect(one('/a -fsid=9 10.0.0.1 10.0.0.2(rw)').fsid).toBe(9);
    const root = one('/a *(fsid=root)');
    expect(root.fsid).toBeUndefined();
    expect(root.rules[0]!.notes.join()).toMatch(/fsid=root/);
    expect(one('/a *(fsid=3b1e2f4a-9c3d-4e5f-8a7b-0c1d2e3f4a5b)').rules[0]!.notes).toHaveLength(1);
  });

  it.each([
    ['bogus', /unknown export option 'bogus'/, 6],
    ['rw,nohide', /unknown export option 'nohide'/, 9],
    ['rw=1', /rw takes no value/, 6],
    ['anonuid', /anonuid needs a value/, 6],
    ['anonuid=', /anonuid needs a value/, 6],
    ['anonuid=-2', /anonuid must be a decimal number/, 6],
    ['anongid=4294967296', /anongid must be a decimal number/, 6],
    ['anonuid=1e3', /anonuid must be a decimal number/, 6],
    ['fsid=70000', /fsid must be 0\.\.65535/, 6],
    ['fsid=abc', /fsid must be a number, root, or a UUID/, 6],
    ['rw,,sync', /empty option/, 9],
    ['', /empty option list/, 5],
  ])('rejects (%s) naming the option and its column', (list, reason, column) => {
    const e = parseError(`/a *(${list})`);
    expect(e.reason).toMatch(reason);
    expect([e.line, e.column]).toEqual([1, column]);
  });

  it('rejects contradicting fsid values for one export', () => {
    expect(parseError('/a 10.0.0.1(fsid=1) 10.0.0.2(fsid=2)').reason).toMatch(/fsid=2 contradicts fsid=1/);
  });
});

describe('client forms', () => {
  it('* is anonymous (everyone)', () => {
    expect(rule('/a *')).toMatchObject({ kind: 'any' });
  });

  it('IPv4 address, network with prefix length and with netmask; host bits cleared', () => {
    expect(rule('/a 192.168.1.7')).toMatchObject({ kind: 'ipv4', network: 0xc0a80107, prefixLength: 32, single: true });
    expect(rule('/a 10.1.2.3/8')).toMatchObject({ kind: 'ipv4', network: 0x0a000000, prefixLength: 8, single: false });
    expect(rule('/a 172.16.0.0/255.240.0.0')).toMatchObject({ kind: 'ipv4', network: 0xac100000, prefixLength: 12 });
    expect(rule('/a 0.0.0.0/0')).toMatchObject({ kind: 'ipv4', network: 0, prefixLength: 0 });
    expect(rule('/a 10.0.0.9/32')).toMatchObject({ single: true });
  });

  it('IPv6 address and network', () => {
    expect(rule('/a 2001:db8::1')).toMatchObject({ kind: 'ipv6', network: [0x20010db8, 0, 0, 1], prefixLength: 128, single: true });
    expect(rule('/a 2001:db8:abcd:12::ff/56')).toMatchObject({ kind: 'ipv6', network: [0x20010db8, 0xabcd0000, 0, 0], prefixLength: 56 });
    expect(rule('/a ::ffff:10.0.0.0/104')).toMatchObject({ kind: 'ipv6', network: [0, 0, 0xffff, 0x0a000000] });
  });

  it('host names and wildcards, lower-cased, trailing dot dropped', () => {
    expect(rule('/a Build-01.Example.ORG.')).toMatchObject({ kind: 'hostname', name: 'build-01.example.org', spec: 'Build-01.Example.ORG.' });
    expect(rule('/a localhost')).toMatchObject({ kind: 'hostname', name: 'localhost' });
    expect(rule('/a *.Lab.example.org')).toMatchObject({ kind: 'wildcard', pattern: '*.lab.example.org' });
    expect(rule('/a node??.example.org')).toMatchObject({ kind: 'wildcard', pattern: 'node??.example.org' });
  });

  it('orders rules as exports(5) does: single hosts, networks, wildcards, anonymous', () => {
    const e = one('/a *(ro) *.example.org 10.0.0.0/8 h.example.org 10.0.0.5 2001:db8::/32 *.x.org');
    expect(e.rules.map((r) => r.spec)).toEqual(['h.example.org', '10.0.0.5', '10.0.0.0/8', '2001:db8::/32', '*.example.org', '*.x.org', '*']);
  });

  it.each([
    ['@trusted', /netgroups \(@name\) are not supported/],
    ['10.1', /not a valid IPv4 address/],
    ['300.1.1.1', /not a valid IPv4 address/],
    ['10.0.0.0/33', /prefix length must be 0\.\.32/],
    ['10.0.0.0/255.0.255.0', /netmask bits must be contiguous/],
    ['10.0.0.0/x', /netmask must be a prefix length or a dotted quad/],
    ['2001:db8::/129', /IPv6 prefix length must be 0\.\.128/],
    ['2001:db8:::1', /not a valid IPv6 address/],
    ['fe80::1%eth0', /zone indexes/],
    ['gss/krb5', /not an IP network/],
    ['host_or?[ab].org', /character classes/],
    ['bad-.example.org', /not a valid host name/],
    ['a..b', /not a valid host name/],
  ])('rejects client %s', (client, reason) => {
    const e = parseError(`/srv/x ${client}`);
    expect(e.reason).toMatch(reason);
    expect([e.line, e.column, e.token]).toEqual([1, 8, client]);
  });
});

describe('parse errors name file, line, column and token', () => {
  it('a bad option on a continued line points at that physical line', () => {
    const e = parseError('# header\n/srv/a 10.0.0.1(rw) \\\n    10.0.0.2(rw,\\\n   frobnicate)\n', 'etc/exports');
    expect(e).toMatchObject({ file: 'etc/exports', line: 4, column: 4, token: 'frobnicate' });
    expect(e.message).toBe(
      "etc/exports:4:4: unknown export option 'frobnicate' (known: rw, ro, root_squash, no_root_squash, all_squash, no_all_squash, secure, insecure, sync, async, no_subtree_check, subtree_check, anonuid=, anongid=, fsid=) (at 'frobnicate')",
    );
  });

  it.each([
    ['/a (rw)', 1, 4, /options without a client/],
    ['/a', 1, 1, /no clients/],
    ['/a -rw', 1, 1, /no clients/],
    ['srv *', 1, 1, /must be an absolute path/],
    ['*(rw) /srv', 1, 1, /must start with the exported directory/],
    ['/a *(rw', 1, 5, /unclosed '\('/],
    ['/a *(rw\n)', 1, 5, /unclosed '\('/],
    ['/a *rw)', 1, 7, /'\)' without '\('/],
    ['/a *((rw))', 1, 6, /nested '\('/],
    ['/a *(rw)x', 1, 9, /text after '\)'/],
    ['"/a *', 1, 1, /unterminated quote/],
    ['/a "*"', 1, 4, /quotes are only allowed around the exported directory/],
    ['/a *("rw")', 1, 6, /quotes are not allowed in an option list/],
    ['/a \\x *', 1, 4, /a backslash must end the line/],
    ['/a 10.0.0.1 -rw', 1, 13, /must come right after the exported directory/],
    ['/a 10.0.0.1 10.0.0.1(rw)', 1, 4, /listed twice/],
    ['/a *\n\n/b *\n/a/ 10.0.0.1', 4, 1, /\/a is already exported on line 1/],
  ])('%j → line %i col %i', (text, line, column, reason) => {
    const e = parseError(text);
    expect(e.reason).toMatch(reason);
    expect([e.line, e.column]).toEqual([line, column]);
    expect(e.message).toContain(`exports:${line}:${column}: `);
  });
});

describe('exportFromFlags', () => {
  it('builds the embedded default with the same option parser', () => {
    const e = exportFromFlags({ dir: '/var/lib/pagelife/export', path: '/export', clients: '*', options: 'rw,root_squash,insecure' });
    expect(e).toEqual({
      path: '/export',
      dir: '/var/lib/pagelife/export',
      rules: [{ kind: 'any', spec: '*', notes: [], options: { ...DEFAULT_EXPORT_OPTIONS, rw: true, secure: false } }],
    });
  });

  it('resolves a relative dir, takes several clients and an fsid', () => {
    const e = exportFromFlags({ dir: 'data', path: '/export/', clients: '10.0.0.0/8, 127.0.0.1 *.lan', options: 'fsid=3' });
    expect(e.dir).toBe(path.resolve('data'));
    expect(e.path).toBe('/export');
    expect(e.fsid).toBe(3);
    expect(e.rules.map((r) => r.kind)).toEqual(['ipv4', 'ipv4', 'wildcard']);
    expect(exportFromFlags({ dir: '/d', path: '/x', clients: '*', options: '' }).rules[0]!.options).toEqual(DEFAULT_EXPORT_OPTIONS);
    expect(exportFromFlags({ dir: '/d', path: '/x', clients: '*', options: ' rw, insecure ' }).rules[0]!.options).toEqual({
      ...DEFAULT_EXPORT_OPTIONS,
      rw: true,
      secure: false,
    });
  });

  it('names the flag and the column in errors', () => {
    const opt = (() => {
      try {
        exportFromFlags({ dir: '/d', path: '/x', clients: '*', options: 'rw, squash_all' });
      } catch (e) {
        return e;
      }
    })();
    expect(opt).toMatchObject({ file: '--export-options', line: 1, column: 5, token: 'squash_all' });
    expect(() => exportFromFlags({ dir: '/d', path: '/x', clients: '10.0.0.1 @ng', options: 'rw' })).toThrow(
      expect.objectContaining({ file: '--export-clients', column: 10, token: '@ng' }),
    );
    expect(() => exportFromFlags({ dir: '/d', path: '/x', clients: ' ', options: 'rw' })).toThrow(/no clients given/);
  });
});

describe('loadExportsFile and the schema', () => {
  it('reads a file and reports errors with its name', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'pagelife-exports-'));
    try {
      const good = path.join(dir, 'exports');
      await writeFile(good, '/srv/a *(rw)\n/srv/b 10.0.0.0/8\n');
      expect((await loadExportsFile(good)).map((e) => e.path)).toEqual(['/srv/a', '/srv/b']);
      const bad = path.join(dir, 'bad');
      await writeFile(bad, '/srv/a *(rw)\n/srv/b *(wr)\n');
      await expect(loadExportsFile(bad)).rejects.toMatchObject({ file: bad, line: 2, column: 10 });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('parser output satisfies ExportsConfigSchema, which rejects duplicate paths and bad ranges', () => {
    const entries = parseExports('/a *(rw)\n/b 10.0.0.0/8 2001:db8::/32 h.example.org *.example.org', 'f');
    expect(ExportsConfigSchema.parse(entries)).toEqual(entries);
    expect(ExportsConfigSchema.safeParse([...entries, entries[0]]).success).toBe(false);
    const r = structuredClone(entries[0]!);
    r.rules[0]!.options.anonuid = -1;
    expect(ExportsConfigSchema.safeParse([r]).success).toBe(false);
    expect(ExportsConfigSchema.safeParse([{ ...entries[0]!, path: '/a/../b' }]).success).toBe(false);
  });
});

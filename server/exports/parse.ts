/**
 * exports(5) files, and the same option syntax for exports built from CLI flags.
 *
 * File syntax (a subset of Linux's, with the same meaning wherever it overlaps):
 *
 *   # comment                                  to the end of the line, anywhere outside quotes
 *   /srv/data   10.0.0.0/8(rw) *.lab.example.org(ro) \
 *               2001:db8::/32(rw,no_root_squash)
 *   "/srv/with space"  -ro,insecure  host.example.org  *(all_squash)
 *   /srv/odd\040name   192.168.1.7             # \ooo: three octal digits, as exportfs writes them
 *
 * - The first token is the exported directory, and also the path clients mount (no aliases).
 * - `-opts` right after the path sets the line's defaults; a client's `(opts)` apply on top of
 *   them; within a list the last of two contradicting options wins (as in Linux).
 * - `\` at the end of a line continues the entry; inside `( )` whitespace and continuations are
 *   allowed, so a long option list can be split.
 * - Stricter than Linux, because each of these is a silent mistake there: a path without
 *   clients, options without a client (`/srv (rw)`: the space exports rw to the world), unknown
 *   options, the same client twice in an entry, the same path twice in a file. Netgroups (`@x`)
 *   need NIS and are rejected.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { normalizeExportPath } from './path.ts';
import { parseIPv4, parseIPv6 } from './address.ts';
import { ExportsParseError } from './errors.ts';
import { ExportEntrySchema } from './schema.ts';
import type { ClientRule, ExportEntry, ExportOptions } from './types.ts';

/** Linux's defaults (nfs-utils): ro, root_squash, secure, anonymous id 65534 ("nobody"). */
export const DEFAULT_EXPORT_OPTIONS: Readonly<ExportOptions> = Object.freeze({
  rw: false,
  rootSquash: true,
  allSquash: false,
  anonuid: 65534,
  anongid: 65534,
  secure: true,
});

interface Pos {
  line: number;
  column: number;
}

/** A whitespace-separated word of a logical line, with the source position of each character. */
interface Token {
  text: string;
  /** Position of text[i]; a continuation or escape makes these non-contiguous. */
  pos: Pos[];
  start: Pos;
  quoted: boolean;
}

/** Options as they accumulate through defaults and a client's list. */
interface OptionState {
  options: ExportOptions;
  notes: string[];
  fsid: number | undefined;
}

type RuleTarget =
  | { kind: 'any' }
  | { kind: 'ipv4'; network: number; prefixLength: number; single: boolean }
  | { kind: 'ipv6'; network: [number, number, number, number]; prefixLength: number; single: boolean }
  | { kind: 'hostname'; name: string }
  | { kind: 'wildcard'; pattern: string };

class Source {
  constructor(readonly file: string) {}
  fail(at: Pos, token: string, reason: string): never {
    throw new ExportsParseError(this.file, at.line, at.column, token, reason);
  }
  /** Position of character `i` of a token (its start if the token is shorter, e.g. empty). */
  at(tok: Token, i: number): Pos {
    return tok.pos[i] ?? tok.pos[tok.pos.length - 1] ?? tok.start;
  }
}

/** Parses an exports file's text; `file` is only used in error messages. */
export function parseExports(text: string, file: string): ExportEntry[] {
  const src = new Source(file);
  const entries: ExportEntry[] = [];
  const firstSeen = new Map<string, Pos>();
  for (const line of tokenize(text, src)) {
    const [pathTok] = line;
    const entry = parseEntry(line, src);
    const earlier = firstSeen.get(entry.path);
    if (earlier) src.fail(pathTok.start, pathTok.text, `${entry.path} is already exported on line ${earlier.line}; merge the two entries`);
    firstSeen.set(entry.path, pathTok.start);
    entries.push(checked(entry, pathTok, src));
  }
  return entries;
}

export async function loadExportsFile(file: string): Promise<ExportEntry[]> {
  return parseExports(await readFile(file, 'utf8'), file);
}

/**
 * One export from command-line flags, using the file syntax for its parts: `clients` is a list of
 * client specifications separated by commas or spaces, `options` an option list without
 * parentheses. Errors name the flag (`--export-clients`, `--export-options`) as their file.
 */
export function exportFromFlags(o: { dir: string; path: string; clients: string; options: string }): ExportEntry {
  const optSrc = new Source('--export-options');
  const optTok = flagToken(o.options, 0, true);
  const state = optTok.text === '' ? initialState() : parseOptionList(optTok, 0, optTok.text.length, initialState(), optSrc);
  const cliSrc = new Source('--export-clients');
  const rules: ClientRule[] = [];
  const re = /[^\s,]+/g;
  for (let m = re.exec(o.clients); m !== null; m = re.exec(o.clients)) {
    const tok = flagToken(m[0], m.index);
    rules.push({ ...parseClient(tok, cliSrc), spec: m[0], options: { ...state.options }, notes: [...state.notes] });
  }
  const tok = flagToken(o.clients);
  if (rules.length === 0) cliSrc.fail(tok.start, o.clients, 'no clients given: use * for everyone');
  rejectDuplicates(rules, tok, cliSrc);
  const entry: ExportEntry = { path: normalizeExportPath(o.path), dir: path.resolve(o.dir), rules: inPrecedenceOrder(rules) };
  if (state.fsid !== undefined) entry.fsid = state.fsid;
  return checked(entry, flagToken(o.path), new Source('--export-path'));
}

/** A flag's value as a token on "line 1"; `dropSpaces` allows `rw, insecure` as in `( )`. */
function flagToken(text: string, offset = 0, dropSpaces = false): Token {
  const tok: Token = { text: '', pos: [], start: { line: 1, column: offset + 1 }, quoted: false };
  Array.from(text).forEach((ch, i) => {
    if (dropSpaces && /\s/.test(ch)) return;
    tok.text += ch;
    tok.pos.push({ line: 1, column: offset + i + 1 });
  });
  return tok;
}

function initialState(): OptionState {
  return { options: { ...DEFAULT_EXPORT_OPTIONS }, notes: [], fsid: undefined };
}

/** The zod schema is the last word on the result; a failure still points at the entry's line. */
function checked(entry: ExportEntry, at: Token, src: Source): ExportEntry {
  const r = ExportEntrySchema.safeParse(entry);
  if (!r.success) {
    const issue = r.error.issues[0];
    src.fail(at.start, at.text, `invalid export: ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'rejected'}`);
  }
  return entry;
}

// ---------------------------------------------------------------------------------------------
// Tokenizer: text → logical lines of tokens.

type Line = [Token, ...Token[]];

function tokenize(text: string, src: Source): Line[] {
  const lines: Line[] = [];
  let tokens: Token[] = [];
  let cur: Token | null = null;
  let quote: Pos | null = null;
  let paren: Pos | null = null;
  let line = 1;
  let column = 1;
  let i = 0;

  const push = (ch: string, at: Pos) => {
    cur ??= { text: '', pos: [], start: at, quoted: false };
    cur.text += ch;
    cur.pos.push(at);
  };
  const endToken = () => {
    if (cur) tokens.push(cur);
    cur = null;
  };
  const newline = (width: number) => {
    i += width;
    line++;
    column = 1;
  };
  const eolWidth = (j: number) => (text[j] === '\n' ? 1 : text[j] === '\r' && text[j + 1] === '\n' ? 2 : 0);

  while (i < text.length) {
    const ch = text[i] ?? '';
    const here = { line, column };
    const eol = eolWidth(i);
    if (eol > 0) {
      if (quote) src.fail(quote, '"', 'unterminated quote');
      if (paren) src.fail(paren, '(', "unclosed '(' (continue a long option list with '\\' at the end of the line)");
      endToken();
      if (tokens.length > 0) lines.push(tokens as Line);
      tokens = [];
      newline(eol);
      continue;
    }
    if (quote) {
      if (ch === '"') quote = null;
      else push(ch, here);
    } else if (ch === '#') {
      while (i < text.length && eolWidth(i) === 0) i++;
      continue;
    } else if (ch === '\\') {
      let j = i + 1;
      while (text[j] === ' ' || text[j] === '\t') j++;
      if (j === text.length || eolWidth(j) > 0) {
        // Continuation: the next physical line belongs to this entry.
        if (!paren) endToken();
        newline(j === text.length ? j - i : j - i + eolWidth(j));
        continue;
      }
      const octal = /^[0-7]{3}/.exec(text.slice(i + 1, i + 4));
      if (!octal) src.fail(here, '\\', "a backslash must end the line (continuation) or start a three-digit octal escape like \\040");
      push(String.fromCharCode(parseInt(octal[0], 8)), here);
      i += 4;
      column += 4;
      continue;
    } else if (ch === '"') {
      if (paren) src.fail(here, '"', 'quotes are not allowed in an option list');
      quote = here;
      cur ??= { text: '', pos: [], start: here, quoted: true };
      cur.quoted = true;
    } else if (ch === ' ' || ch === '\t' || ch === '\r' || ch === '\f' || ch === '\v') {
      if (!paren) endToken();
    } else {
      if (ch === '(') {
        if (paren) src.fail(here, '(', "nested '('");
        paren = here;
      } else if (ch === ')') {
        if (!paren) src.fail(here, ')', "')' without '('");
        paren = null;
      }
      push(ch, here);
    }
    i++;
    column++;
  }
  if (quote) src.fail(quote, '"', 'unterminated quote');
  if (paren) src.fail(paren, '(', "unclosed '('");
  endToken();
  if (tokens.length > 0) lines.push(tokens as Line);
  return lines;
}

// ---------------------------------------------------------------------------------------------
// Entries, clients, options.

function parseEntry(tokens: Line, src: Source): ExportEntry {
  const [pathTok, ...rest] = tokens;
  const p = pathTok.text;
  if (!pathTok.quoted && (p.includes('(') || p.startsWith('-'))) src.fail(pathTok.start, p, 'an entry must start with the exported directory');
  if (!p.startsWith('/')) src.fail(pathTok.start, p, 'the exported directory must be an absolute path');
  if (p.includes('\0')) src.fail(pathTok.start, p, 'the exported directory contains a NUL character');
  const exportPath = normalizeExportPath(p);

  let defaults = initialState();
  let clientToks = rest;
  const [first] = rest;
  if (first && !first.quoted && first.text.startsWith('-')) {
    defaults = parseOptionList(first, 1, first.text.length, defaults, src);
    clientToks = rest.slice(1);
  }
  if (clientToks.length === 0) src.fail(pathTok.start, p, "no clients: name who may mount it (write '*' for everyone)");

  const rules: ClientRule[] = [];
  let fsid = defaults.fsid;
  for (const tok of clientToks) {
    if (tok.quoted) src.fail(tok.start, tok.text, 'quotes are only allowed around the exported directory');
    if (tok.text.startsWith('-')) src.fail(tok.start, tok.text, 'default options (-opts) must come right after the exported directory');
    const open = tok.text.indexOf('(');
    const nameEnd = open < 0 ? tok.text.length : open;
    if (nameEnd === 0) {
      src.fail(tok.start, tok.text, "options without a client: a space before '(' would export to everyone; write '*(...)' if that is meant");
    }
    let state = defaults;
    if (open >= 0) {
      const close = tok.text.length - 1;
      if (tok.text[close] !== ')') src.fail(src.at(tok, tok.text.indexOf(')') + 1), tok.text, "text after ')'; separate clients with spaces");
      state = parseOptionList(tok, open + 1, close, defaults, src);
    }
    if (state.fsid !== undefined) {
      if (fsid !== undefined && fsid !== state.fsid) src.fail(tok.start, tok.text, `fsid=${state.fsid} contradicts fsid=${fsid} given earlier for this export`);
      fsid = state.fsid;
    }
    const spec = tok.text.slice(0, nameEnd);
    const nameTok: Token = { ...tok, text: spec, pos: tok.pos.slice(0, nameEnd) };
    rules.push({ ...parseClient(nameTok, src), spec, options: { ...state.options }, notes: [...state.notes] });
  }
  rejectDuplicates(rules, clientToks[0] ?? pathTok, src);
  const entry: ExportEntry = { path: exportPath, dir: exportPath, rules: inPrecedenceOrder(rules) };
  if (fsid !== undefined) entry.fsid = fsid;
  return entry;
}

function rejectDuplicates(rules: ClientRule[], at: Token, src: Source): void {
  const seen = new Set<string>();
  for (const r of rules) {
    const key = r.spec.toLowerCase();
    if (seen.has(key)) src.fail(at.start, r.spec, `client ${r.spec} is listed twice for this export`);
    seen.add(key);
  }
}

/**
 * exports(5): "If a client matches more than one of the specifications, the first match from
 * [single host, IP networks, wildcards, netgroups, anonymous] takes precedence, regardless of the
 * order on the line"; within a class, line order. Sorting once here keeps matching first-match.
 */
function inPrecedenceOrder(rules: ClientRule[]): ClientRule[] {
  const rank = (r: ClientRule) => {
    switch (r.kind) {
      case 'hostname':
        return 0;
      case 'ipv4':
      case 'ipv6':
        return r.single ? 0 : 1;
      case 'wildcard':
        return 2;
      case 'any':
        return 3;
    }
  };
  return [...rules].sort((a, b) => rank(a) - rank(b)); // Array.prototype.sort is stable.
}

const HOST_LABEL = /^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?$/;
const WILDCARD_LABEL = /^[a-z0-9_*?-]+$/;

function parseClient(tok: Token, src: Source): RuleTarget {
  const spec = tok.text;
  const bad = (reason: string): never => src.fail(tok.start, spec, reason);
  if (spec === '*') return { kind: 'any' };
  if (spec.startsWith('@')) bad('netgroups (@name) are not supported: pagelife has no NIS; list hosts or networks instead');
  if (spec.includes('%')) bad('zone indexes (%iface) are not allowed in a client');
  const slash = spec.indexOf('/');
  if (slash >= 0) return parseNetwork(spec.slice(0, slash), spec.slice(slash + 1), bad);
  const v4 = parseIPv4(spec);
  if (v4 !== null) return { kind: 'ipv4', network: v4, prefixLength: 32, single: true };
  if (spec.includes(':')) {
    const v6 = parseIPv6(spec);
    if (v6 === null) return bad('not a valid IPv6 address');
    return { kind: 'ipv6', network: v6, prefixLength: 128, single: true };
  }
  // `10.1` would be 10.0.0.1 to inet_aton and a host name to DNS: refuse to guess.
  if (/^[0-9.]+$/.test(spec)) bad('not a valid IPv4 address (write all four parts)');
  const name = spec.toLowerCase().replace(/\.$/, '');
  const labels = name.split('.');
  if (name.length > 253) bad('host name longer than 253 characters');
  if (/[*?]/.test(name)) {
    if (spec.includes('[')) bad('character classes are not supported in wildcards; use * and ?');
    if (!labels.every((l) => l.length > 0 && WILDCARD_LABEL.test(l))) bad('not a valid host name pattern');
    return { kind: 'wildcard', pattern: name };
  }
  if (!labels.every((l) => l.length <= 63 && HOST_LABEL.test(l))) bad('not a valid host name, address or network');
  return { kind: 'hostname', name };
}

function parseNetwork(addrText: string, maskText: string, bad: (reason: string) => never): RuleTarget {
  const v4 = parseIPv4(addrText);
  if (v4 !== null) {
    const prefixLength = /^\d{1,2}$/.test(maskText) ? Number(maskText) : netmaskPrefix(maskText, bad);
    if (prefixLength > 32) bad('IPv4 prefix length must be 0..32');
    const mask = prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
    return { kind: 'ipv4', network: (v4 & mask) >>> 0, prefixLength, single: prefixLength === 32 };
  }
  const v6 = addrText.includes(':') ? parseIPv6(addrText) : null;
  if (v6 === null) return bad('not an IP network (address/prefix length or address/netmask)');
  if (!/^\d{1,3}$/.test(maskText) || Number(maskText) > 128) bad('IPv6 prefix length must be 0..128');
  const prefixLength = Number(maskText);
  const network = v6.map((w, i) => {
    const bits = prefixLength - 32 * i;
    const mask = bits <= 0 ? 0 : bits >= 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
    return (w & mask) >>> 0;
  }) as [number, number, number, number];
  return { kind: 'ipv6', network, prefixLength, single: prefixLength === 128 };
}

/** A dotted netmask (255.255.240.0) as a prefix length; the ones must be contiguous. */
function netmaskPrefix(text: string, bad: (reason: string) => never): number {
  const m = parseIPv4(text);
  if (m === null) return bad('netmask must be a prefix length or a dotted quad');
  const inverted = ~m >>> 0;
  if ((inverted & (inverted + 1)) !== 0) bad('netmask bits must be contiguous');
  return 32 - Math.log2(inverted + 1);
}

const FLAG_OPTIONS: Record<string, (s: OptionState) => void> = {
  rw: (s) => void (s.options.rw = true),
  ro: (s) => void (s.options.rw = false),
  root_squash: (s) => void (s.options.rootSquash = true),
  no_root_squash: (s) => void (s.options.rootSquash = false),
  all_squash: (s) => void (s.options.allSquash = true),
  no_all_squash: (s) => void (s.options.allSquash = false),
  secure: (s) => void (s.options.secure = true),
  insecure: (s) => void (s.options.secure = false),
  // Writes are stable when the reply says so whatever this says: `async` (reply FILE_SYNC before
  // the data is on disk) silently loses acknowledged writes in a crash, so it is accepted and not obeyed.
  sync: () => {},
  async: (s) => note(s, 'async is accepted but not obeyed: pagelife only reports data stable once it is (use UNSTABLE writes + COMMIT for speed)'),
  no_subtree_check: () => {},
  subtree_check: (s) =>
    note(s, 'subtree_check is accepted but not performed: file handles are bound to their export, not checked against its subtree'),
};

const VALUE_OPTIONS: Record<string, (s: OptionState, value: string, bad: (reason: string) => never) => void> = {
  anonuid: (s, v, bad) => void (s.options.anonuid = uint32(v, 'anonuid', bad)),
  anongid: (s, v, bad) => void (s.options.anongid = uint32(v, 'anongid', bad)),
  fsid: (s, v, bad) => {
    if (/^\d+$/.test(v)) {
      const n = Number(v);
      if (n > 0xffff) bad('fsid must be 0..65535 here: it becomes the 16-bit export id in file handles');
      s.fsid = n;
    } else if (v === 'root' || /^[0-9a-f]{8}(-?[0-9a-f]{4}){3}-?[0-9a-f]{12}$/i.test(v)) {
      note(s, `fsid=${v} is accepted but ignored: only a number (the export id in file handles) has an effect`);
    } else {
      bad('fsid must be a number, root, or a UUID');
    }
  },
};

const KNOWN = [...Object.keys(FLAG_OPTIONS), ...Object.keys(VALUE_OPTIONS).map((k) => `${k}=`)].join(', ');

function note(s: OptionState, text: string): void {
  if (!s.notes.includes(text)) s.notes.push(text);
}

function uint32(v: string, name: string, bad: (reason: string) => never): number {
  if (!/^\d{1,10}$/.test(v) || Number(v) > 0xffffffff) bad(`${name} must be a decimal number 0..4294967295`);
  return Number(v);
}

/** Applies the comma-separated options in tok.text[from, to) on top of `base` (not modified). */
function parseOptionList(tok: Token, from: number, to: number, base: OptionState, src: Source): OptionState {
  const s: OptionState = { options: { ...base.options }, notes: [...base.notes], fsid: base.fsid };
  const list = tok.text.slice(from, to);
  if (list === '') src.fail(src.at(tok, from - 1), tok.text, "empty option list: leave out '()' to get the defaults");
  let offset = from;
  for (const item of list.split(',')) {
    const at = src.at(tok, offset);
    const bad = (reason: string): never => src.fail(at, item, reason);
    const eq = item.indexOf('=');
    const name = eq < 0 ? item : item.slice(0, eq);
    if (item === '') bad('empty option');
    const flag = FLAG_OPTIONS[name];
    const valued = VALUE_OPTIONS[name];
    if (flag) {
      if (eq >= 0) bad(`${name} takes no value`);
      flag(s);
    } else if (valued) {
      if (eq < 0 || eq === item.length - 1) bad(`${name} needs a value (${name}=…)`);
      valued(s, item.slice(eq + 1), bad);
    } else {
      bad(`unknown export option '${name}' (known: ${KNOWN})`);
    }
    offset += item.length + 1;
  }
  return s;
}

/**
 * Exports: which host directories are served, to whom, and with which options.
 *
 * An `ExportEntry` is one exported directory. `path` is what a client names in MNT
 * (`mount host:/path`); `dir` is the host directory behind it. In an exports file the two are
 * the same string (the Linux convention: the path in the file is the path clients mount); only
 * `exportFromFlags` (the CLI's `--export DIR`, served as `/export`) makes them differ.
 *
 * `rules` are in match order: the first rule that matches a client decides its options (see
 * match.ts). The parser orders them the way exports(5) does — single hosts, then networks, then
 * wildcards, then anonymous — keeping file order within each class.
 */

/** The options that change behaviour. Defaults are Linux's: ro, root_squash, secure, anon 65534. */
export interface ExportOptions {
  rw: boolean;
  rootSquash: boolean;
  allSquash: boolean;
  anonuid: number;
  anongid: number;
  secure: boolean;
}

/** The credential a call runs with after squashing. */
export interface Identity {
  uid: number;
  gid: number;
  gids: number[];
}

interface RuleBase {
  /** The client as written (`10.0.0.0/8`, `*.example.org`, `*`), for logs and error messages. */
  spec: string;
  options: ExportOptions;
  /** Options accepted for compatibility that change nothing here (sync, subtree_check, fsid=…). */
  notes: string[];
}

/**
 * A client specification. Address rules hold parsed numbers so that matching a call's source
 * address needs no allocation: IPv4 as one uint32, IPv6 as four uint32 words (most significant
 * first). An IPv4 client also matches IPv6 rules through its mapped form (`::ffff:a.b.c.d`), so
 * `::/0` admits everyone and `::ffff:10.0.0.0/104` means 10.0.0.0/8.
 */
export type ClientRule =
  | (RuleBase & { kind: 'any' })
  /** A single address (`prefixLength` 32 or 128) or a network; host bits are already cleared. */
  | (RuleBase & { kind: 'ipv4'; network: number; prefixLength: number; single: boolean })
  | (RuleBase & { kind: 'ipv6'; network: [number, number, number, number]; prefixLength: number; single: boolean })
  /** Exact host name, lower case, no trailing dot. */
  | (RuleBase & { kind: 'hostname'; name: string })
  /** Host name pattern with `*` and `?` (which, as in exports(5), also match dots), lower case. */
  | (RuleBase & { kind: 'wildcard'; pattern: string });

export interface ExportEntry {
  path: string;
  dir: string;
  rules: ClientRule[];
  /** A numeric `fsid=` option: the export id carried in file handles (server/vfs ExportSpec.id). */
  fsid?: number;
}

/** The parsed contents of an exports file (see schema.ts for its zod form). */
export type ExportsConfig = ExportEntry[];

/** Where in an exports file (or which CLI flag) a problem is, and what it is. */
export class ExportsParseError extends Error {
  override readonly name = 'ExportsParseError';
  constructor(
    /** The exports file, or the flag (`--export-options`) for exports built from the command line. */
    readonly file: string,
    /** 1-based physical line (continuation lines count). */
    readonly line: number,
    /** 1-based column of `token`. */
    readonly column: number,
    /** The offending text: a path, client, option, or character. */
    readonly token: string,
    readonly reason: string,
  ) {
    super(`${file}:${line}:${column}: ${reason}${token === '' ? '' : ` (at '${token}')`}`);
  }
}

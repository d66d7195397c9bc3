/**
 * The server cannot start as configured on this host (a port taken, an address that does not
 * resolve, an exports file that cannot be read): the CLI prints the message on one line, exit 2.
 */
export class StartupError extends Error {
  override readonly name = 'StartupError';
  constructor(
    message: string,
    readonly context: Record<string, unknown>,
  ) {
    super(message);
  }
}

const BIND_ERRORS: Record<string, string> = {
  EADDRINUSE: 'address already in use',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'host name not resolvable now',
  EADDRNOTAVAIL: 'address not available on this machine',
  EACCES: 'permission denied',
};

/** A socket's bind or listen error as a StartupError naming what was bound where. */
export function bindError(what: string, host: string, port: number, e: unknown): StartupError {
  const code = (e as NodeJS.ErrnoException).code;
  const why = (code && BIND_ERRORS[code]) ?? (e as Error).message;
  return new StartupError(`cannot listen for ${what} on ${host}:${port}: ${why}${code ? ` (${code})` : ''}`, { what, host, port, code });
}

/** Runs a bind; its error becomes a StartupError. */
export async function bindOrFail<T>(what: string, host: string, port: number, bind: () => Promise<T>): Promise<T> {
  try {
    return await bind();
  } catch (e) {
    throw bindError(what, host, port, e);
  }
}

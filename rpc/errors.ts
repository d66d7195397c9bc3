import type { AcceptStat, AuthStat } from './constants.ts';

/** Thrown by a procedure (or the dispatcher) to answer with an accepted reply other than SUCCESS. */
export class RpcAcceptError extends Error {
  override readonly name = 'RpcAcceptError';
  constructor(
    readonly stat: Exclude<AcceptStat, 0>,
    message: string,
    /** PROG_MISMATCH only: the versions supported. */
    readonly mismatch?: { low: number; high: number },
  ) {
    super(message);
  }
}

/** Answer with MSG_DENIED / AUTH_ERROR and this auth_stat. */
export class RpcAuthError extends Error {
  override readonly name = 'RpcAuthError';
  constructor(
    readonly stat: Exclude<AuthStat, 0>,
    message: string,
  ) {
    super(message);
  }
}

/** A TCP record that breaks the framing rules or a configured limit; the connection is closed. */
export class RecordError extends Error {
  override readonly name = 'RecordError';
  constructor(
    message: string,
    readonly context: { size?: number; limit?: number },
  ) {
    super(message);
  }
}

/** A reply the client could not match or decode, or an error status it carries. */
export class RpcClientError extends Error {
  override readonly name = 'RpcClientError';
  constructor(
    message: string,
    readonly context: { xid?: number; acceptStat?: number; rejectStat?: number; authStat?: number } = {},
  ) {
    super(message);
  }
}

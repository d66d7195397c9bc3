/**
 * The one error the XDR layer throws. Any malformed, truncated or over-limit input ends here;
 * the RPC layer turns it into GARBAGE_ARGS (or a closed connection for framing errors).
 */
export class XdrError extends Error {
  override readonly name = 'XdrError';
  constructor(
    message: string,
    /** Byte offset in the decoded buffer where decoding failed. */
    readonly offset: number,
  ) {
    super(`${message} at offset ${offset}`);
  }
}

/**
 * The reply-path modes (one switch, same code path): `destructor` releases pages when the reply's
 * fragment destructor fires (the fix), `legacy` when sendpage returns (the bug, on purpose), `copy`
 * at once, the bytes copied into the socket's own pages (the safe baseline).
 */
export const REPLY_MODES = ['destructor', 'legacy', 'copy'] as const;
export type ReplyMode = (typeof REPLY_MODES)[number];

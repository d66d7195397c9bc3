export { XdrError } from './error.ts';
export { XdrReader, XDR_UNIT, xdrPad } from './reader.ts';
export { XdrBuf, type XdrInput } from './xdr-buf.ts';
export { XdrWriter } from './writer.ts';

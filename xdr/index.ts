export { XdrError } from './error.ts';
export { XdrReader, XDR_UNIT, xdrPad } from './reader.ts';
export { XdrWriter } from './writer.ts';

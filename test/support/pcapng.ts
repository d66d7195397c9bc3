/** The frames of a pcapng capture (Enhanced Packet Blocks), in order; a block cut short at the end (a capture still being written) is left out. */
export function pcapngFrames(file: Buffer): Buffer[] {
  const EPB = 6;
  const frames: Buffer[] = [];
  for (let off = 0; off + 12 <= file.length; ) {
    const type = file.readUInt32LE(off);
    const len = file.readUInt32LE(off + 4);
    if (len < 12 || off + len > file.length) break;
    if (type === EPB) frames.push(file.subarray(off + 28, off + 28 + file.readUInt32LE(off + 20)));
    off += len;
  }
  return frames;
}

import { mkdir, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Size of the sample file that is large enough to span many READs and page-cache pages. */
export const SAMPLE_BIG_BYTES = 8 * 1024 * 1024;

/**
 * Bytes of the sample big file: a counter pattern in which every 4-byte word holds its own
 * offset, so a reader can tell not only that bytes are wrong but where they came from.
 */
export function samplePattern(size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let off = 0; off + 4 <= size; off += 4) b.writeUInt32BE(off, off);
  return b;
}

/**
 * Creates the embedded default export on first start (never touches an existing one): a few
 * sample files so `npm start` has something to mount and read at once.
 */
export async function ensureDefaultExport(dir: string): Promise<boolean> {
  const exists = await stat(dir).then(
    () => true,
    () => false,
  );
  if (exists) return false;
  await mkdir(path.join(dir, 'docs'), { recursive: true });
  await writeFile(path.join(dir, 'hello.txt'), 'Hello from pagelife.\n');
  await writeFile(
    path.join(dir, 'docs', 'README.txt'),
    'This is the embedded default export of pagelife.\n' +
      'big.bin holds a pattern in which every 4-byte big-endian word is its own offset,\n' +
      'so a torn or foreign page shows where its bytes came from.\n',
  );
  await writeFile(path.join(dir, 'big.bin'), samplePattern(SAMPLE_BIG_BYTES));
  await symlink('hello.txt', path.join(dir, 'link-to-hello'));
  return true;
}

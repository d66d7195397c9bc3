import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * A random secret kept in `<stateDir>/<name>` (created 0600 on first start, then reused). Written
 * aside then linked into place, so a crash never leaves a short secret behind and two servers
 * starting at once agree on one (link fails with EEXIST for the loser).
 */
export async function loadSecret(stateDir: string, name: string, bytes: number): Promise<Buffer> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const file = path.join(stateDir, name);
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, randomBytes(bytes), { mode: 0o600, flag: 'w' });
  try {
    await link(tmp, file);
  } catch (e) {
    if ((e as { code?: string }).code !== 'EEXIST') throw e;
  } finally {
    await unlink(tmp);
  }
  const secret = await readFile(file);
  if (secret.length < bytes) throw new Error(`${file}: secret is ${secret.length} bytes, need ${bytes}`);
  return secret;
}

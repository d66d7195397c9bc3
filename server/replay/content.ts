/**
 * Bytes in a fixture: a file's initial contents, a WRITE's data, what a client must receive.
 * One of: a character repeated, UTF-8 text, base64, or a list of those concatenated.
 */
import { z } from 'zod';

/** Largest content a fixture may spell out (it is held in memory, once per use). */
export const CONTENT_MAX_BYTES = 64 << 20;

const Fill = z.strictObject({
  fill: z.string().length(1).describe('one ASCII character, repeated'),
  size: z.number().int().min(0).max(CONTENT_MAX_BYTES),
});
const Text = z.strictObject({ text: z.string() });
const Base64 = z.strictObject({ base64: z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'not base64') });

export const ContentPart = z.union([Fill, Text, Base64]);
export const Content = z.union([ContentPart, z.array(ContentPart).min(1)]).describe('bytes: {fill,size}, {text}, {base64}, or a list of them');
export type Content = z.infer<typeof Content>;

function partBytes(p: z.infer<typeof ContentPart>): Buffer {
  if ('fill' in p) return Buffer.alloc(p.size, p.fill.charCodeAt(0) & 0xff);
  if ('text' in p) return Buffer.from(p.text, 'utf8');
  return Buffer.from(p.base64, 'base64');
}

export function contentBytes(c: Content): Buffer {
  return Array.isArray(c) ? Buffer.concat(c.map(partBytes)) : partBytes(c);
}

/** The shortest spelling of `b`: a fill when every byte is one printable character, else base64. */
export function contentOf(b: Buffer): Content {
  const first = b[0];
  if (first !== undefined && first >= 0x20 && first < 0x7f && b.every((x) => x === first)) return { fill: String.fromCharCode(first), size: b.length };
  return { base64: b.toString('base64') };
}

/**
 * How soon V8 optimises the server's functions. V8 compiles a function with TurboFan once it has
 * run `--interrupt-budget` bytes of that function's bytecode (66 KiB in Node 20), counted per
 * function. A server moving 1 MiB per call runs its per-call functions (decode a READ, pin its
 * pages, queue its reply) about a thousand times per GiB, so at V8's default the 1 MiB READ path
 * was still partly unoptimised after gigabytes: `--trace-opt` showed V8 still optimising 17, 8, 11,
 * 7, 4 and 5 functions in the 5th to 10th pass of 256 MiB, and 5, 3, 2, 0, 1, 1 with a quarter of
 * the budget. Two fresh servers, passes of 256 MiB at depth 1
 * alternated between them, median of passes 5–10: 1,547 / 1,085 / 920 MiB/s at V8's default
 * against 1,845 / 1,345 / 1,132 with a quarter of its budget, in three pairs (README,
 * "Performance", thirteenth round). Small calls (GETATTR, 4 KiB READs, CREATE) reach either
 * budget within their first few thousand calls, and measured the same.
 */
import v8 from 'node:v8';

/** Bytes of a function's bytecode run before V8 optimises it (V8's --interrupt-budget); 0: V8's own. */
export const INTERRUPT_BUDGET_DEFAULT = 16 * 1024;

/** Sets V8's budget before the first call is served: functions take the value their feedback starts with. */
export function configureTiering(budget: number): void {
  if (budget > 0) v8.setFlagsFromString(`--interrupt-budget=${budget}`);
}

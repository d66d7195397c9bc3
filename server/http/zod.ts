/**
 * zod at the HTTP edge: routes declare zod schemas for params, query and body; fastify runs them
 * before the handler (a failure is a 400 naming the field) and hands the handler the parsed value,
 * typed through this provider.
 */
import type { FastifySchemaCompiler, FastifyTypeProvider } from 'fastify';
import type { z } from 'zod';

export interface ZodTypeProvider extends FastifyTypeProvider {
  validator: this['schema'] extends z.ZodType ? z.output<this['schema']> : unknown;
  serializer: this['schema'] extends z.ZodType ? z.input<this['schema']> : unknown;
}

export class RequestValidationError extends Error {
  override readonly name = 'RequestValidationError';
  readonly statusCode = 400;
  constructor(
    readonly part: string | undefined,
    readonly issues: z.core.$ZodIssue[],
  ) {
    super(issues.map((i) => `${[part, ...i.path].filter((p) => p !== undefined).join('.')}: ${i.message}`).join('; '));
  }
}

export const zodValidatorCompiler: FastifySchemaCompiler<z.ZodType> =
  ({ schema, httpPart }) =>
  (data) => {
    const r = schema.safeParse(data);
    return r.success ? { value: r.data } : { error: new RequestValidationError(httpPart, r.error.issues) };
  };

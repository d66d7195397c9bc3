export * from './types.ts';
export { ExportsParseError } from './errors.ts';
export { normalizeExportPath } from './path.ts';
export { DEFAULT_EXPORT_OPTIONS, exportFromFlags, loadExportsFile, parseExports } from './parse.ts';
export { ClientRuleSchema, ExportEntrySchema, ExportOptionsSchema, ExportsConfigSchema } from './schema.ts';
export {
  CLIENT_NAME_CACHE_MAX_ENTRIES,
  CLIENT_OPTIONS_CACHE_MAX_ENTRIES,
  CLIENT_NAME_LOOKUP_TIMEOUT_MS,
  CLIENT_NAME_NEGATIVE_TTL_MS,
  CLIENT_NAME_TTL_MS,
  ClientNameCache,
  ClientOptionsCache,
  IPPORT_RESERVED,
  needClientNames,
  optionsFor,
  optionsForClient,
  portAllowed,
  systemResolver,
  type NameResolver,
} from './match.ts';
export { effectiveIdentity } from './identity.ts';
export {
  ACCESS3_DELETE,
  ACCESS3_EXECUTE,
  ACCESS3_EXTEND,
  ACCESS3_LOOKUP,
  ACCESS3_MODIFY,
  ACCESS3_READ,
  ACCESS3_WRITES,
  accessGranted,
  mayDelete,
} from './access.ts';

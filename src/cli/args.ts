/**
 * Argument parsing shared by every command (node:util parseArgs, strict: an unknown
 * flag is a usage error, exit 2). Every command accepts `--config FILE` and `--data DIR`.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { IsohostError } from '../errors.ts';
import { loadConfig } from '../config/load.ts';
import type { PlatformConfig } from '../config/schema.ts';

/** A bad command line: printed as `{"error":{"code":"invalid_request",…}}`, exit 2. */
export class UsageError extends IsohostError {
  constructor(message: string) {
    super('invalid_request', message);
    this.name = 'UsageError';
  }
}

const COMMON = {
  config: { type: 'string' },
  data: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export function parse<O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: O, positionals = 0) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...COMMON, ...options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (parsed.positionals.length > positionals) throw new UsageError(`unexpected argument "${parsed.positionals[positionals]}"`);
  return parsed;
}

export function required(values: Record<string, unknown>, name: string): string {
  const v = values[name];
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${name} is required`);
  return v;
}

export function configFrom(values: { config?: unknown; data?: unknown }): PlatformConfig {
  return loadConfig(values.config as string | undefined, values.data === undefined ? {} : { dataDir: values.data as string });
}

/** The `--tenant` (or positional) id, checked against the config once at the edge: a usage error otherwise. */
export function requireTenant(config: PlatformConfig, id: string): string {
  if (!config.tenants.some((t) => t.id === id)) throw new UsageError(`no tenant "${id}" in the config`);
  return id;
}

/**
 * Loads, validates and freezes the platform config (STYLE habit 5: validate once at
 * the edge, then trust frozen values). YAML or JSON. Every problem is reported with
 * the path it concerns: `tenants[1].storage.isolation: expected "schema" | "database"`.
 * Relative paths in the file (`data_dir`, `jwks_file`) are resolved against the
 * directory of the config file; in the built-in default, against the working directory.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { IsohostError } from '../errors.ts';
import { configSchema, type PlatformConfig } from './schema.ts';
import { DEFAULT_CONFIG } from './default.ts';

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out || '(root)';
}

function formatIssue(issue: z.core.$ZodIssue): string {
  const path = formatPath(issue.path);
  if (issue.code === 'invalid_value') return `${path}: expected ${issue.values.map((v) => JSON.stringify(v)).join(' | ')}`;
  if (issue.code === 'unrecognized_keys') return `${path}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  if (issue.code === 'invalid_union' && 'note' in issue && issue.note === 'No matching discriminator') {
    return `${path}: expected provider "iam-internal" | "oidc-external"`;
  }
  return `${path}: ${issue.message}`;
}

/** Validates a parsed config object; throws config_invalid listing every issue. */
export function validateConfig(raw: unknown, baseDir: string, overrides: { dataDir?: string } = {}): PlatformConfig {
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    throw new IsohostError('config_invalid', parsed.error.issues.map(formatIssue).join('\n'), { details: { issues: parsed.error.issues.length } });
  }
  const cfg = parsed.data;
  cfg.deployment.data_dir = overrides.dataDir !== undefined ? resolve(overrides.dataDir) : resolve(baseDir, cfg.deployment.data_dir);
  for (const t of cfg.tenants) {
    if (t.identity.provider === 'oidc-external' && t.identity.jwks_file !== undefined) {
      t.identity.jwks_file = resolve(baseDir, t.identity.jwks_file);
    }
  }
  return deepFreeze(cfg);
}

/** Reads a YAML/JSON config file (or the built-in default when `file` is undefined). */
export function loadConfig(file: string | undefined, overrides: { dataDir?: string } = {}): PlatformConfig {
  if (file === undefined) return validateConfig(structuredClone(DEFAULT_CONFIG), process.cwd(), overrides);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new IsohostError('config_invalid', `cannot read config file ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new IsohostError('config_invalid', doc.errors.map((e) => `${file}: ${e.message.split('\n')[0]}`).join('\n'));
  }
  return validateConfig(doc.toJS(), dirname(resolve(file)), overrides);
}

export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** The JSON Schema of the config, generated from the same zod schema (`isohost config schema`). */
export async function configJsonSchema(): Promise<unknown> {
  const { z } = await import('zod');
  return z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' });
}

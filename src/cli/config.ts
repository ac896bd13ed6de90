/**
 * `isohost config check [FILE]` (exit 0 when valid; exit 2 and one path-named error per
 * stderr line when not — every config error exits 2, as usage errors do; CONTRACT §5
 * said 1 before issue 9) and `isohost config schema` (the JSON Schema generated from
 * the same zod schema).
 */
import { configJsonSchema, loadConfig } from '../config/load.ts';
import { IsohostError } from '../errors.ts';
import { parse, UsageError } from './args.ts';

export async function configCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {}, 2);
  const [sub, file] = positionals;
  if (sub === 'schema') {
    process.stdout.write(JSON.stringify(await configJsonSchema(), null, 2) + '\n');
    return 0;
  }
  if (sub !== 'check') throw new UsageError('usage: isohost config check [FILE] | isohost config schema');
  const path = file ?? values.config;
  try {
    const cfg = loadConfig(path, values.data === undefined ? {} : { dataDir: values.data });
    process.stdout.write(JSON.stringify({ ok: true, file: path ?? '(built-in default)', tenants: cfg.tenants.map((t) => t.id) }) + '\n');
    return 0;
  } catch (err) {
    if (!(err instanceof IsohostError) || err.code !== 'config_invalid') throw err;
    for (const line of err.message.split('\n')) process.stderr.write(line + '\n');
    process.stderr.write(JSON.stringify(err.toJSON()) + '\n');
    return 2;
  }
}

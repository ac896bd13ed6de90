/** `isohost config check [FILE]` and `isohost config schema`. */
import { configJsonSchema, loadConfig } from '../config/load.ts';
import { parse, UsageError } from './args.ts';

export async function configCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {}, 2);
  const [sub, file] = positionals;
  if (sub === 'schema') {
    process.stdout.write(JSON.stringify(await configJsonSchema(), null, 2) + '\n');
    return 0;
  }
  if (sub === 'check') {
    const path = file ?? values.config;
    const cfg = loadConfig(path, values.data === undefined ? {} : { dataDir: values.data });
    process.stdout.write(JSON.stringify({ ok: true, file: path ?? '(built-in default)', tenants: cfg.tenants.map((t) => t.id) }) + '\n');
    return 0;
  }
  throw new UsageError('usage: isohost config check [FILE] | isohost config schema');
}

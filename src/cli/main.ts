/**
 * `isohost <command>`: one file per command. Results go to stdout; logs are pino JSON
 * lines on stderr; on failure the last stderr line is `{"error":{"code","message"}}`
 * and the exit code is 1, or 2 for usage and config errors (CONTRACT §5).
 */
import { IsohostError, toIsohostError } from '../errors.ts';
import { UsageError } from './args.ts';

type Command = (argv: string[]) => Promise<number>;

const COMMANDS: Record<string, () => Promise<Command>> = {
  serve: async () => (await import('./serve.ts')).serveCommand,
  run: async () => (await import('./run.ts')).runCommand,
  token: async () => (await import('./token.ts')).tokenCommand,
  realm: async () => (await import('./token.ts')).realmCommand,
  config: async () => (await import('./config.ts')).configCommand,
  tenant: async () => (await import('./tenant.ts')).tenantCommand,
  'egress-proxy': async () => (await import('./egress-proxy.ts')).egressProxyCommand,
};

export const USAGE = `usage: isohost <command> [options]   (every command takes --config FILE and --data DIR)
  serve [--port N]                                  run the HTTP API and the egress proxy
  run BUNDLE --tenant ID --call METHOD [--args JSON] [--sub USER] [--app ID]
  token --tenant ID --sub USER [--scope "apps:call apps:deploy"] [--ttl 1h]
  realm rotate REALM | realm retire REALM KID
  config check [FILE] | config schema
  tenant export ID [--out FILE] | tenant purge ID --yes
  egress-proxy                                      the egress proxy as its own process`;

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(USAGE + '\n');
    return name === undefined ? 2 : 0;
  }
  const load = COMMANDS[name];
  try {
    if (load === undefined) throw new UsageError(`unknown command "${name}"`);
    return await (await load())(rest);
  } catch (err) {
    return reportError(err);
  }
}

/** Writes the closing error line and returns the exit code. */
export function reportError(err: unknown): number {
  const e = toIsohostError(err);
  if (e.code === 'internal') process.stderr.write(`${JSON.stringify({ level: 50, msg: 'internal error', err: String((err as Error)?.stack ?? err) })}\n`);
  process.stderr.write(JSON.stringify(e.toJSON()) + '\n');
  return err instanceof UsageError || (err instanceof IsohostError && err.code === 'config_invalid') ? 2 : 1;
}

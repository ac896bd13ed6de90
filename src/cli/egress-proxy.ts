/** `isohost egress-proxy`: the egress proxy as its own process (for `egress_proxy.external: true`). */
import { once } from 'node:events';
import { runEgressProxyProcess } from '../egress/main.ts';
import { configFrom, parse } from './args.ts';

export async function egressProxyCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {});
  const config = configFrom(values);
  const proxy = await runEgressProxyProcess(config);
  process.stdout.write(JSON.stringify({ egress_proxy: proxy.url }) + '\n');
  await Promise.race([once(process, 'SIGTERM'), once(process, 'SIGINT')]);
  await proxy.close();
  return 0;
}

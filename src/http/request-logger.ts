/**
 * Each request's logger, made only when the request logs. Fastify gives every request a
 * child of the server's logger carrying its request id; building a pino child costs about
 * 1 µs, paid by every call (bench `http.call`), while with per-request log lines off
 * (server.ts) only failed requests ever log.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Bindings, ChildLoggerOptions } from 'pino';

type Args = [obj: unknown, msg?: string, ...args: unknown[]];

/** Stands in for `parent.child(bindings, options)` and builds it on first use. */
class DeferredChild {
  readonly #parent: FastifyBaseLogger;
  readonly #bindings: Bindings;
  readonly #options: ChildLoggerOptions | undefined;
  #child: FastifyBaseLogger | undefined;

  constructor(parent: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions | undefined) {
    this.#parent = parent;
    this.#bindings = bindings;
    this.#options = options;
  }

  #real(): FastifyBaseLogger {
    return (this.#child ??= this.#parent.child(this.#bindings, this.#options));
  }

  get level(): string {
    return this.#real().level;
  }

  set level(level: string) {
    this.#real().level = level;
  }

  fatal(...a: Args): void {
    (this.#real().fatal as (...a: Args) => void)(...a);
  }

  error(...a: Args): void {
    (this.#real().error as (...a: Args) => void)(...a);
  }

  warn(...a: Args): void {
    (this.#real().warn as (...a: Args) => void)(...a);
  }

  info(...a: Args): void {
    (this.#real().info as (...a: Args) => void)(...a);
  }

  debug(...a: Args): void {
    (this.#real().debug as (...a: Args) => void)(...a);
  }

  trace(...a: Args): void {
    (this.#real().trace as (...a: Args) => void)(...a);
  }

  silent(...a: Args): void {
    (this.#real().silent as (...a: Args) => void)(...a);
  }

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.#real().child(bindings, options);
  }
}

/**
 * fastify's `childLoggerFactory`: the request's logger, built when it first logs.
 *
 * @example
 * Fastify({ loggerInstance: logger, childLoggerFactory: deferredChildLogger });
 */
export function deferredChildLogger(logger: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  // The class has every method fastify checks for (info … trace, child) and pino's `level`.
  return new DeferredChild(logger, bindings, options) as unknown as FastifyBaseLogger;
}

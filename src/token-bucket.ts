/**
 * A token bucket: at most `burst` tokens, `amount` more every `periodMs` (pro rata), full
 * at the start. Tokens may go below zero (`take` without a check): a debt the refill pays
 * back before the bucket holds a token again. What the tenant gate (call rate, breach
 * budget) and the log budget (lines, bytes, summary lines) each count with.
 */
export class TokenBucket {
  readonly burst: number;
  readonly #amount: number;
  readonly #periodMs: number;
  #tokens: number;
  #at = Date.now();

  constructor(burst: number, amount: number, periodMs: number) {
    this.burst = burst;
    this.#amount = amount;
    this.#periodMs = periodMs;
    this.#tokens = burst;
  }

  /** The tokens now, after the refill since the last look. */
  get tokens(): number {
    const now = Date.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) / this.#periodMs) * this.#amount);
    this.#at = now;
    return this.#tokens;
  }

  /** Takes `n` tokens, into debt if there are fewer. */
  take(n = 1): void {
    this.#tokens = this.tokens - n;
  }

  /** Milliseconds until the bucket holds `n` tokens; zero or less if it does now. */
  msUntil(n = 1): number {
    return ((n - this.tokens) * this.#periodMs) / this.#amount;
  }
}

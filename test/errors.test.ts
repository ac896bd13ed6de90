/** fastify's habit: every error code is documented; a code missing from README fails here. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../src/errors.ts';

describe('the error code table', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  it.each(Object.entries(ERROR_CODES))('should document %s with its status in README', (code, { status }) => {
    expect(readme).toMatch(new RegExp('\\|\\s*`' + code + '`\\s*\\|\\s*' + status + '\\s*\\|'));
  });
});

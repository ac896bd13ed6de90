#!/usr/bin/env node
// Entry point for `npx --no-install isohost` and `npm start`. Node >= 24 runs the
// TypeScript sources directly (type stripping); there is no build step.
import { fileURLToPath } from 'node:url';
import { restartWithHostFlags } from '../src/host-flags.ts';

// A command that runs mini-apps needs the host's V8 flags (src/host-flags.ts): without
// them this process is replaced by one with them, before anything else is loaded.
restartWithHostFlags(fileURLToPath(import.meta.url), process.argv.slice(2));
const { main } = await import('../src/cli/main.ts');

const code = await main(process.argv.slice(2));
process.exitCode = code;
// The command is over: whatever a failed start left behind (a socket, a timer, a
// library's worker) must not keep the process up, or a supervisor waiting for the exit
// never restarts it. Unref'd: a clean process exits at once without waiting for this.
setTimeout(() => process.exit(code), 500).unref();

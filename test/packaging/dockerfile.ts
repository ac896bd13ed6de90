/**
 * A small Dockerfile reader for the packaging tests (no Docker engine on the test
 * machines): comments dropped, `\` continuations joined, one instruction per entry,
 * grouped into build stages by FROM. Enough for the checks here, not a full parser.
 */
export interface Instruction {
  /** Upper-case keyword: FROM, RUN, COPY, USER, … */
  readonly op: string;
  /** Everything after the keyword, continuations joined with one space. */
  readonly args: string;
}

export interface Stage {
  readonly from: string;
  readonly instructions: Instruction[];
}

export function parseDockerfile(text: string): { args: Map<string, string>; stages: Stage[] } {
  const lines: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.startsWith('#')) continue; // a comment inside a continued instruction
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1).trim() + ' ';
      continue;
    }
    lines.push((pending + line).trim());
    pending = '';
  }
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const line of lines) {
    const [, op = '', rest = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    const ins = { op: op.toUpperCase(), args: rest };
    if (ins.op === 'ARG' && stages.length === 0) {
      const [k = '', v = ''] = rest.split('=');
      args.set(k, v);
    } else if (ins.op === 'FROM') {
      stages.push({ from: rest.replace(/\$\{(\w+)\}/g, (_, k: string) => args.get(k) ?? ''), instructions: [] });
    } else stages.at(-1)?.instructions.push(ins);
  }
  return { args, stages };
}

/** The JSON-array (exec) form of CMD/ENTRYPOINT/HEALTHCHECK CMD, or undefined for the shell form. */
export function execForm(args: string): string[] | undefined {
  try {
    const v: unknown = JSON.parse(args);
    return Array.isArray(v) && v.every((s) => typeof s === 'string') ? v : undefined;
  } catch {
    return undefined;
  }
}

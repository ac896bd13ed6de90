/**
 * Reading the process table from /proc (proc(5)), which every Linux has: which processes
 * a process started, and what they are.
 */
import { readdirSync, readFileSync } from 'node:fs';

/**
 * Field `n` of a proc(5) stat line (1-based, as the man page counts; n ≥ 3). The command
 * name (field 2) is in parentheses and may hold spaces, so fields are counted after it.
 */
export function statField(stat: string, n: number): string {
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[n - 3]!;
}

/** A process's command name (proc(5) stat field 2, without its parentheses); undefined once it is gone. */
export function commOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
  } catch {
    return undefined;
  }
}

/** Pids whose parent is `pid`. */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ppid = Number(statField(readFileSync(`/proc/${entry}/stat`, 'utf8'), 4));
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * Reads the destinations out of an `strace -f -e trace=connect,sendto,sendmsg,sendmmsg`
 * log: every socket address a traced process tried to reach, whatever the result.
 *
 * strace prints one line per syscall (`-f` puts the thread id first); a call that blocks
 * while another thread prints is split into `… <unfinished ...>` and `<... connect
 * resumed>) = 0` — the address is always on the first half, so the second is skipped.
 *
 *   1234 connect(21, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("127.0.0.1")}, 16) = -1 EINPROGRESS (…)
 *   1234 connect(22, {sa_family=AF_INET6, sin6_port=htons(53), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = 0
 *   1234 connect(23, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1 ENOENT (…)
 *   1234 sendto(24, "…", 20, 0, {sa_family=AF_NETLINK, nl_pid=0, nl_groups=00000000}, 12) = 20
 *   1234 sendmsg(25, {msg_name={sa_family=AF_INET, sin_port=htons(53), …}, …}, 0) = 40
 *
 * A send on a connected socket has no address (`NULL`, `msg_name=NULL`): its destination
 * is the connect() already recorded. A line naming one of these syscalls whose address
 * cannot be read is returned as `family: 'unreadable'` so that the caller fails on it
 * rather than passing over it.
 */
export type Family = 'AF_UNIX' | 'AF_INET' | 'AF_INET6' | 'AF_NETLINK' | 'AF_UNSPEC' | 'unreadable' | (string & {});

export interface Destination {
  /** Thread (or process) id strace printed first. */
  readonly tid: number;
  readonly syscall: 'connect' | 'sendto' | 'sendmsg' | 'sendmmsg';
  readonly family: Family;
  /** IP text for AF_INET/AF_INET6, the path for AF_UNIX; null otherwise. */
  readonly address: string | null;
  readonly port: number | null;
  /** What the call returned (`0`, `-1 EINPROGRESS`), or null when the result came later. */
  readonly result: string | null;
  /** The raw line, for failure messages. */
  readonly line: string;
}

const CALL = /^(\d+)\s+(connect|sendto|sendmsg|sendmmsg)\((.*)$/;
const RESULT = /\)\s+=\s+(-?\d+(?: [A-Z][A-Z0-9_]*)?)/;
const SOCKADDR = /\{sa_family=([A-Z0-9_]+|\d+)([^{}]*)\}/g;

/**
 * Blanks payload strings (a sent buffer may hold any text, `sa_family=` included) but
 * keeps the strings that are part of an address.
 */
function blankPayloads(text: string): string {
  return text.replace(/(sun_path=@?|inet_addr\(|AF_INET6, )?"(?:[^"\\]|\\.)*"(\.\.\.)?/g, (all, keep: string | undefined) => (keep === undefined ? '""' : all));
}

function parseSockaddr(family: string, body: string): { address: string | null; port: number | null } {
  const port = /sin6?_port=htons\((\d+)\)/.exec(body);
  if (family === 'AF_INET') {
    const ip = /sin_addr=inet_addr\("([0-9.]+)"\)/.exec(body);
    return { address: ip?.[1] ?? null, port: port ? Number(port[1]) : null };
  }
  if (family === 'AF_INET6') {
    const ip = /inet_pton\(AF_INET6, "([0-9a-fA-F:.]+)"/.exec(body);
    return { address: ip?.[1]?.toLowerCase() ?? null, port: port ? Number(port[1]) : null };
  }
  if (family === 'AF_UNIX') {
    const path = /sun_path=(@?)"((?:[^"\\]|\\.)*)"/.exec(body);
    return { address: path ? path[1] + path[2] : '', port: null };
  }
  return { address: null, port: null };
}

/** Every destination in an strace log, in log order. */
export function parseDestinations(log: string): Destination[] {
  const out: Destination[] = [];
  for (const line of log.split('\n')) {
    const call = CALL.exec(line.trim());
    if (!call) continue; // resumed halves, exits, signals, other syscalls
    const [, tid, syscall, rest] = call as unknown as [string, string, Destination['syscall'], string];
    const args = blankPayloads(rest);
    const result = RESULT.exec(args)?.[1] ?? null;
    const base = { tid: Number(tid), syscall, result, line };
    const addresses = [...args.matchAll(SOCKADDR)];
    if (addresses.length === 0) {
      // A send on a connected socket names no address; a connect always does.
      const unaddressed = syscall === 'sendto' ? /,\s*NULL,\s*0\)/.test(args) : syscall !== 'connect' && /msg_name=NULL/.test(args) && !/msg_name=0x/.test(args);
      if (!unaddressed) out.push({ ...base, family: 'unreadable', address: null, port: null });
      continue;
    }
    for (const m of addresses) out.push({ ...base, family: m[1]!, ...parseSockaddr(m[1]!, m[2]!) });
  }
  return out;
}

/** 127.0.0.0/8, ::1 and their IPv4-mapped forms (RFC 1122 §3.2.1.3, RFC 4291 §2.5.3/§2.5.5.2). */
export function isLoopback(address: string): boolean {
  const v4 = address.startsWith('::ffff:') ? address.slice('::ffff:'.length) : address;
  if (/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4)) return true;
  return address === '::1' || address === '0:0:0:0:0:0:0:1';
}

/**
 * Whether a destination stays on this machine: a Unix socket, the kernel (netlink),
 * loopback, or AF_UNSPEC (a connect() with AF_UNSPEC dissolves a UDP association; glibc's
 * resolver does it; it reaches nothing).
 */
export function staysOnTheBox(d: Destination): boolean {
  if (d.family === 'AF_UNIX' || d.family === 'AF_NETLINK' || d.family === 'AF_UNSPEC') return true;
  if ((d.family === 'AF_INET' || d.family === 'AF_INET6') && d.address !== null) return isLoopback(d.address);
  return false;
}

/** `address` with an IPv4-mapped IPv6 prefix removed, so one comparison fits both forms. */
export function plainIp(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice('::ffff:'.length) : address;
}

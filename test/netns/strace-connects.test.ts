/**
 * The strace log reader of the netns proof, on lines as strace 6 prints them (taken from
 * a real `strace -f -e trace=connect,sendto,sendmsg,sendmmsg` of node in a namespace).
 * A reader that missed a destination would let the proof pass on a leak, so each form
 * is pinned here, including the ones it must refuse to guess.
 */
import { describe, expect, it } from 'vitest';
import { isLoopback, parseDestinations, plainIp, staysOnTheBox } from './strace-connects.ts';

const LOG = String.raw`
9836  connect(23, {sa_family=AF_INET, sin_port=htons(44295), sin_addr=inet_addr("127.0.0.1")}, 16) = -1 EINPROGRESS (Operation now in progress)
9836  connect(23, {sa_family=AF_INET6, sin6_port=htons(44295), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = -1 EINPROGRESS (Operation now in progress)
9836  connect(23, {sa_family=AF_UNIX, sun_path="/tmp/nonexist.sock"}, 110) = -1 ENOENT (No such file or directory)
9836  connect(23, {sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("10.9.9.9")}, 16) = -1 ENETUNREACH (Network is unreachable)
9836  sendmsg(23, {msg_name={sa_family=AF_INET, sin_port=htons(9999), sin_addr=inet_addr("127.0.0.1")}, msg_namelen=16, msg_iov=[{iov_base="x", iov_len=1}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, 0) = 1
9850  connect(23, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.255.255.53")}, 16 <unfinished ...>
9851  connect(24, {sa_family=AF_UNIX, sun_path=@"isohost-abstract"}, 19) = 0
9850  <... connect resumed>) = -1 ENETUNREACH (Network is unreachable)
9852  sendto(25, "\24\0\0\0\22\0\1\3", 20, 0, {sa_family=AF_NETLINK, nl_pid=0, nl_groups=00000000}, 12) = 20
9852  sendto(26, "GET / HTTP/1.1 {sa_family=AF_INET, sin_addr=inet_addr(\"8.8.8.8\")}", 60, MSG_NOSIGNAL, NULL, 0) = 60
9852  sendmsg(27, {msg_name=NULL, msg_namelen=0, msg_iov=[{iov_base="{\"cmd\":\"NODE_HANDLE\"}", iov_len=20}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, 0) = 20
9853  connect(28, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::ffff:127.0.0.1", &sin6_addr), sin6_scope_id=0}, 28) = 0
9853  connect(29, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "2001:DB8::1", &sin6_addr), sin6_scope_id=0}, 28) = -1 ENETUNREACH (Network is unreachable)
9853  connect(30, {sa_family=AF_UNSPEC, sa_data="\0\0\0\0\0\0\0\0\0\0\0\0\0\0"}, 16) = 0
9854  connect(31, 0x7ffd5c1b2a40, 16) = -1 EFAULT (Bad address)
9854  sendmmsg(32, [{msg_hdr={msg_name={sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.0.0.2")}, msg_namelen=16, msg_iov=[{iov_base="q", iov_len=1}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, msg_len=1}], 1, 0) = 1
9854  +++ exited with 0 +++
`;

describe('parseDestinations', () => {
  const all = parseDestinations(LOG);
  const brief = all.map((d) => [d.tid, d.syscall, d.family, d.address, d.port, d.result]);

  it('should read IPv4, IPv6, Unix and netlink addresses with their results', () => {
    expect(brief.slice(0, 5)).toEqual([
      [9836, 'connect', 'AF_INET', '127.0.0.1', 44295, '-1 EINPROGRESS'],
      [9836, 'connect', 'AF_INET6', '::1', 44295, '-1 EINPROGRESS'],
      [9836, 'connect', 'AF_UNIX', '/tmp/nonexist.sock', null, '-1 ENOENT'],
      [9836, 'connect', 'AF_INET', '10.9.9.9', 80, '-1 ENETUNREACH'],
      [9836, 'sendmsg', 'AF_INET', '127.0.0.1', 9999, '1'],
    ]);
    expect(brief).toContainEqual([9852, 'sendto', 'AF_NETLINK', null, null, '20']);
    expect(brief).toContainEqual([9851, 'connect', 'AF_UNIX', '@isohost-abstract', null, '0']);
  });

  it('should take the address of a split call from its unfinished half and skip the resumed half', () => {
    expect(all.filter((d) => d.tid === 9850)).toMatchObject([{ syscall: 'connect', address: '10.255.255.53', port: 53, result: null }]);
  });

  it('should not read addresses out of sent payloads, and skip sends on connected sockets', () => {
    expect(all.some((d) => d.address === '8.8.8.8')).toBe(false);
    expect(all.filter((d) => d.tid === 9852)).toHaveLength(1); // the netlink send only
  });

  it('should keep IPv4-mapped and upper-case IPv6 text comparable', () => {
    expect(all.filter((d) => d.tid === 9853).map((d) => d.address)).toEqual(['::ffff:127.0.0.1', '2001:db8::1', null]);
    expect(plainIp('::ffff:10.200.1.2')).toBe('10.200.1.2');
    expect(plainIp('2001:db8::1')).toBe('2001:db8::1');
  });

  it('should report a call whose address it cannot read, instead of passing over it', () => {
    expect(all.filter((d) => d.tid === 9854).map((d) => d.family)).toEqual(['unreadable', 'AF_INET']);
  });
});

describe('staysOnTheBox', () => {
  it('should accept Unix, netlink, AF_UNSPEC and loopback, and nothing else', () => {
    const verdicts = parseDestinations(LOG).map((d) => [d.family, d.address, staysOnTheBox(d)]);
    expect(verdicts).toEqual([
      ['AF_INET', '127.0.0.1', true],
      ['AF_INET6', '::1', true],
      ['AF_UNIX', '/tmp/nonexist.sock', true],
      ['AF_INET', '10.9.9.9', false],
      ['AF_INET', '127.0.0.1', true],
      ['AF_INET', '10.255.255.53', false],
      ['AF_UNIX', '@isohost-abstract', true],
      ['AF_NETLINK', null, true],
      ['AF_INET6', '::ffff:127.0.0.1', true],
      ['AF_INET6', '2001:db8::1', false],
      ['AF_UNSPEC', null, true],
      ['unreadable', null, false],
      ['AF_INET', '10.0.0.2', false],
    ]);
  });

  it('should count all of 127.0.0.0/8 as loopback, and no neighbour of it', () => {
    expect(['127.0.0.1', '127.255.0.9', '::1', '::ffff:127.0.0.53'].map(isLoopback)).toEqual([true, true, true, true]);
    expect(['128.0.0.1', '10.127.0.1', '::2', '::ffff:10.0.0.1', '1127.0.0.1'].map(isLoopback)).toEqual([false, false, false, false, false]);
  });
});

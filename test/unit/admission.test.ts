// Per-address admission counts a client, not an address spelling: IPv4-mapped IPv6 is the IPv4
// address, and every address of one IPv6 /64 (or the configured prefix) is one client.
import t from 'tap';
import { AdmissionControl } from '../../src/accept/admission.js';

const limits = (ipv6ClientPrefixBits: number) => () => ({ maxSessions: 100, maxSessionsPerAddress: 2, maxConnectionsPerAddressPerMinute: 100, ipv6ClientPrefixBits, exempt: () => false });

t.test('IPv4 and its IPv4-mapped form share one count', async (t) => {
  const admission = new AdmissionControl(limits(64));
  t.ok(admission.admit('192.0.2.7').admitted);
  t.ok(admission.admit('::ffff:192.0.2.7').admitted);
  t.same(admission.admit('::ffff:192.0.2.7'), { admitted: false, limit: 'max_sessions_per_address' });
  t.ok(admission.admit('192.0.2.8').admitted, 'another IPv4 address is another client');
});

t.test('IPv6 addresses of one /64 share one count; another /64 does not', async (t) => {
  const admission = new AdmissionControl(limits(64));
  t.ok(admission.admit('2001:db8:1:2::1').admitted);
  t.ok(admission.admit('2001:db8:1:2:ffff:0:0:99').admitted);
  t.same(admission.admit('2001:db8:1:2::3'), { admitted: false, limit: 'max_sessions_per_address' });
  t.ok(admission.admit('2001:db8:1:3::1').admitted);
});

t.test('the prefix is configurable, and a released session frees its place', async (t) => {
  const admission = new AdmissionControl(limits(48));
  const first = admission.admit('2001:db8:1:2::1');
  t.ok(admission.admit('2001:db8:1:3::1').admitted, 'same /48');
  t.same(admission.admit('2001:db8:1:4::1'), { admitted: false, limit: 'max_sessions_per_address' });
  if (first.admitted) first.release();
  t.ok(admission.admit('2001:db8:1:4::1').admitted);
});

t.test('a forwarded client (XFORWARD) is limited by its own address and never counts towards max_sessions', async (t) => {
  const admission = new AdmissionControl(() => ({ maxSessions: 1, maxSessionsPerAddress: 2, maxConnectionsPerAddressPerMinute: 3, ipv6ClientPrefixBits: 64, exempt: (address) => address === '127.0.0.1' }));
  const peer = admission.admit('127.0.0.1');
  t.ok(peer.admitted, 'the exempt peer takes the one session');
  const first = admission.admitForwarded('198.51.100.7');
  const second = admission.admitForwarded('198.51.100.7');
  t.ok(first.admitted && second.admitted, 'its clients are not counted towards max_sessions');
  t.same(admission.admitForwarded('198.51.100.7'), { admitted: false, limit: 'max_sessions_per_address' }, 'two at once from one client');
  if (first.admitted) first.release();
  t.same(admission.admitForwarded('198.51.100.7'), { admitted: false, limit: 'max_connections_per_address_per_minute' }, 'the fourth in a minute is over the rate (the refused one counted too)');
  t.ok(admission.admitForwarded('127.0.0.1').admitted, 'an exempt client is not limited');
  t.same(admission.admit('192.0.2.1'), { admitted: false, limit: 'max_sessions' }, 'the peer still holds the only session');
});

t.test('a session that reports its end twice frees its place once', async (t) => {
  const admission = new AdmissionControl(() => ({ maxSessions: 2, maxSessionsPerAddress: 2, maxConnectionsPerAddressPerMinute: 100, ipv6ClientPrefixBits: 64, exempt: () => false }));
  const first = admission.admit('192.0.2.1');
  t.ok(admission.admit('192.0.2.1').admitted);
  if (first.admitted) {
    first.release();
    first.release();
  }
  t.ok(admission.admit('192.0.2.1').admitted, 'one place freed');
  t.same(admission.admit('192.0.2.1'), { admitted: false, limit: 'max_sessions' }, 'not two');
});

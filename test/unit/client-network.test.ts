// The network a client address stands for: IPv4 as is, IPv4-mapped IPv6 as its IPv4, IPv6 by prefix.
import t from 'tap';
import { clientNetwork } from '../../src/policy/client-network.js';

t.test('IPv4 and IPv4-mapped IPv6 are one client', async (t) => {
  t.equal(clientNetwork('10.0.0.1'), '10.0.0.1');
  t.equal(clientNetwork('::ffff:10.0.0.1'), '10.0.0.1');
  t.equal(clientNetwork('::FFFF:10.0.0.1'), '10.0.0.1');
});

t.test('IPv6 clients are counted by their /64, or the configured prefix', async (t) => {
  t.equal(clientNetwork('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2:0:0:0:0/64');
  t.equal(clientNetwork('2001:db8:1:2::9'), clientNetwork('2001:0db8:0001:0002:ffff::1'), 'one /64, however written');
  t.not(clientNetwork('2001:db8:1:3::9'), clientNetwork('2001:db8:1:2::9'), 'the next /64 is another client');
  t.equal(clientNetwork('2001:db8:1:2:3:4:5:6', 48), '2001:db8:1:0:0:0:0:0/48');
  t.equal(clientNetwork('2001:db8:1:2:3:4:5:6', 56), '2001:db8:1:0:0:0:0:0/56');
  t.equal(clientNetwork('2001:db8:1:2ff:3:4:5:6', 60), '2001:db8:1:2f0:0:0:0:0/60');
  t.equal(clientNetwork('::1', 128), '0:0:0:0:0:0:0:1/128');
  t.equal(clientNetwork('fe80::1%eth0'), 'fe80:0:0:0:0:0:0:0/64', 'a zone is not part of the network');
  t.equal(clientNetwork('2001:db8::1.2.3.4', 128), '2001:db8:0:0:0:0:102:304/128', 'an embedded IPv4 tail');
});

t.test('anything else is its own key', async (t) => {
  t.equal(clientNetwork('not an address'), 'not an address');
  t.equal(clientNetwork(''), '');
});

// How the other nodes of a fleet reach this node's admin listener (the quarantine's bytes):
// state.admin_url, else admin.listen, with a wildcard address replaced by this host's first
// address that is not loopback (a Kubernetes pod listens on 0.0.0.0: its peers need its IP).
import t from 'tap';
import type { networkInterfaces } from 'node:os';
import { validatePolicy } from '../../src/config/load.js';
import { adminUrlOf } from '../../src/state/shared-state.js';

const policy = (admin: string, adminUrl = '') => validatePolicy({ listeners: [{ protocol: 'smtp', listen: '127.0.0.1:2525', upstream: '127.0.0.1:25' }], admin: { listen: admin }, state: { admin_url: adminUrl } }, 'test');

const pod = (): ReturnType<typeof networkInterfaces> => ({
  lo: [
    { address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: true, cidr: '127.0.0.1/8' },
    { address: '::1', netmask: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', family: 'IPv6', mac: '00:00:00:00:00:00', internal: true, cidr: '::1/128', scopeid: 0 },
  ],
  eth0: [
    { address: 'fe80::1', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '0a:58:0a:f4:00:07', internal: false, cidr: 'fe80::1/64', scopeid: 2 },
    { address: '10.244.0.7', netmask: '255.255.255.0', family: 'IPv4', mac: '0a:58:0a:f4:00:07', internal: false, cidr: '10.244.0.7/24' },
    { address: 'fd00::7', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '0a:58:0a:f4:00:07', internal: false, cidr: 'fd00::7/64', scopeid: 0 },
  ],
});

t.test('admin_url wins; a specific listen address is used as it is', async (t) => {
  t.equal(adminUrlOf(policy('0.0.0.0:9925', 'http://mailmoat-0.mailmoat:9925'), pod), 'http://mailmoat-0.mailmoat:9925');
  t.equal(adminUrlOf(policy('192.0.2.5:9925'), pod), 'http://192.0.2.5:9925');
  t.equal(adminUrlOf(policy(''), pod), '', 'no admin listener: nothing to reach');
});

t.test('a wildcard listen address becomes the host address its peers can reach', async (t) => {
  t.equal(adminUrlOf(policy('0.0.0.0:9925'), pod), 'http://10.244.0.7:9925', 'IPv4: the pod address, not loopback');
  t.equal(adminUrlOf(policy('[::]:9925'), pod), 'http://[fd00::7]:9925', 'IPv6: not loopback, not link-local');
  t.equal(adminUrlOf(policy('0.0.0.0:9925'), () => ({ lo: pod().lo })), '', 'only loopback: nothing the others could reach');
});

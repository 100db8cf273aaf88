// Direction from the downstream address (networks.internal) and what inspect.smtp means.
import t from 'tap';
import { directionResolver, inspectsSmtp } from '../../src/policy/resolve.js';

t.test('internal ranges are outbound, the rest inbound, v4-mapped v6 matched as v4', async (t) => {
  const resolver = directionResolver(['10.0.0.0/8', '192.168.1.7', 'fd00::/8']);
  t.equal(resolver.directionOf('10.1.2.3'), 'outbound');
  t.equal(resolver.directionOf('::ffff:10.1.2.3'), 'outbound');
  t.equal(resolver.directionOf('192.168.1.7'), 'outbound');
  t.equal(resolver.directionOf('192.168.1.8'), 'inbound');
  t.equal(resolver.directionOf('fd12::1'), 'outbound');
  t.equal(resolver.directionOf('2001:db8::1'), 'inbound');
  t.equal(resolver.directionOf('203.0.113.9'), 'inbound');
});

t.test('inspect.smtp settings', async (t) => {
  t.same([inspectsSmtp('inbound', 'inbound'), inspectsSmtp('inbound', 'outbound')], [true, false]);
  t.same([inspectsSmtp('outbound', 'inbound'), inspectsSmtp('outbound', 'outbound')], [false, true]);
  t.same([inspectsSmtp('all', 'inbound'), inspectsSmtp('none', 'inbound')], [true, false]);
});

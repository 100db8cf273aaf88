// The per-message DNS budget, against a real DNS server on loopback (dns2): answers come back as the
// system resolver's would; a server that never answers ends every lookup with ETIMEOUT once the
// budget is spent, and later lookups of the same message fail at once.
import t from 'tap';
import { BudgetedResolver } from '../../src/auth/resolver.js';
import { startTestDns } from '../helpers/dns-server.js';

t.test('an answering server: TXT records, and NXDOMAIN as ENOTFOUND', async (t) => {
  const dns = await startTestDns(t);
  dns.setTxt('s1._domainkey.a.example', 'v=DKIM1; p=abc');
  const { lookup, close } = new BudgetedResolver({ server: dns.address, budgetMs: 5000 }).forMessage();
  t.teardown(close);
  t.same(await lookup('s1._domainkey.a.example', 'TXT'), [['v=DKIM1; p=abc']]);
  await t.rejects(lookup('missing.a.example', 'TXT'), { code: 'ENOTFOUND' });
});

t.test('a silent server: the budget ends the lookups with ETIMEOUT, and nothing is asked after it', async (t) => {
  const dns = await startTestDns(t, { silent: true });
  const { lookup, close } = new BudgetedResolver({ server: dns.address, budgetMs: 200 }).forMessage();
  t.teardown(close);
  const [first, second] = await Promise.allSettled([lookup('a.example', 'TXT'), lookup('b.example', 'TXT')]);
  t.match(first, { status: 'rejected', reason: { code: 'ETIMEOUT', message: /DNS budget of 200 ms exceeded/ } });
  t.match(second, { status: 'rejected', reason: { code: 'ETIMEOUT' } });
  const asked = dns.questions.length;
  await t.rejects(lookup('c.example', 'TXT'), { code: 'ETIMEOUT' }, 'spent: a later lookup fails at once');
  t.equal(dns.questions.length, asked, 'without asking the server');
});

// auth.results_on_every_message at the inspector: a clean message's verdict is still `pass`, and
// carries the original with one Authentication-Results of ours on top (forged ones removed) and
// nothing else changed; without the key the verdict has no message (the original is forwarded).
import t from 'tap';
import { parsePolicyText } from '../../src/config/load.js';
import { createMailInspector } from '../../src/inspect/create.js';
import type { InspectionContext, MessageSource } from '../../src/inspect/api.js';
import { startTestDns } from '../helpers/dns-server.js';

const context: InspectionContext = { sessionId: 's', direction: 'inbound', sender: '<a@sender.example>', recipients: ['<b@example.net>'], client: { address: '192.0.2.1', helo: 'mx.sender.example' } };
const original = Buffer.from(
  'Authentication-Results: (forged)\r\n mailmoat.test; dkim=pass header.d=bank.example\r\nAuthentication-Results: other.example; dkim=none\r\nFrom: a@sender.example\r\nSubject: s\r\n\r\nclean body\r\n',
  'latin1',
);
const source = (bytes: Buffer, chunkBytes: number): MessageSource => ({
  size: bytes.length,
  async *open() {
    for (let start = 0; start < bytes.length; start += chunkBytes) yield bytes.subarray(start, start + chunkBytes);
  },
});

t.test('on: pass, with the original under one Authentication-Results of ours', async (t) => {
  const dns = await startTestDns(t);
  dns.setTxt('sender.example', 'v=spf1 ip4:192.0.2.0/24 -all');
  const inspector = await createMailInspector(parsePolicyText(`auth:\n  authserv_id: mailmoat.test\n  resolver: "${dns.address}"\n  results_on_every_message: true\n`, 'x'));
  t.teardown(() => inspector.close());
  const { verdict } = await inspector.examine(source(original, 7), context);
  if (verdict.action !== 'pass' || verdict.message === undefined) return t.fail(`expected pass with a message, got ${verdict.action}`);
  const chunks: Buffer[] = [];
  for await (const chunk of verdict.message.open()) chunks.push(chunk);
  const forwarded = Buffer.concat(chunks);
  t.equal(verdict.message.size, forwarded.length, 'size matches the bytes');
  const text = forwarded.toString('latin1');
  const ours = /^Authentication-Results: mailmoat\.test;\r\n(?:\t[^\r]*\r\n)+/.exec(text)?.[0] ?? '';
  t.match(ours, /^Authentication-Results: mailmoat\.test;\r\n\tdkim=none \(message not signed\);\r\n\tspf=pass [^\r]* smtp\.mailfrom=a@sender\.example smtp\.helo=mx\.sender\.example;\r\n\tdmarc=none header\.from=sender\.example\r\n$/, 'our results');
  t.equal(text.slice(ours.length), 'Authentication-Results: other.example; dkim=none\r\nFrom: a@sender.example\r\nSubject: s\r\n\r\nclean body\r\n', 'then the original without the forged field, byte for byte');
  await verdict.message.dispose();
  t.equal(verdict.message.size, forwarded.length);
});

t.test('off (the default): pass without a message, no lookup', async (t) => {
  const dns = await startTestDns(t);
  const inspector = await createMailInspector(parsePolicyText(`auth:\n  authserv_id: mailmoat.test\n  resolver: "${dns.address}"\n`, 'x'));
  t.teardown(() => inspector.close());
  t.same((await inspector.examine(source(original, 7), context)).verdict, { action: 'pass' });
  t.equal(dns.questions.length, 0);
});

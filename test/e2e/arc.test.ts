// Rewritten mail keeps its authentication, end to end: swaks sends DKIM-signed mail (signed here by
// dkimpy with a throwaway key published by a loopback DNS server) through the SMTP proxy into a real
// smtp-sink; the executable is stripped, and the ARC chain mailmoat seals is validated by Debian's
// dkimpy reading the same DNS, an implementation independent of the mailauth that sealed it.
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parsePolicyText } from '../../src/config/load.js';
import { createMailInspector } from '../../src/inspect/create.js';
import { arcKeyRecord, generateArcKey } from '../../src/auth/keygen.js';
import { SmtpSink, asDumped } from '../helpers/smtp-sink.js';
import { startTestProxy, type TestProxy } from '../helpers/proxy.js';
import { startTestDns, type TestDns } from '../helpers/dns-server.js';
import { dkimpyArcSign, dkimpyArcVerify, dkimpySign, dkimpyVerify } from '../helpers/dkimpy.js';
import { windowsProgramStub } from '../../src/demo/samples.js';

const run = promisify(execFile);

const AUTHSERV_ID = 'mailmoat.test';
const SENDER_DOMAIN = 'sender.example';

/** A throwaway RSA key: the PEM and the DKIM TXT record of its public half. */
function throwawayKey(selector: string, domain: string): { pem: string; record: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
  return { pem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), record: arcKeyRecord(selector, domain, publicKey.export({ type: 'spki', format: 'der' })).value };
}

const message = (attachmentName: string, attachment: Buffer, extraHeaders: string[] = []): Buffer =>
  Buffer.from(
    [
      ...extraHeaders,
      `From: Alice <alice@${SENDER_DOMAIN}>`,
      'To: bob@example.net',
      'Subject: the invoice',
      'Date: Mon, 07 Dec 2026 10:00:00 +0000',
      `Message-ID: <arc-test@${SENDER_DOMAIN}>`,
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="outer"',
      '',
      '--outer',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'The invoice is attached.',
      '--outer',
      `Content-Type: application/octet-stream; name="${attachmentName}"`,
      `Content-Disposition: attachment; filename="${attachmentName}"`,
      'Content-Transfer-Encoding: base64',
      '',
      attachment.toString('base64'),
      '--outer--',
      '',
    ].join('\r\n'),
    'latin1',
  );

interface World {
  dns: TestDns;
  sink: SmtpSink;
  proxy: TestProxy;
  sender: { pem: string };
  forwarder: { pem: string };
}

/** DNS with the sender's DKIM key, SPF and DMARC (p=reject), a forwarder's ARC key and mailmoat's; the proxy in front of smtp-sink. */
async function world(t: Test, options: { silentDns?: boolean; direction?: 'outbound'; algorithm?: 'ed25519'; resultsOnEveryMessage?: boolean } = {}): Promise<World> {
  const records = await startTestDns(t);
  const dns = options.silentDns === true ? await startTestDns(t, { silent: true }) : records;
  const sender = throwawayKey('s1', SENDER_DOMAIN);
  records.setTxt(`s1._domainkey.${SENDER_DOMAIN}`, sender.record);
  records.setTxt(SENDER_DOMAIN, 'v=spf1 ip4:127.0.0.1 -all');
  records.setTxt(`_dmarc.${SENDER_DOMAIN}`, 'v=DMARC1; p=reject');
  const forwarder = throwawayKey('fw', 'forwarder.example');
  records.setTxt('fw._domainkey.forwarder.example', forwarder.record);
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-arc-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const arcKey = await generateArcKey(dir, 'mm', 'mailmoat.test', options.algorithm);
  records.setTxt(arcKey.record.name.replace(/\.$/, ''), arcKey.record.value);
  const policyText = [
    'auth:',
    `  authserv_id: ${AUTHSERV_ID}`,
    `  resolver: "${dns.address}"`,
    `  dns_budget_ms: ${options.silentDns === true ? 300 : 5000}`,
    ...(options.resultsOnEveryMessage === true ? ['  results_on_every_message: true'] : []),
    '  arc:',
    '    domain: mailmoat.test',
    '    selector: mm',
    `    private_key: ${arcKey.keyPath}`,
    ...(options.direction === 'outbound' ? ['networks:', '  internal: [127.0.0.0/8]', 'inspect:', '  smtp: all'] : []),
  ].join('\n');
  const policyPath = join(dir, 'policy.yaml');
  await writeFile(policyPath, policyText);
  const sink = await SmtpSink.start(t);
  const overrides = options.direction === 'outbound' ? { networks: { internal: ['127.0.0.0/8'] }, inspect: { smtp: 'all' as const } } : {};
  const proxy = await startTestProxy(t, sink.port, overrides, await createMailInspector(parsePolicyText(policyText, policyPath)));
  return { dns: records, sink, proxy, sender, forwarder };
}

async function send(proxy: TestProxy, bytes: Buffer): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-arc-send-'));
  const file = join(dir, 'message.eml');
  await writeFile(file, bytes);
  try {
    const { stdout } = await run('swaks', ['--server', `127.0.0.1:${proxy.port}`, '--helo', `mx.${SENDER_DOMAIN}`, '--from', `alice@${SENDER_DOMAIN}`, '--to', 'bob@example.net', '--data', file, '--silent', '1']);
    if (stdout.includes('***')) throw new Error(`swaks: ${stdout}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** What the sink received, as CRLF bytes (smtp-sink dumps with LF). */
async function received(sink: SmtpSink): Promise<Buffer> {
  const [dumped] = await sink.messages(1);
  return Buffer.from((dumped?.body ?? '').replace(/\n/g, '\r\n'), 'latin1');
}

const headerOf = (bytes: Buffer): string => {
  const text = bytes.toString('latin1');
  return text.slice(0, text.indexOf('\r\n\r\n') + 2);
};

t.test('a DKIM-signed message with an executable: stripped, ARC-sealed (i=1, cv=none), and dkimpy validates the chain', async (t) => {
  const { dns, sink, proxy, sender } = await world(t);
  const signed = await dkimpySign(message('invoice.exe', windowsProgramStub()), 's1', SENDER_DOMAIN, sender.pem, dns.port);
  t.ok(await dkimpyVerify(signed, dns.port), 'dkimpy: the original DKIM signature verifies');
  await send(proxy, signed);
  const delivered = await received(sink);
  const header = headerOf(delivered);
  t.notOk(delivered.includes(windowsProgramStub().toString('base64')), 'the executable is gone');
  t.match(delivered.toString('latin1'), /mailmoat removed the attachment "invoice\.exe"/);
  t.match(proxy.transactions[0], { verdict: 'rewrite' });
  t.match(header, /^ARC-Seal: i=1; a=rsa-sha256; .*cv=none/m, 'ARC-Seal of instance 1, cv=none');
  t.match(header, /^ARC-Authentication-Results: i=1; mailmoat\.test;\r\n\tdkim=pass header\.i=@sender\.example header\.s=s1/m, 'the original dkim=pass recorded in ARC-Authentication-Results');
  t.match(header, /\tspf=pass .*smtp\.mailfrom=alice@sender\.example/, 'SPF passed for 127.0.0.1');
  t.match(header, /\tdmarc=pass .*header\.from=sender\.example/, 'DMARC passed');
  t.match(header, /^Authentication-Results: mailmoat\.test;\r\n\tdkim=pass /m, 'Authentication-Results for the server behind');
  t.notOk(await dkimpyVerify(delivered, dns.port), 'dkimpy: the rewrite broke the DKIM signature (what ARC is for)');
  const arc = await dkimpyArcVerify(delivered, dns.port);
  t.equal(arc.cv, 'pass', `dkimpy arc_verify: cv=pass (${arc.comment})`);
  t.match(arc.results, [{ instance: 1, 'ams-valid': true, 'as-valid': true, 'as-domain': 'mailmoat.test', 'ams-domain': 'mailmoat.test' }]);
});

t.test('sealed with an Ed25519 key: ed25519-sha256 in both signatures, which dkimpy validates with its ARC algorithms extended by ed25519-sha256', async (t) => {
  const { dns, sink, proxy, sender, forwarder } = await world(t, { algorithm: 'ed25519' });
  const signed = await dkimpySign(message('invoice.exe', windowsProgramStub()), 's1', SENDER_DOMAIN, sender.pem, dns.port);
  const withResults = Buffer.concat([Buffer.from('Authentication-Results: forwarder.example; dkim=pass header.d=sender.example\r\n'), signed]);
  const forwarded = await dkimpyArcSign(withResults, 'fw', 'forwarder.example', forwarder.pem, 'forwarder.example', dns.port);
  await send(proxy, forwarded);
  const delivered = await received(sink);
  const header = headerOf(delivered);
  t.notOk(delivered.includes(windowsProgramStub().toString('base64')), 'the executable is gone');
  t.match(header, /^ARC-Seal: i=2; a=ed25519-sha256; .*cv=pass/m, 'ARC-Seal of instance 2, ed25519-sha256, cv=pass');
  t.match(header, /^ARC-Message-Signature: i=2; a=ed25519-sha256; c=relaxed\/relaxed; d=mailmoat\.test; s=mm;/m);
  t.match(header, /^ARC-Authentication-Results: i=2; mailmoat\.test;\r\n\tdkim=pass header\.i=@sender\.example/m);
  const stock = await dkimpyArcVerify(delivered, dns.port);
  t.equal(stock.cv, 'fail', 'stock dkimpy 1.1 knows only rsa-sha256 for ARC');
  t.match(stock.comment, /unknown signature algorithm: b?'?ed25519-sha256/);
  const arc = await dkimpyArcVerify(delivered, dns.port, true);
  t.equal(arc.cv, 'pass', `dkimpy arc_verify with ed25519-sha256: cv=pass over both instances (${arc.comment})`);
  t.match(arc.results, [{ instance: 2, 'ams-valid': true, 'as-valid': true, 'as-domain': 'mailmoat.test', 'ams-domain': 'mailmoat.test' }, { instance: 1, 'as-valid': true, 'as-domain': 'forwarder.example' }]);
});

t.test('a message already carrying one ARC set gets instance 2 and the chain validates', async (t) => {
  const { dns, sink, proxy, sender, forwarder } = await world(t);
  const signed = await dkimpySign(message('invoice.exe', windowsProgramStub()), 's1', SENDER_DOMAIN, sender.pem, dns.port);
  const withResults = Buffer.concat([Buffer.from('Authentication-Results: forwarder.example; dkim=pass header.d=sender.example\r\n'), signed]);
  const forwarded = await dkimpyArcSign(withResults, 'fw', 'forwarder.example', forwarder.pem, 'forwarder.example', dns.port);
  t.equal((await dkimpyArcVerify(forwarded, dns.port)).cv, 'pass', 'the incoming chain (dkimpy, i=1) is valid');
  await send(proxy, forwarded);
  const delivered = await received(sink);
  const header = headerOf(delivered);
  t.match(header, /^ARC-Seal: i=2; a=rsa-sha256; .*cv=pass/m, 'instance 2, cv=pass');
  t.match(header, /^ARC-Authentication-Results: i=2; mailmoat\.test;[^]*arc=pass \(i=1/m, 'the incoming chain recorded as arc=pass');
  const arc = await dkimpyArcVerify(delivered, dns.port);
  t.equal(arc.cv, 'pass', `dkimpy arc_verify: cv=pass over both instances (${arc.comment})`);
  t.equal(arc.results.length, 2);
  t.match(arc.results, [{ instance: 2, 'ams-valid': true, 'as-valid': true, 'as-domain': 'mailmoat.test' }, { instance: 1, 'as-valid': true, 'as-domain': 'forwarder.example' }]);
});

t.test('a broken incoming chain is sealed with cv=fail and recorded as arc=fail', async (t) => {
  const { dns, sink, proxy, forwarder } = await world(t);
  const original = message('invoice.exe', windowsProgramStub(), ['Authentication-Results: forwarder.example; dkim=none']);
  const forwarded = await dkimpyArcSign(original, 'fw', 'forwarder.example', forwarder.pem, 'forwarder.example', dns.port);
  // Changed after the forwarder sealed it: its ARC-Message-Signature no longer verifies.
  const broken = Buffer.from(forwarded.toString('latin1').replace('The invoice is attached.', 'The invoice is attached!'), 'latin1');
  t.equal((await dkimpyArcVerify(broken, dns.port)).cv, 'fail', 'dkimpy agrees the incoming chain is broken');
  await send(proxy, broken);
  const delivered = await received(sink);
  const header = headerOf(delivered);
  t.match(header, /^ARC-Seal: i=2; a=rsa-sha256; .*cv=fail/m, 'sealed with cv=fail');
  t.match(header, /^ARC-Authentication-Results: i=2; mailmoat\.test;[^]*arc=fail/m, 'arc=fail recorded');
  t.match(header, /^Authentication-Results: mailmoat\.test;[^]*arc=fail/m);
  const arc = await dkimpyArcVerify(delivered, dns.port);
  t.equal(arc.cv, null, 'dkimpy: no pass');
  t.equal(arc.comment, 'ARC-Seal[2] reported failure, the chain is terminated', 'dkimpy read our instance 2 and its cv=fail');
});

t.test('a clean DKIM-signed message passes byte for byte: no ARC set, no Authentication-Results, no DNS lookup', async (t) => {
  const { dns, sink, proxy, sender } = await world(t);
  const signed = await dkimpySign(message('invoice.pdf', Buffer.from('%PDF-1.4 clean')), 's1', SENDER_DOMAIN, sender.pem, dns.port);
  const asked = dns.questions.length;
  await send(proxy, signed);
  const [dumped] = await sink.messages(1);
  t.equal(dumped?.body.replace(/\n+$/, ''), asDumped(signed).replace(/\n+$/, ''), 'identical');
  t.equal(proxy.transactions[0]?.verdict, 'pass');
  t.equal(dns.questions.length, asked, 'nothing was looked up for it');
});

t.test('a DNS server that never answers: the budget runs out, results are temperror, the message is still delivered and sealed', async (t) => {
  const { dns, sink, proxy, sender } = await world(t, { silentDns: true });
  const signed = await dkimpySign(message('invoice.exe', windowsProgramStub()), 's1', SENDER_DOMAIN, sender.pem, dns.port);
  await send(proxy, signed);
  const delivered = await received(sink);
  const header = headerOf(delivered);
  t.match(proxy.transactions[0], { verdict: 'rewrite' });
  t.match(header, /^Authentication-Results: mailmoat\.test;\r\n\tdkim=temperror/m, 'dkim=temperror');
  t.match(header, /\tspf=temperror/, 'spf=temperror');
  t.match(header, /^ARC-Seal: i=1; a=rsa-sha256; .*cv=none/m, 'sealed all the same (sealing needs no lookup)');
  t.equal((await dkimpyArcVerify(delivered, dns.port)).cv, 'pass', 'dkimpy validates the seal (its key is on the answering server)');
});

t.test('a forged Authentication-Results claiming our authserv-id is removed; another server\'s is kept', async (t) => {
  const { sink, proxy } = await world(t);
  const forged = message('invoice.exe', windowsProgramStub(), [
    'Authentication-Results: (trust me) MAILMOAT.test;\r\n dkim=pass header.d=bank.example',
    'Authentication-Results: other.example; spf=pass smtp.mailfrom=alice@sender.example',
  ]);
  await send(proxy, forged);
  const header = headerOf(await received(sink));
  t.notMatch(header, /bank\.example/, 'the forged field is gone');
  t.match(header, /^Authentication-Results: other\.example; spf=pass/m, 'the other server\'s field is kept');
  t.equal(header.match(/^Authentication-Results: mailmoat\.test;/gm)?.length, 1, 'ours appears once');
});

// The session's payload step forwards a pass verdict's message: the original with Authentication-Results on top.
t.test('results_on_every_message: a clean message gets one Authentication-Results, forged ones removed, and is otherwise the original', async (t) => {
  const { dns, sink, proxy, sender } = await world(t, { resultsOnEveryMessage: true });
  const signed = await dkimpySign(message('invoice.pdf', Buffer.from('%PDF-1.4 clean')), 's1', SENDER_DOMAIN, sender.pem, dns.port);
  const forged = 'Authentication-Results: MAILMOAT.test; dkim=pass header.d=bank.example\r\n';
  const other = 'Authentication-Results: other.example; spf=pass smtp.mailfrom=alice@sender.example\r\n';
  await send(proxy, Buffer.from(forged + other + signed.toString('latin1'), 'latin1'));
  const delivered = await received(sink);
  const text = delivered.toString('latin1');
  const added = /^Authentication-Results: mailmoat\.test;\r\n\tdkim=pass header\.i=@sender\.example header\.s=s1 [^]*?\r\n(?=[^\t])/.exec(text)?.[0] ?? '';
  t.not(added, '', 'one Authentication-Results of ours on top, dkim=pass');
  t.match(added, /\tspf=pass [^]*\tdmarc=pass /, 'SPF and DMARC too');
  t.equal(text.slice(added.length).replace(/(\r\n)+$/, ''), (other + signed.toString('latin1')).replace(/(\r\n)+$/, ''), 'the rest is the original, without the forged field');
  t.notMatch(text, /^ARC-/m, 'no ARC set on a clean message');
  t.equal(proxy.transactions[0]?.verdict, 'pass', 'logged as clean');
  t.ok(await dkimpyVerify(delivered, dns.port), 'dkimpy: the DKIM signature still verifies');
});

t.test('outbound mail is not sealed by default', async (t) => {
  const { sink, proxy, sender, dns } = await world(t, { direction: 'outbound' });
  const signed = await dkimpySign(message('invoice.exe', windowsProgramStub()), 's1', SENDER_DOMAIN, sender.pem, dns.port);
  await send(proxy, signed);
  const header = headerOf(await received(sink));
  t.match(proxy.transactions[0], { verdict: 'rewrite', direction: 'outbound' });
  t.notMatch(header, /^ARC-/m, 'no ARC set');
  t.notMatch(header, /^Authentication-Results: mailmoat/m, 'no Authentication-Results');
});

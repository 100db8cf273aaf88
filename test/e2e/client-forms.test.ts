// A Windows program named evil.exe in each form a mail client opens (padded delimiter, message/news
// and message/x-anything wrappers, x-uuencode, BinHex made by macutils, TNEF from MimeKit's sample;
// test/helpers/forms.ts) through the SMTP proxy into a real smtp-sink, and through the POP3 proxy
// with RETR from a real Dovecot: the program never arrives, the text beside it does.
import t from 'tap';
import { parsePolicyText, validatePolicy } from '../../src/config/load.js';
import { createMailInspector } from '../../src/inspect/create.js';
import { RawClient } from '../helpers/client.js';
import { SmtpSink } from '../helpers/smtp-sink.js';
import { startTestProxy, startTestPop3Proxy } from '../helpers/proxy.js';
import { startTestDovecot } from '../helpers/dovecot.js';
import { RawPop3 } from '../helpers/pop3-raw.js';
import { KEEP_TEXT, programForms } from '../helpers/forms.js';

const forms = programForms();
/** RFC 5321 4.5.2: a line starting with "." gets another. */
const dotStuffed = (message: Buffer): string => message.toString('latin1').replace(/(^|\r\n)\./g, '$1..');

t.test('SMTP into smtp-sink: the program in each form is stripped, the text arrives', async (t) => {
  const sink = await SmtpSink.start(t);
  const inspector = await createMailInspector(parsePolicyText('', 'test'));
  t.teardown(() => inspector.close());
  const proxy = await startTestProxy(t, sink.port, {}, inspector);
  for (const { label, message } of forms) {
    const client = await RawClient.openTransaction(proxy.port);
    client.send(`${dotStuffed(message)}.\r\n`);
    await client.waitForReplies(6);
    t.equal(client.replies[5]?.code, 250, `${label}: accepted after the upstream accepted`);
    client.close();
  }
  const received = await sink.messages(forms.length);
  forms.forEach(({ label, marker }, index) => {
    const body = received[index]?.body ?? '';
    t.ok(body.includes(KEEP_TEXT), `${label}: the text arrives`);
    t.notOk(body.includes(marker), `${label}: the program does not`);
    t.match(body, /mailmoat removed the attachment/, `${label}: the notice says so`);
  });
});

t.test('POP3 RETR from Dovecot: the program in each form is stripped, the text arrives', async (t) => {
  const dovecot = await startTestDovecot(t, [{ name: 'alice', password: 'secret', messages: forms.map((form) => form.message) }]);
  const inspector = await createMailInspector(validatePolicy({}, 'test'));
  t.teardown(() => inspector.close());
  const proxy = await startTestPop3Proxy(t, dovecot.port, {}, inspector);
  const client = await RawPop3.connect(proxy.port);
  t.teardown(() => client.close());
  await client.login('alice', 'secret');
  for (const [index, { label, marker }] of forms.entries()) {
    client.send(`RETR ${index + 1}\r\n`);
    const text = (await client.multiline()).toString('latin1');
    t.match(text, /^\+OK /, `${label}: +OK`);
    t.ok(text.includes(KEEP_TEXT), `${label}: the text arrives`);
    t.notOk(text.includes(marker), `${label}: the program does not`);
    t.match(text, /mailmoat removed the attachment/, `${label}: the notice says so`);
  }
  t.same(proxy.retrievals.map((summary) => summary.verdict), forms.map(() => 'rewrite'));
});

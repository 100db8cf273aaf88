// Reply parsing (RFC 5321 4.2), EHLO capability filtering, sanitising upstream text.
import t from 'tap';
import { ReplyParser, filterEhloReply, sanitizeText, serializeReply } from '../../src/session/smtp/replies.js';

const b = (text: string): Buffer => Buffer.from(text, 'latin1');

t.test('multi-line replies are assembled; malformed lines are errors', async (t) => {
  const parser = new ReplyParser();
  t.equal(parser.feed(b('250-first')), null);
  t.same(parser.feed(b('250 last')), { code: 250, lines: ['first', 'last'] });
  t.same(parser.feed(b('221')), { code: 221, lines: [''] });
  t.type(parser.feed(b('hello')), Error);
  const mixed = new ReplyParser();
  mixed.feed(b('250-a'));
  t.type(mixed.feed(b('251 b')), Error, 'the code may not change inside a reply');
});

t.test('EHLO filter keeps the relayed keywords and lowers SIZE', async (t) => {
  const filtered = filterEhloReply(
    { code: 250, lines: ['mx.example', 'PIPELINING', 'SIZE 99999999', 'STARTTLS', 'CHUNKING', 'BINARYMIME', 'XCLIENT NAME', 'XFORWARD ADDR', 'AUTH PLAIN', 'AUTH=PLAIN', 'DSN', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES', 'X-UNKNOWN'] },
    1000,
  );
  t.same(filtered.lines, ['mx.example', 'PIPELINING', 'SIZE 1000', 'AUTH PLAIN', 'AUTH=PLAIN', 'DSN', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES']);
  t.same(filterEhloReply({ code: 250, lines: ['mx', 'SIZE'] }, 500).lines, ['mx', 'SIZE 500'], 'SIZE without a value is unlimited upstream');
  t.same(filterEhloReply({ code: 250, lines: ['mx', 'SIZE 100'] }, 500).lines, ['mx', 'SIZE 100'], 'a smaller upstream limit stays');
  t.same(filterEhloReply({ code: 550, lines: ['no'] }, 500), { code: 550, lines: ['no'] });
});

t.test('upstream text is masked and capped; replies serialise with CRLF', async (t) => {
  t.equal(sanitizeText('ok\x1b[31m\x00'), 'ok?[31m?');
  t.equal(sanitizeText('x'.repeat(2000)).length, 510);
  t.equal(serializeReply({ code: 250, lines: ['a', 'b'] }).toString(), '250-a\r\n250 b\r\n');
});

// The one line splitter: CRLF and bare LF terminators, limits, raw hand-over.
import t from 'tap';
import { LineReader } from '../../src/wire/line-reader.js';

const b = (text: string): Buffer => Buffer.from(text, 'latin1');

t.test('splits CRLF and LF lines across chunks', async (t) => {
  const reader = new LineReader(100);
  reader.push(b('EHLO a\r'));
  t.equal(reader.next(), null);
  reader.push(b('\nNOOP\nRS'));
  t.same(reader.next(), { kind: 'line', line: b('EHLO a') });
  t.same(reader.next(), { kind: 'line', line: b('NOOP') });
  t.equal(reader.next(), null);
  t.equal(reader.takeRest().toString(), 'RS');
  t.equal(reader.buffered, 0);
});

t.test('an over-long line is reported once and skipped, never buffered whole', async (t) => {
  const reader = new LineReader(8);
  reader.push(b('0123456789'));
  t.same(reader.next(), { kind: 'overflow' });
  reader.push(b('abcdef'));
  t.equal(reader.next(), null);
  t.equal(reader.buffered, 0, 'the discarded bytes are not kept');
  reader.push(b('xyz\r\nQUIT\r\n'));
  t.same(reader.next(), { kind: 'line', line: b('QUIT') });
});

t.test('a complete line over the limit is an overflow too', async (t) => {
  const reader = new LineReader(4);
  reader.push(b('123456\r\nok\r\n'));
  t.same(reader.next(), { kind: 'overflow' });
  t.same(reader.next(), { kind: 'line', line: b('ok') });
});

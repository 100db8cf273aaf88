// The logs' second guard against credentials: secret keys are censored in a line's fields and one
// level down, in the line written, without changing the caller's objects.
import t from 'tap';
import { Writable } from 'node:stream';
import { createLogger, censorSecrets } from '../../src/observe/log.js';

function capture(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString('utf8'));
      done();
    },
  });
  return { stream, lines: () => chunks.join('').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>) };
}

t.test('secret keys are censored at the top and one level down; the caller keeps its values', async (t) => {
  const out = capture();
  const log = createLogger('info', out.stream);
  const nested = { user: 'alice', password: 'hunter2' };
  const fields = { password: 'p1', auth: 'PLAIN AGFsaWNl', sasl: 'x', client: nested, size: 3 };
  log.info(fields, 'line');
  const [line] = out.lines();
  t.equal(line?.password, '[redacted]');
  t.equal(line?.auth, '[redacted]');
  t.equal(line?.sasl, '[redacted]');
  t.same(line?.client, { user: 'alice', password: '[redacted]' });
  t.equal(line?.size, 3);
  t.equal(fields.password, 'p1', 'the caller object is not changed');
  t.equal(nested.password, 'hunter2', 'nor the nested one');
  t.notOk(JSON.stringify(out.lines()).includes('hunter2'), 'the secret is nowhere in the output');
});

t.test('an Error carrying a secret is still logged as an error, censored', async (t) => {
  const out = capture();
  const log = createLogger('info', out.stream);
  log.error({ err: Object.assign(new Error('login failed'), { password: 'hunter2' }) }, 'failed');
  const err = out.lines()[0]?.err as Record<string, unknown> | undefined;
  t.equal(err?.message, 'login failed');
  t.equal(err?.type, 'Error', 'serialized by pino as an error');
  t.equal(err?.password, '[redacted]');
  t.match(String(err?.stack), /login failed/);
});

t.test('a line without secrets is passed on as it is (no copy)', async (t) => {
  const fields = { size: 1, nested: { a: 1 }, list: ['password'] };
  t.equal(censorSecrets(fields), fields);
});

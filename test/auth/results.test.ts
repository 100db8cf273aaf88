// Authentication-Results (RFC 8601): the authserv-id read from a field, forged fields claiming ours removed
// (section 5) whatever their folding, comments or case, other servers' fields kept byte for byte.
import t from 'tap';
import { arcResultsValue, authenticationResultsField, authservIdOf, headerFields, withoutForgedResults } from '../../src/auth/results.js';

const block = (...fields: string[]): Buffer => Buffer.from(fields.map((field) => `${field}\r\n`).join(''), 'latin1');

t.test('the authserv-id of a field value', async (t) => {
  t.equal(authservIdOf(' mx.example.org; dkim=pass'), 'mx.example.org');
  t.equal(authservIdOf(' (a comment (nested)) mx.example.org 1; none'), 'mx.example.org', 'comments and a version before the results');
  t.equal(authservIdOf('mx.example.org;dkim=pass'), 'mx.example.org');
  t.equal(authservIdOf(' "mx.example.org"; none'), 'mx.example.org', 'a quoted value');
  t.equal(authservIdOf('   '), '');
});

t.test('header fields keep their continuation lines', async (t) => {
  const fields = headerFields(block('A: 1', 'B: 2\r\n 3\r\n\t4', 'C: 5'));
  t.same(fields.map((field) => field.toString('latin1')), ['A: 1\r\n', 'B: 2\r\n 3\r\n\t4\r\n', 'C: 5\r\n']);
});

t.test('forged fields claiming our id are removed; every other byte is kept', async (t) => {
  const original = block(
    'Received: from x',
    'Authentication-Results: mailmoat.test; dkim=pass header.d=bank.example',
    'authentication-results :\r\n (trust me)\r\n MAILMOAT.TEST;\r\n spf=pass',
    'Authentication-Results: mailmoat.test.evil.example; dkim=pass',
    'Authentication-Results: other.example; dkim=fail',
    'X-Authentication-Results: mailmoat.test; kept, not an A-R field',
    'Subject: hi',
  );
  const { block: kept, removed } = withoutForgedResults(original, 'mailmoat.test');
  t.equal(removed, 2);
  t.equal(
    kept.toString('latin1'),
    block('Received: from x', 'Authentication-Results: mailmoat.test.evil.example; dkim=pass', 'Authentication-Results: other.example; dkim=fail', 'X-Authentication-Results: mailmoat.test; kept, not an A-R field', 'Subject: hi').toString('latin1'),
  );
  const untouched = block('Subject: hi', 'Authentication-Results: other.example; none');
  t.equal(withoutForgedResults(untouched, 'mailmoat.test').block, untouched, 'nothing to remove: the same buffer');
});

t.test('our fields', async (t) => {
  t.equal(authenticationResultsField('mx.example.org', ['dkim=pass header.d=a.example', 'spf=none']), 'Authentication-Results: mx.example.org;\r\n\tdkim=pass header.d=a.example;\r\n\tspf=none\r\n');
  t.equal(authenticationResultsField('mx.example.org', []), 'Authentication-Results: mx.example.org;\r\n\tnone\r\n', 'nothing evaluated: none');
  t.equal(arcResultsValue('mx.example.org', ['arc=pass']), 'mx.example.org;\r\n\tarc=pass');
});

// Content sniffing: executables are recognised by their first bytes, whatever the name says.
import t from 'tap';
import { sniff } from '../../src/inspect/sniff.js';
import { windowsProgramStub } from '../../src/demo/samples.js';

const pe = windowsProgramStub;

t.test('executable formats', async (t) => {
  t.match(sniff(pe()), { kind: 'executable', format: /PE/ });
  t.match(sniff(Buffer.from('7f454c46020101000000000000000000', 'hex')), { kind: 'executable', format: /ELF/ });
  t.match(sniff(Buffer.from('cffaedfe07000001', 'hex')), { kind: 'executable', format: /Mach-O/ });
  t.match(sniff(Buffer.from('cafebabe00000002', 'hex')), { kind: 'executable', format: /universal/ });
  t.match(sniff(Buffer.from('4c0000000114020000000000c000000000000046aaaa', 'hex')), { kind: 'executable', format: /shortcut/ });
});

t.test('not executables', async (t) => {
  t.same(sniff(Buffer.from('cafebabe00000034', 'hex')), { kind: 'other' }, 'a Java class file is not Mach-O');
  t.same(sniff(Buffer.from('%PDF-1.7\n')), { kind: 'other' });
  t.same(sniff(Buffer.from(`MZ is how the invoice begins, ${'x'.repeat(100)}`)), { kind: 'other' }, 'text that starts with MZ');
  t.same(sniff(Buffer.alloc(0)), { kind: 'other' });
});

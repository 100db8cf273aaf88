// accept/ refuses connections through a protocol kit: each refusal in the protocol's own syntax.
import t from 'tap';
import { protocolKit, type RefusalKind } from '../../src/session/protocol.js';

const kinds: RefusalKind[] = ['proxy-header-required', 'too-many-sessions', 'routing-loop', 'no-original-destination'];

t.test('SMTP refusals are 421 replies, POP3 refusals -ERR [SYS/TEMP]', async (t) => {
  for (const kind of kinds) {
    t.match(protocolKit('smtp').refusal(kind).toString('latin1'), /^421 4\.\d\.\d [^\r\n]+\r\n$/, `smtp ${kind}`);
    t.match(protocolKit('pop3').refusal(kind).toString('latin1'), /^-ERR \[SYS\/TEMP\] [^\r\n]+\r\n$/, `pop3 ${kind}`);
  }
  t.equal(protocolKit('smtp').refusal('routing-loop').toString('latin1'), '421 4.4.6 Routing loop: this connection was addressed to the proxy itself\r\n');
});

/**
 * A small authoritative DNS server on loopback (npm dns2, UDP on an ephemeral port) that
 * answers the TXT records a test publishes (DKIM and ARC keys, SPF, DMARC) and NXDOMAIN
 * for anything else (SERVFAIL for the names a test says fail); or, `silent`, that never answers
 * (a DNS outage).
 */
import dns2 from 'dns2';
import type { Test } from 'tap';

export interface TestDns {
  port: number;
  /** "127.0.0.1:<port>", for auth.resolver. */
  address: string;
  /** Publishes (or replaces) the TXT record of `name` (no trailing dot). */
  setTxt(name: string, value: string): void;
  /** Answers SERVFAIL for `name` (a broken authoritative server) until `setTxt` publishes it again. */
  failName(name: string): void;
  /** Questions received so far (name and type), in order. */
  questions: { name: string; type: number }[];
}

/** RFC 1035 3.3: one character-string holds at most 255 octets. */
const MAX_STRING = 255;
const SERVFAIL = 2;
const NXDOMAIN = 3;

export async function startTestDns(t: Test, options: { silent?: boolean } = {}): Promise<TestDns> {
  const records = new Map<string, string>();
  const failing = new Set<string>();
  const questions: { name: string; type: number }[] = [];
  const { Packet } = dns2;
  const handle: dns2.DnsHandler = (request, send) => {
    const [question] = request.questions;
    if (question === undefined) return;
    questions.push({ name: question.name, type: question.type });
    if (options.silent === true) return;
    const response = Packet.createResponseFromRequest(request);
    const asked = question.name.toLowerCase().replace(/\.$/, '');
    const value = records.get(asked);
    if (failing.has(asked)) {
      response.header.rcode = SERVFAIL;
    } else if (value !== undefined && question.type === Packet.TYPE.TXT) {
      const strings: string[] = [];
      for (let start = 0; start < value.length; start += MAX_STRING) strings.push(value.slice(start, start + MAX_STRING));
      response.answers.push(Object.assign(new Packet.Resource(), { name: question.name, type: Packet.TYPE.TXT, class: Packet.CLASS.IN, ttl: 60, data: strings }));
    } else if (value === undefined) {
      response.header.rcode = NXDOMAIN;
    }
    send(response);
  };
  // UDP only: dns2 never truncates, so no answer here needs TCP (and a second, TCP port could be taken).
  const server = dns2.createServer({ udp: true, handle });
  const { udp: bound } = await server.listen({ udp: { port: 0, address: '127.0.0.1' } });
  if (bound === undefined) throw new Error('the DNS server has no UDP address');
  const port = bound.port;
  t.teardown(() => server.close());
  return {
    port,
    address: `127.0.0.1:${port}`,
    setTxt: (name, value) => {
      failing.delete(name.toLowerCase());
      records.set(name.toLowerCase(), value);
    },
    failName: (name) => failing.add(name.toLowerCase()),
    questions,
  };
}

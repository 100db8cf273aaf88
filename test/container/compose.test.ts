// deploy/docker-compose.sidecar.yml read against policies/sidecar.yaml and the Postfix image it
// builds (no Docker engine runs here): the published port reaches mailmoat's listener, the upstream
// mailmoat relays to is the port the Postfix image listens on inside the shared namespace, the
// signatures volume is the managed clamd's database folder, mailmoat starts only once freshclam is
// healthy, and the stop grace period covers the drain.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';
import { parsePolicyText } from '../../src/config/load.js';

const COMPOSE = 'deploy/docker-compose.sidecar.yml';

interface Service {
  build?: string | { context: string };
  image?: string;
  network_mode?: string;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  entrypoint?: string[];
  environment?: Record<string, string>;
  stop_grace_period?: string;
}

const hostPort = (text: string): { host: string; port: number } => {
  const at = text.lastIndexOf(':');
  return { host: text.slice(0, at), port: Number(text.slice(at + 1)) };
};
const seconds = (text: string): number => Number(/^(\d+)s$/.exec(text)?.[1] ?? NaN);

t.test('the sidecar compose example matches the sidecar policy and a Postfix that accepts mail on the upstream port', async (t) => {
  const compose = parse(await readFile(COMPOSE, 'utf8')) as { services: Record<string, Service>; volumes: Record<string, unknown> };
  const policy = parsePolicyText(await readFile('policies/sidecar.yaml', 'utf8'), 'policies/sidecar.yaml');
  const { postfix, mailmoat, freshclam } = compose.services;
  if (postfix === undefined || mailmoat === undefined || freshclam === undefined) return t.fail('services postfix, mailmoat and freshclam');
  const [listener] = policy.listeners;
  if (listener === undefined) return t.fail('one listener');

  t.equal(mailmoat.network_mode, 'service:postfix', "mailmoat lives in Postfix's network namespace");
  const listen = hostPort(listener.listen);
  t.equal(listen.host, '0.0.0.0', 'the listener accepts what is published into the namespace');
  t.same(postfix.ports, [`25:${listen.port}`], "the host's port 25 is published to mailmoat's listener");
  t.ok(listen.port >= 1024, 'an unprivileged port: the image runs as node');

  // The upstream: Postfix built from deploy/postfix, listening on that port on loopback.
  t.equal(listener.upstream, '127.0.0.1:25');
  const upstream = hostPort(String(listener.upstream));
  t.equal(postfix.build, './postfix');
  const postfixDir = join(dirname(COMPOSE), String(postfix.build));
  const dockerfile = (await readFile(join(postfixDir, 'Dockerfile'), 'utf8')).replace(/^#.*\n/gm, '');
  t.match(dockerfile, new RegExp(`^EXPOSE ${upstream.port}$`, 'm'), 'the Postfix image exposes the upstream port');
  t.match(dockerfile, /apt-get install .*\bpostfix\b/, "Postfix from Debian's package");
  t.match(dockerfile, /'inet_interfaces = loopback-only'/, 'Postfix listens on loopback: reachable only through mailmoat');
  t.notMatch(dockerfile, /permit_mynetworks/, 'every session comes from 127.0.0.1 (mailmoat): no relay by address');
  t.match(dockerfile, /'smtpd_relay_restrictions = reject_unauth_destination'/);
  t.match(dockerfile, /\bpostfix start-fg\b|ENTRYPOINT/, 'Postfix runs in the foreground');
  t.match(await readFile(join(postfixDir, 'entrypoint.sh'), 'utf8'), /exec postfix start-fg/);
  t.ok(postfix.environment?.MAIL_ACCOUNTS, 'the mailboxes Postfix receives mail for are set');

  // Signatures: one volume, freshclam writes it, the managed clamd reads it; mailmoat waits for freshclam.
  t.equal(policy.antivirus.clamd, 'managed');
  const mountOf = (service: Service, target: string): string | undefined => service.volumes?.find((volume) => volume.split(':')[1] === target)?.split(':')[0];
  const signatures = mountOf(mailmoat, policy.antivirus.managed.database_dir);
  t.ok(signatures !== undefined && signatures in compose.volumes, 'the database folder is a named volume');
  t.equal(mountOf(freshclam, policy.antivirus.managed.database_dir), signatures, 'freshclam writes the same volume');
  t.same(mailmoat.depends_on?.freshclam, { condition: 'service_healthy' }, "mailmoat starts after freshclam's first success");
  t.match(freshclam.healthcheck?.test.join(' ') ?? '', /main.*daily|\/var\/lib\/clamav/, 'freshclam is healthy once the signatures are there');
  t.equal(mountOf(mailmoat, '/etc/mailmoat/policy.yaml'), '../policies/sidecar.yaml', 'mailmoat runs the sidecar policy');
  t.equal(mountOf(mailmoat, String(policy.quarantine.dir)), 'quarantine', 'the quarantine outlives the container');
  t.ok(seconds(String(mailmoat.stop_grace_period)) > policy.timeouts.drain_seconds, 'the stop grace period covers the drain');
});

// The pod of deploy/kubernetes/deployment.yaml played on loopback with real processes: Debian's
// clamd run with the ConfigMap's clamd.conf, and `mailmoat start` (two workers) with the
// ConfigMap's policy, each changed only where a pod's paths and ports become a temporary
// folder's and free ports (listener, upstream, admin address, socket, signatures, state). The
// probes the Deployment names then answer as the manifest expects: readiness 200 with clamd
// up, 503 once clamd stops while liveness stays 200 (a restart would not bring clamd back),
// and SIGTERM ends mailmoat with exit 0.
import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse, stringify } from 'yaml';
import { answers } from '../../src/inspect/managed-clamd.js';
import { eicarSignature } from '../../src/demo/samples.js';
import { startMailmoat } from '../helpers/mailmoat-process.js';
import { SmtpSink, freePort } from '../helpers/smtp-sink.js';

const DIR = 'deploy/kubernetes';
/** clamd loads the one-signature test database in well under a second; this only bounds a broken start. */
const CLAMD_START_MS = 30_000;
const CLAMD_POLL_MS = 50;

interface HttpGet { path: string; port: string }
interface Container { name: string; readinessProbe: { httpGet: HttpGet }; livenessProbe: { httpGet: HttpGet } }

function httpStatus(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    }).on('error', reject);
  });
}

t.test("the pod's clamd.conf and policy, run on loopback: the Deployment's probes answer as intended", async (t) => {
  const config = (parse(await readFile(join(DIR, 'configmap.yaml'), 'utf8')) as { data: Record<string, string> }).data;
  const deployment = parse(await readFile(join(DIR, 'deployment.yaml'), 'utf8')) as { spec: { template: { spec: { containers: Container[] } } } };
  const proxy = deployment.spec.template.spec.containers.find((container) => container.name === 'mailmoat');
  if (proxy === undefined || config['policy.yaml'] === undefined || config['clamd.conf'] === undefined) return t.fail('the mailmoat container, policy.yaml and clamd.conf');
  t.equal(proxy.readinessProbe.httpGet.port, proxy.livenessProbe.httpGet.port, 'both probes ask the admin port');

  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-pod-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const folder of ['run', 'db', 'tmp', 'state']) await mkdir(join(dir, folder));
  await writeFile(join(dir, 'db', 'mailmoat-test.ndb'), eicarSignature('Mailmoat.Test.EICAR'));

  // clamd as the sidecar runs it: the ConfigMap's file, its three folders moved into dir.
  const clamdConf = config['clamd.conf']
    .replace(/^LocalSocket \/run\/clamav\//m, `LocalSocket ${join(dir, 'run')}/`)
    .replace(/^DatabaseDirectory .*$/m, `DatabaseDirectory ${join(dir, 'db')}`)
    .replace(/^TemporaryDirectory .*$/m, `TemporaryDirectory ${join(dir, 'tmp')}`);
  const socket = join(dir, 'run', 'clamd.sock');
  t.match(clamdConf, new RegExp(`^LocalSocket ${socket}$`, 'm'), 'the socket moved with its folder');
  await writeFile(join(dir, 'clamd.conf'), clamdConf);
  const clamd = spawn('/usr/sbin/clamd', [`--config-file=${join(dir, 'clamd.conf')}`], { stdio: 'ignore' });
  const clamdExited = once(clamd, 'exit');
  t.teardown(() => clamd.kill('SIGKILL'));
  const deadline = Date.now() + CLAMD_START_MS;
  while (!(await answers(socket))) {
    if (clamd.exitCode !== null || Date.now() > deadline) return t.fail(`clamd did not start with the ConfigMap's clamd.conf (exit ${clamd.exitCode})`);
    await sleep(CLAMD_POLL_MS);
  }

  // mailmoat with the ConfigMap's policy; the listener and the quarantine are the helper's.
  const policy = parse(config['policy.yaml']) as Record<string, Record<string, unknown>>;
  const { listeners: _listeners, quarantine: _quarantine, ...rest } = policy;
  const adminPort = await freePort();
  const largeMessage = { ...((rest.limits?.large_message as object | undefined) ?? {}), state_file: join(dir, 'state', 'large-messages.json') };
  const extra = stringify({
    ...rest,
    antivirus: { ...rest.antivirus, clamd: `unix:${socket}` },
    admin: { ...rest.admin, listen: `127.0.0.1:${adminPort}` },
    limits: { ...rest.limits, large_message: largeMessage },
  });
  t.equal(policy.antivirus?.clamd, 'unix:/run/clamav/clamd.sock', 'the policy names the sidecar socket that was moved');
  const sink = await SmtpSink.start(t);
  const running = await startMailmoat(t, sink.port, extra);
  await running.logged('admin listener: /metrics, /healthz, status page on /');

  const readiness = proxy.readinessProbe.httpGet.path;
  const liveness = proxy.livenessProbe.httpGet.path;
  t.equal(await httpStatus(adminPort, readiness), 200, `readiness ${readiness}: ready with clamd answering`);
  t.equal(await httpStatus(adminPort, liveness), 200, `liveness ${liveness}: alive`);

  clamd.kill('SIGTERM');
  await clamdExited;
  t.equal(await httpStatus(adminPort, readiness), 503, 'clamd gone: not ready (the Service stops sending mail here)');
  t.equal(await httpStatus(adminPort, liveness), 200, 'but alive: the kubelet does not restart mailmoat for it');

  running.child.kill('SIGTERM');
  t.equal(await running.exited, 0, 'SIGTERM drains and exits 0');
});

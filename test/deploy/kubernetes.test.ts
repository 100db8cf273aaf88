// deploy/kubernetes/ read as a cluster would: every manifest kustomization.yaml lists is valid
// against the Kubernetes schemas (test/helpers/kubernetes-schema.ts: kubernetes-models, offline,
// unknown fields rejected), and the objects fit together and fit mailmoat: the Services and the
// PodDisruptionBudget select the pods they mean, probes and target ports name container ports,
// mounted ConfigMap keys exist, the policy in the ConfigMap passes mailmoat's own loader and its
// listeners, admin port, clamd socket and writable paths match the pod, and the grace period
// covers the preStop pause plus the policy's drain. Manifests mutated to break them, one
// way each, are shown to be rejected.
import t from 'tap';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { parsePolicyText } from '../../src/config/load.js';
import type { Policy } from '../../src/config/schema.js';
import { DRAIN_GRACE_SECONDS } from '../../src/cluster/serve.js';
import { schemaProblems, type Manifest } from '../helpers/kubernetes-schema.js';

const DIR = 'deploy/kubernetes';
/** os.tmpdir() inside the image (no TMPDIR set): where spool.dir "" spools. */
const CONTAINER_TMPDIR = '/tmp';
/** The keys a kustomization here may use (kustomize's Kustomization has many more: none is needed). */
const KUSTOMIZATION_KEYS = new Set(['apiVersion', 'kind', 'namespace', 'resources', 'images']);

type Obj = Record<string, unknown>;
interface Port { name?: string; containerPort: number }
interface Mount { name: string; mountPath: string; readOnly?: boolean }
interface Probe { httpGet?: { port: number | string }; tcpSocket?: { port: number | string } }
interface Container {
  name: string;
  image: string;
  ports?: Port[];
  volumeMounts?: Mount[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  restartPolicy?: string;
  command?: string[];
  args?: string[];
  lifecycle?: { preStop?: { sleep?: { seconds: number } } };
  securityContext?: { readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean; capabilities?: { drop?: string[] } };
  resources?: { limits?: { cpu?: string; memory?: string } };
}
interface Volume { name: string; configMap?: { name: string; items?: { key: string; path: string }[] }; emptyDir?: Obj }
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  terminationGracePeriodSeconds?: number;
  securityContext?: { runAsNonRoot?: boolean; seccompProfile?: { type: string } };
}
interface Deployment { metadata: { name: string }; spec: { selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } } }
interface Service { metadata: { name: string }; spec: { selector: Record<string, string>; ports: { name?: string; port: number; targetPort: number | string }[] } }
interface Pdb { spec: { selector: { matchLabels: Record<string, string> } } }
interface ConfigMap { metadata: { name: string }; data: Record<string, string> }

async function loadManifests(): Promise<{ manifests: Manifest[]; resources: string[]; kustomization: Obj }> {
  const kustomization = parse(await readFile(join(DIR, 'kustomization.yaml'), 'utf8')) as Obj;
  const resources = (kustomization.resources ?? []) as string[];
  const manifests: Manifest[] = [];
  for (const resource of resources) {
    const documents = parseAllDocuments(await readFile(join(DIR, resource), 'utf8'));
    for (const [index, document] of documents.entries()) {
      if (document.errors.length > 0) throw new Error(`${resource}#${index}: ${document.errors.map((error) => error.message).join('; ')}`);
      manifests.push({ where: `${resource}#${index}`, doc: document.toJS() as Obj });
    }
  }
  return { manifests, resources, kustomization };
}

const ofKind = <T>(manifests: readonly Manifest[], kind: string): T[] => manifests.filter(({ doc }) => doc.kind === kind).map(({ doc }) => doc as unknown as T);
const selects = (selector: Record<string, string>, labels: Record<string, string>): boolean =>
  Object.keys(selector).length > 0 && Object.entries(selector).every(([key, value]) => labels[key] === value);
const portOf = (listen: string): number => Number(listen.slice(listen.lastIndexOf(':') + 1));
const hostOf = (listen: string): string => listen.slice(0, listen.lastIndexOf(':'));
const podContainers = (pod: PodSpec): Container[] => [...(pod.initContainers ?? []), ...pod.containers];
/** Kubernetes quantities as used here: plain numbers, Ki/Mi/Gi. */
const bytesOf = (quantity: string | undefined): number => {
  const match = /^(\d+)(Ki|Mi|Gi)?$/.exec(quantity ?? '');
  const units: Record<string, number> = { '': 1, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 };
  return match === null ? NaN : Number(match[1]) * (units[match[2] ?? ''] ?? NaN);
};
const confValue = (conf: string, key: string): string | undefined => new RegExp(`^${key}\\s+(.+)$`, 'm').exec(conf)?.[1]?.trim();
/** A clamd.conf size: bytes, or with a k/K or m/M suffix (clamd.conf(5)). */
const confBytes = (value: string | undefined): number => {
  const match = /^(\d+)([kKmM])?$/.exec(value ?? '');
  return match === null ? NaN : Number(match[1]) * ({ k: 1024, m: 1024 ** 2 }[(match[2] ?? '').toLowerCase() as 'k' | 'm'] ?? 1);
};

/** The mount (of the given container) whose path holds `path`, the deepest one. */
const mountHolding = (container: Container, path: string): Mount | undefined =>
  (container.volumeMounts ?? [])
    .filter((mount) => path === mount.mountPath || path.startsWith(`${mount.mountPath.replace(/\/$/, '')}/`))
    .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];

/** Everything that must hold between the objects and with mailmoat; [] when it all fits. */
function crossProblems(manifests: readonly Manifest[]): string[] {
  const problems: string[] = [];
  const check = (ok: boolean, problem: string): void => {
    if (!ok) problems.push(problem);
  };
  const deployments = ofKind<Deployment>(manifests, 'Deployment');
  const services = ofKind<Service>(manifests, 'Service');
  const configMaps = ofKind<ConfigMap>(manifests, 'ConfigMap');

  // Every Deployment: its selector, its volumes, its probes.
  for (const deployment of deployments) {
    const name = deployment.metadata.name;
    const pod = deployment.spec.template.spec;
    check(selects(deployment.spec.selector.matchLabels, deployment.spec.template.metadata.labels), `${name}: the selector does not match the pod template's labels`);
    check(pod.securityContext?.runAsNonRoot === true, `${name}: the pod must run as non-root`);
    check(pod.securityContext?.seccompProfile?.type === 'RuntimeDefault', `${name}: the runtime's default seccomp profile`);
    const volumes = new Map((pod.volumes ?? []).map((volume) => [volume.name, volume]));
    for (const volume of volumes.values()) {
      if (volume.configMap === undefined) continue;
      const configMap = configMaps.find((map) => map.metadata.name === volume.configMap?.name);
      check(configMap !== undefined, `${name}: volume ${volume.name} mounts a ConfigMap ${volume.configMap.name} that is not here`);
      for (const item of volume.configMap.items ?? []) check(configMap?.data[item.key] !== undefined, `${name}: volume ${volume.name} mounts key ${item.key}, missing from ConfigMap ${volume.configMap.name}`);
    }
    for (const container of podContainers(pod)) {
      const where = `${name}/${container.name}`;
      for (const mount of container.volumeMounts ?? []) check(volumes.has(mount.name), `${where}: mounts volume ${mount.name}, which the pod does not have`);
      const ports = container.ports ?? [];
      for (const probe of [container.readinessProbe, container.livenessProbe, container.startupProbe]) {
        const port = probe?.httpGet?.port ?? probe?.tcpSocket?.port;
        if (port === undefined) continue;
        check(ports.some((p) => p.name === port || p.containerPort === port), `${where}: a probe asks port ${port}, which is not a container port`);
      }
      const security = container.securityContext;
      check(security?.readOnlyRootFilesystem === true, `${where}: readOnlyRootFilesystem`);
      check(security?.allowPrivilegeEscalation === false, `${where}: allowPrivilegeEscalation false`);
      check(security?.capabilities?.drop?.includes('ALL') === true, `${where}: capabilities dropped (ALL)`);
    }
  }

  // Services and the PodDisruptionBudget select pods, and their target ports are container ports there.
  for (const service of services) {
    const targets = deployments.filter((deployment) => selects(service.spec.selector, deployment.spec.template.metadata.labels));
    check(targets.length === 1, `Service ${service.metadata.name}: its selector matches ${targets.length} Deployments, not 1`);
    for (const port of service.spec.ports) {
      for (const target of targets) {
        const ports = podContainers(target.spec.template.spec).flatMap((container) => container.ports ?? []);
        check(ports.some((p) => p.name === port.targetPort || p.containerPort === port.targetPort), `Service ${service.metadata.name}: port ${port.port} targets ${port.targetPort}, not a container port of ${target.metadata.name}`);
      }
    }
  }
  const mailmoat = deployments.find((deployment) => deployment.metadata.name === 'mailmoat');
  if (mailmoat === undefined) return [...problems, 'no Deployment mailmoat'];
  for (const pdb of ofKind<Pdb>(manifests, 'PodDisruptionBudget')) check(selects(pdb.spec.selector.matchLabels, mailmoat.spec.template.metadata.labels), "the PodDisruptionBudget's selector does not match mailmoat's pods");
  check(ofKind<Pdb>(manifests, 'PodDisruptionBudget').length === 1, 'one PodDisruptionBudget');

  // The policy in the ConfigMap, loaded as `mailmoat start` would load it.
  const pod = mailmoat.spec.template.spec;
  const proxy = pod.containers.find((container) => container.name === 'mailmoat');
  const clamd = pod.initContainers?.find((container) => container.name === 'clamd');
  const configVolume = pod.volumes?.find((volume) => volume.configMap !== undefined);
  const config = configMaps.find((map) => map.metadata.name === configVolume?.configMap?.name);
  if (proxy === undefined || clamd === undefined || config === undefined) return [...problems, 'the mailmoat pod needs containers mailmoat and clamd (a sidecar) and its ConfigMap'];
  const configMount = proxy.volumeMounts?.find((mount) => mount.name === configVolume?.name)?.mountPath ?? '';
  const policyArg = proxy.args?.[proxy.args.indexOf('--policy') + 1] ?? '';
  const policyKey = configVolume?.configMap?.items?.find((item) => posix.join(configMount, item.path) === policyArg)?.key;
  check(policyKey !== undefined, `mailmoat's --policy ${policyArg} is not a key of the mounted ConfigMap`);
  let policy: Readonly<Policy>;
  try {
    policy = parsePolicyText(config.data[policyKey ?? ''] ?? '', `${config.metadata.name}:${policyKey}`, dirname(policyArg));
  } catch (error) {
    return [...problems, `the policy: ${(error as Error).message}`];
  }
  check(policy.listeners.length > 0, 'the policy has listeners');
  const proxyPorts = proxy.ports ?? [];
  for (const listener of policy.listeners) {
    const port = proxyPorts.find((p) => p.containerPort === portOf(listener.listen));
    check(port !== undefined, `listener ${listener.listen}: not a container port of mailmoat`);
    check(['0.0.0.0', '[::]'].includes(hostOf(listener.listen)), `listener ${listener.listen}: must accept on every address of the pod`);
    check(services.some((service) => service.spec.ports.some((p) => p.targetPort === port?.name || p.targetPort === port?.containerPort)), `listener ${listener.listen}: no Service port reaches it`);
  }
  const admin = proxyPorts.find((p) => p.name === proxy.readinessProbe?.httpGet?.port || p.containerPort === proxy.readinessProbe?.httpGet?.port);
  check(policy.admin.listen !== '' && admin?.containerPort === portOf(policy.admin.listen), `the readiness probe's port is not admin.listen (${policy.admin.listen})`);
  check(hostOf(policy.admin.listen) === '0.0.0.0', 'admin.listen must accept on the pod address: the kubelet probes it there');
  check(services.every((service) => service.spec.ports.every((p) => p.targetPort !== admin?.name && p.targetPort !== admin?.containerPort)), 'the admin port must not be published by a Service');

  // Drain: the grace period covers the preStop pause, timeouts.drain_seconds and the forced exit after it.
  const preStop = proxy.lifecycle?.preStop?.sleep?.seconds ?? 0;
  const grace = pod.terminationGracePeriodSeconds ?? 30;
  check(grace > preStop + policy.timeouts.drain_seconds + DRAIN_GRACE_SECONDS, `terminationGracePeriodSeconds ${grace} <= preStop ${preStop} + drain_seconds ${policy.timeouts.drain_seconds} + ${DRAIN_GRACE_SECONDS}`);
  check(clamd.restartPolicy === 'Always', 'clamd is a native sidecar (restartPolicy Always): it stops after mailmoat has drained');

  // Memory and CPU: every serving process may grow to max_process_memory_bytes; workers match the CPU limit.
  const memory = bytesOf(proxy.resources?.limits?.memory);
  check(policy.workers > 0, 'workers must be set: node:cluster counts the node, not the CPU limit');
  check(memory >= (policy.workers + 1) * policy.limits.max_process_memory_bytes, `memory limit ${proxy.resources?.limits?.memory} < (workers + 1) x max_process_memory_bytes`);
  check(Number(proxy.resources?.limits?.cpu) === policy.workers, 'workers equal the CPU limit');

  // The read-only root: what mailmoat writes lies on a writable volume.
  const writable = [policy.quarantine.dir, policy.limits.large_message.state_file, policy.spool.dir === '' ? CONTAINER_TMPDIR : policy.spool.dir];
  for (const path of writable) {
    const mount = mountHolding(proxy, path);
    check(mount !== undefined && mount.readOnly !== true, `mailmoat writes ${path}: no writable volume holds it`);
  }

  // clamd: the socket the policy names is where clamd.conf puts it, on a volume both containers mount.
  const clamdConfPath = clamd.command?.find((arg) => arg.startsWith('--config-file='))?.slice('--config-file='.length) ?? '';
  const clamdConf = config.data[configVolume?.configMap?.items?.find((item) => posix.join(configMount, item.path) === clamdConfPath)?.key ?? ''] ?? '';
  const address = Array.isArray(policy.antivirus.clamd) ? policy.antivirus.clamd[0] : policy.antivirus.clamd;
  check(address === `unix:${confValue(clamdConf, 'LocalSocket')}`, `antivirus.clamd ${address} is not clamd.conf's LocalSocket`);
  const socketDir = posix.dirname(String(address).slice('unix:'.length));
  check(mountHolding(proxy, socketDir)?.name !== undefined && mountHolding(proxy, socketDir)?.name === mountHolding(clamd, socketDir)?.name, 'the clamd socket folder is one volume in both containers');
  check(confValue(clamdConf, 'AlertEncrypted') === 'yes' && confValue(clamdConf, 'AlertExceedsMax') === 'yes', 'clamd.conf: AlertEncrypted and AlertExceedsMax yes (else limits read as clean)');
  check(confBytes(confValue(clamdConf, 'StreamMaxLength')) >= policy.antivirus.max_scan_bytes, 'clamd.conf: StreamMaxLength below antivirus.max_scan_bytes');
  const database = confValue(clamdConf, 'DatabaseDirectory') ?? '';
  const freshclam = pod.initContainers?.find((container) => container.name === 'freshclam');
  check(freshclam !== undefined && mountHolding(freshclam, database)?.name === mountHolding(clamd, database)?.name && mountHolding(freshclam, database)?.readOnly !== true, 'freshclam writes the signature volume clamd reads');

  // The shared state: once the policy names a Redis, it is the Redis Service here.
  const backend = ((parse(config.data[policyKey ?? ''] ?? '') as Obj).state as Obj | undefined)?.backend;
  if (typeof backend === 'string' && backend.startsWith('redis://')) {
    const url = new URL(backend);
    const redis = services.find((service) => [service.metadata.name, `${service.metadata.name}.mailmoat.svc.cluster.local`].includes(url.hostname));
    check(redis?.spec.ports.some((p) => p.port === Number(url.port || 6379)) === true, `state.backend ${backend} is not a Service here`);
  }
  return problems;
}

t.test('the kustomization lists every manifest in deploy/kubernetes, with known keys only', async (t) => {
  const { resources, kustomization } = await loadManifests();
  const files = (await readdir(DIR)).filter((file) => file.endsWith('.yaml') && file !== 'kustomization.yaml');
  t.same([...resources].sort(), files.sort(), 'resources: every manifest file, no other');
  t.same(Object.keys(kustomization).filter((key) => !KUSTOMIZATION_KEYS.has(key)), [], 'no unknown kustomization key');
  t.equal(kustomization.apiVersion, 'kustomize.config.k8s.io/v1beta1');
  t.equal(kustomization.kind, 'Kustomization');
  const images = kustomization.images as { name: string }[];
  t.same(images.map((image) => image.name), ['mailmoat'], 'the image the Dockerfile builds is renamed to the registry one');
});

t.test('every manifest is valid against its kind’s schema, strictly, and they fit together and fit the policy', async (t) => {
  const { manifests } = await loadManifests();
  t.same(
    manifests.map(({ doc }) => `${String(doc.kind)}/${String((doc.metadata as Obj).name)}`).sort(),
    ['ConfigMap/mailmoat-config', 'Deployment/mailmoat', 'Deployment/redis', 'Namespace/mailmoat', 'PodDisruptionBudget/mailmoat', 'Service/mailmoat', 'Service/redis'],
  );
  t.same(schemaProblems(manifests), [], 'the Kubernetes schemas');
  t.same(crossProblems(manifests), [], 'the cross-references and mailmoat');
});

t.test('a mutated manifest is rejected, by the schema and by each cross-check', async (t) => {
  const { manifests } = await loadManifests();
  const mutated = (edit: (docs: Record<string, Obj>) => void): Manifest[] => {
    const copy = structuredClone(manifests);
    edit(Object.fromEntries(copy.map(({ doc }) => [`${String(doc.kind)}/${String((doc.metadata as Obj).name)}`, doc])));
    return copy;
  };
  const pod = (docs: Record<string, Obj>): PodSpec => (docs['Deployment/mailmoat'] as unknown as Deployment).spec.template.spec;
  const proxy = (docs: Record<string, Obj>): Container => pod(docs).containers[0] as Container;

  const unknownField = schemaProblems(mutated((docs) => Object.assign(proxy(docs), { readinesProbe: { httpGet: { path: '/healthz', port: 'admin' } } })));
  t.match(unknownField, [/deployment\.yaml#0: spec\.template\.spec\.containers\.readinesProbe: .*'"?readinesProbe"?' does not exist/], 'a misspelt field is an unknown field');
  const wrongType = schemaProblems(mutated((docs) => Object.assign((proxy(docs).ports as Port[])[0] as Port, { containerPort: 'smtp' })));
  t.ok(wrongType.some((problem) => /containerPort must be integer/.test(problem)), 'a port that is not a number');
  const missing = schemaProblems(mutated((docs) => delete ((docs['Deployment/mailmoat'] as unknown as Deployment).spec.template.spec as Partial<PodSpec>).containers));
  t.ok(missing.some((problem) => /containers/.test(problem)), 'a pod without containers');
  t.match(schemaProblems(mutated((docs) => Object.assign(docs['Service/mailmoat'] as Obj, { kind: 'Ingress' }))), [/no schema for v1\/Ingress/], 'an unknown kind');

  const editConfig = (docs: Record<string, Obj>, key: string, from: string, to: string): void => {
    const data = (docs['ConfigMap/mailmoat-config'] as unknown as ConfigMap).data;
    t.ok(data[key]?.includes(from), `${key} has ${from}`);
    data[key] = String(data[key]).replace(from, to);
  };
  const editPolicy = (docs: Record<string, Obj>, from: string, to: string): void => editConfig(docs, 'policy.yaml', from, to);
  const cases: [string, (docs: Record<string, Obj>) => void, RegExp][] = [
    ['a Service selecting no pod', (docs) => Object.assign((docs['Service/mailmoat'] as unknown as Service).spec.selector, { 'app.kubernetes.io/component': 'gateway' }), /Service mailmoat: its selector matches 0/],
    ['a PodDisruptionBudget selecting no pod', (docs) => Object.assign((docs['PodDisruptionBudget/mailmoat'] as unknown as Pdb).spec.selector.matchLabels, { 'app.kubernetes.io/name': 'mailmot' }), /PodDisruptionBudget's selector/],
    ['a Service port to no container port', (docs) => Object.assign((docs['Service/mailmoat'] as unknown as Service).spec.ports[0] as Obj, { targetPort: 'smtps' }), /targets smtps/],
    ['a probe on a port the container lacks', (docs) => Object.assign(proxy(docs).readinessProbe?.httpGet as Obj, { port: 'metrics' }), /probe asks port metrics/],
    ['a ConfigMap key that is not there', (docs) => delete (docs['ConfigMap/mailmoat-config'] as unknown as ConfigMap).data['clamd.conf'], /mounts key clamd\.conf/],
    ['a grace period shorter than the drain', (docs) => Object.assign(pod(docs), { terminationGracePeriodSeconds: 40 }), /terminationGracePeriodSeconds 40 <= preStop 5 \+ drain_seconds 30 \+ 10/],
    ['a policy key mailmoat does not know', (docs) => {
      const data = (docs['ConfigMap/mailmoat-config'] as unknown as ConfigMap).data;
      data['policy.yaml'] = `${data['policy.yaml']}\nworkerz: 2\n`;
    }, /the policy: .*workerz/s],
    ['a policy listener on a port the pod does not open', (docs) => editPolicy(docs, 'listen: 0.0.0.0:2525', 'listen: 0.0.0.0:2526'), /listener 0\.0\.0\.0:2526: not a container port/],
    ['a clamd socket elsewhere than the policy says', (docs) => editConfig(docs, 'clamd.conf', 'LocalSocket /run/clamav/clamd.sock', 'LocalSocket /tmp/clamd.sock'), /is not clamd\.conf's LocalSocket/],
    ['a writable root needed for the quarantine', (docs) => {
      proxy(docs).volumeMounts = proxy(docs).volumeMounts?.filter((mount) => mount.mountPath !== '/var/lib/mailmoat');
    }, /mailmoat writes \/var\/lib\/mailmoat\/quarantine/],
    ['a container with a writable root', (docs) => Object.assign(proxy(docs).securityContext as Obj, { readOnlyRootFilesystem: false }), /mailmoat\/mailmoat: readOnlyRootFilesystem/],
    ['a memory limit below the workers', (docs) => Object.assign(proxy(docs).resources?.limits as Obj, { memory: '512Mi' }), /memory limit 512Mi </],
    ['more workers than the CPU limit', (docs) => editPolicy(docs, 'workers: 2', 'workers: 4'), /workers equal the CPU limit/],
    ['the admin port published', (docs) => (docs['Service/mailmoat'] as unknown as Service).spec.ports.push({ name: 'admin', port: 9925, targetPort: 'admin' }), /admin port must not be published/],
    ['admin.listen on loopback, out of the probes\' reach', (docs) => editPolicy(docs, 'listen: 0.0.0.0:9925', 'listen: 127.0.0.1:9925'), /admin\.listen must accept on the pod address/],
    ['clamd reporting encrypted archives clean', (docs) => editConfig(docs, 'clamd.conf', 'AlertEncrypted yes', 'AlertEncrypted no'), /AlertEncrypted and AlertExceedsMax yes/],
    ['a clamd stream limit below max_scan_bytes', (docs) => editConfig(docs, 'clamd.conf', 'StreamMaxLength 26214400', 'StreamMaxLength 10M'), /StreamMaxLength below/],
    ['freshclam unable to write the signatures', (docs) => {
      const freshclam = pod(docs).initContainers?.find((container) => container.name === 'freshclam');
      const signatures = freshclam?.volumeMounts?.find((mount) => mount.mountPath === '/var/lib/clamav');
      if (signatures !== undefined) signatures.readOnly = true;
    }, /freshclam writes the signature volume/],
    ['clamd as an ordinary init container', (docs) => delete pod(docs).initContainers?.find((container) => container.name === 'clamd')?.restartPolicy, /native sidecar/],
    ['a Redis pod without a seccomp profile', (docs) => delete (docs['Deployment/redis'] as unknown as Deployment).spec.template.spec.securityContext?.seccompProfile, /redis: the runtime's default seccomp profile/],
    ['a Redis backend that is not the Service here', (docs) => {
      const data = (docs['ConfigMap/mailmoat-config'] as unknown as ConfigMap).data;
      data['policy.yaml'] = (data['policy.yaml'] ?? '').replace('backend: redis://redis:6379/0', 'backend: redis://cache:6379/0');
    }, /state\.backend redis:\/\/cache:6379\/0 is not a Service here/],
  ];
  for (const [name, edit, expected] of cases) {
    const problems = crossProblems(mutated(edit));
    t.ok(problems.some((problem) => expected.test(problem)), name, { problems });
  }
});

/**
 * The mailmoat container image, built and run for real without a Docker engine: buildah builds
 * the Dockerfile (chroot isolation, docker format so the HEALTHCHECK is kept) on the local
 * Debian + Node 24 base that scripts/container-base.sh makes, and runs the image's filesystem
 * with `buildah run --isolation chroot` (host network and host PIDs), since `podman run` is
 * refused by the sandbox (setrlimit). The same for deploy/postfix, the compose example's upstream.
 * The image is tagged with a hash of everything it is
 * built from, so a second pass of the suite in the same CI run (or an unchanged tree later)
 * reuses it instead of building again.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import type { Test } from 'tap';

const run = promisify(execFile);
const REPO = process.cwd();
export const IMAGE_REPOSITORY = 'localhost/mailmoat';
export const POSTFIX_REPOSITORY = 'localhost/mailmoat-postfix';
/** What the image is built from (the Dockerfile's COPY sources, and the base's recipe). */
const BUILD_INPUTS = ['Dockerfile', '.dockerignore', 'package.json', 'package-lock.json', 'tsconfig.json', 'patches', 'native', 'src', 'bench', 'policies', 'scripts/container-base.sh'];
/** Generated on the host by npm ci, ignored by the build (.dockerignore). */
const NOT_INPUTS = new Set(['native/build']);
/** The CA bundle that lets npm reach the registry from inside the build behind a TLS-inspecting proxy. */
const BUILD_CA = '/etc/ssl/certs/ca-certificates.crt';
const OUTPUT_TAIL_CHARS = 4000;

export interface BuiltImage {
  tag: string;
  base: string;
  /** Seconds the build took, or undefined when an image built from the same inputs was reused. */
  buildSeconds: number | undefined;
}

async function inputFiles(path: string): Promise<string[]> {
  const full = join(REPO, path);
  if (!existsSync(full) || NOT_INPUTS.has(path)) return [];
  if (!(await stat(full)).isDirectory()) return [path];
  const names = (await readdir(full)).sort();
  return (await Promise.all(names.map((name) => inputFiles(relative(REPO, join(full, name)))))).flat();
}

async function inputsHash(inputs: string[]): Promise<string> {
  const hash = createHash('sha256');
  for (const file of (await Promise.all(inputs.map(inputFiles))).flat()) hash.update(`${file}\0`).update(await readFile(join(REPO, file))).update('\0');
  return hash.digest('hex').slice(0, 16);
}

/** Runs a command, its output collected; a failure names the command and the end of its output. */
export function runLogged(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(output) : reject(new Error(`${command} ${args.join(' ')} exited ${code}:\n${output.slice(-OUTPUT_TAIL_CHARS)}`))));
  });
}

export async function imageExists(tag: string): Promise<boolean> {
  return run('buildah', ['inspect', '--type', 'image', tag]).then(
    () => true,
    () => false,
  );
}

/**
 * Builds the image of a build context (the repository, or deploy/postfix) unless one built from
 * the same inputs exists; older test images of that repository are removed.
 */
export async function buildImage(repository = IMAGE_REPOSITORY, context = '.'): Promise<BuiltImage> {
  const inputs = context === '.' ? BUILD_INPUTS : [context, 'scripts/container-base.sh'];
  const tag = `${repository}:test-${await inputsHash(inputs)}`;
  const base = (await runLogged('bash', ['scripts/container-base.sh'])).trim().split('\n').pop() ?? '';
  if (await imageExists(tag)) return { tag, base, buildSeconds: undefined };
  const started = Date.now();
  const secret = existsSync(BUILD_CA) ? ['--secret', `id=build_ca,src=${BUILD_CA}`] : [];
  await runLogged('buildah', ['build', '--isolation', 'chroot', '--format', 'docker', '--layers=false', ...secret, '--build-arg', `BASE=${base}`, '--tag', tag, context]);
  const buildSeconds = (Date.now() - started) / 1000;
  const { stdout } = await run('buildah', ['images', '--format', '{{.Name}}:{{.Tag}}']);
  for (const old of stdout.split('\n').filter((name) => name.startsWith(`${repository}:test-`) && name !== tag)) await run('buildah', ['rmi', old]).catch(() => undefined);
  return { tag, base, buildSeconds };
}

export interface ImageConfig {
  entrypoint: string[];
  cmd: string[];
  user: string;
  healthcheck: string[] | undefined;
  /** Uncompressed size of each layer, in bytes, base layers first. */
  layerBytes: number[];
}

export async function inspectImage(tag: string): Promise<ImageConfig> {
  const { stdout } = await run('buildah', ['inspect', '--type', 'image', tag], { maxBuffer: 64 * 1024 * 1024 });
  const info = JSON.parse(stdout) as { Manifest: string; Docker: { config: { Entrypoint?: string[]; Cmd?: string[]; User?: string; Healthcheck?: { Test?: string[] } } } };
  const manifest = JSON.parse(info.Manifest) as { layers: { size: number }[] };
  const config = info.Docker.config;
  return { entrypoint: config.Entrypoint ?? [], cmd: config.Cmd ?? [], user: config.User ?? '', healthcheck: config.Healthcheck?.Test, layerBytes: manifest.layers.map((layer) => layer.size) };
}

/**
 * A working container made from the image (its filesystem), removed at teardown. Its VOLUMEs are
 * dropped from its configuration: `buildah run` would mount a fresh container-local folder on
 * each of them over a --volume bind of the same path, where `docker run -v` binds the host's.
 */
export async function workingContainer(t: Test, tag: string): Promise<string> {
  const { stdout } = await run('buildah', ['from', '--pull=never', tag]);
  const name = stdout.trim();
  t.teardown(() => run('buildah', ['rm', name]).then(() => undefined));
  const { stdout: volumes } = await run('buildah', ['inspect', '--type', 'container', '--format', '{{range $path, $_ := .Docker.Config.Volumes}}{{$path}}\n{{end}}', name]);
  const drop = volumes.split('\n').filter((path) => path !== '').flatMap((path) => ['--volume', `${path}-`]);
  if (drop.length > 0) await run('buildah', ['config', ...drop, name]);
  return name;
}

export interface ContainerProcess {
  child: ChildProcess;
  /** Resolves with the first `count` JSON log lines with this msg (waits for them; rejects if the process exits first). */
  logged(message: string, count?: number): Promise<Record<string, unknown>[]>;
  log(): Record<string, unknown>[];
  /** Resolves with the first match of the pattern in the output (waits for it; rejects if the process exits first). */
  printed(pattern: RegExp): Promise<RegExpMatchArray>;
  output(): string;
  exited: Promise<number | null>;
}

/** `buildah run` of a command in the container as `user`, host network, with bind mounts (host:container[:ro]). */
export function runInContainer(t: Test, container: string, user: string, mounts: string[], command: string[]): ContainerProcess {
  const args = ['run', '--isolation', 'chroot', '--network', 'host', '--user', user, ...mounts.flatMap((mount) => ['--volume', mount]), container, '--', ...command];
  // Its own process group: buildah, the chroot runtime and every process of the container share it.
  const child = spawn('buildah', args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const log: Record<string, unknown>[] = [];
  let output = '';
  let partial = '';
  let wake: () => void = () => undefined;
  let changed = new Promise<void>((resolve) => (wake = resolve));
  const notify = (): void => {
    const woken = wake;
    changed = new Promise<void>((resolve) => (wake = resolve));
    woken();
  };
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (line.startsWith('{')) log.push(JSON.parse(line) as Record<string, unknown>);
    notify();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    notify();
  });
  void exited.then(notify);
  t.teardown(() => {
    if (child.exitCode === null && child.pid !== undefined) signal(-child.pid, 'SIGKILL');
  });
  const logged = async (message: string, count = 1): Promise<Record<string, unknown>[]> => {
    for (;;) {
      const found = log.filter((line) => line.msg === message);
      if (found.length >= count) return found.slice(0, count);
      if (child.exitCode !== null) throw new Error(`exited (${child.exitCode}) before logging "${message}" ${count} times:\n${output.slice(-OUTPUT_TAIL_CHARS)}`);
      await changed;
    }
  };
  const printed = async (pattern: RegExp): Promise<RegExpMatchArray> => {
    for (;;) {
      const found = pattern.exec(output);
      if (found !== null) return found;
      if (child.exitCode !== null) throw new Error(`exited (${child.exitCode}) before printing ${pattern}:\n${output.slice(-OUTPUT_TAIL_CHARS)}`);
      await changed;
    }
  };
  return { child, logged, printed, log: () => log, output: () => output, exited };
}

/** Sends a signal to a process (or -group) of the container (chroot isolation shares the host's PIDs), if still there. */
export function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}

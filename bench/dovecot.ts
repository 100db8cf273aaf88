/**
 * A real Dovecot POP3 server (Debian dovecot-pop3d) on a free loopback port, for
 * the benches and the end-to-end tests. Everything lives in a fresh temporary
 * folder: a dovecot.conf written here (so /etc/dovecot is never read), base and
 * state dirs, the log, a passwd-file with PLAIN passwords, and a Maildir per user
 * seeded with the given message bytes. Plaintext auth without TLS is allowed
 * (USER/PASS, AUTH PLAIN, AUTH LOGIN), and a wrong password is refused in about
 * half a second, without Dovecot's growing per-IP penalty. As root, Dovecot uses
 * its packaged `dovecot` and `dovenull` users and the mail belongs to
 * nobody:nogroup; as another user, every Dovecot process runs as that user.
 *
 * With the `tls` option (a certificate and key, e.g. from bench/test-pki.ts),
 * Dovecot also speaks TLS (TLS 1.2 or later): STLS is offered on the plain port,
 * and an implicit-TLS pop3s listener runs on a second free port. Plaintext auth
 * stays allowed before STLS. Dovecot's config process reads the certificate and
 * key (`ssl_cert = <file`) as the user that started Dovecot, so the key may be
 * 0600; the login processes get their contents from it. Without the option, TLS
 * is off (`ssl = no`) and there is no pop3s listener.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './ports.js';

const DOVECOT = '/usr/sbin/dovecot';
/** nobody:nogroup on Debian: the mail owner when Dovecot runs as root (it refuses UID 0 for mail). */
const ROOT_MAIL_UID = 65534;
const ROOT_MAIL_GID = 65534;

export interface DovecotUser {
  name: string;
  password: string;
  messages: Buffer[];
}

export interface DovecotTls {
  /** PEM certificate (chain) Dovecot presents. */
  certFile: string;
  /** Its private key (unencrypted PEM). */
  keyFile: string;
}

export interface DovecotOptions {
  /** Offer STLS on the plain port and listen for implicit TLS (pop3s) on a second one. */
  tls?: DovecotTls;
}

export interface RunningDovecot {
  /** Plain POP3 port on 127.0.0.1 (STLS offered when started with `tls`). */
  port: number;
  /** Implicit-TLS POP3 port on 127.0.0.1, when started with `tls`. */
  pop3sPort?: number;
  /** Its temporary folder. */
  dir: string;
  /** Number of messages currently in the user's Maildir (cur + new), to check DELE+QUIT effects. */
  messageCount(user: string): Promise<number>;
  /** Kills Dovecot (and its children), waits for its exit, removes the temporary folder. */
  stop(): Promise<void>;
}

export async function startDovecot(users: DovecotUser[], options: DovecotOptions = {}): Promise<RunningDovecot> {
  if (!existsSync(DOVECOT)) throw new Error('dovecot is not installed: apt-get install dovecot-pop3d');
  const { tls } = options;
  for (const file of tls ? [tls.certFile, tls.keyFile] : []) if (!existsSync(file)) throw new Error(`no such file: ${file}`);
  for (const user of users) {
    if (!/^[A-Za-z0-9._-]+$/.test(user.name)) throw new Error(`unusable Dovecot user name: ${user.name}`);
    if (/[:\r\n]/.test(user.password)) throw new Error(`a passwd-file password cannot hold ':' or line breaks (user ${user.name})`);
  }
  const asRoot = process.getuid?.() === 0;
  const mailUid = asRoot ? ROOT_MAIL_UID : userInfo().uid;
  const mailGid = asRoot ? ROOT_MAIL_GID : userInfo().gid;
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-dovecot-'));
  // Dovecot's unprivileged processes (auth as dovecot, mail as nobody) must reach the passwd-file and homes.
  await chmod(dir, 0o755);
  const home = (user: string): string => join(dir, 'home', user);
  const maildir = (user: string): string => join(home(user), 'Maildir');

  for (const user of users) await seedMaildir(maildir(user.name), user.messages);
  if (asRoot) await chownTree(join(dir, 'home'), mailUid, mailGid);
  await writeFile(join(dir, 'passwd'), users.map((user) => `${user.name}:{PLAIN}${user.password}::::::\n`).join(''));

  const port = await freePort();
  const pop3sPort = tls ? await freePort() : undefined;
  const config = join(dir, 'dovecot.conf');
  await writeFile(config, dovecotConf({ dir, port, mailUid, mailGid, asRoot, tls, pop3sPort }));
  const logFile = join(dir, 'dovecot.log');
  // Its own process group, so stop() also reaches children the master left behind.
  const child = spawn(DOVECOT, ['-F', '-c', config], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  const collect = (chunk: Buffer): void => void (output += chunk.toString());
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const killGroup = (signal: NodeJS.Signals): void => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, signal);
    } catch {
      // the group is already gone
    }
  };
  // A test runner that exits without teardown must not leave Dovecot running.
  const killOnExit = (): void => killGroup('SIGKILL');
  process.once('exit', killOnExit);

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      process.off('exit', killOnExit);
      if (child.exitCode === null && child.signalCode === null) {
        killGroup('SIGTERM');
        await Promise.race([exited, sleep(5000, undefined, { ref: false })]);
      }
      killGroup('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    })());

  const deadline = Date.now() + 10000;
  while (!(await greets(port))) {
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      const log = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
      await stop();
      const why = child.exitCode !== null || child.signalCode !== null ? `exited (${child.exitCode ?? child.signalCode})` : 'did not greet within 10 s';
      throw new Error(`dovecot on 127.0.0.1:${port} ${why}: ${(output + log).slice(-3000)}`);
    }
    await sleep(50);
  }

  return {
    port,
    ...(pop3sPort === undefined ? {} : { pop3sPort }),
    dir,
    async messageCount(user: string): Promise<number> {
      const counts = await Promise.all(['cur', 'new'].map(async (sub) => (await readdir(join(maildir(user), sub))).filter((name) => !name.startsWith('.')).length));
      return counts.reduce((sum, count) => sum + count, 0);
    },
    stop,
  };
}

interface ConfOptions {
  dir: string;
  port: number;
  mailUid: number;
  mailGid: number;
  asRoot: boolean;
  tls: DovecotTls | undefined;
  pop3sPort: number | undefined;
}

function dovecotConf({ dir, port, mailUid, mailGid, asRoot, tls, pop3sPort }: ConfOptions): string {
  const me = userInfo().username;
  // Not root: every service runs as this user, and no service chroots (that needs root).
  const unprivileged = asRoot
    ? []
    : [
        `default_internal_user = ${me}`,
        `default_internal_group = ${groupName(mailGid)}`,
        `default_login_user = ${me}`,
        ...['pop3-login', 'anvil', 'ipc', 'old-stats'].flatMap((service) => [`service ${service} {`, '  chroot =', '}']),
      ];
  return [
    `base_dir = ${join(dir, 'run')}`,
    `state_dir = ${join(dir, 'state')}`,
    `instance_name = mailmoat-${port}`,
    `log_path = ${join(dir, 'dovecot.log')}`,
    'protocols = pop3',
    'listen = 127.0.0.1',
    ...(tls ? ['ssl = yes', `ssl_cert = <${tls.certFile}`, `ssl_key = <${tls.keyFile}`, 'ssl_min_protocol = TLSv1.2'] : ['ssl = no']),
    // Also with TLS: USER/PASS and AUTH before STLS stay allowed.
    'disable_plaintext_auth = no',
    'auth_mechanisms = plain login',
    // Wrong passwords fail fast (Dovecot still answers them in ~0.5 s): no 2 s failure delay, and
    // no per-IP penalty (auth disables it when it cannot reach anvil's penalty socket).
    'auth_failure_delay = 0',
    'service anvil {',
    '  unix_listener anvil-auth-penalty {',
    '    mode = 0',
    '  }',
    '}',
    `first_valid_uid = ${mailUid}`,
    `mail_location = maildir:~/Maildir`,
    'mail_fsync = never',
    'pop3_uidl_format = %08Xu%08Xv',
    'passdb {',
    '  driver = passwd-file',
    `  args = scheme=PLAIN ${join(dir, 'passwd')}`,
    '}',
    'userdb {',
    '  driver = static',
    `  args = uid=${mailUid} gid=${mailGid} home=${join(dir, 'home')}/%u`,
    '}',
    'service pop3-login {',
    '  inet_listener pop3 {',
    '    address = 127.0.0.1',
    `    port = ${port}`,
    '  }',
    '  inet_listener pop3s {',
    ...(tls && pop3sPort !== undefined ? ['    address = 127.0.0.1', `    port = ${pop3sPort}`, '    ssl = yes'] : ['    port = 0']),
    '  }',
    '}',
    ...unprivileged,
    '',
  ].join('\n');
}

/** The Maildir with every message in cur/ as seen (`:2,S`), names ordered so Dovecot numbers them as given. */
async function seedMaildir(maildir: string, messages: Buffer[]): Promise<void> {
  for (const sub of ['cur', 'new', 'tmp']) await mkdir(join(maildir, sub), { recursive: true });
  const base = 1700000000;
  await Promise.all(messages.map((message, index) => writeFile(join(maildir, 'cur', `${base + index}.M${index}P${process.pid}.mailmoat:2,S`), message)));
}

async function chownTree(path: string, uid: number, gid: number): Promise<void> {
  await chown(path, uid, gid);
  for (const entry of await readdir(path, { withFileTypes: true })) {
    const child = join(path, entry.name);
    if (entry.isDirectory()) await chownTree(child, uid, gid);
    else await chown(child, uid, gid);
  }
}

/** The name of a group (Dovecot's *_group settings want names), from /etc/group. */
function groupName(gid: number): string {
  for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
    const [name, , id] = line.split(':');
    if (name && Number(id) === gid) return name;
  }
  throw new Error(`no /etc/group entry for gid ${gid}`);
}

/** Whether a POP3 server on the port answers a connection with its `+OK` greeting. */
function greets(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let greeting = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2000, () => done(false));
    socket.on('data', (chunk: Buffer) => {
      greeting += chunk.toString('latin1');
      if (greeting.includes('\n')) done(greeting.startsWith('+OK'));
    });
    socket.once('error', () => done(false));
    socket.once('close', () => done(greeting.startsWith('+OK')));
  });
}

/**
 * A real Postfix MTA (master + smtpd + qmgr + smtp, Debian's postfix package) on
 * loopback, as a TLS-capable upstream for the tests and benches. It accepts mail
 * from 127.0.0.0/8 for any domain on a free port, offers STARTTLS there
 * (`smtpd_tls_security_level = may` with the given certificate and key), and with
 * `smtps: true` also listens for implicit TLS (`smtpd_tls_wrappermode = yes`) on a
 * second free port. Every accepted message is relayed at once, without TLS and
 * without DNS, to `relayhost = [127.0.0.1]:relayPort`, normally a Postfix
 * smtp-sink the caller started (test/helpers/smtp-sink.ts).
 *
 * Everything lives in a fresh temporary folder; /etc/postfix is never written (only
 * the packaged postfix-files and dynamicmaps.cf are read from it):
 *
 *   DIR/etc/main.cf, master.cf   config_directory (`postfix -c DIR/etc`)
 *   DIR/queue                    queue_directory, root-owned; Postfix creates the
 *                                queue folders (owner postfix, group postdrop) and
 *                                keeps master.pid and its sockets in it
 *   DIR/data                     data_directory (master.lock, prng_exch), created
 *                                by Postfix, owned by postfix
 *   DIR/maillog                  maillog_file, written by the postlog service
 *
 * How a private instance runs: as root, `postfix -c DIR/etc start-fg` needs
 * neither `alternate_config_directories` nor `multi_instance_directories` (those
 * bless extra config directories for set-gid programs such as postdrop, and for
 * postmulti), nor an /etc/postfix/main.cf (the dev box has none). On start,
 * postfix-script runs `post-install create-missing`, which creates the queue and
 * data folders with the right owners and, because the config directory is not the
 * default one, leaves the shared files (/etc/postfix, /usr/lib/postfix) alone: no
 * separate `postfix check` or `set-permissions` is needed. Pitfalls: the config
 * directory must not contain the queue (postfix-script would warn that every queue
 * folder is "not owned by root"); the data folder must not pre-exist as root
 * (master takes master.lock there as postfix); `maillog_file` must match
 * `maillog_file_prefixes`, else postfix exits 1 saying so only to syslog or a
 * terminal; no service may chroot; and a main.cf modified less than a second ago
 * makes every Postfix program wait (300 ms naps) until it is older, so the files
 * are backdated, which brings a start down from ~2.4 s to ~0.4 s. Each instance
 * has its own queue (pid/master.pid) and data folder (master.lock), so several run
 * side by side.
 *
 * `start-fg` keeps master in the foreground under postfix-script, our child:
 * master makes itself a session leader, so stop() sends `postfix -c DIR abort`
 * (SIGTERM to master, which passes it on to its children; `stop` is the same
 * signal followed by a one-second polling loop), waits for master to exit and
 * for no live process to be left in its session (SIGKILL after 10 s), and removes
 * the folder. Postfix refuses to start its master as non-root.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './ports.js';

const POSTFIX = '/usr/sbin/postfix';
const START_TIMEOUT_MS = 20000;
const STOP_TIMEOUT_MS = 10000;

export interface PostfixOptions {
  /** PEM certificate (chain) smtpd presents. */
  certFile: string;
  /** Its private key; read by smtpd as root before it drops privileges, so 0600 is fine. */
  keyFile: string;
  /** Port of the loopback SMTP server every accepted message is relayed to (no TLS on that hop). */
  relayPort: number;
  /** Also listen for implicit TLS (SMTPS) on a second port. */
  smtps?: boolean;
  /** Hand every message received on `port` to a content filter (mailmoat), as the README's recipes do. */
  filter?: PostfixFilter;
}

/**
 * A content filter on 127.0.0.1:`port` that gives the mail back to a reinjection smtpd on
 * 127.0.0.1:`reinjectPort` (no filter there; from there it is relayed as usual).
 * `content_filter`: after the queue, by the `scan` smtp transport (FILTER_README);
 * `smtpd_proxy_filter`: before the queue, smtpd relays each command of the session to the
 * filter as it comes (SMTPD_PROXY_README).
 */
export interface PostfixFilter {
  mode: 'content_filter' | 'smtpd_proxy_filter';
  port: number;
  reinjectPort: number;
}

/** master.cf lines of a filter recipe: the README quotes them (test/e2e/postfix-filter.test.ts checks that). */
export function filterMasterCf(filter: PostfixFilter, port: number): string[] {
  const reinject = [
    `127.0.0.1:${filter.reinjectPort} inet n - n - - smtpd`,
    '  -o syslog_name=postfix/reinject',
    '  -o content_filter=',
    '  -o smtpd_proxy_filter=',
    '  -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters',
    '  -o smtpd_helo_restrictions=',
    '  -o smtpd_client_restrictions=',
    '  -o smtpd_sender_restrictions=',
    '  -o smtpd_recipient_restrictions=permit_mynetworks,reject',
    '  -o mynetworks=127.0.0.0/8',
    '  -o smtpd_authorized_xforward_hosts=127.0.0.0/8',
  ];
  if (filter.mode === 'smtpd_proxy_filter') {
    return [`127.0.0.1:${port} inet n - n - 20 smtpd`, `  -o smtpd_proxy_filter=127.0.0.1:${filter.port}`, ...reinject];
  }
  return [
    `127.0.0.1:${port} inet n - n - - smtpd`,
    `  -o content_filter=scan:[127.0.0.1]:${filter.port}`,
    'scan unix - - n - 10 smtp',
    '  -o syslog_name=postfix/scan',
    '  -o smtp_send_xforward_command=yes',
    '  -o disable_mime_output_conversion=yes',
    ...reinject,
  ];
}

export interface RunningPostfix {
  /** SMTP port on 127.0.0.1, STARTTLS offered. */
  port: number;
  /** Implicit-TLS port on 127.0.0.1, when `smtps` was asked for. */
  smtpsPort: number | undefined;
  /** Its temporary folder (config in etc/, queue in queue/, log in maillog). */
  dir: string;
  /** Stops Postfix, waits until master and its children have exited, removes the folder. */
  stop(): Promise<void>;
}

export async function startPostfix(options: PostfixOptions): Promise<RunningPostfix> {
  if (!existsSync(POSTFIX)) throw new Error('postfix is not installed: apt-get install postfix');
  if (process.getuid?.() !== 0) throw new Error('a private Postfix instance needs root (its master refuses to run otherwise)');
  for (const file of [options.certFile, options.keyFile]) if (!existsSync(file)) throw new Error(`no such file: ${file}`);

  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-postfix-'));
  await chmod(dir, 0o755);
  const configDir = join(dir, 'etc');
  const queueDir = join(dir, 'queue');
  const maillog = join(dir, 'maillog');
  await mkdir(configDir, { mode: 0o755 });
  await mkdir(queueDir, { mode: 0o755 });
  const port = await freePort();
  const smtpsPort = options.smtps ? await freePort() : undefined;
  await writeFile(join(configDir, 'main.cf'), mainCf({ dir, ...options }));
  await writeFile(join(configDir, 'master.cf'), masterCf(port, smtpsPort, options.filter));
  // Postfix waits (in 300 ms naps) until main.cf is more than a second old, in case it is still
  // being written, and every start runs several Postfix programs: backdating saves ~2 s.
  const past = new Date(Date.now() - 60000);
  for (const file of ['main.cf', 'master.cf']) await utimes(join(configDir, file), past, past);

  const child = spawn(POSTFIX, ['-c', configDir, 'start-fg'], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  const collect = (chunk: Buffer): void => void (output += chunk.toString());
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const running = (): boolean => child.exitCode === null && child.signalCode === null;

  let masterPid: number | undefined;
  const findMaster = (): number | undefined => (masterPid ??= readMasterPid(queueDir));
  // A test runner that exits without teardown must not leave Postfix running.
  const killOnExit = (): void => {
    const pid = findMaster();
    for (const target of [pid === undefined ? undefined : -pid, child.pid === undefined ? undefined : -child.pid]) {
      try {
        if (target !== undefined) process.kill(target, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  process.once('exit', killOnExit);

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      process.off('exit', killOnExit);
      const pid = findMaster();
      if (running() || (pid !== undefined && alive(pid))) {
        try {
          await execFileText(POSTFIX, ['-c', configDir, 'abort']);
        } catch {
          // Not (yet) running as far as postfix-script can tell: signal master ourselves.
          if (pid !== undefined && alive(pid)) process.kill(pid, 'SIGTERM');
        }
      }
      const deadline = Date.now() + STOP_TIMEOUT_MS;
      const done = (): boolean => !running() && (pid === undefined || sessionMembers(pid).length === 0);
      while (!done() && Date.now() < deadline) await Promise.race([exited, sleep(50)]);
      if (!done()) {
        killOnExit();
        while (!done() && Date.now() < deadline + STOP_TIMEOUT_MS) await Promise.race([exited, sleep(50)]);
      }
      await rm(dir, { recursive: true, force: true });
    })());

  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await greets(port))) {
    if (!running() || Date.now() > deadline) {
      const why = running() ? `did not greet within ${START_TIMEOUT_MS / 1000} s` : `exited (${child.exitCode ?? child.signalCode})`;
      const log = await readFile(maillog, 'utf8').catch(() => '');
      await stop();
      throw new Error(`postfix on 127.0.0.1:${port} ${why}: ${(output + log).slice(-3000)}`);
    }
    await sleep(50);
  }
  findMaster();
  return { port, smtpsPort, dir, stop };
}

interface ConfOptions extends PostfixOptions {
  dir: string;
}

function mainCf({ dir, certFile, keyFile, relayPort }: ConfOptions): string {
  return [
    'compatibility_level = 3.6',
    `queue_directory = ${join(dir, 'queue')}`,
    `data_directory = ${join(dir, 'data')}`,
    `maillog_file = ${join(dir, 'maillog')}`,
    `maillog_file_prefixes = ${dir}`,
    'inet_protocols = ipv4',
    'inet_interfaces = 127.0.0.1',
    'myhostname = localhost',
    'mydomain = localdomain',
    'myorigin = $myhostname',
    // Nothing is delivered here: every domain is relayed for loopback clients, to the sink.
    'mydestination =',
    'relay_domains =',
    'local_recipient_maps =',
    'local_transport = error:local delivery is disabled',
    'alias_maps =',
    'alias_database =',
    'biff = no',
    'append_dot_mydomain = no',
    'mynetworks = 127.0.0.0/8',
    'smtpd_relay_restrictions = permit_mynetworks, reject',
    `relayhost = [127.0.0.1]:${relayPort}`,
    // No DNS anywhere: the relayhost is a bracketed address, clients are not looked up.
    'disable_dns_lookups = yes',
    'smtp_dns_support_level = disabled',
    'smtp_host_lookup = native',
    'smtpd_peername_lookup = no',
    // TLS towards clients (STARTTLS on the plain port, wrapper mode on the smtps one); none to the sink.
    'smtpd_tls_security_level = may',
    `smtpd_tls_cert_file = ${certFile}`,
    `smtpd_tls_key_file = ${keyFile}`,
    'smtpd_tls_protocols = >=TLSv1.2',
    'smtpd_tls_mandatory_protocols = >=TLSv1.2',
    'smtpd_tls_loglevel = 1',            // logs "TLS connection established": the tests read it
    'smtp_tls_security_level = none',
    // A fast queue: qmgr delivers new mail at once, a failed delivery is retried within seconds,
    // and smtpd never slows a client down because the queue is busy.
    'in_flow_delay = 0',
    'queue_run_delay = 1s',
    'minimal_backoff_time = 1s',
    'maximal_backoff_time = 2s',
    'maximal_queue_lifetime = 1h',
    'bounce_queue_lifetime = 1h',
    '',
  ].join('\n');
}

/** Every service without chroot (the temporary folder is no chroot jail); as master.cf(5) columns. */
function masterCf(port: number, smtpsPort: number | undefined, filter: PostfixFilter | undefined): string {
  const services = [
    ...(filter === undefined ? [`127.0.0.1:${port} inet n - n - - smtpd`] : filterMasterCf(filter, port)),
    ...(smtpsPort === undefined ? [] : [`127.0.0.1:${smtpsPort} inet n - n - - smtpd`, '  -o syslog_name=postfix/smtps', '  -o smtpd_tls_wrappermode=yes', '  -o smtpd_tls_security_level=encrypt']),
    'pickup unix n - n 60 1 pickup',
    'cleanup unix n - n - 0 cleanup',
    'qmgr unix n - n 300 1 qmgr',
    'tlsmgr unix - - n 1000? 1 tlsmgr',
    'rewrite unix - - n - - trivial-rewrite',
    'bounce unix - - n - 0 bounce',
    'defer unix - - n - 0 bounce',
    'trace unix - - n - 0 bounce',
    'verify unix - - n - 1 verify',
    'flush unix n - n 1000? 0 flush',
    'proxymap unix - - n - - proxymap',
    'smtp unix - - n - - smtp',
    'relay unix - - n - - smtp',
    'showq unix n - n - - showq',
    'error unix - - n - - error',
    'retry unix - - n - - error',
    'discard unix - - n - - discard',
    'anvil unix - - n - 1 anvil',
    'scache unix - - n - 1 scache',
    'postlog unix-dgram n - n - 1 postlogd',
  ];
  return `${services.join('\n')}\n`;
}

function execFileText(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 10000 }, (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stdout}${stderr}`)) : resolve(stdout)));
  });
}

function readMasterPid(queueDir: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(join(queueDir, 'pid', 'master.pid'), 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** The state letter and session id of a process, from /proc/PID/stat (undefined once it is reaped). */
function procStat(pid: string | number): { state: string; session: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After "(comm)", which may hold spaces: state ppid pgrp session ...
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0] ?? '', session: Number(fields[3]) };
  } catch {
    return undefined;
  }
}

/** Running (not zombie) processes: an exited master's children wait as zombies until init reaps them. */
function alive(pid: number): boolean {
  const stat = procStat(pid);
  return stat !== undefined && stat.state !== 'Z' && stat.state !== 'X';
}

/** Live processes in master's session: master itself and every Postfix daemon it started. */
function sessionMembers(session: number): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((name) => {
      const stat = procStat(name);
      return stat !== undefined && stat.session === session && stat.state !== 'Z' && stat.state !== 'X';
    })
    .map(Number);
}

/** Whether an SMTP server on the port answers a connection with a 220 greeting (then QUITs politely). */
function greets(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let greeting = '';
    let settled = false;
    const done = (ok: boolean): void => {
      if (settled) return;
      settled = true;
      if (ok) socket.end('QUIT\r\n');
      else socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2000, () => {
      done(false);
      socket.destroy();
    });
    socket.on('data', (chunk: Buffer) => {
      greeting += chunk.toString('latin1');
      if (greeting.includes('\n')) done(/^220[ -]/.test(greeting));
    });
    socket.on('close', () => done(false));
    socket.on('error', () => done(false));
  });
}

/**
 * The policy file's schema: every key, its default and its unit. Types are
 * inferred from it. Every object is strict, so an unknown or misspelt key is an
 * error (load.ts names its path and suggests the nearest valid key).
 * Key names are a public interface: keep them.
 */
import { isIP } from 'node:net';
import { z } from 'zod';

/** "host:port" or "[v6]:port"; the host may be a name. */
const HOST_PORT = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+|\d{1,3}(?:\.\d{1,3}){3})):(\d{1,5})$/;

export interface HostPort {
  host: string;
  port: number;
}

export function parseHostPort(text: string): HostPort | undefined {
  const match = HOST_PORT.exec(text);
  if (!match) return undefined;
  const port = Number(match[3]);
  if (port > 65535) return undefined;
  const host = match[1] ?? match[2] ?? '';
  if (match[1] !== undefined && isIP(host) !== 6) return undefined;
  return { host, port };
}

const hostPort = z.string().refine((text) => parseHostPort(text) !== undefined, {
  message: 'expected host:port, for example 127.0.0.1:25 or [::1]:25',
});

const cidr = z.string().refine(
  (text) => {
    const [address, bits, extra] = text.split('/');
    const family = isIP(address ?? '');
    if (family === 0 || extra !== undefined) return false;
    if (bits === undefined) return true;
    const prefix = Number(bits);
    return /^\d+$/.test(bits) && prefix <= (family === 4 ? 32 : 128);
  },
  { message: 'expected an address or CIDR range, for example 10.0.0.0/8' },
);

/** What happens to a part that cannot be inspected: strip it, pass it (with a warning header), or refuse the message. */
const unscannableAction = z.enum(['strip', 'pass', 'tempfail', 'reject']).default('strip');

/** A duration such as 30d, 12h, 90m or 45s. */
const DURATION = /^(\d{1,6})([smhd])$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

export function durationMs(text: string): number | undefined {
  const match = DURATION.exec(text);
  if (match === null) return undefined;
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}

const duration = (fallback: string) =>
  z
    .string()
    .refine((text) => durationMs(text) !== undefined, { message: 'expected a duration such as 30d, 12h, 90m or 45s' })
    .default(fallback);

const seconds = (fallback: number) => z.number().positive().max(86_400).default(fallback);
const bytes = (fallback: number) => z.number().int().positive().default(fallback);

export const listenerSchema = z
  .strictObject({
    protocol: z.enum(['smtp', 'pop3']),
    listen: hostPort,
    /**
     * host:port of the real server; `original-destination`: where the connection was going before
     * iptables REDIRECT sent it here (SO_ORIGINAL_DST); or (POP3) `from-username`: `USER alice#pop.example.com[:port]`.
     */
    upstream: z.union([hostPort, z.literal('original-destination'), z.literal('from-username')]),
    /** STARTTLS / STLS: relayed and spliced uninspected, refused, or answered by mailmoat. Default: intercept with a CA, else strip. */
    starttls: z.enum(['passthrough', 'strip', 'intercept']).optional(),
    /** implicit: TLS from the first byte on both legs (ports 465, 995; RFC 8314). */
    tls: z.enum(['none', 'implicit']).default('none'),
    /** The name on the certificate presented when the client sends no SNI (default: the upstream's host). */
    tls_name: z.string().min(1).max(253).optional(),
    /** true: every connection begins with a PROXY protocol v1/v2 header (a load balancer's), whose client address counts. */
    proxy_protocol: z.boolean().default(false),
  })
  .refine((listener) => listener.upstream !== 'from-username' || listener.protocol === 'pop3', {
    message: 'upstream: from-username is only for pop3 listeners',
    path: ['upstream'],
  });

export const policySchema = z
  .strictObject({
  listeners: z.array(listenerSchema).default([]),
  networks: z
    .strictObject({
      internal: z.array(cidr).default(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16']),
    })
    .prefault({}),
  inspect: z
    .strictObject({
      smtp: z.enum(['inbound', 'outbound', 'all', 'none']).default('inbound'),
      pop3: z.boolean().default(true),
      executables: z
        .strictObject({
          action: z.enum(['strip', 'sanitize']).default('strip'),
          list: z.string().default(''),
          rename_suffix: z.string().regex(/^\.[A-Za-z0-9]{1,10}$/, 'expected a dot and 1 to 10 letters or digits, for example .TxT').default('.TxT'),
        })
        .prefault({}),
      allow: z
        .strictObject({
          senders: z.array(z.string().min(1)).default([]),
          recipients: z.array(z.string().min(1)).default([]),
        })
        .prefault({}),
      subject_tag: z.string().max(100).default(''),
      notice: z
        .string()
        .min(1)
        .default('mailmoat removed the attachment "{filename}" from this message: {reason}. Ask your administrator if you need it.'),
      mark_headers: z.boolean().default(true),
      unscannable: z
        .strictObject({
          encrypted: unscannableAction,
          limits: unscannableAction,
          corrupt: unscannableAction,
          partial: unscannableAction,
          /** Containers (archives, compressed files, Office documents) that break a bound or cannot be opened, one key per reason. */
          too_deep: unscannableAction,
          too_many_members: unscannableAction,
          too_large: unscannableAction,
          bomb: unscannableAction,
          timeout: unscannableAction,
          unsupported: unscannableAction,
        })
        .prefault({}),
      containers: z
        .strictObject({
          /** All containers of one part together (archive tools are killed then): unscannable (timeout). */
          max_seconds: seconds(20),
        })
        .prefault({}),
      office: z
        .strictObject({
          /** VBA macros in a document (OOXML vbaProject.bin, OLE Macros / _VBA_PROJECT_CUR / VBA storages). */
          macros: unscannableAction,
          /** Embedded packages (OLE Package objects, Ole10Native): a file the reader opens with a double-click. */
          embedded: unscannableAction,
        })
        .prefault({}),
    })
    .prefault({}),
  antivirus: z
    .strictObject({
      clamd: z
        .union([
          z.string().regex(/^(off|managed|unix:\/.+|tcp:\/\/.+:\d{1,5})$/, 'expected "off", "managed", unix:/path or tcp://host:port'),
          z.array(z.string().regex(/^(unix:\/.+|tcp:\/\/.+:\d{1,5})$/, 'expected unix:/path or tcp://host:port')).min(1),
        ])
        .default('off'),
      managed: z
        .strictObject({
          database_dir: z.string().min(1).default('/var/lib/clamav'),
        })
        .prefault({}),
      infected: z.enum(['strip', 'reject']).default('strip'),
      failure: z.enum(['tempfail', 'pass']).default('tempfail'),
      scan_timeout_seconds: seconds(120),
      max_scan_bytes: bytes(25 * 1024 * 1024),
      concurrency: z.number().int().positive().max(64).default(4),
      /** What goes to clamd: each decoded part and the raw message (a second reading), or only one of them. */
      scan: z.enum(['parts-and-message', 'parts', 'message']).default('parts-and-message'),
    })
    .prefault({}),
  smtp: z
    .strictObject({
      bare_line_endings: z.enum(['normalize', 'reject']).default('normalize'),
      /** Peers (a Postfix content filter) whose XFORWARD is believed: the forwarded client decides direction, limits and logs. */
      xforward_from: z.array(cidr).default([]),
    })
    .prefault({}),
  tls: z
    .strictObject({
      ca_cert: z.string().default(''),
      ca_key: z.string().default(''),
      upstream_ca: z.string().default(''),
      upstream_verify: z.boolean().default(true),
      leaf_validity_hours: z.number().positive().max(24 * 398).default(24),
      handshake_seconds: seconds(30),
    })
    .prefault({}),
  alerts: z
    .strictObject({
      to: z.array(z.string().email()).default([]),
      /** "" = mailmoat@<this host's name>. */
      from: z.union([z.literal(''), z.string().email()]).default(''),
      /** host:port the notices are submitted to; "" = the upstream of the first SMTP listener. */
      via: z.union([z.literal(''), hostPort]).default(''),
      batch_seconds: seconds(60),
      max_per_hour: z.number().int().positive().default(20),
      notify_recipients: z.boolean().default(false),
      notify_sender: z.boolean().default(false),
    })
    .prefault({}),
  quarantine: z
    .strictObject({
      enabled: z.boolean().default(true),
      dir: z.string().min(1).default('/var/lib/mailmoat/quarantine'),
      keep_for: duration('30d'),
    })
    .prefault({}),
  pop3: z
    .strictObject({
      /** Hosts (wildcards) a `USER name#host[:port]` login may reach; empty = the form is refused. */
      upstream_hosts: z.array(z.string().min(1)).default([]),
      /** Ports that form may name (the default is 110). */
      upstream_ports: z.array(z.number().int().min(1).max(65535)).default([110]),
      keepalive_seconds: seconds(10),
      idle_seconds: seconds(600),
    })
    .prefault({}),
  limits: z
    .strictObject({
      max_command_line_bytes: bytes(4096),
      max_unknown_commands: z.number().int().positive().default(10),
      /** Concurrent sessions per listener (per worker), then 421 4.7.0. */
      max_sessions: z.number().int().positive().default(1000),
      max_sessions_per_address: z.number().int().positive().default(20),
      /** New connections from one address within a minute, then 421 4.7.0. */
      max_connections_per_address_per_minute: z.number().int().positive().default(120),
      /** Trusted peers exempt from the two per-address limits above (a content filter's Postfix on loopback). */
      exempt: z.array(cidr).default([]),
      /** Per-address limits count an IPv6 client by this prefix (one /64 is one host's); IPv4-mapped IPv6 counts as IPv4. */
      ipv6_client_prefix_bits: z.number().int().min(1).max(128).default(64),
      /** Inside DATA, a sender slower than this (averaged over 30 s) is cut off with 421 4.4.2 (slowloris). */
      min_data_bytes_per_second: z.number().int().min(0).default(256),
      /** Header lines of a message: more is refused (SMTP 554 5.6.0) or warned about (POP3). Mailtraq's 150. */
      max_header_lines: z.number().int().positive().default(150),
      /** Resident memory of one serving process; over it a new DATA gets 451 4.3.1 instead of growing. 0 = off. */
      max_process_memory_bytes: z.number().int().min(0).default(1024 * 1024 * 1024),
      /** Large Message Safety (Mailtraq): cut off, remember, refuse the same transaction again. */
      large_message: z
        .strictObject({
          /** Bytes; 0 = off. */
          abort_over: z.number().int().min(0).default(0),
          remember_for: duration('24h'),
          /** Envelope senders (wildcards) never cut off. */
          exceptions: z.array(z.string().min(1)).default([]),
          state_file: z.string().min(1).default('/var/lib/mailmoat/large-messages.json'),
        })
        .prefault({}),
      max_message_bytes: bytes(50 * 1024 * 1024),
      max_mime_parts: z.number().int().positive().default(500),
      max_mime_depth: z.number().int().positive().default(20),
      max_mime_header_bytes: bytes(64 * 1024),
      max_archive_bytes: bytes(25 * 1024 * 1024),
      max_attached_message_bytes: bytes(25 * 1024 * 1024),
      max_archive_depth: z.number().int().positive().default(8),
      max_archive_members: z.number().int().positive().default(3000),
      max_archive_expanded_bytes: bytes(1024 * 1024 * 1024),
      max_archive_expansion_ratio: z.number().positive().default(250),
    })
    .prefault({}),
  timeouts: z
    .strictObject({
      upstream_connect_seconds: seconds(30),
      /** A listener with proxy_protocol: the whole PROXY header must arrive within this. */
      proxy_header_seconds: seconds(10),
      greeting_seconds: seconds(300),
      command_seconds: seconds(300),
      data_seconds: seconds(180),
      upstream_reply_seconds: seconds(300),
      final_reply_seconds: seconds(600),
      upstream_keepalive_seconds: seconds(60),
      /** SIGTERM: how long sessions may finish before they are closed with 421 / -ERR. */
      drain_seconds: seconds(30),
    })
    .prefault({}),
  spool: z
    .strictObject({
      dir: z.string().default(''),
      memory_threshold_bytes: bytes(1024 * 1024),
    })
    .prefault({}),
  admin: z
    .strictObject({
      /** host:port of the metrics, health and status page listener; "" = off. */
      listen: z.union([z.literal(''), hostPort]).default('127.0.0.1:9925'),
      /** Host header names the admin listener answers besides IP literals and localhost (DNS rebinding). */
      allowed_hosts: z.array(z.string().regex(/^[A-Za-z0-9.-]+$/, 'expected a host name')).default([]),
    })
    .prefault({}),
  /** Serving processes (node:cluster); 0 = one per core; 1 = no cluster. */
  workers: z.number().int().min(0).max(64).default(0),
  recycle_after: z
    .strictObject({
      /** A worker is replaced after this many sessions (0 = never), */
      sessions: z.number().int().min(0).default(0),
      /** or after this many hours (0 = never); its sessions finish first. */
      hours: z.number().min(0).max(24 * 365).default(0),
    })
    .prefault({}),
  auth: z
    .strictObject({
      /** The authserv-id of the Authentication-Results mailmoat writes (RFC 8601 2.5); "" = this host's name. */
      authserv_id: z.string().regex(/^[A-Za-z0-9.-]*$/, 'expected a host name, for example mailmoat.example.org').default(''),
      /** "ip" or "ip:port" of the DNS server for DKIM, SPF, DMARC and ARC lookups; "" = the system's. */
      resolver: z
        .string()
        .refine((text) => text === '' || isIP(text) !== 0 || (parseHostPort(text) !== undefined && isIP(parseHostPort(text)?.host ?? '') !== 0), {
          message: 'expected an IP address, optionally with a port, for example 127.0.0.1:53',
        })
        .default(''),
      /** All DNS lookups of one message together; past it they are temperror and the message goes on. */
      dns_budget_ms: z.number().int().positive().max(60_000).default(3000),
      /** DNS answers are kept this long for later messages (a fixed cap: node gives no TTL); 0 = not kept. */
      dns_cache_seconds: z.number().int().min(0).max(86_400).default(300),
      /** Verify and seal outbound mail too (off: the sender's own signature is what receivers check). */
      seal_outbound: z.boolean().default(false),
      /** Clean mail gets one Authentication-Results too (forged ones with our authserv-id removed); off: clean mail stays byte for byte. */
      results_on_every_message: z.boolean().default(false),
      /** The ARC sealing key (RFC 8617); all three set = rewritten mail is verified and sealed, none = off. */
      arc: z
        .strictObject({
          domain: z.string().regex(/^[A-Za-z0-9.-]*$/, 'expected a domain name').default(''),
          selector: z.string().regex(/^[A-Za-z0-9._-]*$/, 'expected a DNS label, for example mailmoat2026').default(''),
          private_key: z.string().default(''),
        })
        .prefault({})
        .refine((arc) => [arc.domain, arc.selector, arc.private_key].every((value) => value === '') || [arc.domain, arc.selector, arc.private_key].every((value) => value !== ''), {
          message: 'auth.arc.domain, selector and private_key go together (mailmoat arc keygen makes the key)',
        }),
    })
    .prefault({}),
  /** A fleet of gateways (README "Fleet"): where limits, Large Message Safety keys, alert batches and the quarantine index live. */
  state: z
    .strictObject({
      /** "local" = each node alone (files and memory); redis://host:port[/db] = shared by every node using it. */
      backend: z.union([z.literal('local'), z.string().regex(/^redis:\/\/[^/:\s]+:\d{1,5}(\/\d{1,2})?$/, 'expected local or redis://host:port[/db]')]).default('local'),
      /** This node's name in the shared state (quarantine owner); "" = this host's name. */
      node_id: z.string().regex(/^[A-Za-z0-9._-]*$/, 'expected letters, digits, dot, dash or underscore').default(''),
      /** Each call to the backend; slower or down = the per-node fallback for that call. */
      timeout_ms: z.number().int().positive().max(10_000).default(250),
      /** A node renews its sessions' leases; a crashed node's sessions stop counting after this. */
      session_lease_seconds: seconds(60),
      /** How other nodes reach this node's admin listener for quarantined bytes; "" = http://<admin.listen>. */
      admin_url: z.union([z.literal(''), z.string().url()]).default(''),
      /** A file holding the token every node's admin listener asks for quarantined bytes; "" = not served. */
      admin_token_file: z.string().default(''),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    })
    .prefault({}),
  })
  .superRefine((policy, context) => {
    const hasCa = policy.tls.ca_cert !== '' && policy.tls.ca_key !== '';
    if ((policy.tls.ca_cert === '') !== (policy.tls.ca_key === '')) {
      context.addIssue({ code: 'custom', path: ['tls'], message: 'tls.ca_cert and tls.ca_key go together (mailmoat ca init --out DIR makes both)' });
    }
    policy.listeners.forEach((listener, index) => {
      if (!hasCa && (listener.starttls === 'intercept' || listener.tls === 'implicit')) {
        context.addIssue({ code: 'custom', path: ['listeners', index], message: `${listener.tls === 'implicit' ? 'tls: implicit' : 'starttls: intercept'} needs tls.ca_cert and tls.ca_key` });
      }
    });
  });

export type Policy = z.infer<typeof policySchema>;
export type ListenerPolicy = z.infer<typeof listenerSchema>;

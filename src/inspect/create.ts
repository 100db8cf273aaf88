/**
 * Builds the inspector a policy describes: reads the executable list (the shipped
 * policies/executables.txt unless `inspect.executables.list` names another) and
 * hands in a spool factory for rewritten messages.
 */
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import type { Policy } from '../config/schema.js';
import { Spool } from '../capture/spool.js';
import { DEFAULT_EXECUTABLE_LIST } from '../package-root.js';
import { parseExecutableList } from './filename.js';
import { MailInspector } from './inspector.js';
import { ClamdClient, ClamdFailover, parseClamdAddress, type ClamdAddress } from './clamd.js';
import { ManagedClamd } from './managed-clamd.js';
import { createAuthenticator } from '../auth/create.js';

export interface CreateOptions {
  /** Where clamd is, for `antivirus.clamd: managed` (default /usr/sbin/clamd). */
  clamdPath?: string;
  /** `antivirus.clamd: managed` in a cluster worker: the supervisor's managed clamd, used instead of starting one. */
  sharedManagedClamd?: ClamdAddress;
  onEvent?: (event: string, detail: string) => void;
}

/** The inspector; with `antivirus.clamd: managed` it owns a clamd process, stopped by `close()`. */
export async function createMailInspector(policy: Readonly<Policy>, options: CreateOptions = {}): Promise<MailInspector> {
  const listPath = policy.inspect.executables.list || DEFAULT_EXECUTABLE_LIST;
  let listText: string;
  try {
    listText = await readFile(listPath, 'utf8');
  } catch (error) {
    throw new Error(`cannot read the executable list ${listPath}: ${(error as Error).message}`);
  }
  const authenticator = await createAuthenticator(policy);
  const managed =
    policy.antivirus.clamd === 'managed' && options.sharedManagedClamd === undefined
      ? new ManagedClamd({ databaseDir: policy.antivirus.managed.database_dir, streamMaxBytes: policy.antivirus.max_scan_bytes, ...(options.clamdPath === undefined ? {} : { clamdPath: options.clamdPath }), ...(options.onEvent === undefined ? {} : { onEvent: options.onEvent }) })
      : undefined;
  const setting = policy.antivirus.clamd;
  const addresses =
    managed !== undefined
      ? [await managed.start()]
      : setting === 'managed' && options.sharedManagedClamd !== undefined
        ? [options.sharedManagedClamd]
        : (Array.isArray(setting) ? setting : [setting]).flatMap((text) => parseClamdAddress(text) ?? []);
  const timeoutMs = policy.antivirus.scan_timeout_seconds * 1000;
  const scanner =
    addresses.length === 0
      ? undefined
      : {
        client: new ClamdFailover(addresses.map((address) => new ClamdClient(address, timeoutMs))),
        maxBytes: policy.antivirus.max_scan_bytes,
        concurrency: policy.antivirus.concurrency,
        infected: policy.antivirus.infected,
        failure: policy.antivirus.failure,
        scope: policy.antivirus.scan,
      };
  const spoolOptions = { dir: policy.spool.dir || tmpdir(), memoryThresholdBytes: policy.spool.memory_threshold_bytes };
  return new MailInspector(
    {
      executables: { ...parseExecutableList(listText), action: policy.inspect.executables.action, renameSuffix: policy.inspect.executables.rename_suffix },
      allow: policy.inspect.allow,
      ...(scanner === undefined ? {} : { scanner }),
      subjectTag: policy.inspect.subject_tag,
      notice: policy.inspect.notice,
      markHeaders: policy.inspect.mark_headers,
      ...(authenticator === undefined ? {} : { authenticator }),
      unscannable: policy.inspect.unscannable,
      limits: {
        maxParts: policy.limits.max_mime_parts,
        maxDepth: policy.limits.max_mime_depth,
        maxHeaderBytes: policy.limits.max_mime_header_bytes,
        maxArchiveBytes: policy.limits.max_archive_bytes,
        maxAttachedMessageBytes: policy.limits.max_attached_message_bytes,
      },
      archiveLimits: {
        maxDepth: policy.limits.max_archive_depth,
        maxMembers: policy.limits.max_archive_members,
        maxExpandedBytes: policy.limits.max_archive_expanded_bytes,
        maxExpansionRatio: policy.limits.max_archive_expansion_ratio,
        maxNestedBytes: policy.limits.max_archive_bytes,
        maxSeconds: policy.inspect.containers.max_seconds,
      },
      office: policy.inspect.office,
      ...(policy.spool.dir === '' ? {} : { tempDir: policy.spool.dir }),
    },
    () => new Spool(spoolOptions),
    async () => managed?.stop(),
  );
}

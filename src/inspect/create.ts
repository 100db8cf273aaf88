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

export async function createMailInspector(policy: Readonly<Policy>): Promise<MailInspector> {
  const listPath = policy.inspect.executables.list || DEFAULT_EXECUTABLE_LIST;
  let listText: string;
  try {
    listText = await readFile(listPath, 'utf8');
  } catch (error) {
    throw new Error(`cannot read the executable list ${listPath}: ${(error as Error).message}`);
  }
  const spoolOptions = { dir: policy.spool.dir || tmpdir(), memoryThresholdBytes: policy.spool.memory_threshold_bytes };
  return new MailInspector(
    {
      executables: parseExecutableList(listText),
      notice: policy.inspect.notice,
      markHeaders: policy.inspect.mark_headers,
      limits: { maxParts: policy.limits.max_mime_parts, maxDepth: policy.limits.max_mime_depth, maxHeaderBytes: policy.limits.max_mime_header_bytes },
    },
    () => new Spool(spoolOptions),
  );
}

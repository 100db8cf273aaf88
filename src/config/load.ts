/**
 * Reads a policy file (YAML), validates it against the schema once, and freezes
 * the result. Errors name the key path (`limits.max_mesage_bytes`) and, for an
 * unknown key, suggest the nearest valid key at that place.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { closest, distance } from 'fastest-levenshtein';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { policySchema, type Policy } from './schema.js';

export class PolicyError extends Error {
  constructor(
    readonly source: string,
    readonly problems: readonly string[],
  ) {
    super(`invalid policy ${source}:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
  }
}

/** A suggestion is offered only when the misspelling is this close (edits). */
const MAX_SUGGESTION_DISTANCE = 4;

export async function loadPolicyFile(path: string): Promise<Readonly<Policy>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new PolicyError(path, [`cannot read the file: ${(error as Error).message}`]);
  }
  return parsePolicyText(text, path, dirname(resolve(path)));
}

/** `baseDir` anchors relative paths in the policy (the policy file's folder; the working directory otherwise). */
export function parsePolicyText(text: string, source: string, baseDir = process.cwd()): Readonly<Policy> {
  let document: unknown;
  try {
    document = parseYaml(text, { prettyErrors: true }) ?? {};
  } catch (error) {
    const detail = error instanceof YAMLParseError ? error.message : String(error);
    throw new PolicyError(source, [`not valid YAML: ${detail}`]);
  }
  return validatePolicy(document, source, baseDir);
}

export function validatePolicy(document: unknown, source: string, baseDir = process.cwd()): Readonly<Policy> {
  const result = policySchema.safeParse(document);
  if (!result.success) throw new PolicyError(source, result.error.issues.map(describeIssue));
  const policy = result.data;
  if (policy.inspect.executables.list !== '') policy.inspect.executables.list = resolve(baseDir, policy.inspect.executables.list);
  policy.quarantine.dir = resolve(baseDir, policy.quarantine.dir);
  policy.limits.large_message.state_file = resolve(baseDir, policy.limits.large_message.state_file);
  if (policy.state.admin_token_file !== '') policy.state.admin_token_file = resolve(baseDir, policy.state.admin_token_file);
  for (const key of ['ca_cert', 'ca_key', 'upstream_ca'] as const) {
    if (policy.tls[key] !== '') policy.tls[key] = resolve(baseDir, policy.tls[key]);
  }
  if (policy.auth.arc.private_key !== '') policy.auth.arc.private_key = resolve(baseDir, policy.auth.arc.private_key);
  return deepFreeze(policy);
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const where = formatPath(issue.path);
  if (issue.code === 'unrecognized_keys') {
    const known = keysAt(policySchema, issue.path);
    return issue.keys
      .map((key) => {
        const place = where ? `${where}.${key}` : key;
        const nearest = known.length > 0 ? closest(key, known) : undefined;
        const hint = nearest !== undefined && distance(key, nearest) <= MAX_SUGGESTION_DISTANCE ? ` (did you mean "${nearest}"?)` : '';
        return `unknown key "${place}"${hint}; valid keys here: ${known.join(', ')}`;
      })
      .join('\n  - ');
  }
  return `${where || '(top level)'}: ${issue.message}`;
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.map((part, index) => (typeof part === 'number' ? `[${part}]` : `${index === 0 ? '' : '.'}${String(part)}`)).join('');
}

/** The valid keys of the object schema found at `path`. */
function keysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let node = unwrap(schema);
  for (const part of path) {
    if (node instanceof z.ZodArray && typeof part === 'number') node = unwrap(node.element as z.ZodType);
    else if (node instanceof z.ZodObject && typeof part === 'string') {
      const child = (node.shape as Record<string, z.ZodType>)[part];
      if (child === undefined) return [];
      node = unwrap(child);
    } else return [];
  }
  return node instanceof z.ZodObject ? Object.keys(node.shape) : [];
}

function unwrap(schema: z.ZodType): z.ZodType {
  let node = schema;
  while (node instanceof z.ZodDefault || node instanceof z.ZodPrefault || node instanceof z.ZodOptional) {
    node = node.unwrap() as z.ZodType;
  }
  return node;
}

function deepFreeze<T>(value: T): Readonly<T> {
  if (value !== null && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

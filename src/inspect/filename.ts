/**
 * Attachment names: every name a part carries, decoded, normalised, and matched
 * against the administrator's executable list.
 *
 * RFC 2183 (Content-Disposition filename), RFC 2045 (Content-Type name),
 * RFC 2231 (continuations and charsets: filename*0*=utf-8''...), RFC 2047
 * (encoded-words, B and Q, any charset). Evasions handled: duplicated parameters
 * (every reading is kept), bidi controls such as U+202E (removed, and a finding),
 * trailing dots and spaces (Windows drops them), runs of whitespace hiding an
 * extension, double extensions ending in an executable one, CLSID names.
 */
import libmime from 'libmime';
import { wildcardPattern } from '../policy/wildcard.js';

export type NameFindingKind = 'executable' | 'double-extension' | 'hidden-extension' | 'clsid' | 'bidi-control';

export interface NameFinding {
  kind: NameFindingKind;
  filename: string;
  reason: string;
}

/** Unicode bidirectional controls and marks (RLO/LRO/RLE/LRE/PDF, isolates, LRM/RLM/ALM). */
const BIDI_CONTROL_CLASS = '[\\u202a-\\u202e\\u2066-\\u2069\\u200e\\u200f\\u061c]';
const BIDI_CONTROLS = new RegExp(BIDI_CONTROL_CLASS, 'gu');
const HAS_BIDI_CONTROL = new RegExp(BIDI_CONTROL_CLASS, 'u');
/** A run of ten whitespace characters before the last dot pushes the extension out of view. */
const HIDING_WHITESPACE = /\s{10,}/u;
const CLSID_NAME = /\.?\{[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}$/i;
/** Archive and compression suffixes: `report.scr.xz` is an executable in a wrapper. */
const COMPRESSED_SUFFIX = /\.(gz|xz|bz2|z|zip|7z|rar|tar|tgz|lz|lzma|zst|arj|ace|lzh|zoo)$/;
/** Names longer than this are truncated before matching (MailScanner denies 150+; we only cap work). */
const MAX_NAME_CHARS = 1024;

/** Every plain reading of a parameter (`name=` or `filename=`, quoted or not), compiled once; matchAll() copies it. */
const plainParameter = (parameter: string): RegExp => new RegExp(`(?:^|;)\\s*${parameter}\\s*=\\s*("(?:[^"\\\\]|\\\\.)*"|[^;]*)`, 'gi');
const PLAIN_PARAMETERS = { filename: plainParameter('filename'), name: plainParameter('name') };

/** Every filename the given header lines carry (Content-Disposition filename, Content-Type name), decoded. */
export function namesFromHeaders(dispositionLines: readonly string[], typeLines: readonly string[]): string[] {
  const names = new Set<string>();
  const collect = (lines: readonly string[], parameter: keyof typeof PLAIN_PARAMETERS): void => {
    for (const line of lines) {
      const value = line.slice(line.indexOf(':') + 1).replace(/\r?\n[ \t]/g, ' ');
      const parsed = libmime.parseHeaderValue(value).params[parameter];
      if (parsed) names.add(decodeName(parsed));
      // Duplicated parameters: parseHeaderValue keeps one reading; every plain reading is kept too.
      for (const match of value.matchAll(PLAIN_PARAMETERS[parameter])) {
        const raw = (match[1] ?? '').trim().replace(/^"(.*)"$/s, '$1').replace(/\\(.)/g, '$1');
        if (raw) names.add(decodeName(raw));
      }
    }
  };
  collect(dispositionLines, 'filename');
  collect(typeLines, 'name');
  return [...names];
}

function decodeName(raw: string): string {
  try {
    return libmime.decodeWords(raw);
  } catch {
    return raw;
  }
}

/** The form names are matched in: NFC, no bidi controls, no trailing dots or spaces, lower case. */
export function normalizeName(name: string): string {
  return name
    .slice(0, MAX_NAME_CHARS)
    .normalize('NFC')
    .replace(BIDI_CONTROLS, '')
    .replace(/[\s.]+$/u, '')
    .toLowerCase();
}

export interface ExecutableList {
  patterns: readonly string[];
  matches(normalizedName: string): string | undefined;
}

/**
 * `*` then printable ASCII without wildcards (`*.exe`, `*.tar.gz`): on a name without upper-case
 * ASCII letters its case-insensitive RegExp is exactly a suffix test (a non-ASCII character never
 * case-folds to an ASCII one in a non-Unicode RegExp), so it is looked up, not run.
 */
const SUFFIX_PATTERN = /^\*[\x20-\x29\x2b-\x3e\x40-\x7e]+$/;
const ASCII_UPPER = /[A-Z]/;

/** Compiles Mailtraq-style wildcard patterns (`*.exe`, `setup?.bin`); `#` starts a comment line. */
export function parseExecutableList(text: string): ExecutableList {
  const patterns = text
    .split(/\r?\n/)
    .map((line) => line.trim().toLowerCase())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const compiled = patterns.map((pattern, index) => ({ index, pattern, regex: wildcardPattern(pattern) }));
  const first = (name: string): string | undefined => compiled.find(({ regex }) => regex.test(name))?.pattern;
  // The suffix patterns by their last character, and the others, each in list order: the first match wins.
  const suffixes = new Map<string, { index: number; suffix: string }[]>();
  const others: typeof compiled = [];
  for (const entry of compiled) {
    if (!SUFFIX_PATTERN.test(entry.pattern)) {
      others.push(entry);
      continue;
    }
    const suffix = entry.pattern.slice(1);
    const bucket = suffixes.get(suffix.slice(-1)) ?? [];
    bucket.push({ index: entry.index, suffix });
    suffixes.set(suffix.slice(-1), bucket);
  }
  return {
    patterns,
    matches: (normalizedName) => {
      if (ASCII_UPPER.test(normalizedName)) return first(normalizedName);
      let best = suffixes.get(normalizedName.slice(-1))?.find(({ suffix }) => normalizedName.endsWith(suffix))?.index ?? Infinity;
      for (const { index, regex } of others) {
        if (index > best) break;
        if (regex.test(normalizedName)) best = index;
      }
      return best === Infinity ? undefined : patterns[best];
    },
  };
}

/** Every finding a name gives under the list; an empty array for a harmless name. */
export function classifyName(name: string, list: ExecutableList): NameFinding[] {
  const findings: NameFinding[] = [];
  const normalized = normalizeName(name);
  if (HAS_BIDI_CONTROL.test(name)) {
    findings.push({ kind: 'bidi-control', filename: name, reason: 'the name contains bidirectional control characters that disguise its extension' });
  }
  if (CLSID_NAME.test(normalized)) findings.push({ kind: 'clsid', filename: name, reason: 'the name ends in a CLSID, which Windows runs as a COM object' });
  const compressed = COMPRESSED_SUFFIX.exec(normalized);
  if (compressed !== null) {
    const inner = list.matches(normalized.slice(0, compressed.index));
    if (inner !== undefined) findings.push({ kind: 'executable', filename: name, reason: `an executable (${inner}) compressed as .${compressed[1]}` });
  }
  const pattern = list.matches(normalized);
  if (pattern !== undefined) {
    findings.push({ kind: 'executable', filename: name, reason: `the name matches ${pattern}` });
    const stem = normalized.slice(0, normalized.lastIndexOf('.'));
    if (/\s{2,}$/u.test(stem) || HIDING_WHITESPACE.test(stem)) {
      findings.push({ kind: 'hidden-extension', filename: name, reason: 'whitespace hides the executable extension' });
    }
    const inner = stem.slice(stem.lastIndexOf('.') + 1).trim();
    if (stem.includes('.') && /^[a-z0-9]{1,5}$/.test(inner) && !/^\d+$/.test(inner)) {
      findings.push({ kind: 'double-extension', filename: name, reason: `a .${inner} name that is really ${pattern}` });
    }
  }
  return findings;
}

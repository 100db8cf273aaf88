/**
 * Authentication-Results header fields (RFC 8601): the one mailmoat writes for the server
 * behind it, and the removal of any arriving field that claims mailmoat's authserv-id
 * (section 5: such a field can only be forged, and a reader trusting that id would
 * believe it). Fields from other authserv-ids are kept as they are. Header bytes stay
 * bytes (latin1): nothing is decoded.
 */

/** Skips the whitespace and "(comments)" (nested, with quoted-pairs; RFC 5322 3.2.2) at the start of `text`. */
function skipCfws(text: string): string {
  let position = 0;
  let depth = 0;
  while (position < text.length) {
    const char = text[position];
    if (depth > 0 && char === '\\') position++;
    else if (char === '(') depth++;
    else if (char === ')' && depth > 0) depth--;
    else if (depth === 0 && !/\s/.test(char ?? '')) break;
    position++;
  }
  return text.slice(position);
}

/** The authserv-id a field's value names (RFC 8601 2.2: the value, up to ";" or whitespace). */
export function authservIdOf(value: string): string {
  const rest = skipCfws(value);
  const end = rest.search(/[;\s(]/);
  return (end < 0 ? rest : rest.slice(0, end)).replace(/^"|"$/g, '');
}

/** Splits a header block (each field ending in CRLF) into its fields, continuation lines included. */
export function headerFields(block: Buffer): Buffer[] {
  const fields: Buffer[] = [];
  let start = 0;
  let position = 0;
  while (position < block.length) {
    const lineEnd = block.indexOf('\n', position);
    const next = lineEnd < 0 ? block.length : lineEnd + 1;
    const following = block[next];
    // A line followed by one starting with space or tab continues the field (RFC 5322 2.2.3).
    if (following !== 0x20 && following !== 0x09) {
      fields.push(block.subarray(start, next));
      start = next;
    }
    position = next;
  }
  return fields;
}

const AR_NAME = /^authentication-results[ \t]*:/i;

/** The header block without the Authentication-Results fields that claim `authservId` (compared case-insensitively). */
export function withoutForgedResults(block: Buffer, authservId: string): { block: Buffer; removed: number } {
  const wanted = authservId.toLowerCase();
  const kept: Buffer[] = [];
  let removed = 0;
  for (const field of headerFields(block)) {
    const text = field.toString('latin1');
    const match = AR_NAME.exec(text);
    if (match !== null && authservIdOf(text.slice(match[0].length).replace(/\r?\n/g, '')).toLowerCase() === wanted) {
      removed++;
      continue;
    }
    kept.push(field);
  }
  return { block: removed === 0 ? block : Buffer.concat(kept), removed };
}

/** `Authentication-Results: id;` and one result per folded line; "none" when nothing was evaluated (RFC 8601 2.2). */
export function authenticationResultsField(authservId: string, results: readonly string[]): string {
  const body = results.length === 0 ? 'none' : results.join(';\r\n\t');
  return `Authentication-Results: ${authservId};\r\n\t${body}\r\n`;
}

/** The ARC-Authentication-Results value after `i=N; ` (RFC 8617 4.1.1): the same results under the same id. */
export function arcResultsValue(authservId: string, results: readonly string[]): string {
  return `${authservId};\r\n\t${results.length === 0 ? 'none' : results.join(';\r\n\t')}`;
}

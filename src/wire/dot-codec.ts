/**
 * SMTP DATA transparency (RFC 5321 4.5.2) and end-of-data detection (4.1.1.4),
 * hardened against SMTP smuggling (CVE-2023-51764/51765/51766).
 *
 * DataDecoder: downstream bytes -> unstuffed message content in canonical CRLF.
 *   - End of data is CRLF "." CRLF only: the dot line must be terminated by CRLF
 *     and the line before it too (or be the first line). `\n.\n`, `\r.\r`,
 *     `\n.\r\n`, `\r\n.\n` and every other bare variant is content.
 *   - Every bare LF and bare CR is a line break and is re-emitted as CRLF, so
 *     what is stored (and later forwarded) is canonical lines; `bareLineEndings`
 *     counts them so a policy can refuse such messages instead.
 *   - A leading dot is removed from every line (unstuffing).
 * DotStuffer: canonical content -> wire form for the upstream: a dot is added
 *   before every line that starts with "." or with NUL bytes then "." (an upstream
 *   that drops NULs must still see a stuffed line), and the caller appends ".\r\n".
 *
 * Both work on chunks cut anywhere (a CR at a chunk's end waits for the next).
 */

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;
const NUL = 0x00;
const CRLF = Buffer.from('\r\n', 'latin1');
const DOT_BYTE = Buffer.from('.', 'latin1');

export interface DecodeResult {
  /** Unstuffed canonical content, as slices of the input (no copies). */
  content: Buffer[];
  /** True once CRLF.CRLF has been seen; `rest` then holds the bytes after it. */
  ended: boolean;
  rest: Buffer;
}

/**
 * Output is built from runs of the input: a canonical chunk whose lines do not
 * start with a dot comes out as one slice; only removed dots and normalised
 * bare line endings break a run.
 */
export class DataDecoder {
  private atLineStart = true;
  private previousWasCrlf = true;
  private dotRemoved = false;
  private lineHasContent = false;
  private pendingCr = false;
  private finished = false;
  /** Number of bare LF / bare CR line endings seen so far. */
  bareLineEndings = 0;

  decode(chunk: Buffer): DecodeResult {
    if (this.finished) throw new Error('DataDecoder used after end of data');
    // The line state lives in locals inside the loop (one line per iteration is the hot path).
    let atLineStart = this.atLineStart;
    let previousWasCrlf = this.previousWasCrlf;
    let dotRemoved = this.dotRemoved;
    let lineHasContent = this.lineHasContent;
    const content: Buffer[] = [];
    const length = chunk.length;
    let i = 0;
    let runStart = 0;
    let nextCr = -2;
    let nextLf = -2;
    let ended = false;

    if (this.pendingCr && length > 0) {
      this.pendingCr = false;
      if (chunk[0] === LF) {
        i = runStart = 1;
        if (dotRemoved && !lineHasContent && previousWasCrlf) ended = true;
        else content.push(CRLF);
        previousWasCrlf = true;
      } else {
        this.bareLineEndings++;
        content.push(CRLF);
        previousWasCrlf = false;
      }
      atLineStart = true;
      dotRemoved = false;
      lineHasContent = false;
    }

    while (!ended && i < length) {
      if (atLineStart) {
        atLineStart = false;
        if (chunk[i] === DOT) {
          if (i > runStart) content.push(chunk.subarray(runStart, i));
          dotRemoved = true;
          runStart = ++i;
          continue;
        }
      }
      if (nextCr !== -1 && nextCr < i) nextCr = chunk.indexOf(CR, i);
      if (nextLf !== -1 && nextLf < i) nextLf = chunk.indexOf(LF, i);
      const stop = nextCr === -1 ? nextLf : nextLf === -1 ? nextCr : nextCr < nextLf ? nextCr : nextLf;
      if (stop === -1) {
        if (i < length) lineHasContent = true;
        i = length;
        break;
      }
      if (stop > i) lineHasContent = true;
      if (stop === nextCr && stop + 1 < length && chunk[stop + 1] === LF) {
        // CRLF: the common case; the line stays inside the current run.
        i = stop + 2;
        if (dotRemoved && !lineHasContent && previousWasCrlf) {
          ended = true;
          break;
        }
      } else if (stop === nextCr && stop + 1 === length) {
        // A CR at the chunk's end: the next chunk says whether it is CRLF.
        if (stop > runStart) content.push(chunk.subarray(runStart, stop));
        this.pendingCr = true;
        i = runStart = length;
        break;
      } else {
        // Bare LF or bare CR: a line break, sent on as CRLF.
        if (stop > runStart) content.push(chunk.subarray(runStart, stop));
        content.push(CRLF);
        this.bareLineEndings++;
        i = runStart = stop + 1;
        previousWasCrlf = false;
        atLineStart = true;
        dotRemoved = false;
        lineHasContent = false;
        continue;
      }
      previousWasCrlf = true;
      atLineStart = true;
      dotRemoved = false;
      lineHasContent = false;
    }

    this.atLineStart = atLineStart;
    this.previousWasCrlf = previousWasCrlf;
    this.dotRemoved = dotRemoved;
    this.lineHasContent = lineHasContent;
    if (ended) {
      // The dot line was empty: runStart already points past its dot, so nothing of it is content.
      this.finished = true;
      return { content, ended: true, rest: chunk.subarray(i) };
    }
    if (i > runStart) content.push(chunk.subarray(runStart, i));
    return { content, ended: false, rest: Buffer.alloc(0) };
  }
}

const DOT_LINE_START = Buffer.from('\n.', 'latin1');

export class DotStuffer {
  private atLineStart = true;
  private heldNuls = 0;

  /** Wire bytes for a chunk of canonical content. */
  stuff(chunk: Buffer): Buffer[] {
    if (this.heldNuls === 0 && chunk.indexOf(NUL) === -1) return this.stuffWithoutNuls(chunk);
    return this.stuffLineByLine(chunk);
  }

  /** Fast path: a dot is inserted at each "\n." and at a chunk that starts a line with ".". */
  private stuffWithoutNuls(chunk: Buffer): Buffer[] {
    if (chunk.length === 0) return [];
    const out: Buffer[] = [];
    let runStart = 0;
    if (this.atLineStart && chunk[0] === DOT) out.push(DOT_BYTE);
    for (let hit = chunk.indexOf(DOT_LINE_START); hit !== -1; hit = chunk.indexOf(DOT_LINE_START, hit + 1)) {
      out.push(chunk.subarray(runStart, hit + 1), DOT_BYTE);
      runStart = hit + 1;
    }
    out.push(chunk.subarray(runStart));
    this.atLineStart = chunk[chunk.length - 1] === LF;
    return out;
  }

  private stuffLineByLine(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let i = 0;
    while (i < chunk.length) {
      if (this.atLineStart) {
        while (i < chunk.length && chunk[i] === NUL) {
          this.heldNuls++;
          i++;
        }
        if (i === chunk.length) break;
        if (chunk[i] === DOT) out.push(DOT_BYTE);
        if (this.heldNuls > 0) out.push(Buffer.alloc(this.heldNuls, NUL));
        this.heldNuls = 0;
        this.atLineStart = false;
      }
      const lf = chunk.indexOf(LF, i);
      if (lf === -1) {
        out.push(chunk.subarray(i));
        break;
      }
      out.push(chunk.subarray(i, lf + 1));
      i = lf + 1;
      this.atLineStart = true;
    }
    return out;
  }

  /** Flushes NUL bytes held at a line start when the content ends there. */
  end(): Buffer[] {
    const out = this.heldNuls > 0 ? [Buffer.alloc(this.heldNuls, NUL)] : [];
    this.heldNuls = 0;
    return out;
  }
}

export const END_OF_DATA = Buffer.from('.\r\n', 'latin1');

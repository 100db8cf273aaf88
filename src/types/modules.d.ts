// Type declarations for the untyped CommonJS modules mailmoat uses: libmime and libqp (both by the mailsplit author).
// libmime: the parts mailmoat uses.
declare module 'libmime' {
  interface ParsedHeaderValue {
    value: string;
    params: Record<string, string>;
  }
  const libmime: {
    /** Parses `value; key=val; key*0*=charset''...` with RFC 2231 continuations and charsets decoded. */
    parseHeaderValue(value: string): ParsedHeaderValue;
    /** Decodes RFC 2047 encoded-words (B and Q, any charset iconv-lite knows). */
    decodeWords(value: string): string;
    /** Builds `value; key=val` with RFC 2231 encoding for parameters that need it. */
    buildHeaderValue(structured: ParsedHeaderValue): string;
  };
  export default libmime;
}

// The parts of libqp (quoted-printable, RFC 2045 6.7) that mailmoat uses.
declare module 'libqp' {
  const libqp: {
    encode(data: Buffer | string): string;
    decode(encoded: string): Buffer;
    /** Adds soft line breaks so no line exceeds `lineLength`. */
    wrap(encoded: string, lineLength?: number): string;
  };
  export default libqp;
}

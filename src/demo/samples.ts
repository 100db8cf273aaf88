/**
 * Sample messages for `mailmoat demo`, built at run time. Each says what a
 * newcomer should see happen to it. Later capabilities add their own samples
 * (executables, archives, viruses).
 */
import { DotStuffer, END_OF_DATA } from '../wire/dot-codec.js';
import { storedZip } from './stored-zip.js';

export interface Sample {
  title: string;
  /** Bytes on the wire after DATA, including the final dot. */
  wire: Buffer;
  /** The message itself, as a mailbox stores it (the POP3 part of the demo serves these). */
  content: Buffer;
  /** What the upstream should receive: these exact bytes, or the message with this attachment replaced by a notice. */
  expected: Buffer | { stripped: string };
}

const crlf = (lines: string[]): Buffer => Buffer.from(lines.map((line) => `${line}\r\n`).join(''), 'latin1');

function stuffed(content: Buffer): Buffer {
  const stuffer = new DotStuffer();
  return Buffer.concat([...stuffer.stuff(content), ...stuffer.end(), END_OF_DATA]);
}

const headers = (subject: string, extra: string[] = []): string[] => [
  'From: Alice Example <alice@example.org>',
  'To: Bob Example <bob@example.net>',
  `Subject: ${subject}`,
  'Date: Sun, 22 Nov 2026 09:00:00 +0000',
  'Message-ID: <demo-' + subject.toLowerCase().replace(/[^a-z]+/g, '-') + '@example.org>',
  'MIME-Version: 1.0',
  ...extra,
];

/** A tiny but well-formed PDF, so the attachment is a real document. */
function samplePdf(): Buffer {
  const body = [
    '%PDF-1.4',
    '1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj',
    '2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj',
    '3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] >> endobj',
    'trailer << /Root 1 0 R >>',
    '%%EOF',
  ].join('\n');
  return Buffer.from(body, 'latin1');
}

/** The first bytes of a Windows program (MZ and PE headers), enough for the content sniffer. */
export function windowsProgramStub(): Buffer {
  const head = Buffer.alloc(256);
  head.write('MZ', 0, 'latin1');
  head.writeUInt32LE(0x80, 0x3c);
  head.write('PE\0\0', 0x80, 'latin1');
  return head;
}

/** A multipart message: a short text, then one base64 attachment (lines of 76, RFC 2045 6.8). */
function withAttachment(subject: string, text: string, attachment: { contentType: string; name: string; data: Buffer }): Buffer {
  return crlf([
    ...headers(subject, ['Content-Type: multipart/mixed; boundary="demo-boundary"']),
    '',
    '--demo-boundary',
    'Content-Type: text/plain; charset=utf-8',
    '',
    text,
    '--demo-boundary',
    `Content-Type: ${attachment.contentType}; name="${attachment.name}"`,
    `Content-Disposition: attachment; filename="${attachment.name}"`,
    'Content-Transfer-Encoding: base64',
    '',
    ...attachment.data.toString('base64').replace(/.{1,76}/g, '$&\n').trimEnd().split('\n'),
    '--demo-boundary--',
  ]);
}

/** The EICAR anti-virus test string, assembled at run time so that it is never stored whole. */
export const EICAR_TEST_STRING = ['X5O!P%@AP[4\\PZX54(P^)7CC)7}$', 'EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'].join('');

/** A ClamAV body signature (.ndb: name, any target, any offset, hex) that matches the EICAR string anywhere. */
export const eicarSignature = (name: string): string => `${name}:0:*:${Buffer.from(EICAR_TEST_STRING, 'latin1').toString('hex')}\n`;

/** A message with the EICAR test file attached (the demo adds it when clamd is installed). */
export function eicarSample(): Sample {
  const message = withAttachment('Test file', 'The anti-virus test file is attached.', { contentType: 'application/octet-stream', name: 'eicar.com.txt', data: Buffer.from(EICAR_TEST_STRING, 'latin1') });
  return { title: 'eicar.com.txt (the anti-virus test file)', wire: stuffed(message), content: message, expected: { stripped: 'eicar.com.txt' } };
}

export function demoSamples(): Sample[] {
  const plain = crlf([...headers('Lunch on Friday', ['Content-Type: text/plain; charset=utf-8']), '', 'Hi Bob,', '', 'Lunch on Friday at noon?', '', 'Alice']);

  const report = withAttachment('Quarterly report', 'The report is attached.', { contentType: 'application/pdf', name: 'report-q3.pdf', data: samplePdf() });

  const dots = crlf([...headers('Dots at line starts', ['Content-Type: text/plain']), '', '.hidden line that starts with a dot', '.', '..two dots', 'end']);

  const smugglingBody = 'Content-Type: text/plain\r\n\r\nHello\n.\nMAIL FROM:<ceo@example.org>\nRCPT TO:<victim@example.net>\nDATA\nFrom: ceo@example.org\n\nSpoofed\n.\n';
  const smuggling = Buffer.from(headers('Smuggling attempt').join('\r\n') + '\r\n' + smugglingBody + '\r\n.\r\n', 'latin1');
  const smugglingExpected = Buffer.from(
    (headers('Smuggling attempt').join('\r\n') + '\r\n' + smugglingBody).replace(/\r?\n/g, '\r\n').replace(/\r\n\./g, '\r\n') + '\r\n',
    'latin1',
  );

  const executable = withAttachment('Your invoice', 'Please find the invoice attached.', { contentType: 'application/octet-stream', name: 'invoice.pdf.exe', data: windowsProgramStub() });
  const zip = (name: string, data: Buffer) => ({ contentType: 'application/zip', name, data });
  const zipped = withAttachment('Your parcel', 'The files are attached.', zip('parcel.zip', storedZip([{ name: 'label.pdf', data: Buffer.from('%PDF-1.4\n') }, { name: 'tracking.exe', data: windowsProgramStub() }])));
  const encrypted = withAttachment('Protected files', 'The files are attached.', zip('files.zip', storedZip([{ name: 'report.docx', data: Buffer.from('PK'), encryptedFlag: true }])));

  return [
    { title: 'plain text note', wire: stuffed(plain), content: plain, expected: plain },
    { title: 'invoice.pdf.exe (a Windows program)', wire: stuffed(executable), content: executable, expected: { stripped: 'invoice.pdf.exe' } },
    { title: 'parcel.zip holding tracking.exe', wire: stuffed(zipped), content: zipped, expected: { stripped: 'parcel.zip/tracking.exe' } },
    { title: 'files.zip, encrypted (cannot be looked into)', wire: stuffed(encrypted), content: encrypted, expected: { stripped: 'files.zip' } },
    { title: 'report with a PDF attachment', wire: stuffed(report), content: report, expected: report },
    { title: 'lines starting with dots', wire: stuffed(dots), content: dots, expected: dots },
    { title: 'SMTP smuggling attempt (bare LF dot)', wire: smuggling, content: smugglingExpected, expected: smugglingExpected },
  ];
}

/**
 * Runs the inspector a policy describes on one message held in memory, and
 * returns the report with the rewritten bytes (latin1; "" unless rewritten).
 */
import { parsePolicyText } from '../../src/config/load.js';
import { createMailInspector } from '../../src/inspect/create.js';
import type { InspectionContext, MessageSource } from '../../src/inspect/api.js';
import type { InspectionReport } from '../../src/inspect/inspector.js';

export const bytesSource = (bytes: Buffer): MessageSource => ({ size: bytes.length, open: async function* () { yield bytes; } });

export async function inspectMessage(message: Buffer | string, policyText = '', context?: InspectionContext): Promise<{ report: InspectionReport; output: string }> {
  const inspector = await createMailInspector(parsePolicyText(policyText, 'test'));
  try {
    const report = await inspector.examine(bytesSource(typeof message === 'string' ? Buffer.from(message, 'latin1') : message), context);
    if (report.verdict.action !== 'rewrite') return { report, output: '' };
    const chunks: Buffer[] = [];
    for await (const chunk of report.verdict.message.open()) chunks.push(chunk);
    await report.verdict.message.dispose();
    return { report, output: Buffer.concat(chunks).toString('latin1') };
  } finally {
    await inspector.close();
  }
}

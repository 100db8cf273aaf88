/**
 * Boot: start one listener per policy entry with the collaborators handed in,
 * and stop them all on request. The CLI and the demo both start the proxy here.
 */
import type { AddressInfo } from 'node:net';
import type { Policy } from './config/schema.js';
import { Listener } from './accept/listener.js';
import type { Inspector } from './inspect/api.js';
import type { Logger } from './observe/log.js';
import { createTlsSetup } from './tls/setup.js';

export interface RunningProxy {
  listeners: readonly Listener[];
  addresses: readonly AddressInfo[];
  close(): Promise<void>;
}

export async function startProxy(policy: Readonly<Policy>, inspector: Inspector, logger: Logger): Promise<RunningProxy> {
  if (policy.listeners.length === 0) throw new Error('the policy has no listeners: add at least one under "listeners"');
  const tlsSetup = await createTlsSetup(policy);
  const listeners = policy.listeners.map((listener) => new Listener({ listener, policy, inspector, logger, tlsSetup }));
  const addresses: AddressInfo[] = [];
  try {
    for (const listener of listeners) addresses.push(await listener.listen());
  } catch (error) {
    await Promise.all(listeners.map((listener) => listener.close()));
    throw error;
  }
  return {
    listeners,
    addresses,
    close: async () => {
      await Promise.all(listeners.map((listener) => listener.close()));
    },
  };
}

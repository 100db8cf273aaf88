/**
 * A small Windows program as the content sniffer must see it: an MZ header whose
 * e_lfanew points to a "PE\0\0" signature, then filler. Not runnable, but every
 * byte a PE loader (and a sniffer) checks first is where it belongs.
 */
export function peBytes(size = 1024): Buffer {
  const bytes = Buffer.alloc(size);
  bytes.write('MZ', 0, 'latin1');
  bytes.writeUInt32LE(0x80, 0x3c);
  bytes.write('PE\0\0', 0x80, 'latin1');
  for (let index = 0x100; index < size; index++) bytes[index] = index & 0xff;
  return bytes;
}

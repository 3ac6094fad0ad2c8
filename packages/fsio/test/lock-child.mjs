// One racer of lock.test.ts: takes the lock `rounds` times; inside it, checks nobody else is inside (an
// "inside" marker file created with O_EXCL), bumps a counter by read-modify-write with a pause in between,
// and leaves. Any overlap shows as a lost update or an EEXIST on the marker.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { acquireLock } from '../dist/index.js';

const [dir, rounds] = [process.argv[2], Number(process.argv[3])];
for (let i = 0; i < rounds; i++) {
  const lock = await acquireLock(join(dir, 'counter.lock'), { pollMs: 2 });
  writeFileSync(join(dir, 'inside'), String(process.pid), { flag: 'wx' });
  const n = Number(readFileSync(join(dir, 'counter'), 'utf8'));
  await new Promise((r) => setTimeout(r, 1));
  writeFileSync(join(dir, 'counter'), String(n + 1));
  rmSync(join(dir, 'inside'));
  await lock.release();
}

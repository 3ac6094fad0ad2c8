import { randomBytes } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type AssembleResult, assembleImage, imageLabels } from '@nabla-build/image';

/**
 * A small hello-base-shaped image: `/hello.nabla` (bytes standing in for the unikernel), a config dir,
 * ENV RUMP_VERBOSE=1, ENTRYPOINT ["/hello.nabla"], and nabla labels. `salt` makes the blobs unique, so a
 * test never finds them already present from an earlier run.
 */
export async function helloImage(
  dir: string,
  salt = randomBytes(8).toString('hex'),
  kernelBytes = 256 * 1024,
): Promise<AssembleResult> {
  const tree = join(dir, 'tree');
  await mkdir(join(tree, 'conf'), { recursive: true });
  const kernel = Buffer.alloc(kernelBytes);
  for (let i = 0; i < kernel.length; i += 64) kernel.write(`${salt}:${i}\n`, i);
  await writeFile(join(tree, 'hello.nabla'), kernel);
  await chmod(join(tree, 'hello.nabla'), 0o755);
  await writeFile(join(tree, 'conf', 'hello.conf'), `salt=${salt}\n`);
  return assembleImage(
    {
      files: [
        { hostPath: join(tree, 'hello.nabla'), imagePath: '/hello.nabla' },
        { hostPath: join(tree, 'conf'), imagePath: '/conf' },
      ],
      config: {
        entrypoint: ['/hello.nabla'],
        cmd: [],
        env: { RUMP_VERBOSE: '1' },
        labels: imageLabels({
          title: 'lkl-nabla-hello-base',
          tender: 'spt',
          solo5SptAbi: 1,
          recipe: 'hello',
          version: '0.1.0',
        }),
        exposedPorts: [],
      },
      created: new Date('2020-04-20T00:00:00Z'),
    },
    join(dir, 'layout'),
  );
}

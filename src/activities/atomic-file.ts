/** Writing files so that a crash or a concurrent reader never sees half of one. */
import { randomUUID } from 'node:crypto';
import { rename, unlink, writeFile } from 'node:fs/promises';
import * as path from 'node:path';

/**
 * Writes a file so that readers see the old content or the new one, never a part: a temporary file in the
 * same directory (so the rename stays on one file system), then a rename over the target.
 */
export async function writeFileAtomic(file: string, content: string | Buffer): Promise<void> {
  const temporary = path.join(
    path.dirname(file),
    `.${path.basename(file)}.${process.pid}.${randomUUID()}.tmp`,
  );
  try {
    await writeFile(temporary, content);
    await rename(temporary, file);
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
}

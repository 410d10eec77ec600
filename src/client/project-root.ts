/** Where Labline is installed: paths outside `src` are found from here, whether it runs from src or dist. */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';

/** The folder of Labline's package.json. */
export function projectRoot(): string {
  if (cachedRoot) return cachedRoot;
  let dir = __dirname;
  for (let depth = 0; depth < 6; depth++) {
    try {
      const manifest = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (manifest.name === 'labline') return (cachedRoot = dir);
    } catch {
      // No package.json here: look further up.
    }
    dir = path.dirname(dir);
  }
  throw new Error(`Cannot find Labline's package.json above ${__dirname}`);
}

let cachedRoot: string | undefined;

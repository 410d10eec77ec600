#!/usr/bin/env node
// The `labline` command. It runs the JavaScript that `npm ci` compiled into dist/ (scripts/build.js) when that
// is at least as new as every file in src/; otherwise (a checkout edited since, or never built) the
// TypeScript sources through tsx, which is slower to start but never stale. LABLINE_FROM_SOURCE=1 forces the
// sources (bench/cli.ts measures both).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

/**
 * Whether dist/ was built after the last change to src/ (a few hundred stats: a few milliseconds). A folder's
 * time changes when a file in it is added, removed or renamed, so those count as changes too.
 */
function distIsCurrent() {
  let builtAt;
  try {
    builtAt = Number(fs.readFileSync(path.join(root, 'dist', 'built-at'), 'utf8'));
  } catch {
    return false;
  }
  const pending = [path.join(root, 'src')];
  while (pending.length > 0) {
    const dir = pending.pop();
    if (fs.statSync(dir).mtimeMs > builtAt) return false;
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) pending.push(file);
      else if (fs.statSync(file).mtimeMs > builtAt) return false;
    }
  }
  return true;
}

let cli;
if (process.env.LABLINE_FROM_SOURCE !== '1' && distIsCurrent()) {
  cli = require('../dist/src/client/cli.js');
} else {
  require('tsx/cjs');
  cli = require('../src/client/cli.ts');
}
cli.main(process.argv).catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 2;
});

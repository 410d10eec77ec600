#!/usr/bin/env node
// Compiles src/ into dist/ (tsconfig.build.json) and copies the files the code reads beside itself: the
// local supervisor, the Slurm job script and the agents' prompts. bin/labline.js runs dist/ when it is at
// least as new as src/ (see bin/labline.js); `npm ci` builds it through the prepare script.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });

const assets = [
  'src/activities/training/local-supervisor.js',
  'src/activities/training/slurm-job.sh',
  'src/activities/agents/prompts',
];
for (const asset of assets) {
  fs.cpSync(path.join(root, asset), path.join(root, 'dist', asset), {
    recursive: true,
    preserveTimestamps: true,
  });
}
// The build's time, which bin/labline.js compares with the sources'.
fs.writeFileSync(path.join(root, 'dist', 'built-at'), `${Date.now()}\n`);

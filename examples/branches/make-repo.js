#!/usr/bin/env node
// Builds a tiny git repository with three branches of the example trainer, for trying code variants:
//
//   node examples/branches/make-repo.js /tmp/moons-branches
//   npx labline campaign /tmp/moons-branches/campaign.yaml --yes
//
// `main` is examples/trainer/train.js as it is (16 hidden units); `feature/wide` changes the model to 64 hidden
// units and `feature/narrow` to 4, in the code, not in the config: the campaign's spec passes no --hidden, so
// each branch trains the architecture its code defines. Each experiment trains in its own worktree.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const target = process.argv[2];
if (!target || process.argv.includes('--help')) {
  console.error('usage: node examples/branches/make-repo.js <new directory>');
  process.exit(target ? 0 : 2);
}
const dir = path.resolve(target);
if (fs.existsSync(dir) && fs.readdirSync(dir).length > 0) {
  console.error(`${dir} exists and is not empty; give a new directory`);
  process.exit(2);
}
fs.mkdirSync(path.join(dir, 'trainer'), { recursive: true });

const git = (...args) =>
  execFileSync('git', args, {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'inherit'],
    // A fixed identity and dates: the same script makes the same commits anywhere.
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 'Labline example',
      GIT_AUTHOR_EMAIL: 'example@labline.invalid',
      GIT_COMMITTER_NAME: 'Labline example',
      GIT_COMMITTER_EMAIL: 'example@labline.invalid',
      GIT_AUTHOR_DATE: '2026-01-05T09:30:00Z',
      GIT_COMMITTER_DATE: '2026-01-05T09:30:00Z',
    },
  });

const trainer = fs.readFileSync(path.join(__dirname, '..', 'trainer', 'train.js'), 'utf8');
const DEFAULT_HIDDEN = "hidden: { kind: 'int', default: 16, help: 'hidden units' },";
if (!trainer.includes(DEFAULT_HIDDEN))
  throw new Error('examples/trainer/train.js no longer sets 16 hidden units as shown');
const withHidden = (units) =>
  trainer.replace(DEFAULT_HIDDEN, DEFAULT_HIDDEN.replace('default: 16', `default: ${units}`));

git('init', '--quiet', '--initial-branch=main');
fs.writeFileSync(path.join(dir, 'trainer', 'train.js'), trainer);
for (const name of ['experiment.yaml', 'campaign.yaml']) {
  fs.copyFileSync(path.join(__dirname, name), path.join(dir, name));
}
fs.writeFileSync(path.join(dir, '.gitignore'), 'runs/\n.labline/\n');
git('add', '--all');
git('commit', '--quiet', '--message', 'Two-moons trainer with 16 hidden units');

for (const [branch, units] of [
  ['feature/wide', 64],
  ['feature/narrow', 4],
]) {
  git('checkout', '--quiet', '-b', branch, 'main');
  fs.writeFileSync(path.join(dir, 'trainer', 'train.js'), withHidden(units));
  git('commit', '--quiet', '--all', '--message', `${units} hidden units`);
}
git('checkout', '--quiet', 'main');
console.log(`made ${dir} with branches main, feature/wide and feature/narrow`);

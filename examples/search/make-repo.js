#!/usr/bin/env node
// Builds a tiny git repository for trying a search campaign:
//
//   node examples/search/make-repo.js /tmp/moons-search
//   npx labline campaign /tmp/moons-search/campaign.yaml --yes
//
// The trainer is examples/trainer/train.js; `trainer/run.js` starts it with the hyperparameters written in
// `trainer/hyperparameters.js`, the one file the search may edit. They start deliberately weak (a low learning
// rate, few hidden units), so that a proposer has something to find.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const target = process.argv[2];
if (!target || process.argv.includes('--help')) {
  console.error('usage: node examples/search/make-repo.js <new directory>');
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
    // A fixed identity and dates: the same script makes the same commit anywhere.
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

fs.copyFileSync(path.join(__dirname, '..', 'trainer', 'train.js'), path.join(dir, 'trainer', 'train.js'));
fs.writeFileSync(
  path.join(dir, 'trainer', 'hyperparameters.js'),
  [
    '// The hyperparameters of the two-moons trainer: the file the search may edit.',
    'module.exports = {',
    '  lr: 0.05,',
    '  hidden: 4,',
    '  steps: 120,',
    '  batch_size: 32,',
    '};',
    '',
  ].join('\n'),
);
fs.writeFileSync(
  path.join(dir, 'trainer', 'run.js'),
  [
    '// Starts train.js with the hyperparameters of hyperparameters.js (train.js reads TRAINER_<NAME> when an',
    '// option is not on its command line).',
    "const hyperparameters = require('./hyperparameters.js');",
    'for (const [name, value] of Object.entries(hyperparameters))',
    '  process.env[`TRAINER_${name.toUpperCase()}`] = String(value);',
    "require('./train.js');",
    '',
  ].join('\n'),
);
for (const name of ['experiment.yaml', 'campaign.yaml']) {
  fs.copyFileSync(path.join(__dirname, name), path.join(dir, name));
}
fs.writeFileSync(path.join(dir, '.gitignore'), 'runs/\n.labline/\n');
git('init', '--quiet', '--initial-branch=main');
git('add', '--all');
git('commit', '--quiet', '--message', 'Two-moons trainer with weak hyperparameters');
console.log(`made ${dir}: a search may edit trainer/hyperparameters.js`);

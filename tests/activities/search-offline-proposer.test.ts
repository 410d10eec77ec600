import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { applyPatch } from 'diff';
import {
  numericConstants,
  offlineProposal,
  scaledLiteral,
} from '../../src/activities/search/offline-proposer';
import { makeRepo } from '../support/git-repo';

const JS_TRAINER = [
  'const opts = { default: 16, lr: 3e-4 }; // epochs: 99',
  'const SCALE = -0.5;',
  "const url = 'http://host'; const hidden = 7;",
  'if (a == 1 || b <= 2) c += 3;',
  'const version = "1.2.3", color = 0x10, width = 16px;',
].join('\n');

const PY_TRAINER = [
  '# batch_size = 64',
  'LEARNING_RATE = 0.01  # warmup = 5',
  'config = {\'dropout\': 0.1, "layers": 4}',
  'parser.add_argument("--epochs", type=int, default=10)',
  'self.momentum=.9',
  '',
].join('\n');

const numbersOf = (files: { path: string; content: string }[]) =>
  numericConstants(files).map((c) => `${c.path}:${c.line}:${c.column} ${c.number}`);

describe('numericConstants', () => {
  it('finds assignments and keys in JavaScript text, not in comments, comparisons or non-numbers', () => {
    expect(numbersOf([{ path: 'train.js', content: JS_TRAINER }])).toEqual([
      'train.js:0:24 16',
      'train.js:0:32 3e-4',
      'train.js:1:14 -0.5',
    ]);
  });

  it('finds assignments, quoted keys and keyword arguments in Python text, in file then line order', () => {
    const files = [
      { path: 'b.py', content: PY_TRAINER },
      { path: 'a.py', content: 'x = 1\n' },
    ];
    expect(numbersOf(files)).toEqual([
      'b.py:1:16 0.01',
      'b.py:2:21 0.1',
      'b.py:2:36 4',
      'b.py:3:50 10',
      'b.py:4:14 .9',
      'a.py:0:4 1',
    ]);
  });
});

describe('scaledLiteral', () => {
  it.each([
    ['16', 2, '32'],
    ['16', 0.8, '13'],
    ['1', 0.5, undefined],
    ['1', 1.5, '2'],
    ['-3', 0.5, '-2'],
    ['0', 2, undefined],
    ['0.5', 2, '1'],
    ['0.1', 0.5, '0.05'],
    ['0.1', 1.5, '0.15'],
    ['0.0000001', 2, '0.0000002'],
    ['0.123456', 1.25, '0.1543'],
    ['3e-4', 2, '6e-4'],
    ['3e-4', 0.75, '2.25e-4'],
    ['1E3', 1.5, '1.5e+3'],
  ])(
    'scales %s by %d to %s, keeping integers integral and the notation of floats',
    (number, factor, want) => {
      expect(scaledLiteral(number, factor)).toBe(want);
    },
  );
});

describe('offlineProposal', () => {
  const files = [
    { path: 'trainer/train.js', content: JS_TRAINER },
    { path: 'trainer/model.py', content: PY_TRAINER },
  ];

  it('proposes the same edit for the same trial number and different edits for successive ones', () => {
    const first = offlineProposal({ files, n: 1, earlierDiffs: [] });
    expect(offlineProposal({ files, n: 1, earlierDiffs: [] })).toEqual(first);
    expect(first?.hypothesis).toBe(
      'Scaling 16 on line 1 of trainer/train.js (`const opts = { default: 16, lr: 3e-4 }; // epochs: 99`) to 32 ' +
        '(×2) changes what trains; offline rules cannot tell whether it helps, so the search measures it.',
    );
    const changedLines = [1, 2, 3, 4].map((n) =>
      offlineProposal({ files, n, earlierDiffs: [] })!
        .diff.split('\n')
        .find((l) => l.startsWith('+') && !l.startsWith('+++')),
    );
    expect(new Set(changedLines).size).toBe(4);
  });

  it('doubles every constant in turn before halving any, so a search explores each constant early', () => {
    const config = [{ path: 'cfg.py', content: 'lr = 0.1\nhidden = 8\nsteps = 100\n' }];
    const added = [1, 2, 3, 4].map((n) =>
      offlineProposal({ files: config, n, earlierDiffs: [] })!
        .diff.split('\n')
        .find((l) => /^\+[^+]/.test(l)),
    );
    expect(added).toEqual(['+lr = 0.2', '+hidden = 16', '+steps = 200', '+lr = 0.05']);
  });

  it('never repeats an added line as earlier diffs accumulate, and runs out on a tiny file', () => {
    const tiny = [{ path: 'cfg.py', content: 'batch = 16\nsteps = 1\n' }];
    const earlierDiffs: string[] = [];
    for (let n = 1; n <= 20; n++) {
      const proposal = offlineProposal({ files: tiny, n, earlierDiffs });
      if (!proposal) break;
      earlierDiffs.push(proposal.diff);
    }
    const added = earlierDiffs.map((d) => d.split('\n').find((l) => /^\+[^+]/.test(l)));
    // 16 gives eight distinct values; 1 gives only 2 (×2 and ×1.5 both round to it, proposed once) and 3.
    expect(added.sort()).toEqual(
      [
        '+batch = 5',
        '+batch = 8',
        '+batch = 12',
        '+batch = 13',
        '+batch = 20',
        '+batch = 24',
        '+batch = 32',
        '+batch = 48',
        '+steps = 2',
        '+steps = 3',
      ].sort(),
    );
    expect(offlineProposal({ files: tiny, n: 100, earlierDiffs })).toBeUndefined();
  });

  it('ignores earlier diffs to other files and earlier diffs that do not parse', () => {
    const tiny = [{ path: 'cfg.py', content: 'steps = 1\n' }];
    const elsewhere = offlineProposal({
      files: [{ path: 'other.py', content: 'steps = 1\n' }],
      n: 1,
      earlierDiffs: [],
    });
    const proposal = offlineProposal({
      files: tiny,
      n: 1,
      earlierDiffs: [elsewhere!.diff, '@@ -1 +1 @@\n?bad\n'],
    });
    expect(proposal?.diff).toContain('+steps = 2');
  });

  it('proposes nothing for files without constants', () => {
    expect(
      offlineProposal({ files: [{ path: 'x.py', content: '# lr = 1\n' }], n: 1, earlierDiffs: [] }),
    ).toBeUndefined();
  });

  it('writes a diff with git headers that git apply accepts and that gives the edited text', () => {
    const content = ['a', 'b', 'c', 'd', 'lr = 3e-4', 'e', 'f', 'g', 'h', 'no_newline = 2'].join('\n');
    const repo = makeRepo({ 'src/train.py': content, 'src/crlf.py': 'x = 4\r\ny = 5\r\n' });
    try {
      for (const [file, n] of [
        ['src/train.py', 1],
        ['src/train.py', 2],
        ['src/crlf.py', 1],
      ] as const) {
        const original = execFileSync('git', ['show', `HEAD:${file}`], { cwd: repo.dir, encoding: 'utf8' });
        const { diff } = offlineProposal({
          files: [{ path: file, content: original }],
          n,
          earlierDiffs: [],
        })!;
        expect(diff.split('\n').slice(0, 2)).toEqual([`--- a/${file}`, `+++ b/${file}`]);
        const patchFile = path.join(repo.dir, '.git', 'proposal.diff');
        writeFileSync(patchFile, diff);
        repo.git('apply', '--check', '-p1', patchFile);
        const patched = applyPatch(original, diff);
        expect(patched).not.toBe(false);
        expect(patched).not.toBe(original);
      }
      const { diff } = offlineProposal({
        files: [{ path: 'src/train.py', content }],
        n: 1,
        earlierDiffs: [],
      })!;
      expect(applyPatch(content, diff)).toBe(content.replace('lr = 3e-4', 'lr = 6e-4'));
      writeFileSync(path.join(repo.dir, '.git', 'proposal.diff'), diff);
      repo.git('apply', '-p1', path.join('.git', 'proposal.diff'));
      expect(repo.git('diff', '--stat')).toContain('src/train.py | 2 +-');
    } finally {
      repo.remove();
    }
  });
});

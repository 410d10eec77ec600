/**
 * The example search repository (examples/search/make-repo.js) for search-campaign tests, in a temporary folder
 * of its own, with the edits a proposer would write: unified diffs of its editable hyperparameters file.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import { createTwoFilesPatch } from 'diff';
import { readCampaignFile } from '../../src/client/campaigns';
import { searchCampaignFrom, searchStatus } from '../../src/client/search';
import { stringify as toYaml } from 'yaml';
import type { SearchStatus } from '../../src/experiment';

const MAKE_REPO = path.resolve(__dirname, '../../examples/search/make-repo.js');
/** The one file the example's searches may edit. */
export const HYPERPARAMETERS = 'trainer/hyperparameters.js';

export interface SearchRepo {
  /** The repository. */
  dir: string;
  /** The temporary folder holding it, where campaign files, base specs and scripts may go. */
  folder: string;
  git(...args: string[]): string;
  /** The editable file with `lr: 0.05,` written as `lr: <lr>,`, and `tail` appended. */
  content(lr: string, tail?: string): string;
  /** A unified diff of the editable file from `from` to `to`, as `git diff` writes it. */
  edit(from: string, to: string): string;
}

const folders: string[] = [];

/** A fresh example repository; {@link removeSearchRepos} deletes every one made. */
export function makeSearchRepo(prefix = 'labline-search-'): SearchRepo {
  const folder = mkdtempSync(path.join(tmpdir(), prefix));
  folders.push(folder);
  const dir = path.join(folder, 'repo');
  execFileSync(process.execPath, [MAKE_REPO, dir]);
  const git = (...args: string[]) => execFileSync('git', args, { cwd: dir, encoding: 'utf8' }).trim();
  const original = readFileSync(path.join(dir, HYPERPARAMETERS), 'utf8');
  const content = (lr: string, tail = '') => original.replace('lr: 0.05,', `lr: ${lr},`) + tail;
  // jsdiff's `Index:` and `===` lines are not part of a git patch.
  const edit = (from: string, to: string) =>
    createTwoFilesPatch(`a/${HYPERPARAMETERS}`, `b/${HYPERPARAMETERS}`, from, to, '', '', { context: 3 })
      .split('\n')
      .filter((line) => !line.startsWith('===') && !line.startsWith('Index:'))
      .join('\n');
  return { dir, folder, git, content, edit };
}

/** Deletes the repositories {@link makeSearchRepo} made; for `afterAll`. */
export function removeSearchRepos(): void {
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
}

/** Polls the search (bounded) until `predicate` holds; a failed query (no worker, no server) counts as not yet. */
export async function waitForSearch(
  client: Client,
  id: string,
  predicate: (status: SearchStatus) => boolean,
  timeoutMs = 90_000,
): Promise<SearchStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: SearchStatus | undefined;
  while (Date.now() < deadline) {
    last = (await searchStatus(client, id).catch(() => undefined)) ?? last;
    if (last && predicate(last)) return last;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`search ${id} never got there; last status: ${JSON.stringify(last, null, 2)}`);
}

/** A search campaign file beside (not in) the repository, with the scripted proposals, loaded as the CLI does. */
export function searchCampaignOf(
  repo: SearchRepo,
  id: string,
  search: Record<string, unknown>,
  proposals: unknown[] = [],
  approvals: Record<string, unknown> = { launch: { enabled: false } },
) {
  const folder = path.dirname(repo.dir);
  writeFileSync(path.join(folder, 'proposals.yaml'), toYaml({ proposals }));
  const file = path.join(folder, `${id}.yaml`);
  writeFileSync(
    file,
    toYaml({
      campaign_id: id,
      name: `search ${id}`,
      base: path.join(repo.dir, 'experiment.yaml'),
      search: {
        editable: [HYPERPARAMETERS],
        objective: searchObjective(2),
        trial: { time_limit: '2m' },
        proposer: { kind: 'scripted', file: 'proposals.yaml' },
        autonomy: 'autonomous',
        ...search,
      },
      approvals,
    }),
  );
  return searchCampaignFrom(readCampaignFile(file), file);
}

export const searchObjective = (seeds: number) => ({
  metric: 'eval/accuracy',
  goal: 'max',
  seeds,
  min_delta: 0.01,
  alpha: 0.05,
});

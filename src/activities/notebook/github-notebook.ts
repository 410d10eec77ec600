/**
 * The GitHub issue of an experiment or a campaign: opened at submission, its status section and `stage:` label rewritten on
 * every change, a comment per event, and the experiment post as the closing comment.
 *
 * Idempotency. GitHub has no idempotency keys, so everything Labline writes carries a hidden marker (the
 * run's name in the issue body, the run and event key in a comment), and an activity looks for the marker
 * before it writes: a retried attempt, or one after a worker was killed between creating and recording,
 * finds what the earlier one wrote. The issue number is also recorded in the run directory and returned to
 * the workflow, so later calls go straight to it.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { ApplicationFailure } from '@temporalio/activity';
import * as path from 'node:path';
import {
  commentMarker,
  FailureType,
  issueMarker,
  webUiWorkflowUrl,
  withStatusSection,
  type NotebookEvent,
} from '../../experiment';
import { writeFileAtomic } from '../atomic-file';
import { githubFailure, splitRepo, type GithubClient } from './github-client';
import type { GithubSettings } from './github-settings';

/** The issue of one experiment run or campaign. */
export interface NotebookIssue {
  number: number;
  url: string;
}

export interface OpenIssueInput {
  /** The experiment or campaign id (or a rerun's own name): the issue's marker. */
  runName: string;
  /** Where the issue number is recorded. */
  runDir: string;
  title: string;
  /** The whole body, with the marker and a status section (`issueBody`, `campaignIssueBody`). */
  body: string;
  stage: string;
  /** Labline approver names, assigned by their logins when the settings ask for it. */
  approvers: string[];
  /** When the workflow started, ISO 8601: an earlier attempt's issue was updated since. */
  since: string;
}

export interface UpdateIssueInput {
  runName: string;
  issue: number;
  /** The new status section (`statusSection`, `campaignStatusSection`). */
  section: string;
  stage: string;
  /** Checklist items to tick (deliverables met, children done), by the code name they show. */
  ticks?: string[];
  /** Something to comment on, once per key. */
  event?: NotebookEvent;
}

export interface CloseIssueInput {
  runName: string;
  runDir: string;
  issue: number;
  section: string;
  stage: string;
  /** The outcome label: `supported`, `refuted`, `inconclusive`, `failed`, `rejected`, `cancelled`, `completed`. */
  outcome: string;
  /** Why it ended, when it did not complete. */
  reason?: string;
  /** The report when it completed: the post. */
  reportPath?: string;
}

export interface PullRequestInput {
  /** The search campaign id: the pull request's marker. */
  runName: string;
  /** The local repository holding `branch`. */
  repoDir: string;
  /** The branch to propose; pushed to `remote` first. */
  branch: string;
  /** The branch to merge into; default the repository's default branch. */
  base?: string;
  title: string;
  body: string;
}

/** The file in the run directory that records the issue. */
export const ISSUE_RECORD = 'github-issue.json';

const execFileAsync = promisify(execFile);

/** The stage label of an issue. */
const stageLabel = (stage: string) => `stage:${stage}`;

export class GithubNotebook {
  private readonly owner: string;
  private readonly repo: string;

  /**
   * @param webUi the Temporal Web UI (base URL and namespace), linked from every issue when the worker knows it
   */
  constructor(
    private readonly client: GithubClient,
    private readonly settings: GithubSettings,
    private readonly webUi?: { url: string; namespace: string },
  ) {
    [this.owner, this.repo] = splitRepo(settings.repo);
  }

  /** Opens the experiment's issue, or finds the one an earlier attempt opened. */
  async open(input: OpenIssueInput): Promise<NotebookIssue> {
    const recorded = await this.recorded(input.runDir);
    if (recorded) return recorded;
    const found = await this.call('find the experiment issue', () =>
      this.findIssue(input.runName, input.since),
    );
    const issue =
      found ??
      (await this.call('open the experiment issue', async () => {
        const { data } = await this.client.rest.issues.create({
          owner: this.owner,
          repo: this.repo,
          title: input.title,
          body: this.withWebUiLink(input.body, input.runName),
          labels: [...this.settings.labels, stageLabel(input.stage)],
          assignees: this.assigneesOf(input.approvers),
        });
        return { number: data.number, url: data.html_url };
      }));
    // At submission the run directory may not exist yet: the record is its first file.
    await mkdir(input.runDir, { recursive: true });
    await writeFileAtomic(
      path.join(input.runDir, ISSUE_RECORD),
      `${JSON.stringify({ repo: this.settings.repo, ...issue }, null, 2)}\n`,
    );
    return issue;
  }

  /** Rewrites the status section and the stage label, and comments the event unless it is there already. */
  async update(input: UpdateIssueInput): Promise<void> {
    await this.call('update the experiment issue', async () => {
      const { data } = await this.client.rest.issues.get({
        owner: this.owner,
        repo: this.repo,
        issue_number: input.issue,
      });
      const body = withStatusSection(data.body ?? '', input.section, input.ticks);
      const current = labelNames(data.labels);
      const labels = [...current.filter((l) => !l.startsWith('stage:')), stageLabel(input.stage)];
      if (body !== data.body || !sameSet(labels, current))
        await this.client.rest.issues.update({
          owner: this.owner,
          repo: this.repo,
          issue_number: input.issue,
          body,
          labels,
        });
    });
    if (input.event) await this.commentOnce(input.issue, input.runName, input.event);
  }

  /** Posts the experiment post (or the reason it ended), labels the outcome and closes the issue. */
  async close(input: CloseIssueInput): Promise<void> {
    const post = input.reportPath
      ? await this.experimentPost(input.runName, input.reportPath)
      : `It ended \`${input.stage}\`${input.reason ? `: ${input.reason}` : ''}.`;
    await this.commentOnce(input.issue, input.runName, {
      key: 'post',
      title: `${input.stage === 'completed' ? 'Completed' : 'Ended'}: ${input.outcome}`,
      body: post,
    });
    await this.call('close the experiment issue', async () => {
      const { data } = await this.client.rest.issues.get({
        owner: this.owner,
        repo: this.repo,
        issue_number: input.issue,
      });
      const kept = labelNames(data.labels).filter((l) => !l.startsWith('stage:'));
      await this.client.rest.issues.update({
        owner: this.owner,
        repo: this.repo,
        issue_number: input.issue,
        body: withStatusSection(data.body ?? '', input.section),
        labels: [...new Set([...kept, stageLabel(input.stage), input.outcome])],
        state: 'closed',
        state_reason:
          input.outcome === 'rejected' || input.outcome === 'cancelled' ? 'not_planned' : 'completed',
      });
    });
  }

  /**
   * Pushes `branch` to the settings' `push_remote` and opens a draft pull request from it, or finds the one an
   * earlier attempt opened (GitHub allows one open pull request per head branch).
   */
  async openDraftPullRequest(input: PullRequestInput): Promise<NotebookIssue> {
    await pushBranch(input.repoDir, this.settings.push_remote, input.branch);
    const existing = async () => {
      const pulls = await this.client.paginate(this.client.rest.pulls.list, {
        owner: this.owner,
        repo: this.repo,
        head: `${this.owner}:${input.branch}`,
        state: 'all',
        per_page: 100,
      });
      const pull = pulls[0];
      return pull ? { number: pull.number, url: pull.html_url } : undefined;
    };
    return this.call(`open a draft pull request from ${input.branch}`, async () => {
      const found = await existing();
      if (found) return found;
      const base =
        input.base ??
        (await this.client.rest.repos.get({ owner: this.owner, repo: this.repo })).data.default_branch;
      const { data } = await this.client.rest.pulls.create({
        owner: this.owner,
        repo: this.repo,
        head: input.branch,
        base,
        title: input.title,
        body: input.body,
        draft: true,
      });
      return { number: data.number, url: data.html_url };
    });
  }

  /** The body with the run's Web UI page under its marker: the workflow does not know the UI's address. */
  private withWebUiLink(body: string, runName: string): string {
    if (!this.webUi) return body;
    const link = `**Temporal Web UI:** ${webUiWorkflowUrl(this.webUi.url, this.webUi.namespace, runName)}\n`;
    const marker = issueMarker(runName);
    return body.startsWith(marker) ? `${marker}\n${link}${body.slice(marker.length + 1)}` : `${link}${body}`;
  }

  /** The issue recorded in the run directory by an earlier attempt, for this repository. */
  private async recorded(runDir: string): Promise<NotebookIssue | undefined> {
    try {
      const record = JSON.parse(await readFile(path.join(runDir, ISSUE_RECORD), 'utf8')) as {
        repo?: string;
        number?: number;
        url?: string;
      };
      if (record.repo === this.settings.repo && typeof record.number === 'number')
        return { number: record.number, url: record.url ?? '' };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' && !(error instanceof SyntaxError)) throw error;
    }
    return undefined;
  }

  /** An issue with the run's marker, updated since the workflow started. */
  private async findIssue(runName: string, since: string): Promise<NotebookIssue | undefined> {
    const marker = issueMarker(runName);
    const issues = await this.client.paginate(this.client.rest.issues.listForRepo, {
      owner: this.owner,
      repo: this.repo,
      state: 'all',
      since,
      per_page: 100,
    });
    const issue = issues.find((candidate) => !candidate.pull_request && candidate.body?.includes(marker));
    return issue ? { number: issue.number, url: issue.html_url } : undefined;
  }

  private async commentOnce(issue: number, runName: string, event: NotebookEvent): Promise<void> {
    const marker = commentMarker(runName, event.key);
    await this.call(`comment "${event.title}"`, async () => {
      const comments = await this.client.paginate(this.client.rest.issues.listComments, {
        owner: this.owner,
        repo: this.repo,
        issue_number: issue,
        per_page: 100,
      });
      if (comments.some((comment) => comment.body?.includes(marker))) return;
      await this.client.rest.issues.createComment({
        owner: this.owner,
        repo: this.repo,
        issue_number: issue,
        body: `${marker}\n### ${event.title}\n\n${event.body}`.trimEnd(),
      });
    });
  }

  /**
   * The report as a post: its charts committed to the posts branch (GitHub does not show SVG attachments) and
   * linked there; with `post: file` the report too, and the comment links it.
   */
  private async experimentPost(runName: string, reportPath: string): Promise<string> {
    const report = await readFile(reportPath, 'utf8');
    const folder = `posts/${runName}`;
    const charts = [...report.matchAll(/\]\((charts\/[A-Za-z0-9._-]+\.svg)\)/g)].map((m) => m[1]!);
    const htmlUrl = await this.call('read the repository', async () => {
      const { data } = await this.client.rest.repos.get({ owner: this.owner, repo: this.repo });
      return data.html_url;
    });
    const raw = (file: string) => `${htmlUrl}/blob/${this.settings.posts_branch}/${folder}/${file}?raw=true`;
    for (const chart of new Set(charts))
      await this.commitFile(`${folder}/${chart}`, await readFile(path.join(path.dirname(reportPath), chart)));
    const linked = report.replace(
      /\]\((charts\/[A-Za-z0-9._-]+\.svg)\)/g,
      (_all, file: string) => `](${raw(file)})`,
    );
    if (this.settings.post === 'comment') return linked;
    await this.commitFile(`${folder}/report.md`, Buffer.from(linked));
    return `The experiment post: ${htmlUrl}/blob/${this.settings.posts_branch}/${folder}/report.md`;
  }

  /** Commits one file to the posts branch (created from the default branch), unless it is there already. */
  private async commitFile(file: string, content: Buffer): Promise<void> {
    const branch = this.settings.posts_branch;
    await this.call(`commit ${file} to ${branch}`, async () => {
      await this.ensureBranch(branch);
      const existing = await this.client.rest.repos
        .getContent({ owner: this.owner, repo: this.repo, path: file, ref: branch })
        .then(({ data }) => (Array.isArray(data) ? undefined : data))
        .catch((error: { status?: number }) => {
          if (error.status === 404) return undefined;
          throw error;
        });
      const encoded = content.toString('base64');
      if (existing && 'content' in existing && existing.content?.replace(/\n/g, '') === encoded) return;
      await this.client.rest.repos.createOrUpdateFileContents({
        owner: this.owner,
        repo: this.repo,
        path: file,
        branch,
        message: `Labline: ${file}`,
        content: encoded,
        ...(existing ? { sha: existing.sha } : {}),
      });
    });
  }

  private async ensureBranch(branch: string): Promise<void> {
    try {
      await this.client.rest.git.getRef({ owner: this.owner, repo: this.repo, ref: `heads/${branch}` });
      return;
    } catch (error) {
      if ((error as { status?: number }).status !== 404) throw error;
    }
    const { data: repository } = await this.client.rest.repos.get({ owner: this.owner, repo: this.repo });
    const { data: base } = await this.client.rest.git.getRef({
      owner: this.owner,
      repo: this.repo,
      ref: `heads/${repository.default_branch}`,
    });
    await this.client.rest.git
      .createRef({ owner: this.owner, repo: this.repo, ref: `refs/heads/${branch}`, sha: base.object.sha })
      .catch((error: { status?: number }) => {
        // Another attempt created it in between.
        if (error.status !== 422) throw error;
      });
  }

  private assigneesOf(approvers: readonly string[]): string[] {
    if (!this.settings.assignees_from_approvers) return [];
    const logins = approvers.map((name) => this.settings.approvers[name]);
    return [...new Set(logins.filter((login): login is string => login !== undefined))];
  }

  /** Runs GitHub calls, turning their errors into activity failures that say whether to retry. */
  private async call<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw githubFailure(error, what);
    }
  }
}

/** `git push <remote> <branch>`; a refusal is retried (a network blip) with git's own words. */
async function pushBranch(repoDir: string, remote: string, branch: string): Promise<void> {
  try {
    await execFileAsync(
      'git',
      ['-C', repoDir, 'push', '--quiet', remote, `refs/heads/${branch}:refs/heads/${branch}`],
      {
        timeout: 120_000,
        env: { ...process.env, GIT_TERMINAL_PROMPT: '0' },
      },
    );
  } catch (error) {
    const output = (error as { stderr?: unknown }).stderr;
    const stderr = (typeof output === 'string' && output ? output : (error as Error).message).trim();
    throw ApplicationFailure.retryable(
      `git push ${remote} ${branch} failed in ${repoDir}: ${stderr.split('\n').slice(-3).join(' ')}. ` +
        `Check that the remote \`${remote}\` (settings github.push_remote) points at the GitHub repository and ` +
        'that git can push there without a prompt (an SSH key or a credential helper).',
      FailureType.NotifierUnavailable,
    );
  }
}

function labelNames(labels: ReadonlyArray<string | { name?: string | undefined }>): string[] {
  return labels.map((label) => (typeof label === 'string' ? label : (label.name ?? ''))).filter(Boolean);
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((item) => b.includes(item));
}

/**
 * `labline github --poll`: for setups without a public URL. Reads the repository's new issue comments every
 * `poll_interval_seconds` and takes each once (comment ids are kept in a file, so a restart takes none twice).
 */
import type { SeenRequests } from '../slack/seen-requests';
import { splitRepo, type GithubClient } from '../../activities/notebook/github-client';
import type { GithubDecisions } from './decisions';

export interface GithubPollerOptions {
  github: GithubClient;
  repo: string;
  decisions: GithubDecisions;
  seen: SeenRequests;
  /** Comments created before this are not read (ISO 8601). Default: when the poller starts. */
  since?: string;
  log?: (line: string) => void;
}

export class GithubPoller {
  private since: string;
  private readonly issueBodies = new Map<number, string | null>();

  constructor(private readonly options: GithubPollerOptions) {
    this.since = options.since ?? new Date().toISOString();
  }

  /** Reads and takes the comments created since the last poll; returns how many were commands. */
  async pollOnce(): Promise<number> {
    const [owner, repo] = splitRepo(this.options.repo);
    const { github } = this.options;
    const comments = await github.paginate(github.rest.issues.listCommentsForRepo, {
      owner,
      repo,
      since: this.since,
      sort: 'created',
      direction: 'asc',
      per_page: 100,
    });
    let taken = 0;
    for (const comment of comments) {
      // `since` compares update times: a comment seen at the previous poll comes again, so ids are checked.
      if (comment.created_at > this.since) this.since = comment.created_at;
      const key = `comment:${comment.id}`;
      if (!this.options.seen.claim(key)) continue;
      const issueNumber = Number(/\/issues\/(\d+)$/.exec(comment.issue_url)?.[1]);
      let result;
      try {
        result = await this.options.decisions.handle({
          id: comment.id,
          body: comment.body ?? '',
          login: comment.user?.login ?? '',
          userType: comment.user?.type ?? 'User',
          issue: { number: issueNumber, body: await this.issueBody(owner, repo, issueNumber) },
        });
      } catch (error) {
        // Not taken: the next poll reads it again (its time is not past `since`) and takes it then.
        this.options.seen.release(key);
        throw error;
      }
      if (result.kind !== 'ignored') {
        taken += 1;
        this.options.log?.(`[labline github] comment ${comment.id}: ${result.kind}`);
      }
    }
    return taken;
  }

  private async issueBody(owner: string, repo: string, issue: number): Promise<string | null> {
    if (!this.issueBodies.has(issue)) {
      const { data } = await this.options.github.rest.issues.get({ owner, repo, issue_number: issue });
      this.issueBodies.set(issue, data.body ?? null);
    }
    return this.issueBodies.get(issue) ?? null;
  }
}

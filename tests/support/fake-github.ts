/**
 * A fake GitHub REST API on 127.0.0.1 for one repository, speaking the real wire format: Bearer or `token`
 * auth, JSON bodies, `Link` pagination, rate-limit headers, 403 secondary limits with Retry-After, 422
 * validation errors. Enough for the real `@octokit/rest`: users, repos, issues, comments, labels, git refs,
 * contents, pulls and collaborator permissions. Failures are injected per route.
 */
import { execFileSync } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeIssue {
  number: number;
  title: string;
  body: string;
  state: 'open' | 'closed';
  state_reason: string | null;
  labels: string[];
  assignees: string[];
  user: string;
  updated_at: string;
  comments: FakeComment[];
}

export interface FakeComment {
  id: number;
  body: string;
  user: string;
  user_type: 'User' | 'Bot';
  created_at: string;
  issue: number;
}

export interface FakeGithubCall {
  method: string;
  path: string;
  status: number;
  body: unknown;
}

interface InjectedFailure {
  /** `METHOD /path` with `*` for any segment, e.g. `POST /repos/*\/*\/issues`. */
  route: string;
  status: number;
  headers?: Record<string, string>;
  body: Record<string, unknown>;
  times: number;
}

export interface FakeGithubOptions {
  token?: string;
  owner?: string;
  repo?: string;
  /** A bare git repository standing for the repository's git side: branches pushed there exist here. */
  gitDir?: string;
  /** Login of the token's user. Default `labline-bot`. */
  login?: string;
  /** Permission per login on the repository (`admin`, `write`, `read`). Default: the token's user has `admin`. */
  permissions?: Record<string, 'admin' | 'write' | 'read'>;
}

export class FakeGithub {
  readonly token: string;
  readonly owner: string;
  readonly repo: string;
  readonly login: string;
  readonly issues: FakeIssue[] = [];
  readonly calls: FakeGithubCall[] = [];
  readonly refs = new Map<string, string>([['main', 'a'.repeat(40)]]);
  /** `branch:path` → content (base64) and sha. */
  readonly files = new Map<string, { content: string; sha: string }>();
  readonly pulls: {
    number: number;
    head: string;
    base: string;
    title: string;
    body: string;
    draft: boolean;
  }[] = [];
  readonly permissions: Record<string, 'admin' | 'write' | 'read'>;
  readonly gitDir: string | undefined;
  private readonly failures: InjectedFailure[] = [];
  private readonly holds: { route: string; reached: () => void; released: Promise<void> }[] = [];
  private server?: Server;
  private nextId = 1000;
  private clock = 0;

  constructor(options: FakeGithubOptions = {}) {
    this.token = options.token ?? 'ghp_fake';
    this.owner = options.owner ?? 'lab';
    this.repo = options.repo ?? 'notebook';
    this.login = options.login ?? 'labline-bot';
    this.permissions = { [this.login]: 'admin', ...options.permissions };
    this.gitDir = options.gitDir;
  }

  get url(): string {
    const address = this.server?.address() as AddressInfo | undefined;
    if (!address) throw new Error('the fake GitHub is not started');
    return `http://127.0.0.1:${address.port}`;
  }

  get fullName(): string {
    return `${this.owner}/${this.repo}`;
  }

  async start(): Promise<this> {
    this.server = createServer((request, response) => {
      void this.handle(request, response);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return this;
  }

  async stop(): Promise<void> {
    for (const hold of this.holds.splice(0)) hold.reached();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** The next `times` requests matching `route` fail with `status`, `headers` and `body`. */
  fail(
    route: string,
    status: number,
    body: Record<string, unknown>,
    headers?: Record<string, string>,
    times = 1,
  ) {
    this.failures.push({ route, status, body, ...(headers ? { headers } : {}), times });
  }

  /**
   * The next request matching `route` is carried out but not answered until `release` is called, as when a
   * caller dies between GitHub acting and the answer arriving. `reached` resolves once it was carried out.
   */
  hold(route: string): { reached: Promise<void>; release: () => void } {
    let reached!: () => void;
    let release!: () => void;
    const reachedPromise = new Promise<void>((resolve) => (reached = resolve));
    const released = new Promise<void>((resolve) => (release = resolve));
    this.holds.push({ route, reached, released });
    return { reached: reachedPromise, release };
  }

  /** Someone comments on an issue (as GitHub would record it); returns the comment. */
  addComment(issue: number, user: string, body: string, userType: 'User' | 'Bot' = 'User'): FakeComment {
    const target = this.issue(issue);
    const comment = { id: this.nextId++, body, user, user_type: userType, created_at: this.now(), issue };
    target.comments.push(comment);
    return comment;
  }

  issue(number: number): FakeIssue {
    const issue = this.issues.find((candidate) => candidate.number === number);
    if (!issue) throw new Error(`the fake GitHub has no issue #${number}`);
    return issue;
  }

  /** Writes (POST, PATCH, PUT, DELETE) answered with a 2xx status. */
  writes(): FakeGithubCall[] {
    return this.calls.filter((call) => call.method !== 'GET' && call.status < 300);
  }

  /** The JSON GitHub sends for an issue (also the `issue` of webhook payloads). */
  issueJson(issue: FakeIssue): Record<string, unknown> {
    return {
      id: issue.number + 10_000,
      number: issue.number,
      title: issue.title,
      body: issue.body,
      state: issue.state,
      state_reason: issue.state_reason,
      labels: issue.labels.map((name) => ({ name })),
      assignees: issue.assignees.map((login) => ({ login })),
      user: { login: issue.user, type: 'User' },
      html_url: `${this.htmlUrl()}/issues/${issue.number}`,
      url: `${this.url}/repos/${this.fullName}/issues/${issue.number}`,
      comments: issue.comments.length,
      updated_at: issue.updated_at,
    };
  }

  /** The JSON GitHub sends for a comment. */
  commentJson(comment: FakeComment): Record<string, unknown> {
    return {
      id: comment.id,
      body: comment.body,
      user: { login: comment.user, type: comment.user_type },
      created_at: comment.created_at,
      updated_at: comment.created_at,
      html_url: `${this.htmlUrl()}/issues/${comment.issue}#issuecomment-${comment.id}`,
      issue_url: `${this.url}/repos/${this.fullName}/issues/${comment.issue}`,
    };
  }

  htmlUrl(): string {
    return `https://github.example/${this.fullName}`;
  }

  /** Now, or a millisecond after the last change: timestamps are ordered and never collide. */
  private now(): string {
    this.clock = Math.max(Date.now(), this.clock + 1);
    return new Date(this.clock).toISOString();
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://github.test');
    const method = request.method ?? 'GET';
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let body: Record<string, unknown> = {};
    if (text) {
      try {
        body = JSON.parse(text) as Record<string, unknown>;
      } catch {
        return this.send(response, method, url.pathname, 400, { message: 'Problems parsing JSON' });
      }
    }
    const auth = request.headers.authorization ?? '';
    if (auth !== `token ${this.token}` && auth !== `Bearer ${this.token}`)
      return this.send(response, method, url.pathname, 401, { message: 'Bad credentials' }, body);
    const failure = this.failures.find((f) => f.times > 0 && routeMatches(f.route, method, url.pathname));
    if (failure) {
      failure.times -= 1;
      return this.send(response, method, url.pathname, failure.status, failure.body, body, failure.headers);
    }
    const [status, answer, headers] = this.route(method, url, body);
    const hold = this.holds.findIndex((h) => routeMatches(h.route, method, url.pathname));
    if (hold >= 0) {
      const [{ reached, released }] = this.holds.splice(hold, 1) as [FakeGithub['holds'][number]];
      reached();
      await released;
      if (response.destroyed) return;
    }
    return this.send(response, method, url.pathname, status, answer, body, headers);
  }

  private send(
    response: ServerResponse,
    method: string,
    path: string,
    status: number,
    answer: unknown,
    requestBody: unknown = {},
    headers: Record<string, string> = {},
  ): void {
    this.calls.push({ method, path, status, body: requestBody });
    response.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'x-ratelimit-limit': '5000',
      'x-ratelimit-remaining': '4999',
      'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + 3600),
      'x-github-request-id': `FAKE:${this.calls.length}`,
      ...headers,
    });
    response.end(status === 204 ? undefined : JSON.stringify(answer));
  }

  private route(
    method: string,
    url: URL,
    body: Record<string, unknown>,
  ): [number, unknown, Record<string, string>?] {
    // Octokit encodes slashes inside a parameter (`heads%2Flabline%2Fposts`); GitHub decodes them.
    const path = decodeURIComponent(url.pathname);
    if (method === 'GET' && path === '/user') return [200, { login: this.login, type: 'User' }];
    const prefix = `/repos/${this.owner}/${this.repo}`;
    if (!path.startsWith(prefix)) return [404, { message: 'Not Found' }];
    const rest = path.slice(prefix.length);
    const notFound: [number, unknown] = [404, { message: 'Not Found' }];
    let match: RegExpExecArray | null;

    if (method === 'GET' && rest === '')
      return [
        200,
        {
          full_name: this.fullName,
          default_branch: 'main',
          has_issues: true,
          html_url: this.htmlUrl(),
          permissions: { admin: true, push: true, pull: true, triage: true },
        },
      ];
    if (method === 'POST' && rest === '/issues') {
      if (typeof body.title !== 'string' || !body.title)
        return [
          422,
          {
            message: 'Validation Failed',
            errors: [{ resource: 'Issue', field: 'title', code: 'missing_field' }],
          },
        ];
      const issue: FakeIssue = {
        number: this.issues.length + 1,
        title: body.title,
        body: typeof body.body === 'string' ? body.body : '',
        state: 'open',
        state_reason: null,
        labels: [...new Set((body.labels as string[] | undefined) ?? [])],
        assignees: (body.assignees as string[] | undefined) ?? [],
        user: this.login,
        updated_at: this.now(),
        comments: [],
      };
      this.issues.push(issue);
      return [201, this.issueJson(issue)];
    }
    if (method === 'GET' && rest === '/issues') {
      const since = url.searchParams.get('since');
      const state = url.searchParams.get('state') ?? 'open';
      const found = this.issues
        .filter((issue) => state === 'all' || issue.state === state)
        .filter((issue) => !since || issue.updated_at >= since)
        .sort((a, b) => b.number - a.number);
      return this.page(
        url,
        found.map((issue) => this.issueJson(issue)),
      );
    }
    if ((match = /^\/issues\/(\d+)$/.exec(rest))) {
      const issue = this.issues.find((candidate) => candidate.number === Number(match![1]));
      if (!issue) return notFound;
      if (method === 'GET') return [200, this.issueJson(issue)];
      if (method === 'PATCH') {
        if (typeof body.body === 'string') issue.body = body.body;
        if (typeof body.title === 'string') issue.title = body.title;
        if (Array.isArray(body.labels)) issue.labels = [...new Set(body.labels as string[])];
        if (body.state === 'open' || body.state === 'closed') issue.state = body.state;
        if (typeof body.state_reason === 'string') issue.state_reason = body.state_reason;
        issue.updated_at = this.now();
        return [200, this.issueJson(issue)];
      }
    }
    if ((match = /^\/issues\/(\d+)\/comments$/.exec(rest))) {
      const issue = this.issues.find((candidate) => candidate.number === Number(match![1]));
      if (!issue) return notFound;
      if (method === 'GET')
        return this.page(
          url,
          issue.comments.map((c) => this.commentJson(c)),
        );
      if (method === 'POST') {
        if (typeof body.body !== 'string' || !body.body)
          return [
            422,
            {
              message: 'Validation Failed',
              errors: [{ resource: 'IssueComment', field: 'body', code: 'missing_field' }],
            },
          ];
        if (body.body.length > 65_536)
          return [
            422,
            {
              message: 'Validation Failed',
              errors: [
                {
                  resource: 'IssueComment',
                  field: 'body',
                  code: 'custom',
                  message: 'body is too long (maximum is 65536 characters)',
                },
              ],
            },
          ];
        const comment = this.addComment(issue.number, this.login, body.body, 'Bot');
        issue.updated_at = this.now();
        return [201, this.commentJson(comment)];
      }
    }
    if (method === 'GET' && rest === '/issues/comments') {
      const since = url.searchParams.get('since');
      const all = this.issues
        .flatMap((issue) => issue.comments)
        .filter((comment) => !since || comment.created_at >= since)
        .sort((a, b) => a.created_at.localeCompare(b.created_at) || a.id - b.id);
      return this.page(
        url,
        all.map((c) => this.commentJson(c)),
      );
    }
    if ((match = /^\/collaborators\/([^/]+)\/permission$/.exec(rest)) && method === 'GET') {
      const permission = this.permissions[match[1]!] ?? 'read';
      return [200, { permission, user: { login: match[1] } }];
    }
    if ((match = /^\/git\/ref\/heads\/(.+)$/.exec(rest)) && method === 'GET') {
      const sha = this.refs.get(match[1]!);
      return sha ? [200, { ref: `refs/heads/${match[1]}`, object: { sha, type: 'commit' } }] : notFound;
    }
    if (method === 'POST' && rest === '/git/refs') {
      const ref = text(body.ref).replace(/^refs\/heads\//, '');
      if (this.refs.has(ref)) return [422, { message: 'Reference already exists' }];
      this.refs.set(ref, String(body.sha));
      return [201, { ref: `refs/heads/${ref}`, object: { sha: body.sha, type: 'commit' } }];
    }
    if ((match = /^\/contents\/(.+)$/.exec(rest))) {
      const file = match[1]!;
      const branch = url.searchParams.get('ref') ?? (body.branch as string | undefined) ?? 'main';
      const key = `${branch}:${file}`;
      if (method === 'GET') {
        const found = this.files.get(key);
        return found
          ? [200, { type: 'file', path: file, sha: found.sha, content: found.content, encoding: 'base64' }]
          : notFound;
      }
      if (method === 'PUT') {
        if (!this.refs.has(branch)) return [404, { message: `Branch ${branch} not found` }];
        const existing = this.files.get(key);
        if (existing && body.sha !== existing.sha)
          return [409, { message: `${file} does not match ${String(body.sha)}` }];
        if (!existing && body.sha !== undefined) return [422, { message: 'sha was given for a new file' }];
        const sha = (this.nextId++).toString(16).padStart(40, '0');
        this.files.set(key, { content: String(body.content), sha });
        return [existing ? 200 : 201, { content: { path: file, sha }, commit: { sha } }];
      }
    }
    if (rest === '/pulls' && method === 'GET') {
      const head = url.searchParams.get('head');
      const found = this.pulls.filter((p) => !head || `${this.owner}:${p.head}` === head);
      return this.page(
        url,
        found.map((p) => this.pullJson(p)),
      );
    }
    if (rest === '/pulls' && method === 'POST') {
      const head = text(body.head);
      if (!this.hasBranch(head))
        return [
          422,
          {
            message: 'Validation Failed',
            errors: [{ resource: 'PullRequest', field: 'head', code: 'invalid' }],
          },
        ];
      if (this.pulls.some((p) => p.head === head))
        return [
          422,
          {
            message: 'Validation Failed',
            errors: [
              {
                resource: 'PullRequest',
                code: 'custom',
                message: `A pull request already exists for ${this.owner}:${head}.`,
              },
            ],
          },
        ];
      const pull = {
        number: this.issues.length + this.pulls.length + 1,
        head,
        base: text(body.base) || 'main',
        title: text(body.title),
        body: text(body.body),
        draft: body.draft === true,
      };
      this.pulls.push(pull);
      return [201, this.pullJson(pull)];
    }
    return notFound;
  }

  /** A branch created through the API, or pushed to {@link gitDir}. */
  private hasBranch(branch: string): boolean {
    if (this.refs.has(branch)) return true;
    if (!this.gitDir) return false;
    try {
      execFileSync('git', ['-C', this.gitDir, 'rev-parse', '--verify', '--quiet', `refs/heads/${branch}`]);
      return true;
    } catch {
      return false;
    }
  }

  private pullJson(pull: FakeGithub['pulls'][number]): Record<string, unknown> {
    return {
      number: pull.number,
      title: pull.title,
      body: pull.body,
      draft: pull.draft,
      state: 'open',
      head: { ref: pull.head, label: `${this.owner}:${pull.head}` },
      base: { ref: pull.base },
      html_url: `${this.htmlUrl()}/pull/${pull.number}`,
    };
  }

  /** One page of `items` (`page`, `per_page`), with GitHub's `Link` header to the next one. */
  private page(url: URL, items: unknown[]): [number, unknown, Record<string, string>?] {
    const perPage = Math.min(100, Number(url.searchParams.get('per_page') ?? 30));
    const page = Number(url.searchParams.get('page') ?? 1);
    const slice = items.slice((page - 1) * perPage, page * perPage);
    if (page * perPage >= items.length) return [200, slice];
    const next = new URL(url.toString().replace('http://github.test', this.url));
    next.searchParams.set('page', String(page + 1));
    return [200, slice, { link: `<${next.toString()}>; rel="next"` }];
  }
}

/** A string field of a request body, or `''`. */
const text = (value: unknown): string => (typeof value === 'string' ? value : '');

function routeMatches(route: string, method: string, path: string): boolean {
  const [routeMethod, routePath = ''] = route.split(' ');
  if (routeMethod !== method) return false;
  const pattern = new RegExp(
    `^${routePath
      .split('*')
      .map((part) => part.replace(/[.?+^$()[\]{}|\\]/g, '\\$&'))
      .join('[^/]+')}$`,
  );
  return pattern.test(path);
}

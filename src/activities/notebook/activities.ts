/** The lab notebook's activities: the experiment's GitHub issue, opened, kept current and closed. */
import { ApplicationFailure } from '@temporalio/activity';
import { FailureType } from '../../experiment';
import type {
  CloseIssueInput,
  GithubNotebook,
  NotebookIssue,
  OpenIssueInput,
  PullRequestInput,
  UpdateIssueInput,
} from './github-notebook';

export function createNotebookActivities(deps: { notebook?: GithubNotebook }) {
  const notebook = (): GithubNotebook => {
    if (deps.notebook) return deps.notebook;
    // The experiment was submitted with a `github` section this worker lacks: retrying cannot help.
    throw ApplicationFailure.nonRetryable(
      'This worker has no `github` section in its Labline settings, but the experiment was submitted with ' +
        'one: give the worker the same settings file (and GITHUB_TOKEN), then retry the experiment.',
      FailureType.InvalidSettings,
    );
  };
  return {
    async openExperimentIssue(input: OpenIssueInput): Promise<NotebookIssue> {
      return notebook().open(input);
    },
    async updateExperimentIssue(input: UpdateIssueInput): Promise<void> {
      await notebook().update(input);
    },
    async closeExperimentIssue(input: CloseIssueInput): Promise<void> {
      await notebook().close(input);
    },
    async openSearchPullRequest(input: PullRequestInput): Promise<NotebookIssue> {
      return notebook().openDraftPullRequest(input);
    },
  };
}

export type NotebookActivities = ReturnType<typeof createNotebookActivities>;

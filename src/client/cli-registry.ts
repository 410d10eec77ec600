/**
 * Every `labline` command: its name, arguments and one-line summary, and the module that defines it. The
 * entry point loads only the module of the command asked for, so that a command starts in a fraction of a
 * second rather than loading the Temporal client, the embedded server and Slack for every run; the summaries
 * here make `labline --help` without loading any.
 */
import type { Command } from 'commander';
import type * as DevServerModule from '../devserver/cli';
import type * as CampaignModule from './cli-campaign';
import type * as CompletionModule from './cli-completion';
import type * as ExperimentsModule from './cli-experiments';
import type * as ListModule from './cli-list';
import type * as ReproduceModule from './cli-reproduce';
import type * as LogsModule from './cli-logs';
import type * as SchemaModule from './cli-schema';
import type * as SearchModule from './cli-search';
import type * as ServerModule from './cli-server';
import type * as StartModule from './cli-start';
import type * as TrainerPathModule from './cli-trainer-path';
import type * as ValidateModule from './cli-validate';
import type * as SlackModule from './slack/cli';
import type * as GithubModule from './github/cli';

/** Adds a group's commands to the program. */
type AddCommands = (program: Command) => void;

interface CommandEntry {
  /** Name and arguments, as commander takes them (`status <id>`). */
  usage: string;
  summary: string;
  /** The module that defines it (and the other commands of its group), loaded when it is asked for. */
  load: () => AddCommands;
}

/* eslint-disable @typescript-eslint/no-require-imports -- loaded on demand: that is the point of this file */
const start = (): AddCommands => (require('./cli-start') as typeof StartModule).addStartCommands;
const server = (): AddCommands => (require('./cli-server') as typeof ServerModule).addServerCommand;
const experiments = (): AddCommands =>
  (require('./cli-experiments') as typeof ExperimentsModule).addExperimentCommands;
const schema = (): AddCommands => (require('./cli-schema') as typeof SchemaModule).addSchemaCommand;
const list = (): AddCommands => (require('./cli-list') as typeof ListModule).addListCommand;
const logs = (): AddCommands => (require('./cli-logs') as typeof LogsModule).addLogsCommand;
const validate = (): AddCommands => (require('./cli-validate') as typeof ValidateModule).addValidateCommand;
const reproduce = (): AddCommands =>
  (require('./cli-reproduce') as typeof ReproduceModule).addReproduceCommands;
const trainerPath = (): AddCommands =>
  (require('./cli-trainer-path') as typeof TrainerPathModule).addTrainerPathCommand;
const campaign = (): AddCommands => (require('./cli-campaign') as typeof CampaignModule).addCampaignCommands;
const search = (): AddCommands => (require('./cli-search') as typeof SearchModule).addSearchCommands;
const slack = (): AddCommands => (require('./slack/cli') as typeof SlackModule).addSlackCommand;
const github = (): AddCommands => (require('./github/cli') as typeof GithubModule).addGithubCommand;
const devserver = (): AddCommands =>
  (require('../devserver/cli') as typeof DevServerModule).addDevServerCommand;
const completion = (): AddCommands =>
  (require('./cli-completion') as typeof CompletionModule).addCompletionCommand;
/* eslint-enable @typescript-eslint/no-require-imports */

export const COMMANDS: Readonly<Record<string, CommandEntry>> = {
  start: {
    usage: 'start <spec>',
    summary:
      'Run an experiment end to end: connect to the configured Temporal (or start a local one), run a worker, ' +
      'submit, show progress, ask for approvals here, and print where the report is.',
    load: start,
  },
  server: {
    usage: 'server',
    summary:
      'Run a local Temporal and a Labline worker until Ctrl-C (or `labline server stop`). start, submit, campaign, ' +
      'status, approve and the rest use it; its data stays in the data folder (.labline/) across restarts.',
    load: server,
  },
  worker: {
    usage: 'worker',
    summary: 'Run a Labline worker until interrupted (SIGINT/SIGTERM).',
    load: start,
  },
  submit: {
    usage: 'submit <spec>',
    summary: 'Validate a spec and start its experiment (a worker must be running).',
    load: experiments,
  },
  list: {
    usage: 'list',
    summary:
      'List experiments and campaigns: those running, then those closed in the last 7 days, most recent first ' +
      '(--all: everything the server keeps).',
    load: list,
  },
  status: {
    usage: 'status <id>',
    summary: "Show an experiment's stage, decisions, attempts, the trainer's log, links and costs.",
    load: experiments,
  },
  watch: { usage: 'watch <id>', summary: 'Follow an experiment until it ends.', load: experiments },
  logs: {
    usage: 'logs <id>',
    summary: "Print the trainer's output of an experiment's latest launch (or --attempt N); -f follows it.",
    load: logs,
  },
  approve: {
    usage: 'approve <id>',
    summary:
      'Approve the open gate (at a failure gate: retry; at a deliverables gate: accept, or --choice rerun).',
    load: experiments,
  },
  reject: {
    usage: 'reject <id>',
    summary: 'Reject the open gate (at a failure or deliverables gate: abort).',
    load: experiments,
  },
  cancel: {
    usage: 'cancel <id>',
    summary: 'Cancel an experiment: its training process is stopped and it ends as cancelled.',
    load: experiments,
  },
  validate: {
    usage: 'validate <spec>',
    summary:
      "Check an existing run against the spec's deliverables, without starting a workflow. " +
      'Exit code 0: all required deliverables met; 1: some not met; 2: an error.',
    load: validate,
  },
  schema: {
    usage: 'schema',
    summary: 'Print the JSON Schema of experiment specs (for editors).',
    load: schema,
  },
  campaign: {
    usage: 'campaign <spec>',
    summary:
      'Run a campaign (variants × seeds, or reviewed ablations) end to end, like start; a campaign with a ' +
      '`search` section runs a search: a proposer edits the code, trial by trial, keeping what is significantly better.',
    load: campaign,
  },
  reproduce: {
    usage: 'reproduce <id>',
    summary:
      'Run a past experiment again from its reproducibility record: same commit and patch, command, config and ' +
      'data (refused when the data changed), as a child of the original; --compare checks the metrics.',
    load: reproduce,
  },
  diff: {
    usage: 'diff <id-a> <id-b>',
    summary:
      "Print what differs between two runs' records: code (with the diff stat), config, environment, data.",
    load: reproduce,
  },
  review: {
    usage: 'review <campaign> <proposal> <action>',
    summary:
      "Review a proposed ablation of a campaign (approve, drop, or edit with --set), or a search's proposal " +
      'trial-<n> (approve, drop, or edit with --diff).',
    load: campaign,
  },
  search: {
    usage: 'search <action> <campaign>',
    summary:
      'Inspect or steer a search campaign: status (--json), pause, resume, stop (--reason), or budget (--max-trials, ' +
      '--gpu-hours, --llm-usd, --wall-time).',
    load: search,
  },
  lineage: {
    usage: 'lineage <id>',
    summary: "Print the tree of an experiment's ancestors and descendants, with outcome and primary metric.",
    load: campaign,
  },
  slack: {
    usage: 'slack',
    summary:
      'Run the Slack endpoint: decision buttons and the /labline slash command decide approval gates ' +
      '(needs SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN, and a `slack` section in the settings).',
    load: slack,
  },
  github: {
    usage: 'github',
    summary:
      'Take decisions from GitHub: `/labline approve` and `/labline reject <reason>` comments on experiment issues ' +
      'decide approval gates, through a webhook endpoint (needs GITHUB_WEBHOOK_SECRET) or with --poll ' +
      '(needs GITHUB_TOKEN and a `github` section in the settings).',
    load: github,
  },
  'trainer-path': {
    usage: 'trainer-path',
    summary:
      'Print the folder of the Python helper (labline-trainer) in this installation: pip install "$(npx labline trainer-path)".',
    load: trainerPath,
  },
  completion: {
    usage: 'completion <shell>',
    summary: 'Print a completion script for bash, zsh or fish (commands, their options, then file names).',
    load: completion,
  },
  devserver: {
    usage: 'devserver',
    summary: 'Run the embedded Temporal-compatible development server (gRPC, 127.0.0.1).',
    load: devserver,
  },
};

/** The summary of a command, for its module's `.description()`. */
export function commandSummary(name: string): string {
  const entry = COMMANDS[name];
  if (!entry) throw new Error(`labline has no command ${name} in cli-registry.ts`);
  return entry.summary;
}

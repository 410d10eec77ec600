/**
 * Slack approvals end to end in one process: a fake Slack, the `labline slack` endpoint on a free port,
 * and experiment activities whose notifier is the real SlackNotifier posting to the fake. Tests click the
 * buttons of the messages the notifier posted, with requests signed as Slack signs them.
 */
import { LogLevel } from '@slack/bolt';
import { createNotifyActivities } from '../../src/activities/notify/activities';
import { createSlackWebClient, SlackNotifier } from '../../src/activities/notify/slack';
import {
  SlackSettings,
  type SlackSettings as SlackSettingsType,
} from '../../src/activities/notify/slack-settings';
import { startSlackBridge, type SlackBridge } from '../../src/client/slack/bridge';
import type { GateName } from '../../src/experiment';
import { experimentRig, type ExperimentRig } from './experiments';
import { FakeSlack, sendSigned, startFakeSlack, type FakeMessage, type FakeSlackUser } from './fake-slack';
import type { TestTemporal } from './temporal';

export const signingSecret = 'test-signing-secret-0123456789abcdef';

export interface SlackRig {
  slack: FakeSlack;
  bridge: SlackBridge;
  settings: SlackSettingsType;
  /** The experiment rig, its notifier replaced by the SlackNotifier. */
  rig: ExperimentRig;
  /** Clicks a button of a posted message as `user`; returns the HTTP answer and the response_url id. */
  click(
    message: FakeMessage,
    actionId: string,
    user: FakeSlackUser,
  ): Promise<{ status: number; body: string; responseId: string }>;
  /** Types `/labline <text>` as `user`. */
  command(text: string, user: FakeSlackUser): Promise<{ status: number; body: string; responseId: string }>;
  /** Stops the endpoint and starts a new one on the same port (a restart), with the same options. */
  restartBridge(): Promise<void>;
  /** Waits for the top-level request of an experiment's gate (`kind` request by default). */
  request(experimentId: string, gate: GateName, kind?: string, round?: number): Promise<FakeMessage>;
  stop(): Promise<void>;
}

export async function startSlackRig(
  env: TestTemporal,
  approvers: SlackSettingsType['approvers'] = {
    alice: 'U0ALICE01',
    bob: 'bob@example.com',
    lead: 'U0LEAD001',
  },
  options: { seenRequestsFile?: string } = {},
): Promise<SlackRig> {
  const slack = await startFakeSlack();
  const settings = SlackSettings.parse({ channel: 'C0APPROVALS', approvers, port: 0, api_url: slack.apiUrl });
  const startBridge = (port?: number) =>
    startSlackBridge({
      client: env.client,
      settings,
      signingSecret,
      botToken: slack.token,
      logLevel: LogLevel.ERROR,
      ...(port === undefined ? {} : { port }),
      ...(options.seenRequestsFile ? { seenRequestsFile: options.seenRequestsFile } : {}),
    });
  let bridge = await startBridge();
  const base = experimentRig();
  const notifier = new SlackNotifier({
    client: createSlackWebClient({ token: slack.token, apiUrl: slack.apiUrl }),
    settings,
  });
  const rig: ExperimentRig = {
    ...base,
    activities: { ...base.activities, ...createNotifyActivities({ notifier }) },
  };
  return {
    slack,
    get bridge() {
      return bridge;
    },
    settings,
    rig,
    async restartBridge() {
      await bridge.stop();
      bridge = await startBridge(bridge.port);
    },
    async click(message, actionId, user) {
      const body = slack.blockActionsBody(message, actionId, user);
      const answer = await sendSigned(bridge.url, body, { signingSecret });
      return { ...answer, responseId: FakeSlack.responseId(body) };
    },
    async command(text, user) {
      const body = slack.slashCommandBody(text, user);
      const answer = await sendSigned(bridge.url, body, { signingSecret });
      return { ...answer, responseId: FakeSlack.responseId(body) };
    },
    request(experimentId, gate, kind = 'request', round) {
      return slack.until(
        () =>
          slack.topLevel().find((m) => {
            const payload = FakeSlack.payload(m);
            return (
              payload.experiment_id === experimentId &&
              payload.gate === gate &&
              payload.kind === kind &&
              (round === undefined || payload.round === round)
            );
          }),
        `the ${kind} of the ${gate} gate of ${experimentId}`,
      );
    },
    async stop() {
      await bridge.stop();
      await slack.stop();
    },
  };
}

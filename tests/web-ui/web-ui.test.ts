/**
 * What a person sees of an experiment in the Temporal Web UI of the real dev server, checked in a real browser
 * (Debian's Chromium driven by playwright-core): the experiment in the list filtered by its stage, its static
 * summary and details, its current details at the launch gate and after the decision, and the training
 * activity's heartbeat details. Screenshots go to a temp dir, or to docs/web-ui/ with LABLINE_UPDATE_SCREENSHOTS=1.
 */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { cancelExperiment, decide, experimentHandle, submitExperiment } from '../../src/client/experiments';
import {
  findTemporalCli,
  startTemporalCliServer,
  type TemporalCliServer,
} from '../../src/client/temporal-cli-server';
import { lablineSearchAttributes } from '../../src/devserver/labline-search-attributes';
import { ExperimentSpec, webUiListUrl, webUiWorkflowUrl } from '../../src/experiment';
import { experimentRig, trainerSpec, waitForStatus } from '../support/experiments';
import { workflowBundle } from '../support/temporal';
import { testServerKind } from '../support/temporal-cli';

const chromiumPath = process.env.LABLINE_CHROMIUM ?? '/usr/bin/chromium';
const browserRequired = process.env.LABLINE_REQUIRE_BROWSER === '1';
const screenshotDir =
  process.env.LABLINE_UPDATE_SCREENSHOTS === '1'
    ? path.resolve(__dirname, '../../docs/web-ui')
    : mkdtempSync(path.join(tmpdir(), 'labline-web-ui-'));

/** Why this file cannot run here, if it cannot. */
function unavailable(): string | undefined {
  if (testServerKind() !== 'temporal-cli') return 'the embedded server has no Web UI';
  if (!existsSync(chromiumPath) && !browserRequired)
    return `no Chromium at ${chromiumPath} (apt-get install chromium, or set LABLINE_CHROMIUM)`;
  return undefined;
}

const skipReason = unavailable();
const title = 'the Temporal Web UI shows an experiment as a person needs it (real Temporal only)';

if (skipReason) {
  test.skip(`${title}: skipped, ${skipReason}`, () => undefined);
} else {
  let server: TemporalCliServer;
  let connection: Connection;
  let client: Client;
  let browser: Browser;
  beforeAll(async () => {
    server = await startTemporalCliServer({
      cli: findTemporalCli()!,
      searchAttributes: lablineSearchAttributes,
    });
    connection = await Connection.connect({ address: server.address });
    client = new Client({ connection });
    browser = await chromium.launch({
      executablePath: chromiumPath,
      // As root, without a sandbox; and nothing that would reach beyond this machine.
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  }, 90_000);
  afterAll(async () => {
    await browser?.close();
    await connection?.close();
    await server?.stop();
  });

  test(
    title,
    async () => {
      const rig = experimentRig();
      const id = `exp-webui-${process.pid}`;
      const input = trainerSpec(id);
      // Long enough (1,000 steps, 60 ms each) to look at the running training; cancelled once seen.
      input.config = { steps: 1000, learning_rate: 0.5, seed: 0 };
      input.training.args = [
        ...input.training.args!.filter((arg) => !arg.startsWith('--steps')),
        '--steps=${config.steps}',
        '--step-delay-ms=60',
      ];
      const spec = ExperimentSpec.parse(input);
      const workerConnection = await NativeConnection.connect({ address: server.address });
      const worker = await Worker.create({
        connection: workerConnection,
        taskQueue: rig.taskQueue,
        workflowBundle: workflowBundle(),
        activities: rig.activities,
        shutdownGraceTime: '1s',
      });
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      try {
        await worker.runUntil(async () => {
          await submitExperiment({ client, spec, settings: rig.settings });
          await waitForStatus(client, id, (s) => s.waiting?.gate === 'launch');

          // The list, filtered by Labline's stage search attribute.
          await page.goto(webUiListUrl(server.uiUrl!, 'default', 'LablineStage="launch_review"'));
          await seen(page, id);
          await seen(page, 'LablineStage = "launch_review"');
          await page.screenshot({ path: path.join(screenshotDir, 'list-launch-review.png') });

          // The workflow's static summary and details, and its current details at the gate.
          await page.goto(webUiWorkflowUrl(server.uiUrl!, 'default', id));
          await page.getByText('User Metadata').first().click();
          await seen(page, spec.name);
          await seen(page, spec.hypothesis);
          await seen(page, 'waiting for launch approval');
          await seen(page, 'launch decision since');
          await seen(page, '--steps=1000 --step-delay-ms=60'); // the command with ${config.steps} resolved
          await page.screenshot({ path: path.join(screenshotDir, 'launch-review.png') });

          await decide(client, id, 'approve', { gate: 'launch', by: 'alice', source: 'api', comment: 'go' });
          await waitForStatus(client, id, (s) => (s.attempts[0]?.step ?? 0) >= 30 && !s.attempts[0]?.outcome);

          // The training watcher, pending, with the trainer's progress in its heartbeat details.
          await page.getByText('Pending Activities').first().click();
          await seen(page, 'awaitTraining');
          await seen(page, 'Heartbeat Details');
          await seen(page, '"step"');
          await page.screenshot({ path: path.join(screenshotDir, 'training-heartbeat.png') });

          // The decision, in the current details ("Press R for freshness": a reload asks the workflow again).
          await page.reload();
          await page.getByText('User Metadata').first().click();
          await seen(page, 'launch: approved by alice');
          await seen(page, 'Launch 1:');
          await page.screenshot({ path: path.join(screenshotDir, 'decisions.png') });

          // Cancelling stops the trainer and ends the experiment cancelled.
          await cancelExperiment(client, id);
          await expect(experimentHandle(client, id).result()).rejects.toThrow();
          expect((await experimentHandle(client, id).describe()).status.name).toBe('CANCELLED');
        });
      } finally {
        await page.close();
        await workerConnection.close();
      }
    },
    150_000,
  );
}

/** Waits (bounded) until `text` is visible on the page, in any frame; fails naming the text and the page. */
async function seen(page: Page, text: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const frame of page.frames()) {
      // The rendered text of the page, or an element with the text (markdown panels render apart).
      const rendered = await frame
        .locator('body')
        .innerText()
        .catch(() => '');
      if (rendered.includes(text)) return;
      const element = frame.getByText(text, { exact: false }).first();
      if (await element.isVisible().catch(() => false)) return;
    }
    await page.waitForTimeout(250);
  }
  mkdirSync(screenshotDir, { recursive: true });
  const shot = path.join(screenshotDir, `missing-${Date.now()}.png`);
  await page.screenshot({ path: shot, fullPage: true });
  throw new Error(
    `the Web UI did not show "${text}" within ${timeoutMs} ms on ${page.url()} (screenshot: ${shot})`,
  );
}

/**
 * The Temporal the tests run against: the embedded dev server on a free port, or, when TEMPORAL_ADDRESS is
 * set, that server (with TEMPORAL_NAMESPACE, default `default`), so the same suite runs against Temporal.
 */
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import { status } from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import { startDevServer, type DevServer, type DevServerOptions } from '../../src/devserver/server';
import { temporal } from '@temporalio/proto';
import lablineDefinitions from '../../temporal-config/search-attributes.json';

export interface TestTemporal {
  address: string;
  namespace: string;
  connection: Connection;
  client: Client;
  /** The embedded server, when the suite is not pointed at an external one. */
  server?: DevServer;
  stop(): Promise<void>;
}

let runtimeInstalled = false;

function installRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  try {
    Runtime.install({
      logger: new DefaultLogger(process.env.LABLINE_TEST_LOG_LEVEL === 'debug' ? 'DEBUG' : 'ERROR'),
    });
  } catch {
    // Already installed by another harness in this process.
  }
}

/** Whether the suite runs against an external Temporal (TEMPORAL_ADDRESS). */
export const externalTemporal = Boolean(process.env.TEMPORAL_ADDRESS);

/** Search attributes the tests use: Labline's own (temporal-config/search-attributes.json) and the conformance suite's. */
export const testSearchAttributes: Record<string, string> = {
  ...lablineDefinitions.searchAttributes,
  TestKeyword: 'Keyword',
  TestText: 'Text',
  TestInt: 'Int',
  TestDouble: 'Double',
  TestBool: 'Bool',
  TestDatetime: 'Datetime',
  TestKeywordList: 'KeywordList',
};

export async function startTestTemporal(options: Omit<DevServerOptions, 'port'> = {}): Promise<TestTemporal> {
  installRuntime();
  let server: DevServer | undefined;
  let address = process.env.TEMPORAL_ADDRESS;
  const namespace = process.env.TEMPORAL_NAMESPACE ?? 'default';
  if (!address) {
    server = await startDevServer({ port: 0, longPollTimeoutMs: 10_000, ...options });
    address = server.address;
  }
  const connection = await Connection.connect({ address });
  await registerSearchAttributes(connection, namespace);
  const client = new Client({ connection, namespace });
  return {
    address,
    namespace,
    connection,
    client,
    server,
    async stop() {
      await connection.close();
      await server?.stop();
    },
  };
}

async function registerSearchAttributes(connection: Connection, namespace: string): Promise<void> {
  const { IndexedValueType } = temporal.api.enums.v1;
  const types: Record<string, number> = {
    Keyword: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    Text: IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
    Int: IndexedValueType.INDEXED_VALUE_TYPE_INT,
    Double: IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
    Bool: IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
    Datetime: IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
    KeywordList: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
  };
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const missing = Object.entries(testSearchAttributes).filter(([name]) => !existing.customAttributes?.[name]);
  if (missing.length === 0) return;
  try {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map(([name, type]) => [name, types[type]!])),
    });
  } catch (error) {
    if ((error as { code?: number }).code !== status.ALREADY_EXISTS) throw error;
  }
}

export function uniqueTaskQueue(prefix = 'test'): string {
  return `${prefix}-${randomUUID()}`;
}

/** The workflow bundle global-setup.ts wrote. */
export function workflowBundle(): { codePath: string } {
  const codePath = process.env.LABLINE_TEST_WORKFLOW_BUNDLE;
  if (!codePath)
    throw new Error('LABLINE_TEST_WORKFLOW_BUNDLE is not set: run the tests through jest (global setup).');
  return { codePath };
}

export type TestWorkerOptions = Omit<
  WorkerOptions,
  'connection' | 'namespace' | 'workflowBundle' | 'workflowsPath'
>;

/** Runs `fn` while a worker polls, then shuts the worker down and waits for it. */
export async function withWorker<T>(
  env: TestTemporal,
  options: TestWorkerOptions,
  fn: (worker: Worker) => Promise<T>,
): Promise<T> {
  const connection = await NativeConnection.connect({ address: env.address });
  const worker = await Worker.create({
    connection,
    namespace: env.namespace,
    workflowBundle: workflowBundle(),
    shutdownGraceTime: '1s',
    ...options,
  });
  try {
    return await worker.runUntil(fn(worker));
  } finally {
    await connection.close();
  }
}

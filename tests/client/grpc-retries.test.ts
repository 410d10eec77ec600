import { Connection } from '@temporalio/client';
import { setTimeout as sleep } from 'node:timers/promises';
import { startDevServer } from '../../src/devserver/server';
import { ClosableRetries } from '../support/grpc-retries';

test('a call retrying when the test harness closes its connection ends quietly, not after the close', async () => {
  const server = await startDevServer({ port: 0 });
  const retries = new ClosableRetries();
  const connection = await Connection.connect({
    address: server.address,
    interceptors: [retries.interceptor],
  });
  await server.stop();
  // UNAVAILABLE now: the retry interceptor schedules a retry on a timer.
  const call = connection.workflowService.getSystemInfo({}).then(
    () => undefined,
    (error: unknown) => error,
  );
  for (let i = 0; i < 200 && !retries.retried; i++) await sleep(10);
  expect(retries.retried).toBe(true);
  await retries.drain();
  await connection.close();
  expect(await call).toBeInstanceOf(Error);
});

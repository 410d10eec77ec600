import { redactSecrets } from '../../src/experiment';

const env = {
  WANDB_API_KEY: '0123456789abcdef0123456789abcdef01234567',
  OPENAI_API_KEY: 'sk-test-not-a-real-key-but-long-enough',
  MY_SERVICE_TOKEN: 'tok-abcdefgh',
  SHORT_TOKEN: 'abc',
  HOME: '/home/researcher',
};

test('values of secret variables are replaced wherever they appear, named by their variable', () => {
  const text = `wandb: key ${env.WANDB_API_KEY} loaded\nenv: MY_SERVICE_TOKEN=${env.MY_SERVICE_TOKEN} HOME=${env.HOME}`;
  const redacted = redactSecrets(text, env);
  expect(redacted).not.toContain(env.WANDB_API_KEY);
  expect(redacted).not.toContain(env.MY_SERVICE_TOKEN);
  expect(redacted).toContain('[redacted WANDB_API_KEY]');
  // Ordinary variables, and values too short to be told from ordinary words, stay.
  expect(redacted).toContain('HOME=/home/researcher');
  expect(redactSecrets('step abc done', env)).toBe('step abc done');
});

test.each([
  ['an OpenAI key', 'using sk-proj-AbCdEfGhIjKlMnOpQrStUvWx1234', 'openai-key'],
  ['a Slack bot token', 'token xoxb-1234567890-abcdefghij', 'slack-token'],
  ['a GitHub token', 'ghp_0123456789abcdefghijABCDEFGHIJ012345', 'github-token'],
  ['a Hugging Face token', 'HF hf_abcdefghijklmnopqrstuvwxyzABCDEF', 'huggingface-token'],
  ['an AWS access key', 'aws AKIAABCDEFGHIJKLMNOP', 'aws-access-key'],
  ['a W&B local key', `local-${'a'.repeat(40)}`, 'wandb-key'],
])('%s is redacted by its shape, with no variable to go by', (_name, text, kind) => {
  expect(redactSecrets(text)).toContain(`[redacted ${kind}]`);
});

test('the value of a secret-looking assignment or bearer token goes, its name stays', () => {
  expect(redactSecrets('Authorization: Bearer abc.def-ghi_jkl')).toBe('Authorization: Bearer [redacted]');
  expect(redactSecrets('api_key=s3cr3tvalue other=1')).toBe('api_key=[redacted] other=1');
  expect(redactSecrets('{"password": "hunter2hunter2"}')).toBe('{"password": "[redacted]"}');
});

test('training output without secrets is left as it was', () => {
  const log =
    'step 120 loss=0.4312 eval/accuracy=0.91\ncommit 9fceb02d0ae598e95dc970b74767f19372d61af8\nTraceback: x';
  expect(redactSecrets(log, env)).toBe(log);
});

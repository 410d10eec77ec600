/**
 * Secrets out of text that leaves a worker: a trainer's log tail goes into workflow history, the data
 * file, `status --json`, reports and Slack messages, and a trainer may print its environment or a key.
 * Two nets: the values of the environment's secret variables, wherever they appear, and the shapes of
 * common keys and credentials (OpenAI, Slack, GitHub, Hugging Face, AWS, W&B local keys, bearer tokens,
 * JWTs, `password=…` style assignments). Pure, so tests and every activity share it.
 */

/** Names of environment variables that hold secrets (`*_API_KEY`, `*_TOKEN`, `*_SECRET`, `PASSWORD`…). */
export const SECRET_NAME =
  /(^|_)(API_?KEY|ACCESS_?KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIALS?|PRIVATE_?KEY)($|_)/i;

/** Values shorter than this are not redacted by value: `1`, `true` or `dev` would blank out ordinary text. */
const MIN_SECRET_LENGTH = 8;

/** Shapes of keys that are secret wherever they appear, with the name shown in their place. */
const KEY_SHAPES: { name: string; pattern: RegExp }[] = [
  { name: 'openai-key', pattern: /\bsk-(?:proj-|svcacct-)?[A-Za-z0-9_-]{20,}/g },
  { name: 'slack-token', pattern: /\bxox[abposr]-[A-Za-z0-9-]{10,}/g },
  { name: 'github-token', pattern: /\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})/g },
  { name: 'huggingface-token', pattern: /\bhf_[A-Za-z0-9]{30,}/g },
  { name: 'aws-access-key', pattern: /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/g },
  { name: 'wandb-key', pattern: /\blocal-[0-9a-f]{40}\b/g },
  { name: 'jwt', pattern: /\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g },
];

/** `Authorization: Bearer …`, `api_key=…`, `"token": "…"`: the name stays, the value goes. */
const ASSIGNMENTS: RegExp[] = [
  /(\bBearer\s+)[A-Za-z0-9._~+/=-]{8,}/gi,
  /(\b[A-Za-z_]*(?:api[_-]?key|access[_-]?key|token|secret|password|passwd|passphrase)["']?\s*[=:]\s*["']?)[^\s"',;]{4,}/gi,
];

/**
 * `text` with every secret replaced: values of secret variables of `env` by `[redacted NAME]`, common key
 * shapes by `[redacted kind]`, the value of a secret-looking assignment by `[redacted]`.
 */
export function redactSecrets(text: string, env: Readonly<Record<string, string | undefined>> = {}): string {
  let redacted = text;
  const values = Object.entries(env)
    .filter(
      ([name, value]) => SECRET_NAME.test(name) && value !== undefined && value.length >= MIN_SECRET_LENGTH,
    )
    // Longest first, so a secret that contains another is replaced whole.
    .sort(([, a], [, b]) => b!.length - a!.length);
  for (const [name, value] of values) redacted = redacted.split(value!).join(`[redacted ${name}]`);
  for (const { name, pattern } of KEY_SHAPES) redacted = redacted.replace(pattern, `[redacted ${name}]`);
  for (const pattern of ASSIGNMENTS)
    redacted = redacted.replace(pattern, (match: string, keep: string) =>
      match.slice(keep.length).startsWith('[redacted') ? match : `${keep}[redacted]`,
    );
  return redacted;
}

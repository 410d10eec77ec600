import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { AgentName } from '../../experiment';

// The agents' instructions are versioned files beside this module (`prompts/<agent>.v<N>.md`), pinned here:
// changing what an agent is told means a new file and a new version, and every output records the version
// it was written with.

/** Where the prompt files are. */
export const PROMPTS_DIR = path.join(__dirname, 'prompts');

/** Rules every agent follows (grounding, format), prepended to each agent's prompt. */
export const RULES_FILE = 'rules.v1.md';

/** The prompt file of each agent. */
export const PROMPT_FILES: Readonly<Record<AgentName, string>> = {
  performance: 'performance.v2.md',
  baselines: 'baselines.v1.md',
  ablations: 'ablations.v1.md',
  report: 'report.v1.md',
  blog: 'blog.v1.md',
  paper: 'paper.v1.md',
};

/** An agent's instructions and the version recorded with its outputs. */
export interface AgentPrompt {
  /** The rules and the agent's prompt, as sent. */
  text: string;
  /** `<agent file>+<rules file>` without extensions, e.g. `performance.v1+rules.v1`. */
  version: string;
}

const cache = new Map<AgentName, AgentPrompt>();

/**
 * Reads an agent's prompt (once per process).
 *
 * @throws Error naming the file when it is missing (an installation without `src/activities/agents/prompts`)
 */
export function agentPrompt(agent: AgentName): AgentPrompt {
  const cached = cache.get(agent);
  if (cached) return cached;
  const read = (file: string) => {
    try {
      return readFileSync(path.join(PROMPTS_DIR, file), 'utf8').trim();
    } catch (error) {
      throw new Error(
        `the prompt file ${path.join(PROMPTS_DIR, file)} of the "${agent}" agent cannot be read (${(error as Error).message}); reinstall Labline so that src/activities/agents/prompts is complete`,
        { cause: error },
      );
    }
  };
  const file = PROMPT_FILES[agent];
  const prompt = {
    text: `${read(RULES_FILE)}\n\n${read(file)}\n`,
    version: `${file.replace(/\.md$/, '')}+${RULES_FILE.replace(/\.md$/, '')}`,
  };
  cache.set(agent, prompt);
  return prompt;
}

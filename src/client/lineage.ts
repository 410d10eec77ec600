/**
 * Genealogy from Temporal's visibility: each experiment's `LablineParent` search attribute names its parent,
 * so ancestors are found by following it up and descendants by querying `LablineParent = '<id>'`.
 */
import type { Client } from '@temporalio/client';
import type { CodeMemo } from '../experiment';

/** A memo's `code` entry as Labline writes it (a memo is any JSON; older runs have none). */
function isCodeMemo(value: unknown): value is CodeMemo {
  return typeof value === 'object' && value !== null && typeof (value as CodeMemo).commit === 'string';
}

export interface LineageNode {
  experimentId: string;
  /** Known to visibility; false for a parent that never ran as a workflow (e.g. a campaign's base). */
  ran: boolean;
  stage?: string;
  status?: string;
  primaryMetric?: number;
  parent?: string;
  /** The commit it trained (and its branch), for experiments with pinned code. */
  code?: CodeMemo;
  children: LineageNode[];
}

const maxDepth = 20;
const maxNodes = 2000;

async function describeNode(client: Client, experimentId: string): Promise<Omit<LineageNode, 'children'>> {
  for await (const execution of client.workflow.list({
    query: `WorkflowId = '${experimentId.replace(/'/g, "\\'")}'`,
  })) {
    const attrs = execution.searchAttributes;
    const first = (name: string) => (Array.isArray(attrs[name]) ? (attrs[name] as unknown[])[0] : undefined);
    return {
      experimentId,
      ran: true,
      stage: first('LablineStage') as string | undefined,
      status: execution.status.name,
      primaryMetric: first('LablinePrimaryMetric') as number | undefined,
      parent: first('LablineParent') as string | undefined,
      ...(isCodeMemo(execution.memo?.code) ? { code: execution.memo.code } : {}),
    };
  }
  return { experimentId, ran: false };
}

async function childrenOf(client: Client, experimentId: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const execution of client.workflow.list({
    query: `LablineParent = '${experimentId.replace(/'/g, "\\'")}'`,
  })) {
    ids.push(execution.workflowId);
  }
  return ids.sort();
}

/** The tree rooted at the experiment's oldest known ancestor, down to every descendant. */
export async function lineage(
  client: Client,
  experimentId: string,
): Promise<{ root: LineageNode; target: string }> {
  let rootId = experimentId;
  const seen = new Set<string>([experimentId]);
  for (let depth = 0; depth < maxDepth; depth++) {
    const node = await describeNode(client, rootId);
    if (!node.parent || seen.has(node.parent)) break;
    seen.add(node.parent);
    rootId = node.parent;
  }
  let count = 0;
  const build = async (id: string, depth: number): Promise<LineageNode> => {
    count += 1;
    const node: LineageNode = { ...(await describeNode(client, id)), children: [] };
    if (depth < maxDepth && count < maxNodes) {
      for (const child of await childrenOf(client, id)) node.children.push(await build(child, depth + 1));
    }
    return node;
  };
  return { root: await build(rootId, 0), target: experimentId };
}

export function formatLineage(root: LineageNode, target: string): string {
  const lines: string[] = [];
  const walk = (node: LineageNode, prefix: string, last: boolean, top: boolean) => {
    const metric =
      node.primaryMetric === undefined ? '' : `  primary ${Number(node.primaryMetric.toPrecision(4))}`;
    const state = node.ran ? `${node.stage ?? '?'} (${node.status ?? '?'})` : 'not run as an experiment';
    const mark = node.experimentId === target ? '  ◀' : '';
    const code = node.code
      ? `  ${node.code.branch ? `${node.code.branch}@` : ''}${node.code.commit.slice(0, 12)}${node.code.patched ? '+patch' : ''}`
      : '';
    lines.push(
      `${top ? '' : `${prefix}${last ? '└─ ' : '├─ '}`}${node.experimentId}  ${state}${metric}${code}${mark}`,
    );
    node.children.forEach((child, i) =>
      walk(child, top ? '' : `${prefix}${last ? '   ' : '│  '}`, i === node.children.length - 1, false),
    );
  };
  walk(root, '', true, true);
  return lines.join('\n');
}

/** Links into the Temporal Web UI: one page per workflow, and the list filtered by a visibility query. */

/** The Web UI page of one workflow (experiment or campaign). */
export function webUiWorkflowUrl(uiUrl: string, namespace: string, workflowId: string): string {
  return `${trimmed(uiUrl)}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

/** The Web UI's workflow list filtered by a visibility query, e.g. `LablineStage="launch_review"`. */
export function webUiListUrl(uiUrl: string, namespace: string, query: string): string {
  return `${trimmed(uiUrl)}/namespaces/${encodeURIComponent(namespace)}/workflows?query=${encodeURIComponent(query)}`;
}

function trimmed(url: string): string {
  return url.replace(/\/+$/, '');
}

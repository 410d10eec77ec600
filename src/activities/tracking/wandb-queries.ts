/**
 * The GraphQL documents Labline sends to W&B's public API (`POST {base}/graphql`). Operation names and
 * selections follow what the official wandb client sends (`wandb/apis/public/runs.py`, `history.py`,
 * `files.py`, `wandb/sdk/artifacts/_generated/operations.py`, wandb-core's `HistoryPage` and
 * `SampledHistoryPage`), cut down to the fields Labline reads, so a server or proxy that routes on the
 * operation name sees familiar ones. `RunState` also asks for `heartbeatAt`.
 */

/** One GraphQL operation: its name (sent as `operationName`) and its document. */
export interface WandbOperation {
  readonly name: string;
  readonly query: string;
}

function operation(name: string, query: string): WandbOperation {
  return { name, query: query.trim() };
}

/** The caller's identity; the worker sends it at start to check the API key. */
export const VIEWER = operation(
  'Viewer',
  `
query Viewer {
  viewer {
    id
    entity
    username
    teams { edges { node { name } } }
  }
}`,
);

const RUN_FIELDS = `
      id
      name
      displayName
      state
      config
      createdAt
      heartbeatAt
      summaryMetrics
      historyLineCount
      historyKeys`;

/** A run's state, config, summary and history keys (`api.run("e/p/r")`). */
export const RUN = operation(
  'Run',
  `
query Run($project: String!, $entity: String!, $name: String!) {
  project(name: $project, entityName: $entity) {
    run(name: $name) {${RUN_FIELDS}
    }
  }
}`,
);

/** A run's state and last heartbeat, polled while it trains. */
export const RUN_STATE = operation(
  'RunState',
  `
query RunState($project: String!, $entity: String!, $name: String!) {
  project(name: $project, entityName: $entity) {
    run(name: $name) {
      state
      heartbeatAt
    }
  }
}`,
);

/** `historyKeys` alone: its `lastStep` bounds the paged history scan. */
export const RUN_HISTORY_KEYS = operation(
  'RunHistoryKeys',
  `
query RunHistoryKeys($project: String!, $entity: String!, $name: String!) {
  project(name: $project, entityName: $entity) {
    run(name: $name) { historyKeys }
  }
}`,
);

/**
 * Sampled history for chosen keys (`run.history(keys=…)`): `$specs` is a list of JSON strings
 * `{"keys": [...], "samples": N}`; the answer holds one list of row objects per spec.
 */
export const RUN_SAMPLED_HISTORY = operation(
  'RunSampledHistory',
  `
query RunSampledHistory($project: String!, $entity: String!, $name: String!, $specs: [JSONString!]!) {
  project(name: $project, entityName: $entity) {
    run(name: $name) { sampledHistory(specs: $specs) }
  }
}`,
);

/** Sampled history of every key (`run.history()`): rows as JSON strings. */
export const RUN_FULL_HISTORY = operation(
  'RunFullHistory',
  `
query RunFullHistory($project: String!, $entity: String!, $name: String!, $samples: Int) {
  project(name: $project, entityName: $entity) {
    run(name: $name) { history(samples: $samples) }
  }
}`,
);

/**
 * One page of the whole history, steps `minStep` (inclusive) to `maxStep` (exclusive), every key; rows as
 * JSON strings (`scan_history()`). The run variable is `$run`, as wandb-core names it.
 */
export const HISTORY_PAGE = operation(
  'HistoryPage',
  `
query HistoryPage($entity: String!, $project: String!, $run: String!, $minStep: Int64!, $maxStep: Int64!, $pageSize: Int!) {
  project(name: $project, entityName: $entity) {
    run(name: $run) {
      history(minStep: $minStep, maxStep: $maxStep, samples: $pageSize)
    }
  }
}`,
);

/**
 * One page of the history for chosen keys (`scan_history(keys=…)`): `$spec` is the JSON string
 * `{"keys": [..., "_step"], "minStep": a, "maxStep": b - 1, "samples": b - a}` (`maxStep` inclusive here,
 * unlike `HistoryPage`, as wandb-core's `getLiveDataForSpecificKeys` notes); rows are objects.
 */
export const SAMPLED_HISTORY_PAGE = operation(
  'SampledHistoryPage',
  `
query SampledHistoryPage($entity: String!, $project: String!, $run: String!, $spec: JSONString!) {
  project(name: $project, entityName: $entity) {
    run(name: $run) {
      sampledHistory(specs: [$spec])
    }
  }
}`,
);

/** The artifacts a run logged (`run.logged_artifacts()`), 100 a page. */
export const RUN_OUTPUT_ARTIFACTS = operation(
  'RunOutputArtifacts',
  `
query RunOutputArtifacts($entity: String!, $project: String!, $run: String!, $cursor: String, $perPage: Int) {
  project(entityName: $entity, name: $project) {
    run(name: $run) {
      artifacts: outputArtifacts(after: $cursor, first: $perPage) {
        totalCount
        pageInfo { endCursor hasNextPage }
        edges {
          node {
            id
            artifactSequence { name }
            versionIndex
            artifactType { name }
            aliases { alias }
            state
            size
            digest
            fileCount
            createdAt
          }
        }
      }
    }
  }
}`,
);

/** One version of a project's artifact, by `name:alias` or `name:v3` (a data set declared by a spec). */
export const PROJECT_ARTIFACT = operation(
  'ProjectArtifact',
  `
query ProjectArtifact($entity: String!, $project: String!, $name: String!) {
  project(entityName: $entity, name: $project) {
    artifact(name: $name) {
      id
      artifactSequence { name }
      versionIndex
      digest
      state
    }
  }
}`,
);

/** Where an artifact's manifest can be downloaded (`FetchArtifactManifest`, a signed `directUrl`). */
export const FETCH_ARTIFACT_MANIFEST = operation(
  'FetchArtifactManifest',
  `
query FetchArtifactManifest($id: ID!) {
  artifact(id: $id) {
    currentManifest {
      file { directUrl }
    }
  }
}`,
);

/** The files a run saved (`run.files()`), optionally only those named in `$fileNames`. */
export const RUN_FILES = operation(
  'RunFiles',
  `
query RunFiles($project: String!, $entity: String!, $name: String!, $fileCursor: String,
    $fileLimit: Int = 50, $fileNames: [String] = [], $upload: Boolean = false) {
  project(name: $project, entityName: $entity) {
    run(name: $name) {
      fileCount
      files(names: $fileNames, after: $fileCursor, first: $fileLimit) {
        edges {
          node { id name url(upload: $upload) directUrl sizeBytes mimetype updatedAt md5 }
          cursor
        }
        pageInfo { endCursor hasNextPage }
      }
    }
  }
}`,
);

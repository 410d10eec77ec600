/**
 * The shapes of W&B's GraphQL answers, as zod schemas: every answer is parsed before anything reads it,
 * and one that does not parse fails with the path of what was unexpected. Encodings follow the wandb client
 * (`wandb/apis/public/runs.py`): `config`, `summaryMetrics` and history rows are JSON *strings*, `historyKeys`
 * and sampled-history rows are objects, and W&B's JSON may hold the bare numbers `NaN`, `Infinity` and
 * `-Infinity` (wandb-core writes them: `core/internal/runhistory/runhistory.go`).
 */
import { z } from 'zod';

/** One entry of a GraphQL `errors` array. */
export const GraphQLErrorEntry = z
  .object({
    message: z.string(),
    path: z.array(z.union([z.string(), z.number()])).nullish(),
  })
  .loose();

/** Every GraphQL answer: `data` and/or `errors`. */
export const GraphQLEnvelope = z.object({
  data: z.unknown().optional(),
  errors: z.array(GraphQLErrorEntry).nullish(),
});

/** `Viewer`: null when the key belongs to nobody. */
export const ViewerData = z.object({
  viewer: z
    .object({
      id: z.string(),
      entity: z.string().nullish(),
      username: z.string().nullish(),
      teams: z
        .object({ edges: z.array(z.object({ node: z.object({ name: z.string() }).nullable() })) })
        .nullish(),
    })
    .nullable(),
});
/** `Viewer`. */
export type ViewerData = z.infer<typeof ViewerData>;

/** Per history key: the last value logged and how many rows held it (by JSON type). */
export const HistoryKeyStats = z
  .object({
    previousValue: z.json().optional(),
    typeCounts: z.array(z.object({ type: z.string(), count: z.number() }).loose()).nullish(),
  })
  .loose();

/** `historyKeys`: an object, not a string. `lastStep` is -1 (or absent) before the first row. */
export const HistoryKeys = z
  .object({
    keys: z.record(z.string(), HistoryKeyStats).nullish(),
    lastStep: z.number().nullish(),
  })
  .loose();
/** `historyKeys`. */
export type HistoryKeys = z.infer<typeof HistoryKeys>;

/** A project that may not exist (null), holding a run that may not exist (null). */
function projectRun<T extends z.ZodType>(run: T) {
  return z.object({ project: z.object({ run: run.nullable() }).nullable() });
}

/** `Run`. */
export const RunData = projectRun(
  z.object({
    id: z.string(),
    name: z.string(),
    displayName: z.string().nullish(),
    state: z.string(),
    config: z.string().nullish(),
    createdAt: z.string().nullish(),
    heartbeatAt: z.string().nullish(),
    summaryMetrics: z.string().nullish(),
    historyLineCount: z.number().nullish(),
    historyKeys: HistoryKeys.nullish(),
  }),
);
/** `Run`. */
export type RunData = z.infer<typeof RunData>;

/** `RunState`. */
export const RunStateData = projectRun(z.object({ state: z.string(), heartbeatAt: z.string().nullish() }));

/** `RunHistoryKeys`. */
export const RunHistoryKeysData = projectRun(z.object({ historyKeys: HistoryKeys.nullish() }));

/** A history row as a sampled-history answer holds it: an object. */
const HistoryRowObject = z.record(z.string(), z.unknown());

/** `RunSampledHistory` and `SampledHistoryPage`: one list of row objects per spec. */
export const SampledHistoryData = projectRun(
  z.object({ sampledHistory: z.array(z.array(HistoryRowObject)) }),
);

/** `RunFullHistory` and `HistoryPage`: rows as JSON strings. */
export const HistoryData = projectRun(z.object({ history: z.array(z.string()) }));

/** The GraphQL `PageInfo`. */
const PageInfo = z.object({ endCursor: z.string().nullish(), hasNextPage: z.boolean() });

/** One artifact of `RunOutputArtifacts`. */
export const ArtifactNode = z.object({
  id: z.string(),
  artifactSequence: z.object({ name: z.string() }),
  versionIndex: z.number().int().nullish(),
  artifactType: z.object({ name: z.string() }),
  aliases: z.array(z.object({ alias: z.string() })).nullish(),
  state: z.enum(['COMMITTED', 'PENDING', 'DELETED']),
  size: z.number().nullish(),
  digest: z.string().nullish(),
  fileCount: z.number().nullish(),
  createdAt: z.string().nullish(),
});
/** One artifact of `RunOutputArtifacts`. */
export type ArtifactNode = z.infer<typeof ArtifactNode>;

/** `RunOutputArtifacts`. */
export const RunOutputArtifactsData = projectRun(
  z.object({
    artifacts: z.object({
      totalCount: z.number().nullish(),
      pageInfo: PageInfo,
      edges: z.array(z.object({ node: ArtifactNode.nullable() })),
    }),
  }),
);
/** `RunOutputArtifacts`. */
export type RunOutputArtifactsData = z.infer<typeof RunOutputArtifactsData>;

/** `ProjectArtifact`: null project or artifact when there is none of that name. */
export const ProjectArtifactData = z.object({
  project: z
    .object({
      artifact: z
        .object({
          id: z.string(),
          artifactSequence: z.object({ name: z.string() }),
          versionIndex: z.number().int().nullish(),
          digest: z.string().nullish(),
          state: z.enum(['COMMITTED', 'PENDING', 'DELETED']),
        })
        .nullable(),
    })
    .nullable(),
});
export type ProjectArtifactData = z.infer<typeof ProjectArtifactData>;

/** `FetchArtifactManifest`: null artifact when it is gone, null manifest when it has none yet. */
export const ArtifactManifestData = z.object({
  artifact: z
    .object({ currentManifest: z.object({ file: z.object({ directUrl: z.string() }) }).nullable() })
    .nullable(),
});

/** One file of `RunFiles`. `md5` is base64. */
export const RunFileNode = z.object({
  id: z.string(),
  name: z.string(),
  url: z.string().nullish(),
  directUrl: z.string().nullish(),
  sizeBytes: z.number().nullish(),
  mimetype: z.string().nullish(),
  updatedAt: z.string().nullish(),
  md5: z.string().nullish(),
});
/** One file of `RunFiles`. */
export type RunFileNode = z.infer<typeof RunFileNode>;

/** `RunFiles`. */
export const RunFilesData = projectRun(
  z.object({
    fileCount: z.number().nullish(),
    files: z.object({
      edges: z.array(z.object({ node: RunFileNode.nullable(), cursor: z.string().nullish() })),
      pageInfo: PageInfo,
    }),
  }),
);
/** `RunFiles`. */
export type RunFilesData = z.infer<typeof RunFilesData>;

/**
 * An artifact manifest (`wandb/sdk/artifacts/artifact_manifests/artifact_manifest_v1.py`): version 1,
 * storage policy, and one entry per path with its digest (base64 MD5 for files W&B stores).
 */
export const ArtifactManifest = z
  .object({
    version: z.number(),
    storagePolicy: z.string().optional(),
    contents: z.record(
      z.string(),
      z.object({ digest: z.string(), size: z.number().nullish(), ref: z.string().nullish() }).loose(),
    ),
  })
  .loose();
/** An artifact manifest. */
export type ArtifactManifest = z.infer<typeof ArtifactManifest>;

/** The tokens W&B's JSON may hold where JSON has none, and the strings Labline reads them as. */
const NON_FINITE_TOKENS = ['-Infinity', 'Infinity', 'NaN'] as const;

/**
 * Parses W&B's JSON: standard JSON, except that the bare numbers `NaN`, `Infinity` and `-Infinity` may
 * appear. They become the strings `"NaN"`, `"Infinity"` and `"-Infinity"`, which metric readers take as the
 * non-finite numbers (see `readMetricValue`). Standard JSON takes the fast path.
 * @throws SyntaxError when the text is not JSON even so
 */
export function parseWandbJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const rewritten = quoteNonFiniteNumbers(text);
    if (rewritten === text) throw error;
    return JSON.parse(rewritten);
  }
}

/** Replaces bare `NaN` / `Infinity` / `-Infinity` outside strings by JSON strings. */
function quoteNonFiniteNumbers(text: string): string {
  let out = '';
  let copiedUpTo = 0;
  let inString = false;
  for (let i = 0; i < text.length; i += 1) {
    const char = text[i];
    if (inString) {
      if (char === '\\') i += 1;
      else if (char === '"') inString = false;
      continue;
    }
    if (char === '"') {
      inString = true;
      continue;
    }
    if (char !== 'N' && char !== 'I' && char !== '-') continue;
    const token = NON_FINITE_TOKENS.find((candidate) => text.startsWith(candidate, i));
    if (!token) continue;
    out += `${text.slice(copiedUpTo, i)}"${token}"`;
    i += token.length - 1;
    copiedUpTo = i + 1;
  }
  return copiedUpTo === 0 ? text : out + text.slice(copiedUpTo);
}

/** Zod issues as `path: message` lines, at most `limit` of them. */
export function describeIssues(error: z.ZodError, limit = 5): string {
  const lines = error.issues
    .slice(0, limit)
    .map((issue) => `${issue.path.length ? issue.path.join('.') : '(top level)'}: ${issue.message}`);
  const more = error.issues.length > limit ? `; and ${error.issues.length - limit} more` : '';
  return lines.join('; ') + more;
}

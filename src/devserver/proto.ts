/**
 * Temporal's wire format for the dev server: service definitions for grpc-js built from the protos that
 * `@temporalio/proto` ships, and conversion between protobuf bytes and "JSON form" objects.
 *
 * JSON form is protobufjs' `toObject` with int64 as decimal strings, bytes as base64 and enums as numbers.
 * The server keeps every request, event and response in that form: it is what the persistence layer
 * writes as is, and `fromObject` turns it back into exactly the bytes the SDK expects.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Root, Type, IConversionOptions } from 'protobufjs';
import { temporal } from '@temporalio/proto';

// The unpatched protobufjs root: it resolves fully qualified type names for the server definitions.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const root = require('@temporalio/proto/protos/json-module') as Root;

/** A protobuf message in JSON form. Wire messages are validated by decoding; their schema is the proto. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Pb = Record<string, any>;

export const enums = temporal.api.enums.v1;

const jsonForm: IConversionOptions = { longs: String, enums: Number, bytes: String, defaults: false };
const typeCache = new Map<string, Type>();

/** Looks a message type up by its full name, e.g. `temporal.api.history.v1.HistoryEvent`. */
export function messageType(fullName: string): Type {
  let type = typeCache.get(fullName);
  if (!type) {
    type = root.lookupType(fullName);
    typeCache.set(fullName, type);
  }
  return type;
}

export function decodeToJson(fullName: string, bytes: Uint8Array): Pb {
  const type = messageType(fullName);
  return type.toObject(type.decode(bytes), jsonForm);
}

export function encodeFromJson(fullName: string, value: Pb): Buffer {
  const type = messageType(fullName);
  return Buffer.from(type.encode(type.fromObject(value)).finish());
}

/** Normalises any object of a message type (plain, JSON form or instance) into JSON form. */
export function toJsonForm(fullName: string, value: Pb): Pb {
  const type = messageType(fullName);
  return type.toObject(type.fromObject(value), jsonForm);
}

/** A grpc-js service definition for a Temporal service, e.g. `temporal.api.workflowservice.v1.WorkflowService`. */
export function serviceDefinition(fullName: string): grpc.ServiceDefinition {
  const service = root.lookupService(fullName);
  const definition: Record<string, grpc.MethodDefinition<Pb, Pb>> = {};
  for (const method of Object.values(service.methods)) {
    method.resolve();
    const requestType = method.resolvedRequestType!.fullName.replace(/^\./, '');
    const responseType = method.resolvedResponseType!.fullName.replace(/^\./, '');
    definition[method.name] = {
      path: `/${fullName}/${method.name}`,
      requestStream: false,
      responseStream: false,
      requestSerialize: (value: Pb) => encodeFromJson(requestType, value),
      requestDeserialize: (bytes: Buffer) => decodeToJson(requestType, bytes),
      responseSerialize: (value: Pb) => encodeFromJson(responseType, value),
      responseDeserialize: (bytes: Buffer) => decodeToJson(responseType, bytes),
    };
  }
  return definition;
}

/** JSON-form google.protobuf.Timestamp for epoch milliseconds. */
export function timestamp(ms: number): Pb {
  const seconds = Math.floor(ms / 1000);
  return { seconds: String(seconds), nanos: Math.round((ms - seconds * 1000) * 1e6) };
}

export function timestampToMs(value: Pb | null | undefined): number | undefined {
  if (!value) return undefined;
  return Number(value.seconds ?? 0) * 1000 + Math.floor(Number(value.nanos ?? 0) / 1e6);
}

/** JSON-form google.protobuf.Duration for milliseconds. */
export function duration(ms: number): Pb {
  const seconds = Math.floor(ms / 1000);
  return { seconds: String(seconds), nanos: Math.round((ms - seconds * 1000) * 1e6) };
}

/** Milliseconds of a google.protobuf.Duration; 0 when unset. */
export function durationToMs(value: Pb | null | undefined): number {
  if (!value) return 0;
  return Number(value.seconds ?? 0) * 1000 + Math.floor(Number(value.nanos ?? 0) / 1e6);
}

/** JSON-form payload of a JSON value, as the SDK's default converter writes it. */
export function jsonPayload(value: unknown): Pb {
  return {
    metadata: { encoding: Buffer.from('json/plain').toString('base64') },
    data: Buffer.from(JSON.stringify(value)).toString('base64'),
  };
}

/** Decodes a `json/plain` payload; undefined for other encodings or an empty payload. */
export function decodeJsonPayload(payload: Pb | null | undefined): unknown {
  if (!payload?.data) return undefined;
  const encoding = payload.metadata?.encoding
    ? Buffer.from(String(payload.metadata.encoding), 'base64').toString()
    : 'json/plain';
  if (encoding !== 'json/plain') return undefined;
  return JSON.parse(Buffer.from(String(payload.data), 'base64').toString()) as unknown;
}

/** The `type` metadata the SDK puts on typed search attribute payloads (e.g. `Keyword`). */
export function payloadTypeMetadata(payload: Pb): string | undefined {
  const type = payload.metadata?.type;
  return type ? Buffer.from(String(type), 'base64').toString() : undefined;
}

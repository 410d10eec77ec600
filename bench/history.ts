/**
 * Reading what happened from a workflow history: when its activities were scheduled, started and closed,
 * and when a given event was recorded (server clock, ms since epoch).
 */
import { tsToMs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';

export type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
export const EventType = temporal.api.enums.v1.EventType;

export interface ActivityTimes {
  type: string;
  scheduled: number;
  started?: number;
  closed?: number;
}

/** Every activity of a history with its scheduled, started and closed (completed or failed) times. */
export function activitiesOf(events: HistoryEvent[]): ActivityTimes[] {
  const byScheduledId = new Map<number, ActivityTimes>();
  for (const event of events) {
    const at = tsToMs(event.eventTime);
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled) {
      byScheduledId.set(Number(event.eventId), { type: scheduled.activityType?.name ?? '?', scheduled: at });
      continue;
    }
    const refersTo =
      event.activityTaskStartedEventAttributes?.scheduledEventId ??
      event.activityTaskCompletedEventAttributes?.scheduledEventId ??
      event.activityTaskFailedEventAttributes?.scheduledEventId;
    const activity = refersTo == null ? undefined : byScheduledId.get(Number(refersTo));
    if (!activity) continue;
    if (event.activityTaskStartedEventAttributes) activity.started = at;
    else activity.closed = at;
  }
  return [...byScheduledId.values()];
}

/** The one activity of `type` in the history of workflow `id`, which must have closed. */
export function only(activities: ActivityTimes[], type: string, id: string): ActivityTimes {
  const found = activities.filter((a) => a.type === type);
  if (found.length !== 1 || found[0]!.closed === undefined)
    throw new Error(`${id}: expected one closed ${type} activity, found ${found.length}`);
  return found[0]!;
}

/** When the first event of `type` was recorded in the history of workflow `id`. */
export function eventTime(events: HistoryEvent[], type: temporal.api.enums.v1.EventType, id: string): number {
  const event = events.find((e) => e.eventType === type);
  if (!event) throw new Error(`${id}: no ${EventType[type]} event in the history`);
  return tsToMs(event.eventTime);
}

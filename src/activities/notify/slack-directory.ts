/**
 * Who a Labline approver is in Slack: the settings' approver map (`slack.approvers`: name → Slack user ids
 * or emails), or a gate approver written as a Slack user id. The notifier mentions approvers with it; the
 * Slack endpoint decides with it whether the person who clicked may decide.
 */
import { SLACK_USER_ID_PATTERN, type SlackSettings } from './slack-settings';

/** The Slack identities of one approver. */
export interface SlackIdentities {
  /** Slack user ids. */
  ids: string[];
  /** Emails, lower case; compared with the Slack profile's email. */
  emails: string[];
}

/** The Slack user who acts. */
export interface SlackActor {
  /** Slack user id. */
  id: string;
  /** Their Slack user name, for the record when any Slack user may decide. */
  name?: string;
}

/** Whether a Slack user may decide at a gate, and under which approver name. */
export type SlackAuthorization = { allowed: true; by: string } | { allowed: false; reason: string };

/** Labline compares approver names case-insensitively, ignoring a leading `@`; so does this map. */
const normalize = (name: string) => name.trim().replace(/^@/, '').toLowerCase();

export class SlackDirectory {
  /** Normalized name → the name as the settings spell it, and its identities. */
  private readonly entries = new Map<string, SlackIdentities & { name: string }>();

  constructor(approvers: SlackSettings['approvers']) {
    for (const [name, value] of Object.entries(approvers)) {
      const identities = (Array.isArray(value) ? value : [value]).map((v) => v.trim());
      this.entries.set(normalize(name), {
        name,
        ids: identities.filter((v) => SLACK_USER_ID_PATTERN.test(v)),
        emails: identities.filter((v) => v.includes('@')).map((v) => v.toLowerCase()),
      });
    }
  }

  /** The Slack identities of a gate approver; none when it is neither mapped nor a Slack user id. */
  identities(approver: string): SlackIdentities {
    const mapped = this.entries.get(normalize(approver));
    if (mapped) return { ids: mapped.ids, emails: mapped.emails };
    const bare = approver.trim().replace(/^@/, '');
    if (SLACK_USER_ID_PATTERN.test(bare)) return { ids: [bare], emails: [] };
    if (bare.includes('@')) return { ids: [], emails: [bare.toLowerCase()] };
    return { ids: [], emails: [] };
  }

  /**
   * Whether `actor` may decide at a gate with these approvers (empty: anyone), and the name to decide
   * under: the matching approver as the gate lists it, so the workflow's own check agrees.
   *
   * @param emailOf the Slack user's email (users.info); called only when an approver is known by email
   */
  async authorize(
    actor: SlackActor,
    approvers: readonly string[],
    emailOf: (userId: string) => Promise<string | undefined>,
  ): Promise<SlackAuthorization> {
    if (approvers.length === 0) return { allowed: true, by: await this.nameOf(actor, emailOf) };
    let email: string | undefined | null = null;
    for (const approver of approvers) {
      const { ids, emails } = this.identities(approver);
      if (ids.includes(actor.id)) return { allowed: true, by: approver };
      if (emails.length > 0) {
        if (email === null) email = (await emailOf(actor.id))?.toLowerCase();
        if (email !== undefined && emails.includes(email)) return { allowed: true, by: approver };
      }
    }
    const unmapped = approvers.filter((a) => {
      const { ids, emails } = this.identities(a);
      return ids.length === 0 && emails.length === 0;
    });
    return {
      allowed: false,
      reason:
        `<@${actor.id}> is not an approver of this gate; it may be decided by ${approvers.join(', ')}.` +
        (unmapped.length
          ? ` (${unmapped.join(', ')} ${unmapped.length === 1 ? 'has' : 'have'} no Slack user in the Labline settings' slack.approvers.)`
          : ''),
    };
  }

  /** The Labline name of a Slack user when the map has one, else their Slack user name (or id). */
  async nameOf(actor: SlackActor, emailOf: (userId: string) => Promise<string | undefined>): Promise<string> {
    const entries = [...this.entries.values()];
    const byId = entries.find((entry) => entry.ids.includes(actor.id));
    if (byId) return byId.name;
    if (entries.some((entry) => entry.emails.length > 0)) {
      const email = (await emailOf(actor.id))?.toLowerCase();
      const byEmail = email === undefined ? undefined : entries.find((entry) => entry.emails.includes(email));
      if (byEmail) return byEmail.name;
    }
    return actor.name ?? actor.id;
  }

  /** The Slack user ids of a gate approver that can be mentioned without asking Slack. */
  knownIds(approver: string): string[] {
    return this.identities(approver).ids;
  }
}

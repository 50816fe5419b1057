/**
 * Where a reminder goes and how: the patient's preferences, and the delivery channels.
 *
 * Preferences live on the Patient (the record clinicians and the patient app already edit): the
 * extension CAREBRIDGE_SD/appointment-reminder-preferences with sub-extensions
 *   channel  (valueCode email | sms | in-app, repeatable) — the channels wanted, and
 *   opt-out  (valueBoolean) — true: no reminders at all, not even in-app.
 * Without the extension: in-app, plus e-mail and SMS when Patient.telecom has an email / sms
 * (or mobile phone) contact. Contacts come from Patient.telecom (lowest rank first).
 *
 * Delivery: e-mail over SMTP (SMTP_URL, nodemailer), SMS by POSTing JSON to SMS_WEBHOOK_URL, in-app
 * is the Communication itself. A channel without its setting delivers to the log (a log sink).
 */
import type { ContactPoint, Patient } from 'fhir/r4.js';
import { createTransport, type Transporter } from 'nodemailer';
import type { Logger } from 'pino';
import type { AppointmentsConfig } from './appointments-config.js';
import { CAREBRIDGE_SD } from './appointments-model.js';

export const PREFERENCES_URL = `${CAREBRIDGE_SD}/appointment-reminder-preferences`;

export type Channel = 'email' | 'sms' | 'in-app';
const CHANNELS: readonly Channel[] = ['in-app', 'email', 'sms'];

export interface Delivery {
  channel: Channel;
  /** E-mail address or phone number; absent for in-app. */
  to?: string;
}

/** v3-ParticipationMode code of each channel (Communication.medium). */
export const MEDIUM: Record<Channel, string> = { email: 'EMAILWRIT', sms: 'SMSWRIT', 'in-app': 'ELECTRONIC' };

function contact(patient: Patient, channel: Channel): string | undefined {
  const usable = (t: ContactPoint) =>
    t.value && (channel === 'email' ? t.system === 'email' : t.system === 'sms' || (t.system === 'phone' && t.use === 'mobile'));
  return (patient.telecom ?? []).filter(usable).sort((a, b) => (a.rank ?? Infinity) - (b.rank ?? Infinity))[0]?.value;
}

/** The deliveries the patient wants (empty when they opted out). */
export function deliveriesFor(patient: Patient): Delivery[] {
  const prefs = patient.extension?.find((e) => e.url === PREFERENCES_URL);
  if (prefs?.extension?.some((e) => e.url === 'opt-out' && e.valueBoolean === true)) return [];
  const listed = prefs?.extension?.filter((e) => e.url === 'channel').map((e) => e.valueCode as Channel) ?? [];
  const wanted = listed.length ? CHANNELS.filter((c) => listed.includes(c)) : CHANNELS;
  return wanted.flatMap((channel): Delivery[] => {
    if (channel === 'in-app') return [{ channel }];
    const to = contact(patient, channel);
    return to ? [{ channel, to }] : [];
  });
}

export interface ReminderMessage {
  subject: string;
  text: string;
  appointment: string;
  communication: string;
}

/** Sends reminders through the configured channels; throws on failure (the job retries). */
export class ReminderSender {
  private mailer?: Transporter;

  constructor(
    private readonly config: AppointmentsConfig,
    private readonly logger: Logger,
  ) {}

  async send(delivery: Delivery, message: ReminderMessage): Promise<void> {
    if (delivery.channel === 'in-app') return; // the Communication is the in-app message
    if (delivery.channel === 'email' && this.config.smtpUrl) {
      this.mailer ??= createTransport(this.config.smtpUrl);
      await this.mailer.sendMail({ from: this.config.emailFrom, to: delivery.to, subject: message.subject, text: message.text });
      return;
    }
    if (delivery.channel === 'sms' && this.config.smsWebhookUrl) {
      const res = await fetch(this.config.smsWebhookUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ to: delivery.to, text: message.text, appointment: message.appointment, communication: message.communication }),
        signal: AbortSignal.timeout(10_000),
      });
      if (!res.ok) throw new Error(`SMS webhook answered ${res.status}`);
      return;
    }
    // Log sink: no channel configured. The address is left out of the log (it identifies the patient).
    this.logger.info({ channel: delivery.channel, appointment: message.appointment, communication: message.communication }, 'appointment reminder (no channel configured: logged only)');
  }

  close(): void {
    this.mailer?.close();
  }
}

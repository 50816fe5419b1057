/**
 * Settings of the appointments workflow (environment variables, documented in README.md
 * "Appointments"). Parsed once with the rest of the configuration so that a bad value stops the
 * server at start rather than at the first reminder.
 */
export interface AppointmentsConfig {
  /** Default slot length when the Schedule has no slot-minutes extension (APPOINTMENT_SLOT_MINUTES). */
  slotMinutes: number;
  /** Days ahead that slots are generated for (SLOT_HORIZON_DAYS). */
  horizonDays: number;
  /** IANA time zone the availableTime rules are written in (SCHEDULING_TIMEZONE, default UTC). */
  timeZone: string;
  /** Reminder lead times in ms before Appointment.start (APPOINTMENT_REMINDER_LEAD_TIMES, e.g. "24h,2h"). */
  reminderLeadTimesMs: number[];
  /** SMTP server for e-mail reminders (SMTP_URL, e.g. smtp://user:pass@mail:587); unset → log sink. */
  smtpUrl?: string;
  /** Sender address of e-mail reminders (REMINDER_EMAIL_FROM). */
  emailFrom: string;
  /** Webhook that sends SMS (SMS_WEBHOOK_URL): POST {to, text, appointment}; unset → log sink. */
  smsWebhookUrl?: string;
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "24h,2h,30m,90s" → milliseconds; an empty string means no reminders. */
export function parseLeadTimes(raw: string): number[] {
  return raw
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.length > 0)
    .map((part) => {
      const m = /^(\d+)\s*([smhd])$/i.exec(part);
      if (!m) throw new Error(`APPOINTMENT_REMINDER_LEAD_TIMES: '${part}' is not a duration such as 24h, 30m or 10s`);
      return Number(m[1]) * UNIT_MS[m[2]!.toLowerCase()]!;
    });
}

function positiveInt(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer (got '${raw}')`);
  return n;
}

export function loadAppointmentsConfig(env: NodeJS.ProcessEnv): AppointmentsConfig {
  const timeZone = env.SCHEDULING_TIMEZONE || 'UTC';
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
  } catch {
    throw new Error(`SCHEDULING_TIMEZONE: '${timeZone}' is not an IANA time zone`);
  }
  return {
    slotMinutes: positiveInt('APPOINTMENT_SLOT_MINUTES', env.APPOINTMENT_SLOT_MINUTES, 15),
    horizonDays: positiveInt('SLOT_HORIZON_DAYS', env.SLOT_HORIZON_DAYS, 14),
    timeZone,
    reminderLeadTimesMs: parseLeadTimes(env.APPOINTMENT_REMINDER_LEAD_TIMES ?? '24h,2h'),
    smtpUrl: env.SMTP_URL || undefined,
    emailFrom: env.REMINDER_EMAIL_FROM || 'CareBridge <no-reply@carebridge.invalid>',
    smsWebhookUrl: env.SMS_WEBHOOK_URL || undefined,
  };
}

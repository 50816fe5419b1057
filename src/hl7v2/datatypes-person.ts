/**
 * Person and place data types: XPN → HumanName, XAD → Address, XTN → ContactPoint,
 * XCN → Reference(Practitioner) (written as a resource when the rule asks, else a logical
 * reference with identifier and display), XON → Reference(Organization) display,
 * PL → Reference(Location) display. After the V2-to-FHIR IG data type maps.
 */
import type { Address, ContactPoint, HumanName, Identifier, Reference } from 'fhir/r4.js';
import type { FieldRule } from './mapping-config.js';
import { comp, type Rep } from './parser.js';
import { clean, FieldError, hdAt, identifierSystem, lookup, temporal, text, type ConvertContext } from './convert-context.js';

function period(rep: Rep, ctx: ConvertContext, start: number, end: number) {
  return { start: temporal('dateTime', comp(rep, start), ctx, start), end: temporal('dateTime', comp(rep, end), ctx, end) };
}

function xpn(rep: Rep, ctx: ConvertContext): HumanName | undefined {
  const family = comp(rep, 1, 1).trim();
  const given = [text(rep, 2), text(rep, 3)];
  if (!family && !given.some(Boolean)) return undefined;
  const validity = comp(rep, 12) || comp(rep, 13) ? period(rep, ctx, 12, 13) : undefined;
  return clean<HumanName>({
    use: lookup(ctx, 'NameType', text(rep, 7))?.code as HumanName['use'],
    family,
    given,
    prefix: [text(rep, 5)],
    suffix: [text(rep, 4), text(rep, 6), text(rep, 14)],
    period: validity ?? {
      start: temporal('dateTime', comp(rep, 10, 1), ctx, 10),
      end: temporal('dateTime', comp(rep, 10, 2), ctx, 10),
    },
  } as HumanName);
}

function xad(rep: Rep, ctx: ConvertContext): Address | undefined {
  const street = comp(rep, 1, 1).trim() || [comp(rep, 1, 2), comp(rep, 1, 3)].map((s) => s.trim()).filter(Boolean).join(' ');
  const addressType = text(rep, 7);
  const address = clean<Address>({
    use: lookup(ctx, 'AddressUse', addressType)?.code as Address['use'],
    type: lookup(ctx, 'AddressType', addressType)?.code as Address['type'],
    line: [street, text(rep, 2), text(rep, 19)],
    city: text(rep, 3),
    district: comp(rep, 9, 1).trim(),
    state: text(rep, 4),
    postalCode: text(rep, 5),
    country: text(rep, 6),
    period: period(rep, ctx, 13, 14),
  });
  // An address type alone is no address.
  return address && (address.line || address.city || address.state || address.postalCode || address.country || address.district) ? address : undefined;
}

function xtn(rep: Rep, ctx: ConvertContext): ContactPoint | undefined {
  const equipment = text(rep, 3);
  const equipmentEntry = lookup(ctx, 'TelecommunicationEquipment', equipment);
  let system = equipmentEntry?.code;
  let value: string;
  if (equipment === 'Internet' || equipment === 'X.400' || (!equipment && !text(rep, 1) && text(rep, 4))) {
    value = text(rep, 4);
    system = 'email';
  } else if (text(rep, 12)) {
    value = text(rep, 12);
  } else if (text(rep, 7)) {
    const country = text(rep, 5) ? `+${text(rep, 5)}` : '';
    value = [country, text(rep, 6), text(rep, 7)].filter(Boolean).join(' ') + (text(rep, 8) ? ` X${text(rep, 8)}` : '');
  } else {
    value = text(rep, 1);
  }
  if (!value) return undefined;
  const rank = text(rep, 18);
  if (rank && !/^[1-9]\d*$/.test(rank)) throw new FieldError('102', `'${rank}' is not a preference order`, 18);
  return clean<ContactPoint>({
    system: (system ?? 'phone') as ContactPoint['system'],
    value,
    use: (lookup(ctx, 'TelecommunicationUse', text(rep, 2))?.code ?? equipmentEntry?.use) as ContactPoint['use'],
    rank: rank ? Number(rank) : undefined,
    period: period(rep, ctx, 13, 14),
  });
}

function personName(rep: Rep): { name?: HumanName; display: string } {
  const family = comp(rep, 2, 1).trim();
  const given = [text(rep, 3), text(rep, 4)].filter(Boolean);
  const prefix = text(rep, 6);
  const suffix = [text(rep, 5), text(rep, 7)].filter(Boolean);
  const display = [prefix, ...given, family, ...suffix].filter(Boolean).join(' ');
  return { name: clean({ family, given, prefix: [prefix], suffix }), display };
}

/** XCN → Reference to a Practitioner: a written resource (rule.resource) or identifier + display. */
function xcn(rep: Rep, ctx: ConvertContext, rule: FieldRule): Reference | undefined {
  const id = text(rep, 1);
  const { name, display } = personName(rep);
  const identifier: Identifier | undefined = id ? { system: identifierSystem(ctx, hdAt(rep, 9)), value: id } : undefined;
  if (!identifier && !display) return undefined;
  const type = rule.resource ?? 'Practitioner';
  if (rule.resource && identifier) {
    const resource = clean({ resourceType: type, identifier: [identifier], name: name ? [name] : undefined }) as { resourceType: string };
    return clean({ reference: ctx.addResource(resource as never, identifier), display });
  }
  return clean({ type, identifier, display });
}

/** XON → Reference by display (the organisation name). */
function xon(rep: Rep): Reference | undefined {
  const name = text(rep, 1);
  return name ? { display: name } : undefined;
}

/** PL → Reference(Location) by display: description, else facility, building, floor, point of care, room, bed. */
function pl(rep: Rep): Reference | undefined {
  const description = text(rep, 9);
  const parts = [comp(rep, 4, 1), comp(rep, 7), comp(rep, 8), comp(rep, 1), comp(rep, 2), comp(rep, 3)].map((s) => s.trim()).filter(Boolean);
  const display = description || parts.join(', ');
  return display ? { display } : undefined;
}

export const PERSON_CONVERTERS = {
  XPN: xpn,
  XAD: xad,
  XTN: xtn,
  XCN: xcn,
  XON: xon,
  PL: pl,
};

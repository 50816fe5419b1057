/**
 * findMatchesMany (HL7 v2 identities, in one statement) must find exactly what findMatches — the
 * search engine — finds for each condition, whichever of its two statements serves it: plain
 * token conditions go through the array join, the others through the UNION ALL of searches.
 */
import { describe, expect, it } from 'vitest';
import { findMatches, findMatchesMany } from '../../src/interactions/matching.js';
import { call, ENGINES, useTestServer } from '../support/server.js';

const patient = (identifier: Array<{ system?: string; value: string }>, extra: Record<string, unknown> = {}) => ({ resourceType: 'Patient', identifier, ...extra });

describe.each(ENGINES)('findMatchesMany (%s)', (engine) => {
  const t = useTestServer(engine);

  it('matches as the search engine does, condition by condition', async () => {
    const made: Record<string, string> = {};
    const create = async (key: string, body: object) => {
      const r = await call(t.base, 'POST', '/Patient', body);
      expect(r.status).toBe(201);
      made[key] = r.body.id;
    };
    await create('a', patient([{ system: 'urn:sys', value: 'A' }], { gender: 'male', name: [{ family: 'Smith' }] }));
    await create('c', patient([{ system: 'urn:sys', value: 'C' }], { gender: 'male' }));
    await create('a-other', patient([{ system: 'urn:other', value: 'A' }], { gender: 'male' }));
    await create('b-nosys', patient([{ value: 'B' }], { gender: 'female' }));
    await create('gone', patient([{ system: 'urn:sys', value: 'GONE' }]));
    expect((await call(t.base, 'DELETE', `/Patient/${made.gone}`)).status).toBe(204);

    const conditions = [
      'identifier=urn:sys|A', // one system
      'identifier=A', // any system: two
      'identifier=|B', // no system
      'identifier=|A', // no system: none has A without one
      'identifier=urn:sys|A,urn:sys|C', // alternatives
      'identifier=urn:sys|A,urn:other|A', // alternatives matching different resources
      'identifier=urn:sys|GONE', // deleted
      'identifier=urn:sys|NONE',
      'gender=male', // a common token: limited to 2, oldest first
      'name=Smith', // not a token: the UNION ALL path
      'identifier=urn:sys|A&gender=male', // two filters: the UNION ALL path
    ].map((query) => ({ resourceType: 'Patient', query }));
    const db = t.server.db;
    const many = await findMatchesMany(db, 'tenant_default', conditions, 2);
    const one = await Promise.all(conditions.map((c) => findMatches(db, 'tenant_default', c.resourceType, c.query, 2)));
    const ids = (list: Array<{ id: string }>) => list.map((m) => m.id);
    expect(many.map(ids)).toEqual(one.map(ids));
    // And what that is, worked out from the resources above.
    expect(many.map(ids)).toEqual([
      [made.a],
      [made.a, made['a-other']],
      [made['b-nosys']],
      [],
      [made.a, made.c],
      [made.a, made['a-other']],
      [],
      [],
      [made.a, made.c],
      [made.a],
      [made.a],
    ]);
    expect(JSON.parse(many[0]![0]!.content!).identifier[0].value).toBe('A');
  });
});
